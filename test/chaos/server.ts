/**
 * The harness's private PostgreSQL: always an embedded server of its own in a fresh data directory,
 * never DATABASE_URL or the shared server, because the scenarios crash and stop it. This module
 * starts it, runs the faults on it one at a time, and makes sure no server outlives the harness: not
 * after a failure, not after Ctrl-C (one killed outright is cleaned up by the next: leftovers.ts).
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { type EmbeddedServer, startEmbedded } from '../../scripts/embedded-postgres.js';
import { DATA_DIR_PREFIX, quitPostmaster } from './leftovers.js';

/** ChaosServer is the private server and the faults the scenarios inject into it. */
export class ChaosServer {
  // pending is the fault in progress: faults are serialized, and the final stop waits for it, so a
  // restart cannot spawn a server after the harness believed it stopped.
  private pending: Promise<unknown> = Promise.resolve();
  private stopped = false;

  private constructor(private readonly server: EmbeddedServer) {}

  /** start starts a server in a fresh data directory named after this harness's pid. */
  static async start(): Promise<ChaosServer> {
    const server = await startEmbedded(resolve(tmpdir(), `${DATA_DIR_PREFIX}${process.pid}-${Date.now()}`));
    return new ChaosServer(server);
  }

  /** url is the server's connection string. */
  get url(): string {
    return this.server.url;
  }

  /** crash quits the server at once (immediate mode, as if it crashed) and starts it again: crash recovery. */
  crash(): Promise<void> {
    return this.serialize(() => this.server.restart(0, 'immediate'));
  }

  /** down stops the server (fast mode, as an operator or a failover would). */
  down(): Promise<void> {
    return this.serialize(() => this.server.stop('fast'));
  }

  /** up starts the server again after `down`. */
  up(): Promise<void> {
    return this.serialize(() => this.server.start());
  }

  /** stop waits for the fault in progress, stops the server for good and deletes its data directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.pending.catch(() => undefined);
    await this.server.stop('fast');
    await removeDataDir(this.server.dataDir);
  }

  /**
   * stopNow is for the process's exit handler, where nothing can be awaited: it quits the server
   * (immediate mode) by the pid in its lock file and deletes what it can of the data directory.
   */
  stopNow(): void {
    quitPostmaster(this.server.dataDir);
    rmSync(this.server.dataDir, { recursive: true, force: true, maxRetries: 3 });
  }

  private serialize(fault: () => Promise<void>): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('the server was stopped for good'));
    const next = this.pending.catch(() => undefined).then(fault);
    this.pending = next;
    return next;
  }
}

// removeDataDir deletes a data directory; the postmaster's last children may still be closing
// files for a moment after it exited, so a failed removal is tried again.
async function removeDataDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (error) {
      if (attempt >= 10) throw error;
      await delay(100);
    }
  }
}

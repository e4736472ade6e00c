/**
 * The contract every benchmarked system (jobchart and its peers) fulfils, and the few helpers the
 * system modules share: batching, the start-latency probe and reading a peer's installed version.
 * Keeping this in one place is what makes the systems comparable: they batch alike, time alike and
 * report in the same units.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { serverCpuMicros } from '../server-cpu.js';
import { walPosition } from '../server-wal.js';

/** BATCH is the number of jobs each bulk enqueue call carries, the same for every system. */
export const BATCH = 1_000;

/** SETTLE_MS is how long an idle worker is left alone before the latency probe starts. */
export const SETTLE_MS = 250;

/** System is one configuration of one job system; a workload skips a system that lacks its method. */
export interface System {
  /** id is a stable key for the JSON results, e.g. `graphile-batched`. */
  id: string;
  /** label is the name shown in tables and the chart, with the version. */
  label: string;
  /** config says in words how the system is set up, for the JSON results. */
  config: string;
  /**
   * drainTakesConcurrency is false for systems without a per-job concurrency setting (pg-boss, raw
   * SQL): they are drained once per round and that figure stands for every concurrency level.
   */
  drainTakesConcurrency: boolean;
  /**
   * drain enqueues `total` no-op jobs in bulk into the fresh database, then starts a worker working
   * at most `concurrency` at once and times it (with a DrainTimer) until the database shows all done.
   */
  drain?(connectionString: string, total: number, concurrency: number): Promise<DrainFigures>;
  /** enqueue inserts `total` jobs through the system's bulk API and returns jobs per second. */
  enqueue?(connectionString: string, total: number): Promise<number>;
  /** latency enqueues `samples` jobs one at a time into an idle worker and returns each wait in ms. */
  latency?(connectionString: string, samples: number): Promise<number[]>;
}

/** batchSizes splits `total` into consecutive batch lengths of at most BATCH. */
export function batchSizes(total: number): number[] {
  const sizes: number[] = [];
  for (let done = 0; done < total; done += BATCH) sizes.push(Math.min(BATCH, total - done));
  return sizes;
}

/** ratePerSecond turns a count and a start time from `performance.now()` into a rate per second. */
export function ratePerSecond(count: number, startedAt: number): number {
  return count / ((performance.now() - startedAt) / 1000);
}

/** DrainFigures is what one timed drain measured. */
export interface DrainFigures {
  jobsPerSecond: number;
  /**
   * workerCpuMicros is this process's CPU over the drain, every thread of it: the system's worker
   * code, its driver, garbage collection, and the harness's completion poll (the same for all).
   */
  workerCpuMicros: number;
  /** serverCpuMicros is the database server's CPU over the drain; null when it cannot be read. */
  serverCpuMicros: number | null;
  /** walBytes is the WAL the server wrote over the drain; null when it cannot be read. */
  walBytes: number | null;
}

/**
 * DrainTimer times a drain from `start` to `finish`: wall clock, this process's CPU, the server's CPU
 * and the WAL it wrote. The server is read first and last, outside the timed span, since reading it
 * walks /proc and asks the server.
 */
export class DrainTimer {
  private readonly serverAtStart = serverCpuMicros();
  private readonly workerAtStart = process.cpuUsage();
  private readonly startedAt = performance.now();

  private constructor(
    private readonly databaseUrl: string,
    private readonly walAtStart: bigint | null,
  ) {}

  /** start begins timing a drain on the server behind `databaseUrl`. */
  static async start(databaseUrl: string): Promise<DrainTimer> {
    return new DrainTimer(databaseUrl, await walPosition(databaseUrl));
  }

  /** finish ends the timing of a drain of `total` jobs. */
  async finish(total: number): Promise<DrainFigures> {
    const jobsPerSecond = ratePerSecond(total, this.startedAt);
    const worker = process.cpuUsage(this.workerAtStart);
    const server = serverCpuMicros();
    const wal = await walPosition(this.databaseUrl);
    return {
      jobsPerSecond,
      workerCpuMicros: worker.user + worker.system,
      serverCpuMicros: server === null || this.serverAtStart === null ? null : server - this.serverAtStart,
      walBytes: wal === null || this.walAtStart === null ? null : Number(wal - this.walAtStart),
    };
  }
}

/**
 * StartSignal connects a handler to the latency probe: the handler calls `hit()` as its first act,
 * the probe awaits `next()` for the moment it did.
 */
export class StartSignal {
  private resolve: ((at: number) => void) | null = null;

  /** hit records that a handler has started now. A hit nobody waits for (a stray job) is ignored. */
  hit(): void {
    const resolve = this.resolve;
    this.resolve = null;
    resolve?.(performance.now());
  }

  /** next waits for the next hit and gives its time; it fails after `timeoutMs` without one. */
  next(timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.resolve = null;
        reject(new Error(`no handler started within ${timeoutMs} ms`));
      }, timeoutMs);
      this.resolve = (at) => {
        clearTimeout(timer);
        resolve(at);
      };
    });
  }
}

/**
 * measureStartLatency enqueues one job at a time with `enqueueOne` and times each from just before
 * the enqueue call to the handler's `signal.hit()`. A short pause after each job lets the worker go
 * idle again, which is the situation measured. Returns the waits in milliseconds, in order.
 */
export async function measureStartLatency(
  samples: number,
  signal: StartSignal,
  enqueueOne: () => Promise<unknown>,
): Promise<number[]> {
  await delay(SETTLE_MS);
  const waits: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = signal.next(10_000);
    // Awaited below; the handler only keeps a failed enqueue from leaving an unhandled rejection.
    started.catch(() => undefined);
    const enqueuedAt = performance.now();
    await enqueueOne();
    waits.push((await started) - enqueuedAt);
    await delay(2);
  }
  return waits;
}

/** packageVersion reads the installed version of a dependency, walking up from this file. */
export function packageVersion(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(manifest))
      return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

/** minorVersion shortens `0.18.0` to `0.18`, for labels. */
export function minorVersion(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

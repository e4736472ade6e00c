/**
 * The fleet of worker processes of one scenario run: it starts them (test/chaos/worker.ts), kills
 * and replaces them on the scenario's order, notices when one exits that nobody killed (a runtime
 * that lets its process die with the database) and replaces that one too once the database answers
 * again, so that the run can finish and the exit is reported rather than hung on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { Admin } from './admin.js';
import type { WorkerStats } from './worker.js';
import { LOG_SUFFIX } from './worklog.js';

const WORKER = new URL('./worker.js', import.meta.url).pathname;
// STDERR_TAIL_LINES is how much of a worker's stderr an unexpected exit reports.
const STDERR_TAIL_LINES = 12;
// STOP_TIMEOUT_MS is how long a SIGTERM'd worker gets before it is SIGKILLed and reported.
const STOP_TIMEOUT_MS = 20_000;
// MAX_REPLACEMENTS bounds replacements of unexpected exits: a worker that cannot even start (a bad
// build) would otherwise be restarted until the run's deadline.
const MAX_REPLACEMENTS = 60;

// live holds every worker process not yet exited, across fleets, for the harness's exit handler.
const live = new Set<ChildProcess>();

/** killAllWorkersNow SIGKILLs every worker still running; for exit handlers, where nothing can be awaited. */
export function killAllWorkersNow(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** ExitReason says why a worker process ended. */
export type ExitReason = 'killed' | 'stopped' | 'unexpected';

/** WorkerRecord is one worker process, as the report shows it. */
export interface WorkerRecord {
  name: string;
  slot: number;
  pid: number;
  startedAt: number;
  exitedAt?: number;
  code?: number | null;
  signal?: string | null;
  reason?: ExitReason;
  /** stats are the worker's last reported counts (at most a second old for a killed one). */
  stats?: WorkerStats;
  /** stderrTail is the end of its stderr, kept for unexpected exits and unclean stops. */
  stderrTail?: string[];
}

/** FleetConfig is what every worker of a run shares. */
export interface FleetConfig {
  url: string;
  schema: string;
  /** runDir receives each worker's work log, runtime log and full stderr. */
  runDir: string;
  workMs: number;
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
  maxRunningJobs: number;
  /** admin tells when the database answers again, before an unexpectedly exited worker is replaced. */
  admin: Admin;
  /** signal is the run's deadline: replacements stop waiting when it fires. */
  signal: AbortSignal;
}

interface WorkerProcess {
  record: WorkerRecord;
  child: ChildProcess;
  expected: ExitReason | null;
  /** started settles once the worker said it started, or exited. */
  started: Promise<void>;
  exited: Promise<void>;
  tail: string[];
  stderr: WriteStream;
}

/** Fleet runs the worker processes of one scenario run. */
export class Fleet {
  /** records lists every process the fleet started, in order. */
  readonly records: WorkerRecord[] = [];
  private readonly current: WorkerProcess[] = [];
  private readonly generations: number[] = [];
  private replacements = 0;
  private stopping = false;

  constructor(private readonly config: FleetConfig) {}

  /** startAll starts `count` workers, in slots 0 to count − 1. */
  startAll(count: number): void {
    for (let slot = 0; slot < count; slot++) this.start(slot);
  }

  /** nameOf is the name of the process now in a slot. */
  nameOf(slot: number): string {
    return this.current[slot]?.record.name ?? `w${slot}`;
  }

  /**
   * kill SIGKILLs the worker in `slot`, waits for it to be gone, and starts a replacement under a new
   * name. It returns the victim's name and when the signal was sent, or null if the slot's process had
   * already exited (its unexpected exit is being handled).
   */
  async kill(slot: number): Promise<{ victim: string; at: number; replacement: string } | null> {
    const proc = this.current[slot];
    if (!proc || proc.record.exitedAt !== undefined) return null;
    proc.expected = 'killed';
    const at = Date.now();
    proc.child.kill('SIGKILL');
    await proc.exited;
    const replacement = this.start(slot);
    return { victim: proc.record.name, at, replacement: replacement.record.name };
  }

  /** stopAll SIGTERMs every worker (a graceful stop) and waits for them; one that hangs is SIGKILLed. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.current.map(async (proc) => {
        if (proc.record.exitedAt !== undefined) return;
        proc.expected = 'stopped';
        const timer = new AbortController();
        const giveUp = delay(STOP_TIMEOUT_MS, true, { signal: timer.signal }).catch(() => false);
        // A worker still booting has no SIGTERM handler yet and would die of the signal: it gets
        // the signal once it has started (or at the same deadline), as a deployment's stop would.
        await Promise.race([proc.started, giveUp]);
        proc.child.kill('SIGTERM');
        const timedOut = await Promise.race([proc.exited.then(() => false), giveUp]);
        timer.abort();
        if (timedOut) {
          proc.tail.push(`(harness: no exit ${STOP_TIMEOUT_MS} ms after SIGTERM; SIGKILL)`);
          proc.child.kill('SIGKILL');
          await proc.exited;
        }
      }),
    );
  }

  /** unexpectedExits lists the processes that exited without being killed or stopped. */
  get unexpectedExits(): WorkerRecord[] {
    return this.records.filter((r) => r.reason === 'unexpected');
  }

  /** uncleanStops lists the processes that were asked to stop but did not exit 0 by themselves. */
  get uncleanStops(): WorkerRecord[] {
    return this.records.filter((r) => r.reason === 'stopped' && r.code !== 0);
  }

  /** errorTotals sums the runtime:error counts (by `during`) every process reported. */
  errorTotals(): Record<string, number> {
    const totals: Record<string, number> = {};
    for (const record of this.records)
      for (const [during, n] of Object.entries(record.stats?.errors ?? {}))
        totals[during] = (totals[during] ?? 0) + n;
    return totals;
  }

  private start(slot: number): WorkerProcess {
    const generation = this.generations[slot] ?? 0;
    this.generations[slot] = generation + 1;
    // w0, then w0-b, w0-c...: a replacement is a new consumer, as a restarted process would be.
    const name = generation === 0 ? `w${slot}` : `w${slot}-${suffix(generation)}`;
    const c = this.config;
    const child = spawn(process.execPath, [WORKER], {
      env: {
        ...process.env,
        DATABASE_URL: c.url,
        SCHEMA: c.schema,
        NAME: name,
        WORK_LOG: join(c.runDir, `${name}${LOG_SUFFIX}`),
        RUNTIME_LOG: join(c.runDir, `${name}.runtime.log`),
        WORK_MS: String(c.workMs),
        HEARTBEAT_MS: String(c.heartbeatIntervalMs),
        CONSUMER_TIMEOUT_MS: String(c.consumerTimeoutMs),
        MAX_RUNNING: String(c.maxRunningJobs),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    const record: WorkerRecord = { name, slot, pid: child.pid ?? 0, startedAt: Date.now() };
    this.records.push(record);
    const stderr = createWriteStream(join(c.runDir, `${name}.stderr`));
    let saidStarted = () => {};
    const proc: WorkerProcess = {
      record,
      child,
      expected: null,
      started: new Promise<void>((done) => {
        saidStarted = done;
      }),
      exited: Promise.resolve(),
      tail: [],
      stderr,
    };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const message = parse(line);
      if (message?.event === 'stats' && message.stats) record.stats = message.stats;
      if (message?.event === 'started') saidStarted();
    });
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      stderr.write(`${line}\n`);
      proc.tail.push(line);
      if (proc.tail.length > STDERR_TAIL_LINES) proc.tail.shift();
    });
    // 'close' rather than 'exit': by then stdout and stderr are drained, so the last stats are in.
    proc.exited = new Promise<void>((done) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        stderr.end();
        record.exitedAt = Date.now();
        record.code = code;
        record.signal = signal;
        record.reason = proc.expected ?? 'unexpected';
        if (record.reason !== 'killed') record.stderrTail = [...proc.tail];
        if (record.reason === 'unexpected') void this.replace(proc);
        saidStarted();
        done();
      });
    });
    this.current[slot] = proc;
    return proc;
  }

  // replace starts a new worker in the slot of one that exited unexpectedly, once the database
  // answers (a worker started against a stopped server would only exit again at once).
  private async replace(proc: WorkerProcess): Promise<void> {
    if (this.stopping || this.replacements >= MAX_REPLACEMENTS) return;
    this.replacements++;
    try {
      while (!(await this.config.admin.reachable()))
        await delay(200, undefined, { signal: this.config.signal });
    } catch {
      return; // The run's deadline fired: it is being torn down.
    }
    if (this.stopping || this.current[proc.record.slot] !== proc) return;
    this.start(proc.record.slot);
  }
}

function suffix(generation: number): string {
  return generation < 25 ? String.fromCharCode(97 + generation) : String(generation);
}

function parse(line: string): { event?: string; stats?: WorkerStats } | null {
  try {
    return JSON.parse(line) as { event?: string; stats?: WorkerStats };
  } catch {
    return null;
  }
}

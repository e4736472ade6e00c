import type pg from 'pg';
import { JOB_STATES, type JobState, jobMachine } from '../../machines/job.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { JobNotFoundError, RuntimeStateError, ValidationError, WaitTimeoutError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import type { Logger } from '../core/logger.js';
import { validateInteger } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import { Listener } from '../wake/listener.js';

/** WaitForOptions tune `runtime.waitFor`. */
export interface WaitForOptions {
  /** timeoutMs rejects with a WaitTimeoutError after this long on the runtime's clock (default: no limit). */
  timeoutMs?: number;
}

const WAIT_FOR_OPTION_NAMES = optionNames<WaitForOptions>({ timeoutMs: true });

/**
 * waitTimeoutOf checks `waitFor`'s options and returns its timeout, null for none. A misspelled
 * timeoutMs is refused: ignored, it would leave the caller waiting forever.
 */
export function waitTimeoutOf(options: WaitForOptions): number | null {
  if (typeof options !== 'object' || options === null)
    throw new ValidationError('options', 'an object { timeoutMs? }', options);
  assertKnownKeys(options, WAIT_FOR_OPTION_NAMES, 'waitFor');
  return options.timeoutMs === undefined
    ? null
    : validateInteger(options.timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
}

/** FINISHED_STATES are the states the job machine tags `finished`: the ones `waitFor` waits into. */
export const FINISHED_STATES: readonly JobState[] = JOB_STATES.filter((state) =>
  jobMachine.states[state]?.tags.includes('finished'),
);

const finished = new Set<JobState>(FINISHED_STATES);

/** JobWaiterDeps are what a JobWaiter needs from its runtime. */
export interface JobWaiterDeps {
  /** connectionConfig opens the listener's dedicated connection. */
  connectionConfig: pg.ClientConfig;
  /** channel carries the ids of finished jobs (`finishedChannel(schema)`); null polls only. */
  channel: string | null;
  /** read reads one job by id, or null if there is none. */
  read(id: string): Promise<Job | null>;
  clock: Clock;
  /** pollIntervalMs between re-reads of every waited job, the backstop behind notifications. */
  pollIntervalMs: number;
  logger: Logger;
  /** onError reports a failure the waiter recovers from by itself. */
  onError(error: unknown, during: 'listen' | 'wait'): void;
}

interface Waiter {
  resolve(job: Job): void;
  reject(error: unknown): void;
  timer: TimerHandle | null;
}

// Entry is one waited job and everyone waiting for it. Reads of it never overlap: a re-read asked for
// while one is in flight runs right after it, so a finish announced mid-read is never missed.
interface Entry {
  id: string;
  waiters: Set<Waiter>;
  reading: boolean;
  again: boolean;
  /** state is the state last read, null until a read succeeded. */
  state: JobState | null;
}

/**
 * JobWaiter resolves `waitFor` calls across processes. On the first call it opens one LISTEN connection
 * on the finished channel and keeps it until closed. A waited job is read right after listening (it
 * may already be finished), again whenever its id (or an empty "re-read" payload) is announced, after
 * every reconnect (announcements are lost while disconnected), and every `pollIntervalMs` while anyone
 * waits (an announcement can be lost even while connected). All waiters of a job settle together.
 */
export class JobWaiter {
  private readonly entries = new Map<string, Entry>();
  private listener: Listener | null = null;
  private listening: Promise<void> | null = null;
  private pollTimer: TimerHandle | null = null;
  private closed = false;

  constructor(private readonly deps: JobWaiterDeps) {}

  /** size is how many jobs are waited for. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * wait resolves with the job once it is in a finished state. It rejects with a JobNotFoundError if
   * there is no such job or it is deleted meanwhile, with a WaitTimeoutError after `timeoutMs` (null:
   * never), with the read's error if the first read fails, and with a RuntimeStateError on close.
   * The timeout starts now, synchronously, so a simulated clock can be advanced right after the call.
   */
  wait(id: string, timeoutMs: number | null): Promise<Job> {
    if (this.closed) return Promise.reject(stoppedError(id));
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { id, waiters: new Set(), reading: false, again: false, state: null };
      this.entries.set(id, entry);
      this.armPoll();
    }
    const waited = entry;
    const promise = new Promise<Job>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: null };
      if (timeoutMs !== null)
        waiter.timer = this.deps.clock.setTimeout(() => this.expire(waited, waiter, timeoutMs), timeoutMs);
      waited.waiters.add(waiter);
    });
    void this.listen().then(() => this.refresh(waited));
    return promise;
  }

  /** close rejects every pending wait with a RuntimeStateError and closes the listener. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of [...this.entries.values()])
      this.settle(entry, (w) => w.reject(stoppedError(entry.id)));
    this.disarmPoll();
    await this.listener?.stop();
  }

  // listen opens the listener once and resolves after its first connection attempt, successful or not
  // (it keeps reconnecting; the poll covers the gap).
  private listen(): Promise<void> {
    const { channel } = this.deps;
    if (this.listening) return this.listening;
    if (channel === null || this.closed) {
      this.listening = Promise.resolve();
      return this.listening;
    }
    this.listener = new Listener(
      this.deps.connectionConfig,
      channel,
      {
        onNotify: (payload) => this.onNotify(payload),
        onConnected: () => this.refreshAll(),
        onDisconnected: (error) => this.deps.onError(error, 'listen'),
      },
      this.deps.logger,
    );
    this.listening = this.listener.start();
    return this.listening;
  }

  private onNotify(payload: string): void {
    if (payload === '') {
      this.refreshAll();
      return;
    }
    for (const id of payload.split(',')) {
      const entry = this.entries.get(id);
      if (entry) this.refresh(entry);
    }
  }

  private refreshAll(): void {
    for (const entry of this.entries.values()) this.refresh(entry);
  }

  private refresh(entry: Entry): void {
    if (this.entries.get(entry.id) !== entry) return;
    if (entry.reading) {
      entry.again = true;
      return;
    }
    entry.reading = true;
    void this.read(entry);
  }

  private async read(entry: Entry): Promise<void> {
    try {
      const job = await this.deps.read(entry.id);
      if (this.entries.get(entry.id) !== entry) return;
      if (job === null) {
        const removed = entry.state !== null;
        this.settle(entry, (w) => w.reject(new JobNotFoundError(entry.id, removed)));
      } else if (finished.has(job.state)) {
        this.settle(entry, (w) => w.resolve(job));
      } else {
        entry.state = job.state;
      }
    } catch (error) {
      if (this.entries.get(entry.id) !== entry) return;
      // A job never read successfully may not be readable at all (e.g. an unmigrated schema): its
      // waiters get the error, as getJob would give it. Later failures are retried by the poll.
      if (entry.state === null) this.settle(entry, (w) => w.reject(error));
      else this.deps.onError(error, 'wait');
    } finally {
      entry.reading = false;
      if (entry.again) {
        entry.again = false;
        this.refresh(entry);
      }
    }
  }

  private expire(entry: Entry, waiter: Waiter, timeoutMs: number): void {
    waiter.timer = null;
    if (!entry.waiters.delete(waiter)) return;
    if (entry.waiters.size === 0) this.drop(entry);
    waiter.reject(new WaitTimeoutError(entry.id, timeoutMs, FINISHED_STATES, entry.state));
  }

  // settle removes the entry and hands every waiter of it to `fn`, their timers cleared.
  private settle(entry: Entry, fn: (waiter: Waiter) => void): void {
    this.drop(entry);
    for (const waiter of entry.waiters) {
      if (waiter.timer) this.deps.clock.clearTimeout(waiter.timer);
      waiter.timer = null;
      fn(waiter);
    }
    entry.waiters.clear();
  }

  private drop(entry: Entry): void {
    if (this.entries.get(entry.id) === entry) this.entries.delete(entry.id);
    if (this.entries.size === 0) this.disarmPoll();
  }

  private armPoll(): void {
    if (this.pollTimer || this.closed || this.entries.size === 0) return;
    this.pollTimer = this.deps.clock.setTimeout(() => {
      this.pollTimer = null;
      this.refreshAll();
      this.armPoll();
    }, this.deps.pollIntervalMs);
  }

  private disarmPoll(): void {
    if (this.pollTimer) this.deps.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }
}

function stoppedError(id: string): RuntimeStateError {
  return new RuntimeStateError(`waitFor: expected job ${id} to finish before the runtime stopped`);
}

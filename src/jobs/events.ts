import { EventEmitter } from 'node:events';
import type { JobEventType, JobState } from '../../machines/job.js';
import type { Job } from '../storage/job-row.js';
import type { Schedule } from '../storage/schedule-statements.js';

/** TransitionEvent describes one durable state change of a job (typed when its task is declared). */
export interface TransitionEvent<Payload = unknown, Result = unknown> {
  job: Job<Payload, Result>;
  /** from is null when the job was just enqueued. */
  from: JobState | null;
  to: JobState;
  /** event is the machine event that caused it, or ENQUEUE. */
  event: JobEventType | 'ENQUEUE';
  at: Date;
}

/** CrashEvent reports that the onException policy (or a failure of it) crashed the runtime. */
export interface CrashEvent {
  error: unknown;
  jobId: string | null;
}

/**
 * RuntimeErrorEvent reports a failure the runtime recovers from by itself (it keeps retrying). `wait`
 * is a failed re-read of a job someone waits for with `waitFor` (the next poll reads it again).
 */
export interface RuntimeErrorEvent {
  error: unknown;
  /**
   * during says what failed: `claim` a claim round, `complete` writing outcomes, `progress` writing
   * progress, `notify` telling other runtimes that jobs changed or finished, `listen` the LISTEN
   * connection, `wait` a waitFor's re-read of its job, `heartbeat` and `sweep` the
   * consumer upkeep, `schedule` a schedule pass, `stop` the last writes of stop(), `queues` reading
   * the paused queues, `stats` adding this runtime's transition counts to the database, `clean` a
   * retention pass (see CleanedEvent).
   */
  during:
    | 'claim'
    | 'complete'
    | 'progress'
    | 'notify'
    | 'listen'
    | 'wait'
    | 'heartbeat'
    | 'sweep'
    | 'stop'
    | 'schedule'
    | 'queues'
    | 'stats'
    | 'clean';
}

/** ProgressEvent reports a running job's progress, as its handler called `ctx.progress`. */
export interface ProgressEvent {
  job: Job;
  completed: number;
  total: number;
  at: Date;
}

/** SweptEvent reports a sweep this runtime did: silent consumers deleted, their running jobs taken back. */
export interface SweptEvent {
  consumers: string[];
  jobs: { id: string; state: JobState }[];
  at: Date;
}

/** ConnectionEvent reports the LISTEN connection coming up or going down. */
export interface ConnectionEvent {
  at: Date;
  error?: unknown;
}

/** ScheduleTickEvent reports the job this runtime enqueued for a tick of a schedule. */
export interface ScheduleTickEvent {
  schedule: Schedule;
  tick: Date;
  job: Job;
}

/** PolledEvent reports a finished claim round: how many jobs it took, at what clock time. */
export interface PolledEvent {
  claimed: number;
  at: Date;
}

/**
 * FinishedJobState is a finished state the cleaner deletes jobs from: the job machine's finished
 * states that REMOVE applies to (CLEANABLE_STATES derives them from the machine; a test checks that
 * this list agrees).
 */
export type FinishedJobState = Extract<JobState, 'succeeded' | 'failed' | 'cancelled' | 'expired'>;

/**
 * CleanCounts is what one retention pass deleted: the finished jobs of each state past their
 * retention, the idle token buckets, and the consumer rows long gone. `skipped` is true when another
 * runtime was cleaning the schema and this pass stopped (with what it had done so far).
 */
export type CleanCounts = Record<FinishedJobState, number> & {
  tokenBuckets: number;
  consumers: number;
  /** batches counts the delete statements the pass ran (each its own transaction). */
  batches: number;
  skipped: boolean;
};

/** CleanedEvent reports a retention pass (periodic or `runtime.clean()`) and when it started. */
export type CleanedEvent = CleanCounts & { at: Date };

type StateEvents = { [S in JobState as `job:${S}`]: [TransitionEvent] };

/** RuntimeEventMap lists every event a runtime emits and its argument. */
export type RuntimeEventMap = StateEvents & {
  'job:transition': [TransitionEvent];
  'job:progress': [ProgressEvent];
  'runtime:crashed': [CrashEvent];
  'runtime:error': [RuntimeErrorEvent];
  'runtime:polled': [PolledEvent];
  'runtime:swept': [SweptEvent];
  /** runtime:heartbeat follows each heartbeat that landed, once its sweep (if any) is done. */
  'runtime:heartbeat': [{ at: Date; swept: boolean }];
  'schedule:tick': [ScheduleTickEvent];
  'schedule:pass': [{ at: Date; enqueued: number }];
  'runtime:presumed-dead': [{ consumerId: string; at: Date }];
  'runtime:connected': [ConnectionEvent];
  'runtime:disconnected': [ConnectionEvent];
  /** stats:flushed follows each write of this runtime's transition counts (`rows` written). */
  'stats:flushed': [{ at: Date; rows: number }];
  /** maintenance:cleaned follows each retention pass, periodic or asked for (see CleanCounts). */
  'maintenance:cleaned': [CleanedEvent];
};

/**
 * TransitionTap is told of every transition a runtime announces, listened to or not, with the job as
 * it is afterwards (see RuntimeEvents.tapTransitions).
 */
export type TransitionTap = (job: Job, from: JobState | null, at: Date) => void;

/** RuntimeEvents is the typed emitter behind `runtime.events`. */
export class RuntimeEvents extends EventEmitter<RuntimeEventMap> {
  // jobListeners counts the listeners of job transition events, kept up to date as they come and
  // go, so that the hot path asks one number rather than the emitter's tables, twice per job.
  private jobListeners = 0;
  private tap: TransitionTap | null = null;

  constructor() {
    super();
    // The typed map lists the runtime's own events; these two are the emitter's.
    const untyped = this as EventEmitter;
    untyped.on('newListener', (name: string | symbol) => {
      if (isTransitionEvent(name)) this.jobListeners++;
    });
    untyped.on('removeListener', (name: string | symbol) => {
      if (isTransitionEvent(name)) this.jobListeners--;
    });
  }

  /**
   * tapTransitions has `tap` told of every transition emitTransition announces, without building an
   * event or counting as a listener (the runtime's transition counter; one tap, the last set).
   */
  tapTransitions(tap: TransitionTap): void {
    this.tap = tap;
  }

  /**
   * emitTransition emits `job:transition` and `job:<to>`; it builds nothing when nobody listens, so
   * events cost the hot path nothing by default.
   */
  emitTransition(job: Job, from: JobState | null, event: TransitionEvent['event'], at: Date): void {
    this.tap?.(job, from, at);
    if (this.jobListeners === 0) return;
    const stateEvent = `job:${job.state}` as const;
    const wanted = this.listenerCount('job:transition') + this.listenerCount(stateEvent);
    if (wanted === 0) return;
    const payload: TransitionEvent = { job, from, to: job.state, event, at };
    this.emit(stateEvent, payload);
    this.emit('job:transition', payload);
  }
}

// isTransitionEvent tells the events emitTransition emits: `job:transition` and `job:<state>`
// (`job:progress` is not one of them).
function isTransitionEvent(name: string | symbol): boolean {
  return typeof name === 'string' && name.startsWith('job:') && name !== 'job:progress';
}

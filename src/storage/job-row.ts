import type { JobState } from '../../machines/job.js';

/** JobRow is a row of the jobs table as pg returns it. */
export interface JobRow {
  id: string;
  task: string;
  queue: string;
  payload: unknown;
  priority: number;
  state: JobState;
  run_at: Date | null;
  attempts: number;
  max_attempts: number;
  interruptions: number;
  last_error: string | null;
  errors: AttemptError[];
  key: string | null;
  expires_at: Date | null;
  progress: unknown;
  result: unknown;
  created_at: Date;
  created_by: string | null;
  locked_by: string | null;
  locked_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  tags: string[];
  trace_context: TraceContext | null;
}

/**
 * TraceContext is the W3C trace context a job carries from where it was enqueued (`traceparent` and,
 * when there is one, `tracestate`), as OpenTelemetry's propagator writes it.
 */
export type TraceContext = Record<string, string>;

/**
 * AttemptError records why one attempt ended badly (a throw, a timeout, `fail()`, a cancel reason,
 * an interruption by the sweep), one entry per such attempt, oldest first.
 */
export interface AttemptError {
  /** attempt is the job's attempts count when it was recorded. */
  attempt: number;
  /** at is when it was recorded, as PostgreSQL writes a timestamptz in JSON. */
  at: string;
  /** message is the one-line text that became the job's lastError, e.g. "TypeError: x is not a function". */
  message: string;
  /**
   * stack is the thrown error's stack, present only when it had one (or, for a thrown value without
   * one, its whole text when `message` kept only the first line). Older entries never have it.
   */
  stack?: string;
}

/**
 * Job is a job as jobchart's API returns it. Ids are strings because they are 64-bit integers.
 * Payload and Result are the types a task declaration gives (see `task`); unknown otherwise.
 */
export interface Job<Payload = unknown, Result = unknown> {
  id: string;
  task: string;
  queue: string;
  payload: Payload;
  priority: number;
  state: JobState;
  /** runAt is when the job may next start; null parks it. */
  runAt: Date | null;
  attempts: number;
  maxAttempts: number;
  /**
   * interruptions counts the times the job was taken back from a consumer that stopped heartbeating
   * while it held the job; those attempts were refunded. The job fails at the runtime's maxInterruptions.
   */
  interruptions: number;
  /**
   * lastError is the last failure in one line: the error's name and the first line of its message
   * (or a cancel reason, or why the sweep took the job back). The stack is in `errors`.
   */
  lastError: string | null;
  /** errors records every attempt that ended badly, with the stack where there was one. */
  errors: AttemptError[];
  key: string | null;
  expiresAt: Date | null;
  progress: unknown;
  /** result is what the handler returned, once the job succeeded; null before. */
  result: Result | null;
  createdAt: Date;
  createdBy: string | null;
  lockedBy: string | null;
  lockedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
  /** tags label the job for filtering (listJobs, bulk actions); empty when it has none. */
  tags: string[];
  /**
   * traceContext is the trace context that was active when the job was enqueued, if OpenTelemetry was
   * in use: each attempt's span is its child. Null when nothing was traced.
   */
  traceContext: TraceContext | null;
}

/** toJob maps a database row to the API's Job. */
export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    task: row.task,
    queue: row.queue,
    payload: row.payload,
    priority: row.priority,
    state: row.state,
    runAt: row.run_at,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    interruptions: row.interruptions,
    lastError: row.last_error,
    errors: row.errors,
    key: row.key,
    expiresAt: row.expires_at,
    progress: row.progress,
    result: row.result,
    createdAt: row.created_at,
    createdBy: row.created_by,
    lockedBy: row.locked_by,
    lockedAt: row.locked_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
    tags: row.tags,
    traceContext: row.trace_context,
  };
}

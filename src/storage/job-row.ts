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
}

/** AttemptError records why one attempt failed. */
export interface AttemptError {
  attempt: number;
  at: string;
  message: string;
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
  lastError: string | null;
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
  };
}

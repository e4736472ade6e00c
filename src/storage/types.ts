import type pg from 'pg';
import type { JobState } from '../../machines/job.js';

/** Queryable is anything that runs a parameterized query: a pool, a pooled client or a caller's client. */
export type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, 'query'>;

/** NewJob is one validated job ready to insert; payload is already serialized JSON text. */
export interface NewJob {
  task: string;
  queue: string;
  payloadJson: string;
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  key: string | null;
  /** mode is what to do about a live job with the same key (see EnqueueOptions.mode). */
  mode: 'new' | 'ignore_if_exists' | 'reschedule';
  expiresAt: Date | null;
  /** tags are the job's validated tags, in the order given, without repeats. */
  tags: readonly string[];
  /** traceContextJson is the enqueuer's trace context as JSON text, or null when nothing was traced. */
  traceContextJson: string | null;
}

/** ClaimTransition is the claim as the job machine defines it: the states it leaves and the one it enters. */
export interface ClaimTransition {
  from: readonly JobState[];
  to: JobState;
}

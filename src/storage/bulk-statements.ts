import type { JobState } from '../../machines/job.js';
import { type JobFilter, jobFilterWhere } from './admin-statements.js';
import { type Job, type JobRow, toJob } from './job-row.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/** ScannedJob is what a bulk action reads of a matching job to ask the machine about it. */
export interface ScannedJob {
  id: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
}

/**
 * jobsScan reads the next `limit` jobs matching `filter` with an id above `afterId` (null: from the
 * first), in id order: a keyset page, so a bulk action walks any number of jobs in short statements
 * and never meets a job twice.
 */
export async function jobsScan(
  db: Queryable,
  tables: Tables,
  filter: JobFilter,
  afterId: string | null,
  limit: number,
): Promise<ScannedJob[]> {
  const values: unknown[] = [];
  const where = jobFilterWhere(filter, values);
  if (afterId !== null) {
    values.push(afterId);
    where.push(`id > $${values.length}`);
  }
  values.push(limit);
  const result = await db.query<{ id: string; state: JobState; attempts: number; max_attempts: number }>(
    `SELECT id, state, attempts, max_attempts FROM ${tables.jobs}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id LIMIT $${values.length}`,
    values,
  );
  return result.rows.map((row) => ({
    id: row.id,
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
  }));
}

/** PlannedRow is one job's change as the machine planned it from the state it was read in. */
export interface PlannedRow {
  id: string;
  from: JobState;
  to: JobState;
  attempts: number;
  /** finished stamps finished_at (else it is cleared). */
  finished: boolean;
  resetsInterruptions: boolean;
}

/**
 * BulkChange is what a bulk write adds to every planned row: `runAt` undefined keeps each job's
 * run_at, `expiresAt` undefined keeps its expires_at, `error` (if given) becomes its last_error.
 */
export interface BulkChange {
  runAt?: Date | null;
  expiresAt?: Date | null;
  error?: string;
}

/**
 * jobsWriteMany applies planned changes to jobs that are not running, each only if it is still in the
 * state it was planned from (a job that moved on meanwhile is left alone); returns the jobs written.
 */
export async function jobsWriteMany(
  db: Queryable,
  tables: Tables,
  rows: readonly PlannedRow[],
  change: BulkChange,
  now: Date,
): Promise<Job[]> {
  if (rows.length === 0) return [];
  const result = await db.query<JobRow>(
    `UPDATE ${tables.jobs} AS j
          SET state = p.to_state, attempts = p.attempts,
              run_at = CASE WHEN $7::boolean THEN $8::timestamptz ELSE j.run_at END,
              finished_at = CASE WHEN p.finished THEN $9::timestamptz END,
              last_error = COALESCE($10, j.last_error),
              interruptions = CASE WHEN p.resets THEN 0 ELSE j.interruptions END,
              expires_at = CASE WHEN $11::boolean THEN $12::timestamptz ELSE j.expires_at END,
              locked_by = NULL, locked_at = NULL, updated_at = $9
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::boolean[], $6::boolean[])
              AS p(id, from_state, to_state, attempts, finished, resets)
        WHERE j.id = p.id AND j.state = p.from_state
       RETURNING j.*`,
    [
      rows.map((row) => row.id),
      rows.map((row) => row.from),
      rows.map((row) => row.to),
      rows.map((row) => row.attempts),
      rows.map((row) => row.finished),
      rows.map((row) => row.resetsInterruptions),
      change.runAt !== undefined,
      change.runAt ?? null,
      now,
      change.error ?? null,
      change.expiresAt !== undefined,
      change.expiresAt ?? null,
    ],
  );
  return result.rows.map(toJob);
}

/**
 * jobsDeleteMany deletes jobs, each only if it is still in the state given beside its id; returns the
 * jobs deleted, as they were.
 */
export async function jobsDeleteMany(
  db: Queryable,
  tables: Tables,
  rows: readonly { id: string; from: JobState }[],
): Promise<Job[]> {
  if (rows.length === 0) return [];
  const result = await db.query<JobRow>(
    `DELETE FROM ${tables.jobs} AS j
        USING unnest($1::bigint[], $2::text[]) AS p(id, from_state)
        WHERE j.id = p.id AND j.state = p.from_state
       RETURNING j.*`,
    [rows.map((row) => row.id), rows.map((row) => row.from)],
  );
  return result.rows.map(toJob);
}

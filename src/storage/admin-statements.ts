import type { JobState } from '../../machines/job.js';
import { type Job, type JobRow, toJob } from './job-row.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/** JobFilter narrows listJobs and the bulk actions; every given field must match. */
export interface JobFilter {
  states?: readonly JobState[];
  task?: string;
  queue?: string;
  key?: string;
  /** keyPrefix matches keys starting with it, every character literal. */
  keyPrefix?: string;
  /** tags matches jobs carrying all of them. */
  tags?: readonly string[];
  /** createdAfter and finishedAfter include their instant; the Before bounds exclude theirs. */
  createdAfter?: Date;
  createdBefore?: Date;
  finishedAfter?: Date;
  finishedBefore?: Date;
}

/** jobGet reads one job by id, or null. */
export async function jobGet(db: Queryable, tables: Tables, id: string): Promise<Job | null> {
  const result = await db.query<JobRow>(`SELECT * FROM ${tables.jobs} WHERE id = $1`, [id]);
  const row = result.rows[0];
  return row ? toJob(row) : null;
}

/**
 * jobFilterWhere turns `filter` into SQL conditions (joined by AND; none for an empty filter),
 * appending their parameters to `values`. `keyPrefix` uses `^@` (starts_with), which takes no
 * wildcards and which PostgreSQL turns into a range scan of jobs_key_prefix_idx (migration 0013).
 * `tags` repeats the predicate of the partial jobs_tags_idx, without which PostgreSQL would not use it.
 */
export function jobFilterWhere(filter: JobFilter, values: unknown[]): string[] {
  const where: string[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (filter.states) add('state = ANY(?::text[])', filter.states);
  if (filter.task !== undefined) add('task = ?', filter.task);
  if (filter.queue !== undefined) add('queue = ?', filter.queue);
  if (filter.key !== undefined) add('key = ?', filter.key);
  if (filter.keyPrefix !== undefined) add('key ^@ ?::text', filter.keyPrefix);
  if (filter.tags !== undefined) add("tags @> ?::text[] AND tags <> '{}'", filter.tags);
  if (filter.createdAfter !== undefined) add('created_at >= ?', filter.createdAfter);
  if (filter.createdBefore !== undefined) add('created_at < ?', filter.createdBefore);
  if (filter.finishedAfter !== undefined) add('finished_at >= ?', filter.finishedAfter);
  if (filter.finishedBefore !== undefined) add('finished_at < ?', filter.finishedBefore);
  return where;
}

/** jobsList reads jobs matching `filter`, newest first, after `cursor` (an id) if given. */
export async function jobsList(
  db: Queryable,
  tables: Tables,
  filter: JobFilter,
  limit: number,
  cursor: string | null,
): Promise<Job[]> {
  const values: unknown[] = [];
  const where = jobFilterWhere(filter, values);
  if (cursor !== null) {
    values.push(cursor);
    where.push(`id < $${values.length}`);
  }
  values.push(limit);
  const result = await db.query<JobRow>(
    `SELECT * FROM ${tables.jobs} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  return result.rows.map(toJob);
}

/** OperatorChange is what jobWrite writes: the machine's plan, and what the operator's call adds. */
export interface OperatorChange {
  to: JobState;
  attempts: number;
  resetsInterruptions: boolean;
  runAt?: Date | null;
  expiresAt?: Date | null;
  finished: boolean;
  error?: string;
}

/**
 * jobWrite applies an operator's change the machine planned (`to`, `attempts`) to a job that is not
 * running, only if it is still in `from`; returns the job as written, or null if it had moved on.
 * `runAt` undefined keeps the job's run_at; `finished` stamps finished_at; `error` becomes last_error;
 * `resetsInterruptions` sets interruptions to 0; `expiresAt` undefined keeps the job's expires_at.
 */
export async function jobWrite(
  db: Queryable,
  tables: Tables,

  id: string,
  from: JobState,
  change: OperatorChange,
  now: Date,
): Promise<Job | null> {
  const result = await db.query<JobRow>(
    `UPDATE ${tables.jobs}
          SET state = $3, attempts = $4, run_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE run_at END,
              finished_at = CASE WHEN $7::boolean THEN $8::timestamptz END, last_error = COALESCE($9, last_error),
              interruptions = CASE WHEN $10::boolean THEN 0 ELSE interruptions END,
              expires_at = CASE WHEN $11::boolean THEN $12::timestamptz ELSE expires_at END,
              locked_by = NULL, locked_at = NULL, updated_at = $8
        WHERE id = $1 AND state = $2
       RETURNING *`,
    [
      id,
      from,
      change.to,
      change.attempts,
      change.runAt !== undefined,
      change.runAt ?? null,
      change.finished,
      now,
      change.error ?? null,
      change.resetsInterruptions,
      change.expiresAt !== undefined,
      change.expiresAt ?? null,
    ],
  );
  const row = result.rows[0];
  return row ? toJob(row) : null;
}

/** jobDelete deletes a job only if it is still in `from`; returns whether it did. */
export async function jobDelete(db: Queryable, tables: Tables, id: string, from: JobState): Promise<boolean> {
  const result = await db.query(`DELETE FROM ${tables.jobs} WHERE id = $1 AND state = $2`, [id, from]);
  return result.rowCount === 1;
}

import type { JobState } from '../../machines/job.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/**
 * CleanerLock is how a retention statement takes the schema's cleaner lock: `try` gives up at once
 * if another runtime's statement holds it (a periodic round, which then skips), `wait` waits for
 * that statement to end (a pass someone asked for).
 */
export type CleanerLock = 'try' | 'wait';

/** DeleteBatch is what one retention statement did: whether it got the lock, and how many rows it deleted. */
export interface DeleteBatch {
  locked: boolean;
  deleted: number;
}

// lockCte is the first CTE of every retention statement: the schema's cleaner lock as a transaction
// advisory lock, so it lasts exactly as long as the statement (a batch) and needs no session state
// (nothing to release if the connection breaks, no client held between batches). $1 is its key.
function lockCte(lock: CleanerLock): string {
  return lock === 'try'
    ? 'lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS held)'
    : 'lock AS (SELECT true AS held FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l)';
}

// lockKey names a schema's cleaner lock (tables.schema is the quoted schema name, unique per schema).
function lockKey(tables: Tables): string {
  return `jobchart.cleaner:${tables.schema}`;
}

async function runBatch(db: Queryable, sql: string, values: unknown[]): Promise<DeleteBatch> {
  const result = await db.query<{ held: boolean; deleted: number }>(sql, values);
  const row = result.rows[0];
  return { locked: row?.held === true, deleted: Number(row?.deleted ?? 0) };
}

/**
 * jobsDeleteFinished deletes at most `limit` jobs in state `state` that finished before
 * `finishedBefore`, oldest first, in one statement under the schema's cleaner lock. The order
 * makes the planner walk jobs_finished_idx (state, finished_at) in every case: without it, on a
 * table whose rows are mostly old it chose a sequential scan from the table's start, which each
 * batch would have to cross again past the dead rows of the ones before. The rows are picked with
 * SKIP LOCKED (a row an operator is changing is left for the next round) and the DELETE is guarded
 * again on the state and finished_at of the row it deletes: a job restarted meanwhile is no longer
 * in `state`, and PostgreSQL re-checks the guard on the row's latest version, so it is kept.
 */
export function jobsDeleteFinished(
  db: Queryable,
  tables: Tables,
  state: JobState,
  finishedBefore: Date,
  limit: number,
  lock: CleanerLock,
): Promise<DeleteBatch> {
  return runBatch(
    db,
    `WITH ${lockCte(lock)},
          deleted AS (
            DELETE FROM ${tables.jobs} AS j
             WHERE j.id = ANY (ARRAY(
                     SELECT c.id FROM ${tables.jobs} AS c
                      WHERE (SELECT held FROM lock) AND c.state = $2 AND c.finished_at < $3
                      ORDER BY c.finished_at
                      LIMIT $4
                        FOR UPDATE SKIP LOCKED))
               AND j.state = $2 AND j.finished_at < $3
            RETURNING 1)
     SELECT (SELECT held FROM lock) AS held, (SELECT count(*) FROM deleted)::int AS deleted`,
    [lockKey(tables), state, finishedBefore, limit],
  );
}

/** BucketHorizon is how long a bucket takes to refill from empty: after that, idle, it is full again. */
export interface BucketHorizon {
  bucket: string;
  seconds: number;
}

/**
 * tokenBucketsDeleteIdle deletes at most `limit` token buckets whose last refill is older than their
 * horizon at `now` (the bucket named before the key's first `:`; `unknownSeconds` for a bucket not
 * in `horizons`). A bucket idle that long holds its full capacity again, exactly what a take finds
 * when the row is missing, so deleting it changes no limit. The guard is on the row deleted, so a
 * take meanwhile (which moves refilled_at) keeps it.
 */
export function tokenBucketsDeleteIdle(
  db: Queryable,
  tables: Tables,
  horizons: readonly BucketHorizon[],
  unknownSeconds: number,
  now: Date,
  limit: number,
  lock: CleanerLock,
): Promise<DeleteBatch> {
  const idle = `$6::timestamptz - make_interval(secs => COALESCE(
      (SELECT h.seconds FROM unnest($2::text[], $3::float8[]) AS h(bucket, seconds)
        WHERE h.bucket = split_part(%.ident, ':', 1)), $4::float8))`;
  return runBatch(
    db,
    `WITH ${lockCte(lock)},
          deleted AS (
            DELETE FROM ${tables.tokenBuckets} AS b
             WHERE b.ident = ANY (ARRAY(
                     SELECT c.ident FROM ${tables.tokenBuckets} AS c
                      WHERE (SELECT held FROM lock) AND c.refilled_at < ${idle.replace('%', 'c')}
                      LIMIT $5
                        FOR UPDATE SKIP LOCKED))
               AND b.refilled_at < ${idle.replace('%', 'b')}
            RETURNING 1)
     SELECT (SELECT held FROM lock) AS held, (SELECT count(*) FROM deleted)::int AS deleted`,
    [
      lockKey(tables),
      horizons.map((h) => h.bucket),
      horizons.map((h) => h.seconds),
      unknownSeconds,
      limit,
      now,
    ],
  );
}

/**
 * consumersDeleteGone deletes at most `limit` consumer rows silent since before `silentSince` that
 * hold no job (no row of jobs is locked by them). Taking a dead consumer's jobs back is the sweep's
 * work, under its own rules; this only removes rows that nothing refers to.
 */
export function consumersDeleteGone(
  db: Queryable,
  tables: Tables,
  silentSince: Date,
  limit: number,
  lock: CleanerLock,
): Promise<DeleteBatch> {
  return runBatch(
    db,
    `WITH ${lockCte(lock)},
          deleted AS (
            DELETE FROM ${tables.consumers} AS d
             WHERE d.id = ANY (ARRAY(
                     SELECT c.id FROM ${tables.consumers} AS c
                      WHERE (SELECT held FROM lock) AND c.last_heartbeat < $2
                        AND NOT EXISTS (SELECT 1 FROM ${tables.jobs} AS j WHERE j.locked_by = c.id)
                      LIMIT $3
                        FOR UPDATE SKIP LOCKED))
               AND d.last_heartbeat < $2
               AND NOT EXISTS (SELECT 1 FROM ${tables.jobs} AS j WHERE j.locked_by = d.id)
            RETURNING 1)
     SELECT (SELECT held FROM lock) AS held, (SELECT count(*) FROM deleted)::int AS deleted`,
    [lockKey(tables), silentSince, limit],
  );
}

import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/** PAUSE_PREFIX and RESUME_PREFIX start a jobs-channel payload saying that a queue was paused or resumed. */
export const PAUSE_PREFIX = 'pause:';
/** RESUME_PREFIX: see PAUSE_PREFIX. */
export const RESUME_PREFIX = 'resume:';

/** QueueRecord is a row of the queues table: what jobchart knows of a queue besides its jobs. */
export interface QueueRecord {
  name: string;
  paused: boolean;
  /** pausedAt is when the queue was paused (kept while it stays paused), null when it is not. */
  pausedAt: Date | null;
  updatedAt: Date;
}

interface QueueRow {
  name: string;
  paused: boolean;
  paused_at: Date | null;
  updated_at: Date;
}

function toQueueRecord(row: QueueRow): QueueRecord {
  return { name: row.name, paused: row.paused, pausedAt: row.paused_at, updatedAt: row.updated_at };
}

/**
 * queueWritePaused pauses or resumes a queue (creating its row if it has none) and, in the same
 * statement, notifies every listening runtime on the jobs channel; the notification leaves at commit.
 * Pausing a paused queue keeps its pausedAt.
 */
export async function queueWritePaused(
  db: Queryable,
  tables: Tables,
  name: string,
  paused: boolean,
  now: Date,
): Promise<QueueRecord> {
  const result = await db.query<QueueRow>(
    `WITH written AS (
       INSERT INTO ${tables.queues} AS q (name, paused, paused_at, updated_at)
       VALUES ($1, $2, CASE WHEN $2 THEN $3::timestamptz END, $3)
       ON CONFLICT (name) DO UPDATE
          SET paused = excluded.paused,
              paused_at = CASE WHEN NOT excluded.paused THEN NULL
                               WHEN q.paused THEN q.paused_at ELSE excluded.paused_at END,
              updated_at = excluded.updated_at
       RETURNING q.name, q.paused, q.paused_at, q.updated_at)
     SELECT w.*, pg_notify($4, $5) FROM written AS w`,
    [name, paused, now, tables.jobsChannel, `${paused ? PAUSE_PREFIX : RESUME_PREFIX}${name}`],
  );
  return toQueueRecord(result.rows[0] as QueueRow);
}

/** queuesPausedNames reads the names of the paused queues. */
export async function queuesPausedNames(db: Queryable, tables: Tables): Promise<string[]> {
  const result = await db.query<{ name: string }>(`SELECT name FROM ${tables.queues} WHERE paused`);
  return result.rows.map((row) => row.name);
}

/** queuesList reads every row of the queues table, by name. */
export async function queuesList(db: Queryable, tables: Tables): Promise<QueueRecord[]> {
  const result = await db.query<QueueRow>(
    `SELECT name, paused, paused_at, updated_at FROM ${tables.queues} ORDER BY name`,
  );
  return result.rows.map(toQueueRecord);
}

/** JobCountsSnapshot is the job counts snapshot (migrations/0012): how many jobs per queue, task and state. */
export interface JobCountsSnapshot {
  /** countedAt is when the snapshot was taken, on the clock of the runtime that took it. */
  countedAt: Date;
  /** refreshed says whether this read took the snapshot itself. */
  refreshed: boolean;
  rows: { queue: string; task: string; state: string; n: number }[];
}

/**
 * jobCountsRead returns the job counts snapshot, recounted first if it was taken before
 * `staleBefore`, unless another process is recounting it right now (see job_counts_json).
 */
export async function jobCountsRead(
  db: Queryable,
  tables: Tables,
  now: Date,
  staleBefore: Date,
): Promise<JobCountsSnapshot> {
  const result = await db.query<{
    c: { countedAt: number; refreshed: boolean; rows: [string, string, string, number][] };
  }>(`SELECT ${tables.schema}.job_counts_json($1, $2) AS c`, [now, staleBefore]);
  const c = result.rows[0]?.c as {
    countedAt: number;
    refreshed: boolean;
    rows: [string, string, string, number][];
  };
  return {
    countedAt: new Date(c.countedAt),
    refreshed: c.refreshed,
    rows: c.rows.map(([queue, task, state, n]) => ({ queue, task, state, n: Number(n) })),
  };
}

/** TransitionCount is how many transitions from one state to another a queue's jobs of one task made in one minute. */
export interface TransitionCount {
  /** minute is the start of the minute. */
  minute: Date;
  /** from is '' for an enqueue. */
  from: string;
  to: string;
  queue: string;
  task: string;
  n: number;
}

/**
 * transitionCountsAdd adds counts to the transition counts in one statement, and deletes the minutes
 * before `deleteBefore` in the same statement.
 */
export async function transitionCountsAdd(
  db: Queryable,
  tables: Tables,
  counts: readonly TransitionCount[],
  deleteBefore: Date,
): Promise<void> {
  await db.query(
    `WITH old AS (DELETE FROM ${tables.transitionCounts} WHERE minute < $7)
     INSERT INTO ${tables.transitionCounts} AS t (minute, from_state, to_state, queue, task, n)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
     ON CONFLICT (minute, from_state, to_state, queue, task) DO UPDATE SET n = t.n + excluded.n`,
    [
      counts.map((c) => c.minute),
      counts.map((c) => c.from),
      counts.map((c) => c.to),
      counts.map((c) => c.queue),
      counts.map((c) => c.task),
      counts.map((c) => c.n),
      deleteBefore,
    ],
  );
}

/**
 * transitionCountsPerMinute sums the transition counts per minute and target state from `since` on,
 * of one queue and/or task when given.
 */
export async function transitionCountsPerMinute(
  db: Queryable,
  tables: Tables,
  since: Date,
  queue: string | null,
  task: string | null,
): Promise<{ minute: Date; to: string; n: number }[]> {
  const result = await db.query<{ minute: Date; to_state: string; n: string }>(
    `SELECT minute, to_state, sum(n) AS n FROM ${tables.transitionCounts}
      WHERE minute >= $1 AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR task = $3)
      GROUP BY minute, to_state`,
    [since, queue, task],
  );
  return result.rows.map((row) => ({ minute: row.minute, to: row.to_state, n: Number(row.n) }));
}

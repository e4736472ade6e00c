import { quoteIdent } from '../core/schema-name.js';
import type { Queryable } from './storage.js';

/** Overlap says what a tick does while the schedule's previous run is still unfinished. */
export type Overlap = 'skip' | 'queue';
/** CatchUp says which ticks missed during downtime still run: none, only the latest, or all. */
export type CatchUp = 'none' | 'latest' | 'all';

/** Schedule is a stored recurring job and where it stands. */
export interface Schedule {
  namespace: string;
  name: string;
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  task: string;
  payload: unknown;
  description: string | null;
  enabled: boolean;
  overlap: Overlap;
  catchUp: CatchUp;
  /** nextRunAt is the next tick due; null while an everyMs schedule's run is unfinished. */
  nextRunAt: Date | null;
  lastTickAt: Date | null;
  lastJobId: string | null;
}

/** NewSchedule is a schedule as written by an upsert: validated options and its first tick. */
export interface NewSchedule {
  namespace: string;
  name: string;
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  task: string;
  payloadJson: string;
  description: string | null;
  enabled: boolean;
  overlap: Overlap;
  catchUp: CatchUp;
  nextRunAt: Date | null;
}

/** DueSchedule is a schedule a pass holds, and whether its last run is still unfinished. */
export interface DueSchedule {
  schedule: Schedule;
  lastJobLive: boolean;
}

/** ScheduleTables names, quoted, the tables the schedule statements read and write. */
export interface ScheduleTables {
  schedules: string;
  jobs: string;
}

/** scheduleTables names the tables of `schema`. */
export function scheduleTables(schema: string): ScheduleTables {
  const quoted = quoteIdent(schema);
  return { schedules: `${quoted}.schedules`, jobs: `${quoted}.jobs` };
}

interface ScheduleRow {
  namespace: string;
  name: string;
  cron: string | null;
  every_ms: string | null;
  timezone: string;
  task: string;
  payload: unknown;
  description: string | null;
  enabled: boolean;
  overlap: Overlap;
  catch_up: CatchUp;
  next_run_at: Date | null;
  last_tick_at: Date | null;
  last_job_id: string | null;
}

function toSchedule(row: ScheduleRow): Schedule {
  return {
    namespace: row.namespace,
    name: row.name,
    cron: row.cron,
    // bigint comes back as text; a period is at most MAX_DELAY_MS, well inside a double.
    everyMs: row.every_ms === null ? null : Number(row.every_ms),
    timezone: row.timezone,
    task: row.task,
    payload: row.payload,
    description: row.description,
    enabled: row.enabled,
    overlap: row.overlap,
    catchUp: row.catch_up,
    nextRunAt: row.next_run_at,
    lastTickAt: row.last_tick_at,
    lastJobId: row.last_job_id,
  };
}

/**
 * scheduleUpsert creates or replaces a schedule and returns it as stored. A schedule whose cron,
 * period and time zone are unchanged keeps its next tick, so that editing the job it runs neither
 * skips nor repeats a tick; a new timing starts from `schedule.nextRunAt`.
 */
export async function scheduleUpsert(
  db: Queryable,
  tables: ScheduleTables,
  schedule: NewSchedule,
  now: Date,
): Promise<Schedule> {
  const result = await db.query<ScheduleRow>(
    `INSERT INTO ${tables.schedules} AS s (namespace, name, cron, every_ms, timezone, task, payload, description,
                                           enabled, overlap, catch_up, next_run_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $13)
     ON CONFLICT (namespace, name) DO UPDATE SET
       cron = EXCLUDED.cron, every_ms = EXCLUDED.every_ms, timezone = EXCLUDED.timezone, task = EXCLUDED.task,
       payload = EXCLUDED.payload, description = EXCLUDED.description, enabled = EXCLUDED.enabled,
       overlap = EXCLUDED.overlap, catch_up = EXCLUDED.catch_up, updated_at = EXCLUDED.updated_at,
       next_run_at = CASE WHEN (s.cron, s.every_ms, s.timezone) IS NOT DISTINCT FROM
                               (EXCLUDED.cron, EXCLUDED.every_ms, EXCLUDED.timezone)
                          THEN s.next_run_at ELSE EXCLUDED.next_run_at END
     RETURNING *`,
    [
      schedule.namespace,
      schedule.name,
      schedule.cron,
      schedule.everyMs,
      schedule.timezone,
      schedule.task,
      schedule.payloadJson,
      schedule.description,
      schedule.enabled,
      schedule.overlap,
      schedule.catchUp,
      schedule.nextRunAt,
      now,
    ],
  );
  return toSchedule(result.rows[0] as ScheduleRow);
}

/** scheduleGet reads one schedule, or null. */
export async function scheduleGet(
  db: Queryable,
  tables: ScheduleTables,
  namespace: string,
  name: string,
): Promise<Schedule | null> {
  const result = await db.query<ScheduleRow>(
    `SELECT * FROM ${tables.schedules} WHERE namespace = $1 AND name = $2`,
    [namespace, name],
  );
  return result.rows[0] ? toSchedule(result.rows[0]) : null;
}

/** schedulesList reads every schedule of a namespace, by name. */
export async function schedulesList(
  db: Queryable,
  tables: ScheduleTables,
  namespace: string,
): Promise<Schedule[]> {
  const result = await db.query<ScheduleRow>(
    `SELECT * FROM ${tables.schedules} WHERE namespace = $1 ORDER BY name`,
    [namespace],
  );
  return result.rows.map(toSchedule);
}

/** scheduleDelete deletes one schedule (its jobs stay) and says whether there was one. */
export async function scheduleDelete(
  db: Queryable,
  tables: ScheduleTables,
  namespace: string,
  name: string,
): Promise<boolean> {
  const result = await db.query(`DELETE FROM ${tables.schedules} WHERE namespace = $1 AND name = $2`, [
    namespace,
    name,
  ]);
  return result.rowCount === 1;
}

/**
 * schedulesResume gives each enabled everyMs schedule whose run has ended (its job is in none of
 * `liveStates`, or gone) its next tick, and returns how many it gave one: the period counts from the
 * end of the last run, so the tick can only be set once that run is over.
 */
export async function schedulesResume(
  db: Queryable,
  tables: ScheduleTables,
  now: Date,
  liveStates: readonly string[],
): Promise<number> {
  const result = await db.query(
    `UPDATE ${tables.schedules} AS s
        SET next_run_at = COALESCE(j.finished_at, $1) + s.every_ms * interval '1 millisecond'
       FROM (SELECT s2.namespace, s2.name, j2.finished_at
               FROM ${tables.schedules} AS s2
               LEFT JOIN ${tables.jobs} AS j2 ON j2.id = s2.last_job_id
              WHERE s2.every_ms IS NOT NULL AND s2.next_run_at IS NULL AND s2.enabled
                AND (j2.id IS NULL OR j2.state <> ALL ($2::text[]))) AS j
      WHERE s.namespace = j.namespace AND s.name = j.name`,
    [now, liveStates],
  );
  return result.rowCount ?? 0;
}

/**
 * schedulesDue locks, until the end of the caller's transaction, up to `limit` enabled schedules
 * due at `now`, earliest first, and says for each whether its last job is still in `liveStates`.
 * Rows another pass holds are skipped (SKIP LOCKED): each due tick is taken by one pass only,
 * however many runtimes pass at once. `db` must be a client inside a transaction.
 */
export async function schedulesDue(
  db: Queryable,
  tables: ScheduleTables,
  now: Date,
  limit: number,
  liveStates: readonly string[],
): Promise<DueSchedule[]> {
  const result = await db.query<ScheduleRow & { last_job_live: boolean }>(
    `SELECT s.*, EXISTS (SELECT 1 FROM ${tables.jobs} AS j
                          WHERE j.id = s.last_job_id AND j.state = ANY ($3::text[])) AS last_job_live
       FROM ${tables.schedules} AS s
      WHERE s.enabled AND s.next_run_at <= $1
      ORDER BY s.next_run_at
      LIMIT $2
        FOR UPDATE OF s SKIP LOCKED`,
    [now, limit, liveStates],
  );
  return result.rows.map((row) => ({ schedule: toSchedule(row), lastJobLive: row.last_job_live }));
}

/**
 * scheduleAdvance moves a schedule to its `next` tick (null: none until its run ends) and, when a
 * run was enqueued, records its tick and job; without a run it keeps the last ones.
 */
export async function scheduleAdvance(
  db: Queryable,
  tables: ScheduleTables,
  schedule: Pick<Schedule, 'namespace' | 'name'>,
  next: Date | null,
  run: { tick: Date; jobId: string } | null,
): Promise<void> {
  await db.query(
    `UPDATE ${tables.schedules}
        SET next_run_at = $3, last_tick_at = COALESCE($4, last_tick_at), last_job_id = COALESCE($5, last_job_id)
      WHERE namespace = $1 AND name = $2`,
    [schedule.namespace, schedule.name, next, run?.tick ?? null, run?.jobId ?? null],
  );
}

import type { JobState } from '../../machines/job.js';
import { type AttemptError, type Job, type JobRow, type TraceContext, toJob } from './job-row.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/**
 * ClaimedJob is a job just taken by a claim, with the state it was taken from. Its job.state is the
 * claim's target, or the expiry's when its expires_at had passed (it is then finished, not held).
 */
export interface ClaimedJob {
  job: Job;
  from: JobState;
}

/**
 * ClaimRequest says who claims how many due jobs of which tasks at what time: from one named queue,
 * or from every queue but `skipQueues`.
 */
export interface ClaimRequest {
  consumerId: string;
  now: Date;
  limit: number;
  tasks: readonly string[];
  queue?: string;
  /** serial claims from `queue` only while none of its jobs runs anywhere (claim_serial_job). */
  serial?: boolean;
  skipQueues?: readonly string[];
}

/** ClaimSql holds a schema's three claim statements, built once: from any queue, one queue, serially. */
export interface ClaimSql {
  any: string;
  queue: string;
  serial: string;
}

/** claimSqlOf builds the claim statements of the schema `tables` name. */
export function claimSqlOf(tables: Tables): ClaimSql {
  // The claim is a function in the schema (migrations/0001, 0007) so that it can run with sorting
  // switched off: the plan must walk the claim index in order whatever the table's statistics say.
  return {
    any: claimStatement(`${tables.schema}.claim_jobs_json($1, $2::text[], $3, $4, $5::text[])`),
    queue: claimStatement(`${tables.schema}.claim_queue_jobs_json($1, $2::text[], $3, $4, $5::text)`),
    serial: claimStatement(`${tables.schema}.claim_serial_job_json($1, $2::text[], $3, $4::text)`),
  };
}

/**
 * jobsClaim takes up to `limit` due jobs of the given tasks, highest priority first then earliest
 * run_at, skipping rows other consumers hold, and marks them running for `consumerId` (`held` is the
 * claim's target state).
 */
export async function jobsClaim(
  db: Queryable,
  sql: ClaimSql,
  request: ClaimRequest,
  held: JobState,
): Promise<ClaimedJob[]> {
  if (request.limit <= 0 || request.tasks.length === 0) return [];
  const result = await db.query<{ claimed: ClaimedColumns }>({
    text: request.serial ? sql.serial : request.queue === undefined ? sql.any : sql.queue,
    values: request.serial
      ? [request.now, request.tasks, request.consumerId, request.queue]
      : [
          request.now,
          request.tasks,
          request.limit,
          request.consumerId,
          request.queue ?? request.skipQueues ?? [],
        ],
  });
  return toClaimedJobs(
    result.rows.map((row) => row.claimed),
    request.consumerId,
    request.now,
    held,
  );
}

/**
 * jobsNextRunAt returns the earliest run_at after `now` among claimable jobs (in one of `claimable`)
 * of the given tasks.
 */
export async function jobsNextRunAt(
  db: Queryable,
  tables: Tables,
  claimable: readonly JobState[],
  now: Date,
  tasks: readonly string[],
): Promise<Date | null> {
  if (tasks.length === 0) return null;
  const states = claimable.map((state) => `'${state}'`).join(', ');
  const result = await db.query<{ run_at: Date }>(
    `SELECT run_at FROM ${tables.jobs}
        WHERE state IN (${states}) AND run_at IS NOT NULL AND run_at > $1 AND task = ANY($2::text[])
        ORDER BY run_at LIMIT 1`,
    [now, tasks],
  );
  return result.rows[0]?.run_at ?? null;
}

/**
 * jobsReleaseHeld gives back, through the machine's RELEASE (`from` to `to`, attempt refunded),
 * every job the database says `consumerId` holds but `exceptIds` does not list: on stop, all of
 * them; while running, those a claim took whose reply never arrived. Returns them as released.
 */
export async function jobsReleaseHeld(
  db: Queryable,
  tables: Tables,
  consumerId: string,
  exceptIds: readonly string[],
  from: JobState,
  to: JobState,
  now: Date,
): Promise<Job[]> {
  const result = await db.query<JobRow>(
    `UPDATE ${tables.jobs} SET state = $4, attempts = greatest(attempts - 1, 0), locked_by = NULL, locked_at = NULL,
              updated_at = $5
        WHERE locked_by = $1 AND state = $3 AND id <> ALL ($2::bigint[])
       RETURNING *`,
    [consumerId, `{${exceptIds.join(',')}}`, from, to, now],
  );
  return result.rows.map(toJob);
}

/**
 * ClaimedColumns is what the claim functions (migrations/0007, 0009, 0010) return for the jobs taken from one
 * state: one array per column, the jobs in claim order, and the state they were taken from. A
 * column is null when no job was taken from that state.
 */
export type ClaimedColumns = [
  ids: string[] | null,
  tasks: string[],
  queues: string[],
  payloads: unknown[],
  priorities: number[],
  runAtMs: (number | null)[],
  attempts: number[],
  maxAttempts: number[],
  lastErrors: (string | null)[],
  errors: AttemptError[][],
  keys: (string | null)[],
  expiresAtMs: (number | null)[],
  createdAtMs: number[],
  createdBys: (string | null)[],
  claimedFrom: JobState,
  claimedTo: JobState[],
  interruptions: number[],
  tags: string[][],
  traceContexts: (TraceContext | null)[],
];

// claimStatement calls a claim function so that each state's columns come back as one JSON field,
// which the driver parses with the native JSON parser.
function claimStatement(call: string): string {
  return `SELECT c AS claimed FROM ${call} AS c`;
}

// toClaimedJobs builds the claimed jobs from the claim's columns in one step: the claim knows the
// columns it set (holder, lock time), so they are filled in here rather than read back.
function toClaimedJobs(
  groups: readonly ClaimedColumns[],
  consumerId: string,
  now: Date,
  held: JobState,
): ClaimedJob[] {
  const claimed: ClaimedJob[] = [];
  for (const c of groups) {
    const ids = c[0];
    if (ids === null) continue;
    for (let i = 0; i < ids.length; i++) {
      const state = c[15][i] as JobState;
      const runAtMs = c[5][i] as number | null;
      const expiresAtMs = c[11][i] as number | null;
      claimed.push({
        job: {
          id: ids[i] as string,
          task: c[1][i] as string,
          queue: c[2][i] as string,
          payload: c[3][i],
          priority: c[4][i] as number,
          state,
          runAt: runAtMs === null ? null : new Date(runAtMs),
          attempts: c[6][i] as number,
          maxAttempts: c[7][i] as number,
          interruptions: c[16][i] as number,
          lastError: c[8][i] as string | null,
          errors: c[9][i] as AttemptError[],
          key: c[10][i] as string | null,
          expiresAt: expiresAtMs === null ? null : new Date(expiresAtMs),
          progress: null,
          result: null,
          createdAt: new Date(c[12][i] as number),
          createdBy: c[13][i] as string | null,
          lockedBy: state === held ? consumerId : null,
          lockedAt: state === held ? now : null,
          finishedAt: state === held ? null : now,
          updatedAt: now,
          tags: c[17][i] as string[],
          traceContext: c[18][i] as TraceContext | null,
        },
        from: c[14],
      });
    }
  }
  return claimed;
}

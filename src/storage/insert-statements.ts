import type { JobState } from '../../machines/job.js';
import { type Job, type JobRow, toJob } from './job-row.js';
import type { Tables } from './tables.js';
import type { NewJob, Queryable } from './types.js';

// LIVE_STATES are the states in which a job holds its key (jobs_live_key_idx's predicate).
const LIVE_STATES = `'not_started', 'running', 'retry', 'interrupted'`;

/**
 * jobsInsert inserts any number of jobs in one statement (one round trip) and returns them in order.
 * A key a live job already holds fails the whole statement (unique violation on jobs_live_key_idx).
 */
export async function jobsInsert(
  db: Queryable,
  tables: Tables,
  jobs: readonly NewJob[],
  createdBy: string,
  now: Date,
): Promise<Job[]> {
  if (jobs.length === 0) return [];
  // Identity ids follow insertion order (ORDER BY r.n), so the ids in ascending order pair with the
  // input in order. Only the ids travel back: everything else about a new job is known here, and
  // parsing rows back would cost more than building them. Usually they are one unbroken run, sent as
  // its two ends; a run broken by concurrent inserts comes as the list.
  const rows = insertRows(jobs, createdBy, now);
  const result = await db.query<{ first: string; ids: string | null }>(
    `WITH inserted AS (${insertSql(tables, rows, '')}),
            span AS (SELECT min(id) AS first, max(id) AS last, count(*) AS n FROM inserted)
       SELECT first,
              CASE WHEN last - first + 1 <> n THEN (SELECT string_agg(id::text, ',' ORDER BY id) FROM inserted) END AS ids
         FROM span`,
    rows.values,
  );
  const span = result.rows[0] as { first: string; ids: string | null };
  const ids = span.ids === null ? idRun(span.first, jobs.length) : span.ids.split(',');
  return jobs.map((job, i) => newJobRow(job, ids[i] as string, createdBy, now));
}

/**
 * jobsInsertUnlessKeyLive inserts the keyed jobs whose key no live job holds, in one statement, and
 * returns the inserted ones by key; the others are skipped (ON CONFLICT DO NOTHING).
 */
export async function jobsInsertUnlessKeyLive(
  db: Queryable,
  tables: Tables,
  jobs: readonly NewJob[],
  createdBy: string,
  now: Date,
): Promise<Map<string, Job>> {
  const inserted = new Map<string, Job>();
  if (jobs.length === 0) return inserted;
  const rows = insertRows(jobs, createdBy, now);
  const result = await db.query<{ id: string; key: string }>(
    insertSql(
      tables,
      rows,
      `ON CONFLICT (key) WHERE key IS NOT NULL AND state IN (${LIVE_STATES}) DO NOTHING`,
    ),
    rows.values,
  );
  const idByKey = new Map(result.rows.map((row) => [row.key, row.id]));
  for (const job of jobs) {
    const id = idByKey.get(job.key as string);
    if (id !== undefined) inserted.set(job.key as string, newJobRow(job, id, createdBy, now));
  }
  return inserted;
}

/** jobsLiveByKeys reads the live jobs holding any of `keys`. */
export async function jobsLiveByKeys(db: Queryable, tables: Tables, keys: readonly string[]): Promise<Job[]> {
  const result = await db.query<JobRow>(
    `SELECT * FROM ${tables.jobs} WHERE key = ANY($1::text[]) AND state IN (${LIVE_STATES})`,
    [keys],
  );
  return result.rows.map(toJob);
}

/** ReplaceChange is the machine's plan for REPLACE that jobReplace writes. */
export interface ReplaceChange {
  to: JobState;
  attempts: number;
  resetsInterruptions: boolean;
}

/**
 * jobReplace gives a waiting job a new specification (the machine's REPLACE: `to` with `attempts`),
 * only if it is still in `from`; returns the job as written, or null if it had moved on.
 */
export async function jobReplace(
  db: Queryable,
  tables: Tables,
  id: string,
  from: JobState,
  change: ReplaceChange,
  job: NewJob,
  now: Date,
): Promise<Job | null> {
  const result = await db.query<JobRow>(
    `UPDATE ${tables.jobs}
          SET task = $3, queue = $4, payload = $5::jsonb, priority = $6, run_at = $7, max_attempts = $8,
              expires_at = $9, state = $10, attempts = $11, last_error = NULL, updated_at = $12,
              interruptions = CASE WHEN $13::boolean THEN 0 ELSE interruptions END,
              tags = $14::text[], trace_context = $15::jsonb
        WHERE id = $1 AND state = $2
       RETURNING *`,
    [
      id,
      from,
      job.task,
      job.queue,
      job.payloadJson,
      job.priority,
      job.runAt,
      job.maxAttempts,
      job.expiresAt,
      change.to,
      change.attempts,
      now,
      change.resetsInterruptions,
      job.tags,
      job.traceContextJson,
    ],
  );
  const row = result.rows[0];
  return row ? toJob(row) : null;
}

// insertSql inserts the rows of insertRows' document in its order. The rows travel as one JSON
// document, times as epoch milliseconds: building it is string concatenation around the payloads'
// JSON, where eight typed arrays were escaped element by element in JavaScript. When every row
// shares everything but its payload (the usual bulk enqueue), the document holds only the payloads
// and the rest are parameters: the server then reads one JSON value a row instead of eight, a
// third less server time per insert.
function insertSql(tables: Tables, rows: InsertRows, onConflict: string): string {
  // Tags travel as the text of a PostgreSQL array (validated tags need no escaping beyond quotes).
  const select = rows.uniform
    ? `SELECT $4, $5, r.v, $6::int, $7::timestamptz, $8::int, NULL, $9::timestamptz, $2, $3, $2,
              $10::text[], $11::jsonb`
    : `SELECT r.v->>0, r.v->>1, r.v->2, (r.v->>3)::int, to_timestamp((r.v->>4)::float8 / 1000),
                (r.v->>5)::int, r.v->>6, to_timestamp((r.v->>7)::float8 / 1000), $2, $3, $2,
                (r.v->>8)::text[], r.v->9`;
  return `INSERT INTO ${tables.jobs}
         (task, queue, payload, priority, run_at, max_attempts, key, expires_at, created_at, created_by, updated_at,
          tags, trace_context)
       ${select}
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r(v, n)
        ORDER BY r.n
       ${onConflict}
       RETURNING id, key`;
}

/** InsertRows are insertSql's parameters and which of its two shapes they fit. */
interface InsertRows {
  /** uniform says that the rows differ in their payloads only (and have no key). */
  uniform: boolean;
  values: unknown[];
}

// insertRows builds insertSql's parameters: the rows as one JSON document (a job's payload is already
// JSON text and goes in as it is; a run_at of null parks the job), the time and the creator, and, for
// uniform rows, the columns they share.
function insertRows(jobs: readonly NewJob[], createdBy: string, now: Date): InsertRows {
  const [first] = jobs as [NewJob];
  if (jobs.every((job) => sharesAllButPayload(job, first))) {
    let payloads = '';
    for (const job of jobs) payloads += `${payloads === '' ? '[' : ','}${job.payloadJson}`;
    return {
      uniform: true,
      values: [
        `${payloads}]`,
        now,
        createdBy,
        first.task,
        first.queue,
        first.priority,
        first.runAt,
        first.maxAttempts,
        first.expiresAt,
        first.tags,
        first.traceContextJson,
      ],
    };
  }
  let rows = '';
  for (const job of jobs) {
    const runAt = job.runAt === null ? 'null' : job.runAt.getTime();
    const expiresAt = job.expiresAt === null ? 'null' : job.expiresAt.getTime();
    const key = job.key === null ? 'null' : JSON.stringify(job.key);
    const tags = JSON.stringify(arrayLiteral(job.tags));
    rows += `${rows === '' ? '[' : ','}[${JSON.stringify(job.task)},${JSON.stringify(job.queue)},${job.payloadJson},${job.priority},${runAt},${job.maxAttempts},${key},${expiresAt},${tags},${job.traceContextJson ?? 'null'}]`;
  }
  return { uniform: false, values: [`${rows}]`, now, createdBy] };
}

function sharesAllButPayload(job: NewJob, first: NewJob): boolean {
  return (
    job.key === null &&
    job.task === first.task &&
    job.queue === first.queue &&
    job.priority === first.priority &&
    job.maxAttempts === first.maxAttempts &&
    sameTime(job.runAt, first.runAt) &&
    sameTime(job.expiresAt, first.expiresAt) &&
    job.traceContextJson === first.traceContextJson &&
    sameTags(job.tags, first.tags)
  );
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((tag, i) => tag === b[i]));
}

// arrayLiteral writes tags as the text of a PostgreSQL array: each element quoted, its quotes and
// backslashes escaped.
function arrayLiteral(tags: readonly string[]): string {
  return `{${tags.map((tag) => `"${tag.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
}

// idRun lists `count` consecutive ids from `first`; ids are bigint, so past 2^53 BigInt counts them.
function idRun(first: string, count: number): string[] {
  const ids = new Array<string>(count);
  const start = Number(first);
  if (Number.isSafeInteger(start + count)) {
    for (let i = 0; i < count; i++) ids[i] = String(start + i);
  } else {
    const big = BigInt(first);
    for (let i = 0; i < count; i++) ids[i] = String(big + BigInt(i));
  }
  return ids;
}

function sameTime(a: Date | null, b: Date | null): boolean {
  return a === b || (a !== null && b !== null && a.getTime() === b.getTime());
}

function newJobRow(job: NewJob, id: string, createdBy: string, now: Date): Job {
  return {
    id,
    task: job.task,
    queue: job.queue,
    payload: JSON.parse(job.payloadJson),
    priority: job.priority,
    state: 'not_started',
    runAt: job.runAt,
    attempts: 0,
    maxAttempts: job.maxAttempts,
    interruptions: 0,
    lastError: null,
    errors: [],
    key: job.key,
    expiresAt: job.expiresAt,
    progress: null,
    result: null,
    createdAt: now,
    createdBy,
    lockedBy: null,
    lockedAt: null,
    finishedAt: null,
    updatedAt: now,
    tags: [...job.tags],
    traceContext: job.traceContextJson === null ? null : JSON.parse(job.traceContextJson),
  };
}

import type pg from 'pg';
import type { JobState } from '../../machines/job.js';
import { finishedChannel, NOTIFY_PAYLOAD_MAX, notifyChannel, quoteIdent } from '../core/schema-name.js';
import { type ClaimedColumns, claimStatement, toClaimedJobs } from './claim-statements.js';
import { type Job, type JobRow, toJob } from './job-row.js';
import { type Outcome, writeOutcomes } from './outcome-statements.js';

/** CANCEL_PREFIX starts a jobs-channel payload that asks the runtime running a job to cancel it. */
export const CANCEL_PREFIX = 'cancel:';

/** ConsumerRecord identifies a runtime that claims jobs. */
export interface ConsumerRecord {
  id: string;
  name: string;
  host: string;
  pid: number;
}

/** SweepTransitions are the machine's states for a sweep: held jobs are `from`; INTERRUPT and FAIL targets. */
export interface SweepTransitions {
  from: JobState;
  interrupted: JobState;
  failed: JobState;
}

/** SweepResult lists the consumers a sweep deleted and the jobs it took back, with their new state. */
export interface SweepResult {
  consumers: string[];
  jobs: { id: string; state: JobState }[];
}

/** JobFilter narrows listJobs; every given field must match. */
export interface JobFilter {
  states?: readonly JobState[];
  task?: string;
  queue?: string;
  key?: string;
}

// LIVE_STATES are the states in which a job holds its key (jobs_live_key_idx's predicate).
const LIVE_STATES = `'not_started', 'running', 'retry', 'interrupted'`;

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
}

/** ClaimTransition is the claim as the job machine defines it: the states it leaves and the one it enters. */
export interface ClaimTransition {
  from: readonly JobState[];
  to: JobState;
}

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

/**
 * Storage owns every SQL statement jobchart runs against its tables: one method per statement,
 * every value a parameter, every timestamp from the caller's clock.
 */
export class Storage {
  private readonly schema: string;
  private readonly jobs: string;
  private readonly consumers: string;
  private readonly finishedChannel: string;
  private readonly jobsChannel: string;

  constructor(
    private readonly db: Queryable,
    schema: string,
    private readonly claim: ClaimTransition,
  ) {
    this.schema = quoteIdent(schema);
    this.jobs = `${this.schema}.jobs`;
    this.consumers = `${this.schema}.consumers`;
    this.finishedChannel = finishedChannel(schema);
    this.jobsChannel = notifyChannel(schema);
    // The claim is a function in the schema (migrations/0001, 0007) so that it can run with sorting
    // switched off: the plan must walk the claim index in order whatever the table's statistics say.
    this.claimSql = claimStatement(`${this.schema}.claim_jobs_json($1, $2::text[], $3, $4, $5::text[])`);
    this.claimQueueSql = claimStatement(
      `${this.schema}.claim_queue_jobs_json($1, $2::text[], $3, $4, $5::text)`,
    );
    this.claimSerialSql = claimStatement(
      `${this.schema}.claim_serial_job_json($1, $2::text[], $3, $4::text)`,
    );
  }

  private readonly claimSql: string;
  private readonly claimQueueSql: string;
  private readonly claimSerialSql: string;

  /**
   * jobsInsert inserts any number of jobs in one statement (one round trip) and returns them in order.
   * A key a live job already holds fails the whole statement (unique violation on jobs_live_key_idx).
   */
  async jobsInsert(
    jobs: readonly NewJob[],
    createdBy: string,
    now: Date,
    client: Queryable = this.db,
  ): Promise<Job[]> {
    if (jobs.length === 0) return [];
    // Identity ids follow insertion order (ORDER BY r.n), so the ids in ascending order pair with the
    // input in order. Only the ids travel back: everything else about a new job is known here, and
    // parsing rows back would cost more than building them. Usually they are one unbroken run, sent as
    // its two ends; a run broken by concurrent inserts comes as the list.
    const rows = insertRows(jobs, createdBy, now);
    const result = await client.query<{ first: string; ids: string | null }>(
      `WITH inserted AS (${this.insertSql(rows, '')}),
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
  async jobsInsertUnlessKeyLive(
    jobs: readonly NewJob[],
    createdBy: string,
    now: Date,
    client: Queryable,
  ): Promise<Map<string, Job>> {
    const inserted = new Map<string, Job>();
    if (jobs.length === 0) return inserted;
    const rows = insertRows(jobs, createdBy, now);
    const result = await client.query<{ id: string; key: string }>(
      this.insertSql(
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
  async jobsLiveByKeys(keys: readonly string[], client: Queryable = this.db): Promise<Job[]> {
    const result = await client.query<JobRow>(
      `SELECT * FROM ${this.jobs} WHERE key = ANY($1::text[]) AND state IN (${LIVE_STATES})`,
      [keys],
    );
    return result.rows.map(toJob);
  }

  /**
   * jobReplace gives a waiting job a new specification (the machine's REPLACE: `to` with `attempts`),
   * only if it is still in `from`; returns the job as written, or null if it had moved on.
   */
  async jobReplace(
    id: string,
    from: JobState,
    change: { to: JobState; attempts: number },
    job: NewJob,
    now: Date,
    client: Queryable,
  ): Promise<Job | null> {
    const result = await client.query<JobRow>(
      `UPDATE ${this.jobs}
          SET task = $3, queue = $4, payload = $5::jsonb, priority = $6, run_at = $7, max_attempts = $8,
              expires_at = $9, state = $10, attempts = $11, last_error = NULL, updated_at = $12
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
      ],
    );
    const row = result.rows[0];
    return row ? toJob(row) : null;
  }

  /** notifyJobsChanged wakes listening workers, as an insert does, after an update made jobs due. */
  async notifyJobsChanged(client: Queryable = this.db): Promise<void> {
    await client.query('SELECT pg_notify($1, $2)', [this.jobsChannel, '']);
  }

  // insertSql inserts the rows of insertRows' document in its order. The rows travel as one JSON
  // document, times as epoch milliseconds: building it is string concatenation around the payloads'
  // JSON, where eight typed arrays were escaped element by element in JavaScript. When every row
  // shares everything but its payload (the usual bulk enqueue), the document holds only the payloads
  // and the rest are parameters: the server then reads one JSON value a row instead of eight, a
  // third less server time per insert.
  private insertSql(rows: InsertRows, onConflict: string): string {
    const select = rows.uniform
      ? `SELECT $4, $5, r.v, $6::int, $7::timestamptz, $8::int, NULL, $9::timestamptz, $2, $3, $2`
      : `SELECT r.v->>0, r.v->>1, r.v->2, (r.v->>3)::int, to_timestamp((r.v->>4)::float8 / 1000),
                (r.v->>5)::int, r.v->>6, to_timestamp((r.v->>7)::float8 / 1000), $2, $3, $2`;
    return `INSERT INTO ${this.jobs}
         (task, queue, payload, priority, run_at, max_attempts, key, expires_at, created_at, created_by, updated_at)
       ${select}
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r(v, n)
        ORDER BY r.n
       ${onConflict}
       RETURNING id, key`;
  }

  /**
   * jobsClaim takes up to `limit` due jobs of the given tasks, highest priority first then earliest
   * run_at, skipping rows other consumers hold, and marks them running for `consumerId`.
   */
  async jobsClaim(request: ClaimRequest): Promise<ClaimedJob[]> {
    if (request.limit <= 0 || request.tasks.length === 0) return [];
    const result = await this.db.query<{ claimed: ClaimedColumns }>({
      text: request.serial
        ? this.claimSerialSql
        : request.queue === undefined
          ? this.claimSql
          : this.claimQueueSql,
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
      this.claim.to,
    );
  }

  /**
   * jobsApplyOutcomes writes a batch of state changes and returns the ids of those the guard refused:
   * each row is written only if the job is still in `from`, held by `consumerId`, at the same attempt.
   */
  jobsApplyOutcomes(outcomes: readonly Outcome[], consumerId: string, now: Date): Promise<Set<string>> {
    return writeOutcomes(
      this.db,
      { jobs: this.jobs, finishedChannel: this.finishedChannel },
      outcomes,
      consumerId,
      now,
    );
  }

  /** jobsWriteProgress stores the latest progress of running jobs this consumer holds at that attempt. */
  async jobsWriteProgress(
    entries: readonly { jobId: string; attempt: number; progressJson: string }[],
    consumerId: string,
    now: Date,
  ): Promise<void> {
    await this.db.query(
      `UPDATE ${this.jobs} AS j SET progress = v.progress::jsonb, updated_at = $3
         FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, attempt int, progress text)
        WHERE j.id = v.id AND j.attempts = v.attempt AND j.locked_by = $2 AND j.state = '${this.claim.to}'`,
      [
        JSON.stringify(entries.map((e) => ({ id: e.jobId, attempt: e.attempt, progress: e.progressJson }))),
        consumerId,
        now,
      ],
    );
  }

  /** notifyFinished announces jobs that reached a finished state outside an outcome batch. */
  async notifyFinished(ids: readonly string[]): Promise<void> {
    const payload = ids.join(',');
    await this.db.query('SELECT pg_notify($1, $2)', [
      this.finishedChannel,
      payload.length <= NOTIFY_PAYLOAD_MAX ? payload : '',
    ]);
  }

  /** jobsNextRunAt returns the earliest run_at after `now` among claimable jobs of the given tasks. */
  async jobsNextRunAt(now: Date, tasks: readonly string[]): Promise<Date | null> {
    if (tasks.length === 0) return null;
    const result = await this.db.query<{ run_at: Date }>(
      `SELECT run_at FROM ${this.jobs}
        WHERE state IN (${this.claimableList()}) AND run_at IS NOT NULL AND run_at > $1 AND task = ANY($2::text[])
        ORDER BY run_at LIMIT 1`,
      [now, tasks],
    );
    return result.rows[0]?.run_at ?? null;
  }

  /**
   * jobWrite applies an operator's change the machine planned (`to`, `attempts`) to a job that is not
   * running, only if it is still in `from`; returns the job as written, or null if it had moved on.
   * `runAt` undefined keeps the job's run_at; `finished` stamps finished_at; `error` becomes last_error.
   */
  async jobWrite(
    id: string,
    from: JobState,
    change: { to: JobState; attempts: number; runAt?: Date | null; finished: boolean; error?: string },
    now: Date,
  ): Promise<Job | null> {
    const result = await this.db.query<JobRow>(
      `UPDATE ${this.jobs}
          SET state = $3, attempts = $4, run_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE run_at END,
              finished_at = CASE WHEN $7::boolean THEN $8::timestamptz END, last_error = COALESCE($9, last_error),
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
      ],
    );
    const row = result.rows[0];
    return row ? toJob(row) : null;
  }

  /** jobDelete deletes a job only if it is still in `from`; returns whether it did. */
  async jobDelete(id: string, from: JobState): Promise<boolean> {
    const result = await this.db.query(`DELETE FROM ${this.jobs} WHERE id = $1 AND state = $2`, [id, from]);
    return result.rowCount === 1;
  }

  /** notifyCancel asks whichever runtime runs job `id` to cancel it (see the jobs channel's payloads). */
  async notifyCancel(id: string): Promise<void> {
    await this.db.query('SELECT pg_notify($1, $2)', [this.jobsChannel, `${CANCEL_PREFIX}${id}`]);
  }

  /** jobsList reads jobs matching `filter`, newest first, after `cursor` (an id) if given. */
  async jobsList(filter: JobFilter, limit: number, cursor: string | null): Promise<Job[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      values.push(value);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (filter.states) add('state = ANY(?::text[])', filter.states);
    if (filter.task !== undefined) add('task = ?', filter.task);
    if (filter.queue !== undefined) add('queue = ?', filter.queue);
    if (filter.key !== undefined) add('key = ?', filter.key);
    if (cursor !== null) add('id < ?', cursor);
    values.push(limit);
    const result = await this.db.query<JobRow>(
      `SELECT * FROM ${this.jobs} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id DESC LIMIT $${values.length}`,
      values,
    );
    return result.rows.map(toJob);
  }

  /** consumerRegister records a runtime that is about to claim jobs. */
  async consumerRegister(consumer: ConsumerRecord, now: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.consumers} (id, name, host, pid, started_at, last_heartbeat) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (id) DO UPDATE SET last_heartbeat = EXCLUDED.last_heartbeat`,
      [consumer.id, consumer.name, consumer.host, consumer.pid, now],
    );
  }

  /** consumerHeartbeat says a consumer is alive; false means its row is gone (it was swept). */
  async consumerHeartbeat(id: string, now: Date): Promise<boolean> {
    const result = await this.db.query(`UPDATE ${this.consumers} SET last_heartbeat = $2 WHERE id = $1`, [
      id,
      now,
    ]);
    return result.rowCount === 1;
  }

  /** consumerDelete removes a consumer that stopped cleanly. */
  async consumerDelete(id: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.consumers} WHERE id = $1`, [id]);
  }

  /**
   * consumersSweep deletes consumers silent since before `silentSince` and, in the same statement,
   * takes back every running job whose holder has no consumer row: the machine's INTERRUPT
   * (claimable again, attempt refunded, one more interruption) while the job has interruptions left
   * under `maxInterruptions` (the machine's hasInterruptionsLeft guard), else FAIL. Rows another
   * sweeper or a live writer has locked are skipped, so concurrent sweeps never do the same work twice.
   */
  async consumersSweep(
    silentSince: Date,
    now: Date,
    transitions: SweepTransitions,
    maxInterruptions: number,
  ): Promise<SweepResult> {
    const result = await this.db.query<{
      kind: 'consumer' | 'job';
      id: string;
      state: JobState | null;
    }>(
      `WITH dead AS (
         DELETE FROM ${this.consumers} AS c
          WHERE c.id IN (SELECT id FROM ${this.consumers} WHERE last_heartbeat < $1 FOR UPDATE SKIP LOCKED)
         RETURNING c.id),
       orphaned AS (
         SELECT j.id, j.locked_by, j.interruptions + 1 < $3 AS resumes FROM ${this.jobs} AS j
          WHERE j.locked_by IS NOT NULL AND j.state = '${transitions.from}'
            AND NOT EXISTS (SELECT 1 FROM ${this.consumers} AS c
                             WHERE c.id = j.locked_by AND c.id NOT IN (SELECT id FROM dead))
            FOR UPDATE OF j SKIP LOCKED),
       taken AS (
         UPDATE ${this.jobs} AS j
            SET state = CASE WHEN o.resumes THEN '${transitions.interrupted}' ELSE '${transitions.failed}' END,
                attempts = CASE WHEN o.resumes THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
                interruptions = j.interruptions + 1,
                finished_at = CASE WHEN o.resumes THEN NULL ELSE $2::timestamptz END,
                last_error = 'consumer ' || o.locked_by || ' stopped heartbeating while holding this job (interruption '
                             || j.interruptions + 1 || ' of at most ' || $3 || ')',
                errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempts, 'at', $2::timestamptz,
                           'message', 'consumer ' || o.locked_by || ' stopped heartbeating while holding this job (interruption '
                             || j.interruptions + 1 || ' of at most ' || $3 || ')')),
                locked_by = NULL, locked_at = NULL, updated_at = $2
           FROM orphaned AS o
          WHERE j.id = o.id
         RETURNING j.id, j.state)
       SELECT 'consumer' AS kind, id, NULL AS state FROM dead
       UNION ALL
       SELECT 'job', id::text, state FROM taken`,
      [silentSince, now, maxInterruptions],
    );
    const swept: SweepResult = { consumers: [], jobs: [] };
    for (const row of result.rows) {
      if (row.kind === 'consumer') swept.consumers.push(row.id);
      else swept.jobs.push({ id: row.id, state: row.state as JobState });
    }
    return swept;
  }

  /**
   * jobsReleaseHeld gives back, through the machine's RELEASE (`from` to `to`, attempt refunded),
   * every job the database says `consumerId` holds but `exceptIds` does not list: on stop, all of
   * them; while running, those a claim took whose reply never arrived. Returns them as released.
   */
  async jobsReleaseHeld(
    consumerId: string,
    exceptIds: readonly string[],
    from: JobState,
    to: JobState,
    now: Date,
  ): Promise<Job[]> {
    const result = await this.db.query<JobRow>(
      `UPDATE ${this.jobs} SET state = $4, attempts = greatest(attempts - 1, 0), locked_by = NULL, locked_at = NULL,
              updated_at = $5
        WHERE locked_by = $1 AND state = $3 AND id <> ALL ($2::bigint[])
       RETURNING *`,
      [consumerId, `{${exceptIds.join(',')}}`, from, to, now],
    );
    return result.rows.map(toJob);
  }

  /** jobGet reads one job by id, or null. */
  async jobGet(id: string): Promise<Job | null> {
    const result = await this.db.query<JobRow>(`SELECT * FROM ${this.jobs} WHERE id = $1`, [id]);
    const row = result.rows[0];
    return row ? toJob(row) : null;
  }

  private claimableList(): string {
    return this.claim.from.map((state) => `'${state}'`).join(', ');
  }
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
      ],
    };
  }
  let rows = '';
  for (const job of jobs) {
    const runAt = job.runAt === null ? 'null' : job.runAt.getTime();
    const expiresAt = job.expiresAt === null ? 'null' : job.expiresAt.getTime();
    const key = job.key === null ? 'null' : JSON.stringify(job.key);
    rows += `${rows === '' ? '[' : ','}[${JSON.stringify(job.task)},${JSON.stringify(job.queue)},${job.payloadJson},${job.priority},${runAt},${job.maxAttempts},${key},${expiresAt}]`;
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
    sameTime(job.expiresAt, first.expiresAt)
  );
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
  };
}

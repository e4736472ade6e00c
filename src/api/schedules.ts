import type pg from 'pg';
import type { Clock, TimerHandle } from '../core/clock.js';
import { JobNotFoundError } from '../core/errors.js';
import { quoteIdent } from '../core/schema-name.js';
import type { TaskLookup } from '../jobs/enqueue.js';
import type { RuntimeEvents } from '../jobs/events.js';
import {
  type CatchUp,
  cronOf,
  dueTicks,
  firstRunAt,
  type Overlap,
  type ScheduleOptions,
  type ScheduleSpec,
  validateSchedule,
} from '../jobs/schedule-spec.js';
import type { Job } from '../storage/job-row.js';
import { withClient } from '../storage/pool-client.js';
import type { NewJob, Storage } from '../storage/storage.js';

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

/** LastRun answers "when did this schedule last run, which job, and how did it end". */
export interface LastRun {
  tickAt: Date;
  jobId: string;
  /** job is the job as it stands now (its state says how the run ended), or null if it was removed. */
  job: Job | null;
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

/** SchedulesDeps is what the schedules work with. */
export interface SchedulesDeps {
  pool: pg.Pool;
  schema: string;
  storage: Storage;
  clock: Clock;
  events: RuntimeEvents;
  consumerId: string;
  /** ensureSchema resolves once the schema is known to be migrated. */
  ensureSchema(): Promise<void>;
  /**
   * lookupTask is the runtime's check of a task name, as enqueue uses it: on a runtime with tasks, a
   * task it neither defines nor lists in externalTasks throws an UnknownTaskError.
   */
  lookupTask: TaskLookup;
  /** liveStates are the states in which a job is unfinished (a run still under way). */
  liveStates: readonly string[];
  onError(error: unknown): void;
}

// SCHEDULES_PER_PASS bounds the due schedules one pass takes; the rest wait for the next pass.
const SCHEDULES_PER_PASS = 100;

/**
 * Schedules keeps named recurring jobs (`runtime.schedules`). Every worker runtime runs a pass each
 * pollIntervalMs of its clock: in one transaction it locks the due schedule rows no other runtime is
 * passing over (SKIP LOCKED), enqueues the job of one tick per schedule, and moves next_run_at on, so
 * each tick enqueues exactly one job however many runtimes run. One run at a time: while a
 * schedule's last job is unfinished, its ticks are dropped ('skip') or held ('queue').
 */
export class Schedules {
  private readonly table: string;
  private timer: TimerHandle | null = null;
  private passing: Promise<void> | null = null;
  private passAgain = false;
  private running = false;

  constructor(private readonly deps: SchedulesDeps) {
    this.table = `${quoteIdent(deps.schema)}.schedules`;
  }

  /**
   * upsert creates or replaces the schedule `name`. Its timing is kept when only the job changes;
   * a new cron, period or time zone starts it again from now. Bad options are a ValidationError, and
   * on a runtime with tasks a task it does not know an UnknownTaskError; nothing is written then.
   */
  async upsert(name: string, options: ScheduleOptions): Promise<Schedule> {
    const spec = validateSchedule(name, options);
    // As for enqueue: a schedule of a task no runtime works would enqueue jobs nothing ever claims.
    this.deps.lookupTask(spec.task);
    await this.deps.ensureSchema();
    const now = this.deps.clock.now();
    const result = await this.deps.pool.query<ScheduleRow>(
      `INSERT INTO ${this.table} AS s (namespace, name, cron, every_ms, timezone, task, payload, description, enabled,
                                       overlap, catch_up, next_run_at, created_at, updated_at)
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
        spec.namespace,
        spec.name,
        spec.cron,
        spec.everyMs,
        spec.timezone,
        spec.task,
        spec.payloadJson,
        spec.description,
        spec.enabled,
        spec.overlap,
        spec.catchUp,
        firstRunAt(spec, now),
        now,
      ],
    );
    return toSchedule(result.rows[0] as ScheduleRow);
  }

  /** get reads a schedule, or null. */
  async get(name: string, namespace = 'default'): Promise<Schedule | null> {
    await this.deps.ensureSchema();
    const result = await this.deps.pool.query<ScheduleRow>(
      `SELECT * FROM ${this.table} WHERE namespace = $1 AND name = $2`,
      [namespace, name],
    );
    return result.rows[0] ? toSchedule(result.rows[0]) : null;
  }

  /** list reads every schedule of a namespace, by name. */
  async list(namespace = 'default'): Promise<Schedule[]> {
    await this.deps.ensureSchema();
    const result = await this.deps.pool.query<ScheduleRow>(
      `SELECT * FROM ${this.table} WHERE namespace = $1 ORDER BY name`,
      [namespace],
    );
    return result.rows.map(toSchedule);
  }

  /** remove deletes a schedule; its jobs stay. Returns whether there was one. */
  async remove(name: string, namespace = 'default'): Promise<boolean> {
    await this.deps.ensureSchema();
    const result = await this.deps.pool.query(
      `DELETE FROM ${this.table} WHERE namespace = $1 AND name = $2`,
      [namespace, name],
    );
    return result.rowCount === 1;
  }

  /** lastRun says when the schedule last enqueued a run, which job, and how it stands; null if never. */
  async lastRun(name: string, namespace = 'default'): Promise<LastRun | null> {
    const schedule = await this.get(name, namespace);
    if (!schedule) throw new JobNotFoundError(`schedule ${namespace}/${name}`);
    if (schedule.lastTickAt === null || schedule.lastJobId === null) return null;
    return {
      tickAt: schedule.lastTickAt,
      jobId: schedule.lastJobId,
      job: await this.deps.storage.jobGet(schedule.lastJobId),
    };
  }

  /** start runs a pass every `intervalMs` of the clock, beginning now. */
  start(intervalMs: number): void {
    this.running = true;
    const arm = () => {
      this.timer = this.deps.clock.setTimeout(() => {
        if (!this.running) return;
        arm();
        this.pass();
      }, intervalMs);
    };
    arm();
    this.pass();
  }

  /** stop ends the passes and waits for one under way. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.passing;
  }

  // pass runs one pass; a pass asked for while one is under way runs right after it, once, so a
  // slow pass neither stacks passes up nor makes a tick wait a whole interval.
  private pass(): void {
    if (this.passing) {
      this.passAgain = true;
      return;
    }
    this.passAgain = false;
    // The pass is over (and the next may start) before anyone hears of it.
    this.passing = this.runPass().then(
      (summary) => {
        this.passing = null;
        this.deps.events.emit('schedule:pass', summary);
        if (this.passAgain && this.running) this.pass();
      },
      (error) => {
        this.passing = null;
        this.deps.onError(error);
        if (this.passAgain && this.running) this.pass();
      },
    );
  }

  private async runPass(): Promise<{ at: Date; enqueued: number }> {
    const enqueued: { schedule: Schedule; tick: Date; job: Job }[] = [];
    // The pass's time is read once it holds a client: waiting for one must not make it stale.
    let passedAt = this.deps.clock.now();
    await withClient(
      // The pool itself, not () => pool.connect(): see withClient.
      this.deps.pool,
      async (client) => {
        passedAt = this.deps.clock.now();
        try {
          await client.query('BEGIN');
          const now = passedAt;
          await this.resumeEveryMs(client, now);
          const due = await client.query<ScheduleRow & { last_job_live: boolean }>(
            `SELECT s.*, EXISTS (SELECT 1 FROM ${quoteIdent(this.deps.schema)}.jobs AS j
                                  WHERE j.id = s.last_job_id AND j.state = ANY ($3::text[])) AS last_job_live
               FROM ${this.table} AS s
              WHERE s.enabled AND s.next_run_at <= $1
              ORDER BY s.next_run_at
              LIMIT $2
                FOR UPDATE OF s SKIP LOCKED`,
            [now, SCHEDULES_PER_PASS, this.deps.liveStates],
          );
          for (const row of due.rows) {
            const outcome = await this.passOne(client, toSchedule(row), row.last_job_live, now);
            if (outcome) enqueued.push(outcome);
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      },
    );
    for (const { schedule, tick, job } of enqueued) {
      this.deps.events.emitTransition(job, null, 'ENQUEUE', tick);
      this.deps.events.emit('schedule:tick', { schedule, tick, job });
    }
    return { at: passedAt, enqueued: enqueued.length };
  }

  // resumeEveryMs gives an everyMs schedule whose run has ended its next tick: the period counts
  // from the end of the last run.
  private async resumeEveryMs(client: pg.PoolClient, now: Date): Promise<void> {
    await client.query(
      `UPDATE ${this.table} AS s
          SET next_run_at = COALESCE(j.finished_at, $1) + s.every_ms * interval '1 millisecond'
         FROM (SELECT s2.namespace, s2.name, j2.finished_at
                 FROM ${this.table} AS s2
                 LEFT JOIN ${quoteIdent(this.deps.schema)}.jobs AS j2 ON j2.id = s2.last_job_id
                WHERE s2.every_ms IS NOT NULL AND s2.next_run_at IS NULL AND s2.enabled
                  AND (j2.id IS NULL OR j2.state <> ALL ($2::text[]))) AS j
        WHERE s.namespace = j.namespace AND s.name = j.name`,
      [now, this.deps.liveStates],
    );
  }

  // passOne handles one due schedule: drop or hold its ticks while a run is unfinished, else enqueue
  // one tick (the earliest missed one for catchUp 'all', whose next pass takes the following one).
  private async passOne(
    client: pg.PoolClient,
    schedule: Schedule,
    lastJobLive: boolean,
    now: Date,
  ): Promise<{ schedule: Schedule; tick: Date; job: Job } | null> {
    const from = schedule.nextRunAt as Date;
    if (schedule.everyMs !== null) {
      if (lastJobLive) return null;
      const job = await this.enqueueTick(client, schedule, from, now);
      await this.advance(client, schedule, null, from, job.id);
      return { schedule, tick: from, job };
    }
    const cron = cronOf(schedule.cron, schedule.timezone);
    const { ticks, next } = dueTicks(cron, from, now, schedule.catchUp);
    if (lastJobLive) {
      // 'queue' keeps the latest due tick waiting for the run to end; 'skip' lets them all go.
      if (schedule.overlap === 'queue')
        await this.advance(client, schedule, ticks.at(-1) ?? next, null, null);
      else await this.advance(client, schedule, next, null, null);
      return null;
    }
    const tick = ticks[0];
    if (!tick) {
      await this.advance(client, schedule, next, null, null);
      return null;
    }
    const job = await this.enqueueTick(client, schedule, tick, now);
    // With more missed ticks to run ('all'), the next one stays due and runs after this one.
    await this.advance(client, schedule, ticks[1] ?? next, tick, job.id);
    return { schedule, tick, job };
  }

  private async enqueueTick(client: pg.PoolClient, schedule: Schedule, tick: Date, now: Date): Promise<Job> {
    const key = `schedule:${schedule.namespace}:${schedule.name}:${tick.toISOString()}`;
    const row: NewJob = {
      task: schedule.task,
      queue: 'default',
      payloadJson: JSON.stringify(schedule.payload ?? null),
      priority: 0,
      runAt: now,
      maxAttempts: 25,
      key,
      mode: 'ignore_if_exists',
      expiresAt: null,
    };
    const inserted = await this.deps.storage.jobsInsertUnlessKeyLive(
      [row],
      this.deps.consumerId,
      now,
      client,
    );
    const job = inserted.get(key) ?? (await this.deps.storage.jobsLiveByKeys([key], client))[0];
    if (!job) throw new Error(`schedule ${schedule.namespace}/${schedule.name}: tick ${key} vanished`);
    return job;
  }

  private async advance(
    client: pg.PoolClient,
    schedule: Schedule,
    next: Date | null,
    tick: Date | null,
    jobId: string | null,
  ): Promise<void> {
    await client.query(
      `UPDATE ${this.table}
          SET next_run_at = $3, last_tick_at = COALESCE($4, last_tick_at), last_job_id = COALESCE($5, last_job_id)
        WHERE namespace = $1 AND name = $2`,
      [schedule.namespace, schedule.name, next, tick, jobId],
    );
  }
}

export type { ScheduleOptions, ScheduleSpec };

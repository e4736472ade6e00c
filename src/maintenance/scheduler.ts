import type pg from 'pg';
import { UnknownTaskError } from '../core/errors.js';
import { prepareJob, type TaskLookup } from '../jobs/enqueue.js';
import type { RuntimeEvents } from '../jobs/events.js';
import { cronOf, dueTicks } from '../jobs/schedule-spec.js';
import type { Job } from '../storage/job-row.js';
import { withClient } from '../storage/pool-client.js';
import {
  type Schedule,
  type ScheduleTables,
  scheduleAdvance,
  schedulesDue,
  schedulesResume,
  scheduleTables,
} from '../storage/schedule-statements.js';
import type { Storage } from '../storage/storage.js';
import type { MaintenanceService } from './periodic.js';

/**
 * SchedulerCounts is what one schedule pass did. Each due schedule it took is counted once more, in
 * exactly one of enqueued, existing, overlapping and missed.
 */
export interface SchedulerCounts {
  /** due counts the due schedules the pass took (at most SCHEDULES_PER_PASS; others wait for the next). */
  due: number;
  /** enqueued counts the runs the pass inserted, one per schedule. */
  enqueued: number;
  /** existing counts the ticks whose job was already enqueued (a live job held its key): none inserted. */
  existing: number;
  /** overlapping counts the schedules whose last run was unfinished: their ticks were dropped or held. */
  overlapping: number;
  /** missed counts the schedules with no tick to run: catchUp 'none' after several ticks were missed. */
  missed: number;
  /** resumed counts the everyMs schedules whose run had ended and that were given their next tick. */
  resumed: number;
}

/** SchedulerDeps is what the schedule pass works with. */
export interface SchedulerDeps {
  pool: pg.Pool;
  schema: string;
  storage: Storage;
  events: RuntimeEvents;
  /** consumerId is recorded as the creator of the runs this runtime enqueues. */
  consumerId: string;
  /** lookupTask is the runtime's task lookup, as its enqueue uses it, so that runs get the task's options. */
  lookupTask: TaskLookup;
  /** liveStates are the states in which a job is unfinished (a run still under way). */
  liveStates: readonly string[];
}

// SCHEDULES_PER_PASS bounds the due schedules one pass takes; the rest wait for the next pass.
const SCHEDULES_PER_PASS = 100;

// Run is a tick's job as a pass found it: created by the pass, or already enqueued.
interface Run {
  schedule: Schedule;
  tick: Date;
  job: Job;
  created: boolean;
}

/**
 * Scheduler is the schedule pass, run by every worker runtime. In one transaction it locks the due
 * schedule rows no other runtime is passing over (SKIP LOCKED), enqueues the job of one tick per
 * schedule and moves next_run_at on, so each tick enqueues exactly one job however many runtimes
 * run. One run at a time: while a schedule's last job is unfinished, its ticks are dropped ('skip')
 * or held ('queue').
 */
export class Scheduler implements MaintenanceService<SchedulerCounts> {
  /** name says which service this is, in errors and logs. */
  readonly name = 'schedules';
  private readonly tables: ScheduleTables;

  constructor(private readonly deps: SchedulerDeps) {
    this.tables = scheduleTables(deps.schema);
  }

  /**
   * runOnce passes over the schedules due at `now` and returns its counts. The runs it enqueued are
   * announced (`job:*` transitions, `schedule:tick`) once committed, never for a pass rolled back.
   */
  async runOnce(now: Date): Promise<SchedulerCounts> {
    const counts: SchedulerCounts = {
      due: 0,
      enqueued: 0,
      existing: 0,
      overlapping: 0,
      missed: 0,
      resumed: 0,
    };
    const runs: Run[] = [];
    // The pool itself, not () => pool.connect(): see withClient.
    await withClient(this.deps.pool, async (client) => {
      try {
        await client.query('BEGIN');
        counts.resumed = await schedulesResume(client, this.tables, now, this.deps.liveStates);
        const due = await schedulesDue(client, this.tables, now, SCHEDULES_PER_PASS, this.deps.liveStates);
        counts.due = due.length;
        for (const { schedule, lastJobLive } of due) {
          const outcome = await this.passOne(client, schedule, lastJobLive, now);
          if (typeof outcome === 'string') counts[outcome]++;
          else {
            runs.push(outcome);
            counts[outcome.created ? 'enqueued' : 'existing']++;
          }
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
    for (const { schedule, tick, job, created } of runs) {
      if (created) this.deps.events.emitTransition(job, null, 'ENQUEUE', tick);
      this.deps.events.emit('schedule:tick', { schedule, tick, job });
    }
    return counts;
  }

  // passOne handles one due schedule: drop or hold its ticks while a run is unfinished, else enqueue
  // one tick (the earliest missed one for catchUp 'all', whose next pass takes the following one).
  private async passOne(
    client: pg.PoolClient,
    schedule: Schedule,
    lastJobLive: boolean,
    now: Date,
  ): Promise<Run | 'overlapping' | 'missed'> {
    const from = schedule.nextRunAt as Date;
    if (schedule.everyMs !== null) {
      if (lastJobLive) return 'overlapping';
      const run = await this.enqueueTick(client, schedule, from, now);
      // No next tick until the run ends: the period counts from its end (schedulesResume).
      await scheduleAdvance(client, this.tables, schedule, null, { tick: from, jobId: run.job.id });
      return run;
    }
    const cron = cronOf(schedule.cron, schedule.timezone);
    const { ticks, next } = dueTicks(cron, from, now, schedule.catchUp);
    if (lastJobLive) {
      // 'queue' keeps the latest due tick waiting for the run to end; 'skip' lets them all go.
      const waiting = schedule.overlap === 'queue' ? (ticks.at(-1) ?? next) : next;
      await scheduleAdvance(client, this.tables, schedule, waiting, null);
      return 'overlapping';
    }
    const tick = ticks[0];
    if (!tick) {
      await scheduleAdvance(client, this.tables, schedule, next, null);
      return 'missed';
    }
    const run = await this.enqueueTick(client, schedule, tick, now);
    // With more missed ticks to run ('all'), the next one stays due and runs after this one.
    await scheduleAdvance(client, this.tables, schedule, ticks[1] ?? next, { tick, jobId: run.job.id });
    return run;
  }

  // enqueueTick enqueues the run of one tick, prepared as an enqueue of its task is (the task's
  // maxAttempts and the defaults of every other option apply), keyed by the tick so that a tick
  // whose job is already there gets that job rather than a second one.
  private async enqueueTick(client: pg.PoolClient, schedule: Schedule, tick: Date, now: Date): Promise<Run> {
    const key = `schedule:${schedule.namespace}:${schedule.name}:${tick.toISOString()}`;
    const row = prepareJob(
      { task: schedule.task, payload: schedule.payload, key, mode: 'ignore_if_exists' },
      now,
      this.lookupTask,
    );
    const inserted = await this.deps.storage.jobsInsertUnlessKeyLive(
      [row],
      this.deps.consumerId,
      now,
      client,
    );
    const created = inserted.get(key);
    if (created) return { schedule, tick, job: created, created: true };
    const [live] = await this.deps.storage.jobsLiveByKeys([key], client);
    if (!live) throw new Error(`schedule ${schedule.namespace}/${schedule.name}: tick ${key} vanished`);
    return { schedule, tick, job: live, created: false };
  }

  // lookupTask is the runtime's lookup, except that a task this runtime neither defines nor lists is
  // no definition rather than an UnknownTaskError: the schedule was checked where it was written and
  // another runtime may work its task, so its run gets the defaults, as a producer's enqueue of the
  // task does, and one such schedule does not fail the pass of all the others.
  private readonly lookupTask: TaskLookup = (task) => {
    try {
      return this.deps.lookupTask(task);
    } catch (error) {
      if (error instanceof UnknownTaskError) return null;
      throw error;
    }
  };
}

import type pg from 'pg';
import type { Clock } from '../core/clock.js';
import { JobNotFoundError } from '../core/errors.js';
import { toJsonText } from '../core/json.js';
import type { TaskLookup } from '../jobs/enqueue.js';
import type { RuntimeEvents } from '../jobs/events.js';
import { firstRunAt, type ScheduleOptions, validateSchedule } from '../jobs/schedule-spec.js';
import { validateWithSchema } from '../jobs/standard-schema.js';
import type { SpecOf, TaskCatalog, UntypedCatalog } from '../jobs/task-declarations.js';
import { Periodic, periodicConfig } from '../maintenance/periodic.js';
import { Scheduler, type SchedulerCounts } from '../maintenance/scheduler.js';
import type { Job } from '../storage/job-row.js';
import {
  type Schedule,
  type ScheduleTables,
  scheduleDelete,
  scheduleGet,
  schedulesList,
  scheduleTables,
  scheduleUpsert,
} from '../storage/schedule-statements.js';
import type { Storage } from '../storage/storage.js';

/** LastRun answers "when did this schedule last run, which job, and how did it end". */
export interface LastRun {
  tickAt: Date;
  jobId: string;
  /** job is the job as it stands now (its state says how the run ended), or null if it was removed. */
  job: Job | null;
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

/**
 * TypedScheduleOptions are ScheduleOptions whose task and payload are typed by a runtime's task
 * declarations (any task name and payload on a runtime without declarations).
 */
export type TypedScheduleOptions<C extends TaskCatalog> = SpecOf<
  C,
  Omit<ScheduleOptions, 'task' | 'payload'>
>;

/**
 * Schedules keeps named recurring jobs (`runtime.schedules`). Every worker runtime runs the schedule
 * pass (see Scheduler) each pollIntervalMs of its clock, which enqueues the runs that fall due.
 * C types the tasks a schedule may run (see Runtime).
 */
// C is used by upsert's parameter only: schedules are stored and read back untyped.
export class Schedules<C extends TaskCatalog = UntypedCatalog> {
  private readonly tables: ScheduleTables;
  private readonly scheduler: Scheduler;
  private periodic: Periodic<SchedulerCounts> | null = null;

  constructor(private readonly deps: SchedulesDeps) {
    this.tables = scheduleTables(deps.schema);
    this.scheduler = new Scheduler(deps);
  }

  /**
   * upsert creates or replaces the schedule `name`. Its timing is kept when only the job changes;
   * a new cron, period or time zone starts it again from now. Bad options are a ValidationError, and
   * on a runtime with tasks a task it does not know an UnknownTaskError; nothing is written then.
   * A payload its task's schema refuses is a ValidationError; the schema's value is what is stored,
   * so that every run enqueues a payload that was validated once, here.
   */
  async upsert(name: string, options: TypedScheduleOptions<C>): Promise<Schedule> {
    const spec = validateSchedule(name, options as ScheduleOptions);
    // As for enqueue: a schedule of a task no runtime works would enqueue jobs nothing ever claims.
    const schema = this.deps.lookupTask(spec.task)?.schema;
    if (schema) {
      const value = await validateWithSchema(schema, (options as ScheduleOptions).payload, 'payload');
      spec.payloadJson = toJsonText(value, 'payload');
    }
    await this.deps.ensureSchema();
    const now = this.deps.clock.now();
    return scheduleUpsert(this.deps.pool, this.tables, { ...spec, nextRunAt: firstRunAt(spec, now) }, now);
  }

  /** get reads a schedule, or null. */
  async get(name: string, namespace = 'default'): Promise<Schedule | null> {
    await this.deps.ensureSchema();
    return scheduleGet(this.deps.pool, this.tables, namespace, name);
  }

  /** list reads every schedule of a namespace, by name. */
  async list(namespace = 'default'): Promise<Schedule[]> {
    await this.deps.ensureSchema();
    return schedulesList(this.deps.pool, this.tables, namespace);
  }

  /** remove deletes a schedule; its jobs stay. Returns whether there was one. */
  async remove(name: string, namespace = 'default'): Promise<boolean> {
    await this.deps.ensureSchema();
    return scheduleDelete(this.deps.pool, this.tables, namespace, name);
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

  /** start runs a pass every `intervalMs` of the clock, beginning now; each is told as `schedule:pass`. */
  start(intervalMs: number): void {
    if (this.periodic) return;
    const config = periodicConfig(
      'schedules',
      { intervalMs },
      { intervalMs, runAtStart: true, whenBusy: 'once-more' },
    );
    this.periodic = new Periodic(this.scheduler, this.deps.clock, config, {
      onRun: (counts, at) => {
        this.deps.events.emit('schedule:pass', { at, enqueued: counts.enqueued });
      },
      onError: (error) => this.deps.onError(error),
    });
    this.periodic.start();
  }

  /** stop ends the passes and waits for one under way. */
  async stop(): Promise<void> {
    await this.periodic?.stop();
  }
}

// Schedule is what this API returns; the public index takes it from here, beside Schedules.
export type { Schedule };

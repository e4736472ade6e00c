import type pg from 'pg';
import type { Clock } from '../core/clock.js';
import { UnknownTaskError } from '../core/errors.js';
import { type EnqueueSpec, prepareJobs, type TaskLookup } from '../jobs/enqueue.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { Job } from '../storage/job-row.js';
import { insertJobs } from '../storage/keyed-enqueue.js';
import type { Queryable, Storage } from '../storage/storage.js';
import type { ResolvedOptions } from './options.js';

/** EnqueuerDeps are what enqueueing needs from the runtime. */
export interface EnqueuerDeps {
  storage: Storage;
  pool: pg.Pool;
  clock: Clock;
  events: RuntimeEvents;
  consumerId: string;
  lookupTask: TaskLookup;
  /** traceContextJson is the trace context active now, as the jobs carry it (null: none). */
  traceContextJson(): Promise<string | null>;
  /** ready admits the public call (see Runtime). */
  ready(call: string): Promise<void>;
}

/**
 * Enqueuer writes new jobs: it prepares every spec (nothing is written if one is refused), inserts
 * them (see insertJobs) and emits each job's ENQUEUE, or REPLACE for a keyed job that replaced a live one.
 */
export class Enqueuer {
  constructor(private readonly deps: EnqueuerDeps) {}

  /** insert enqueues `specs`; `field` names the batch in errors (`jobs`), or is '' for one job. */
  async insert(specs: readonly EnqueueSpec[], client: Queryable | undefined, field: string): Promise<Job[]> {
    const { clock, events } = this.deps;
    const now = clock.now();
    const trace = await this.deps.traceContextJson();
    const rows = await prepareJobs(specs, now, this.deps.lookupTask, field, trace);
    await this.deps.ready(field ? 'enqueueMany' : 'enqueue');
    const { jobs, created, replaced } = await insertJobs(rows, {
      storage: this.deps.storage,
      pool: this.deps.pool,
      createdBy: this.deps.consumerId,
      now,
      client,
    });
    const replacedJobs = new Map(replaced.map((r) => [r.job, r.from]));
    for (const job of jobs) {
      const from = replacedJobs.get(job);
      if (from !== undefined) events.emitTransition(job, from, 'REPLACE', now);
      else if (created.has(job)) events.emitTransition(job, null, 'ENQUEUE', now);
    }
    return jobs;
  }
}

/**
 * taskLookupOf accepts any well-formed task on a runtime without tasks, and only its declared or
 * external tasks on one with tasks (a worker, or a producer given declarations), so that a typo
 * cannot leave a job nothing will ever claim, and a producer applies the settings a worker declares.
 */
export function taskLookupOf(options: ResolvedOptions): TaskLookup {
  const { declared, externalTasks } = options;
  return (task) => {
    const settings = declared.get(task);
    if (settings) return settings;
    if (declared.size === 0 || externalTasks.has(task)) return null;
    throw new UnknownTaskError(task, [...declared.keys(), ...externalTasks]);
  };
}

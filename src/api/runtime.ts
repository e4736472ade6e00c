import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createActor } from 'xstate';
import { type RuntimeEvent, runtimeMachine } from '../../machines/runtime.js';
import type { DatabaseHealth } from '../core/database-status.js';
import { RuntimeStateError, ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { type Logger, redactConnectionString } from '../core/logger.js';
import type { EnqueueOptions, EnqueueSpec } from '../jobs/enqueue.js';
import {
  type CleanCounts,
  type RuntimeErrorEvent,
  RuntimeEvents,
  type TransitionEvent,
} from '../jobs/events.js';
import type {
  AnyJobOf,
  CatalogOf,
  JobOf,
  PayloadArgs,
  SpecOf,
  TaskCatalog,
  TaskMap,
  TaskNameOf,
} from '../jobs/task-declarations.js';
import type { Job } from '../storage/job-row.js';
import { assertMigrated, loadMigrations, migrate } from '../storage/migrator.js';
import type { Queryable } from '../storage/storage.js';
import type { JobMetrics } from '../telemetry/job-metrics.js';
import { type JobPage, type ListJobsOptions, validateJobId } from './admin.js';
import type { BulkFilter, BulkOptions, BulkResult } from './bulk.js';
import { type WaitForOptions, waitTimeoutOf } from './job-waiter.js';
import { type ResolvedOptions, type RuntimeOptions, resolveOptions } from './options.js';
import { buildParts, type RuntimeParts } from './parts.js';
import type { Queues } from './queues.js';
import type { Schedules } from './schedules.js';
import { Shutdown } from './shutdown.js';
import { type RuntimeStats, type StatsOptions, validateStatsOptions } from './stats.js';
import { type SubscribeOptions, TransitionSubscription } from './subscription.js';

/** StartOptions tune `runtime.start()`. */
export interface StartOptions {
  /** migrate the schema first (default true); with false the schema must already be current. */
  migrate?: boolean;
}
const START_OPTION_NAMES = optionNames<StartOptions>({ migrate: true });

/**
 * RuntimeHealth is a snapshot of how the runtime is doing. `database` says whether its statements
 * reach PostgreSQL (`since` when, and the last error that said otherwise), for a readiness probe.
 */
export interface RuntimeHealth extends DatabaseHealth {
  phase: RuntimePhase;
  consumerId: string;
  listening: boolean;
  running: number;
  /** pendingWrites counts the outcomes not yet written, those being written included. */
  pendingWrites: number;
  /** lastPollAt is the clock time of the last claim round that reached the database. */
  lastPollAt: Date | null;
}

/**
 * RuntimePhase is where a runtime is in its own life: the state of its lifecycle machine
 * (`machines/runtime.ts`), a crashed runtime reading `stopping` while it stops, then `crashed` again.
 */
export type RuntimePhase = 'created' | 'starting' | 'started' | 'stopping' | 'stopped' | 'crashed';

/**
 * Runtime is one embedded jobchart instance: a producer that enqueues and inspects jobs and, if it has
 * handlers, a consumer that works them. C maps the task names it accepts to their payload and result
 * types (see `task`); without declarations any name and payload are accepted, untyped. The bare
 * `Runtime` type (C any) stands for a runtime of any catalog, so that a typed runtime can be passed
 * where a Runtime is asked for (a catalog parameter would make them incompatible through upsert).
 */
// biome-ignore lint/suspicious/noExplicitAny: see above
export class Runtime<C extends TaskCatalog = any> {
  /** events emits job transitions (`job:<state>`, `job:transition`) and runtime events. */
  readonly events = new RuntimeEvents();
  /** consumerId is written to `locked_by` of the jobs this runtime holds. */
  readonly consumerId: string;
  /** schedules keeps named recurring jobs; worker runtimes enqueue their ticks. */
  readonly schedules: Schedules<C>;
  /** queues pauses and resumes queues for every runtime of the schema, and lists them (see Queues). */
  readonly queues: Queues;

  private readonly options: ResolvedOptions;
  private readonly logger: Logger;
  private readonly parts: RuntimeParts;
  private readonly shutdown: Shutdown;
  // lifecycle is this runtime's own machine: the only authority on its phase.
  private readonly lifecycle = createActor(runtimeMachine).start();
  // stopped aborts once the runtime has closed its connections; it ends every subscription.
  private readonly stopped = new AbortController();
  private schemaChecked: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private lastPollAt: Date | null = null;
  // keepAlive holds the process open while a worker runs: every timer of its own is unref'd, and
  // its sockets close in an outage, after which Node would exit as if the work were done.
  private keepAlive: NodeJS.Timeout | null = null;
  // closed is set once stop() starts closing connections: every public call is refused from then on.
  private closed = false;

  constructor(options: RuntimeOptions) {
    this.options = resolveOptions(options);
    const o = this.options;
    this.consumerId = o.name ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.logger = o.logger.child({ runtime: this.consumerId, schema: o.schema });
    this.parts = buildParts(
      o,
      this.consumerId,
      this.events,
      this.logger,
      {
        reportError: (error, during) => this.reportError(error, during),
        crash: (error, job) => void this.crash(error, job),
        rejoined: () => {
          if (this.phase !== 'started') return;
          this.parts.dispatcher.resumeClaiming();
          this.parts.dispatcher.wake();
        },
        ready: (call) => this.ready(call),
        ensureSchema: () => this.ensureSchema(),
      },
      (at) => {
        this.lastPollAt = at;
      },
    );
    this.schedules = this.parts.schedules as unknown as Schedules<C>;
    this.queues = this.parts.queues;
    this.shutdown = new Shutdown(this.parts, {
      clock: o.clock,
      shutdownTimeoutMs: o.shutdownTimeoutMs,
      logger: this.logger,
      isWorker: this.isWorker,
      heldBy: {
        consumerId: this.consumerId,
        storage: this.parts.storage,
        events: this.events,
        database: this.parts.database,
        logger: this.logger,
      },
      reportError: (error, during) => this.reportError(error, during),
    });
  }

  /** phase is where the runtime is in its life (its lifecycle machine's state). */
  get phase(): RuntimePhase {
    const snapshot = this.lifecycle.getSnapshot();
    if (snapshot.matches({ crashed: 'stopping' })) return 'stopping';
    if (snapshot.matches('crashed')) return 'crashed';
    return snapshot.value as RuntimePhase;
  }

  /** start migrates (unless told not to), then, if the runtime has tasks, listens and starts claiming. */
  async start(options: StartOptions = {}): Promise<void> {
    // Checked before the runtime moves: a refused start leaves it new, to be started again.
    assertKnownKeys(options, START_OPTION_NAMES, 'start');
    if (!this.move({ type: 'START' }))
      throw new RuntimeStateError(`start: expected a new runtime, it is ${this.phase}`);
    const { pool, registry, schedules, waker, listener, dispatcher, paused, statsFlusher } = this.parts;
    try {
      const migrations = await loadMigrations();
      if (options.migrate ?? true) {
        const applied = await migrate(pool, this.options.schema, migrations);
        if (applied.length > 0) this.logger.info({ applied }, 'migrated');
      } else {
        await assertMigrated(pool, this.options.schema, migrations);
      }
      this.schemaChecked = Promise.resolve();
      await this.parts.telemetry.start();
      if (this.isWorker) {
        this.keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
        // Registered before the first claim: a job is never held by a consumer without a row.
        await registry.register();
        // A queue paused before this runtime started is left out from its first claim on.
        await paused.refresh();
        schedules.start(this.options.pollIntervalMs);
        this.parts.retention.start();
        waker.start();
        await listener?.start();
        dispatcher.wake();
      }
      statsFlusher.start();
      if (this.parts.transitionCounts.pending > 0) statsFlusher.due();
      this.move({ type: 'STARTED' });
      this.logger.info(
        {
          tasks: [...this.options.tasks.keys()],
          database: redactConnectionString(this.options.connectionConfig.connectionString),
        },
        this.isWorker ? 'runtime started' : 'producer started',
      );
    } catch (error) {
      // A runtime whose start failed has closed its pool: it cannot be started again, so it is stopped.
      this.move({ type: 'START_FAILED' });
      this.schemaChecked = null;
      this.releaseProcess();
      waker.stop();
      await schedules.stop();
      await statsFlusher.stop();
      await this.parts.retention.stop();
      await dispatcher.stopClaiming();
      await this.closeConnections();
      throw error;
    }
  }

  /**
   * enqueue validates and inserts one job (in the caller's transaction when `options.client` is
   * given). With a key, `options.mode` says what happens if a live job already has it.
   */
  async enqueue<K extends TaskNameOf<C>>(
    task: K,
    ...args: PayloadArgs<C[K]['payload'], EnqueueOptions>
  ): Promise<JobOf<C, K>> {
    const [payload, { client, ...spec } = {}] = args as [unknown, EnqueueOptions?];
    const [job] = await this.parts.enqueuer.insert([{ ...spec, task, payload }], client, '');
    return job as JobOf<C, K>;
  }

  /**
   * enqueueMany validates every job first (its schema's too), then inserts them all (one statement
   * when none has a key): a batch is written whole or not at all.
   */
  async enqueueMany(
    specs: readonly SpecOf<C, Omit<EnqueueSpec, 'task' | 'payload'>>[],
    options: { client?: Queryable } = {},
  ): Promise<AnyJobOf<C>[]> {
    if (!Array.isArray(specs)) throw new ValidationError('jobs', 'an array of { task, payload, ... }', specs);
    assertKnownKeys(options, ['client'], 'enqueueMany');
    return (await this.parts.enqueuer.insert(
      specs as readonly EnqueueSpec[],
      options.client,
      'jobs',
    )) as AnyJobOf<C>[];
  }

  /** getJob reads a job by id; null if there is none. */
  async getJob(id: string | number): Promise<Job | null> {
    const text = validateJobId(id);
    await this.ready('getJob');
    return this.parts.storage.jobGet(text);
  }

  /** listJobs pages through jobs by state, task, queue and key, newest first. */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    await this.ready('listJobs');
    return this.parts.admin.listJobs(options);
  }

  /**
   * cancel ends an unfinished job: a waiting one at once; a running one (here or in another process)
   * has its AbortSignal fired and ends cancelled when its handler returns. Refused for finished jobs.
   */
  async cancel(id: string | number, reason?: string): Promise<Job> {
    await this.ready('cancel');
    return this.parts.admin.cancel(validateJobId(id), reason);
  }

  /** retry runs a failed, cancelled or expired job again now, with fresh attempts. */
  async retry(id: string | number): Promise<Job> {
    await this.ready('retry');
    return this.parts.admin.retry(validateJobId(id));
  }

  /** reschedule moves a waiting job to `runAt` (null parks it). */
  async reschedule(id: string | number, runAt: Date | null): Promise<Job> {
    await this.ready('reschedule');
    return this.parts.admin.reschedule(validateJobId(id), runAt);
  }

  /** remove deletes a job that is not running. */
  async remove(id: string | number): Promise<Job> {
    await this.ready('remove');
    return this.parts.admin.remove(validateJobId(id));
  }

  /** retryMany retries every failed, cancelled or expired job `filter` selects, in batches (see JobBulk). */
  async retryMany(filter: BulkFilter, options?: BulkOptions): Promise<BulkResult> {
    await this.ready('retryMany');
    return this.parts.bulk.retryMany(filter, options);
  }

  /** cancelMany cancels every unfinished job `filter` selects; running ones are signalled (see JobBulk). */
  async cancelMany(filter: BulkFilter, reason?: string, options?: BulkOptions): Promise<BulkResult> {
    await this.ready('cancelMany');
    return this.parts.bulk.cancelMany(filter, reason, options);
  }

  /** removeMany deletes every job `filter` selects that is not running (see JobBulk). */
  async removeMany(filter: BulkFilter, options?: BulkOptions): Promise<BulkResult> {
    await this.ready('removeMany');
    return this.parts.bulk.removeMany(filter, options);
  }

  /** rescheduleMany moves every waiting job `filter` selects to `runAt`, null parking them (see JobBulk). */
  async rescheduleMany(filter: BulkFilter, runAt: Date | null, options?: BulkOptions): Promise<BulkResult> {
    await this.ready('rescheduleMany');
    return this.parts.bulk.rescheduleMany(filter, runAt, options);
  }

  /**
   * clean runs one retention pass now (see RetentionOptions) and returns what it deleted; it waits
   * for a batch another runtime is deleting rather than skip, and emits `maintenance:cleaned`.
   */
  async clean(): Promise<CleanCounts> {
    await this.ready('clean');
    return this.parts.retention.runNow();
  }

  /**
   * subscribe iterates over the job transitions of this runtime that match `options` (task and/or
   * target states): `for await (const e of runtime.subscribe({ states: ['failed'] })) …`. It listens
   * only while iterated, buffers what arrives between steps without bound, and ends when the runtime
   * stops or `options.signal` aborts. See TransitionSubscription.
   */
  subscribe<K extends TaskNameOf<C> = never>(
    options: SubscribeOptions & { task?: K | readonly K[] } = {},
  ): TransitionSubscription<
    [K] extends [never] ? TransitionEvent : TransitionEvent<C[K]['payload'], C[K]['result']>
  > {
    this.assertOpen('subscribe');
    return new TransitionSubscription(this.events, options, this.stopped.signal);
  }

  /**
   * waitFor resolves with the job once it is finished (succeeded, failed, cancelled or expired),
   * whichever process works it. It rejects with a JobNotFoundError if the job does not exist or is
   * deleted while waited for (`removed` is then true), a WaitTimeoutError after `options.timeoutMs` of
   * the runtime's clock, and a RuntimeStateError if the runtime stops first. Given a job (as enqueue
   * returned it) rather than an id, it resolves with a job of the same types. See JobWaiter.
   */
  waitFor<Payload, Result>(
    job: Job<Payload, Result>,
    options?: WaitForOptions,
  ): Promise<Job<Payload, Result>>;
  waitFor(id: string | number, options?: WaitForOptions): Promise<Job>;
  waitFor(id: string | number | Job, options: WaitForOptions = {}): Promise<Job> {
    try {
      const text = validateJobId(typeof id === 'object' && id !== null ? id.id : id);
      const timeoutMs = waitTimeoutOf(options);
      if (this.stopping || this.phase === 'stopped')
        throw new RuntimeStateError(`waitFor: expected a running runtime, it is ${this.phase}`);
      return this.parts.waiter.wait(text, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * stats counts the jobs per state (of one queue and/or task when given) from a snapshot at most
   * `statsMaxAgeMs` old, and the transitions of the last 60 minutes per minute. See RuntimeStats.
   */
  async stats(options: StatsOptions = {}): Promise<RuntimeStats> {
    const { queue, task } = validateStatsOptions(options);
    await this.ready('stats');
    return this.parts.stats.read(queue, task);
  }

  /**
   * metrics returns this runtime's metrics registry (what createMetricsHandler serves); it counts
   * this runtime's transitions from the first call on.
   */
  metrics(): JobMetrics {
    return this.parts.telemetry.metrics.attach();
  }

  /** health reports the runtime's phase, whether its database is reachable, its connection and load. */
  health(): RuntimeHealth {
    const { database, listener, dispatcher, completions } = this.parts;
    return {
      ...database.health,
      phase: this.phase,
      consumerId: this.consumerId,
      listening: listener?.connected ?? false,
      running: dispatcher.runningCount,
      pendingWrites: completions.size,
      lastPollAt: this.lastPollAt,
    };
  }

  /**
   * stop stops claiming, gives back the jobs waiting locally, and lets running jobs finish for up to
   * shutdownTimeoutMs; then it aborts the ones left and gives them back (attempt refunded), writes
   * every outcome, deregisters and closes what it opened. A second call stops waiting at once.
   */
  stop(): Promise<void> {
    if (this.stopping) {
      this.shutdown.force();
      return this.stopping;
    }
    this.stopping = this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    const crashed = this.phase === 'crashed';
    this.move({ type: 'STOP' });
    await this.shutdown.run(crashed);
    this.parts.telemetry.close();
    await this.closeConnections();
    this.releaseProcess();
    this.move({ type: 'STOPPED' });
    this.logger.info('runtime stopped');
  }

  // move sends the lifecycle machine an event and says whether it moved.
  private move(event: RuntimeEvent): boolean {
    const before = this.lifecycle.getSnapshot();
    if (!before.can(event)) return false;
    this.lifecycle.send(event);
    return true;
  }

  private releaseProcess(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
  }

  private async closeConnections(): Promise<void> {
    const { waiter, listener, pool, ownsPool } = this.parts;
    this.closed = true;
    this.stopped.abort();
    await waiter.close();
    await listener?.stop();
    if (ownsPool) await pool.end().catch(() => undefined);
  }

  private get isWorker(): boolean {
    return this.options.tasks.size > 0;
  }

  // ready admits a public call: refused once stop() has closed the runtime's connections (whoever
  // owns the pool: with the caller's, a write would otherwise go through silently after stop),
  // else once the schema is known to be migrated.
  private ready(call: string): Promise<void> {
    try {
      this.assertOpen(call);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.ensureSchema();
  }

  private assertOpen(call: string): void {
    if (this.closed)
      throw new RuntimeStateError(`${call}: expected a runtime that is not stopped, it is ${this.phase}`);
  }

  private ensureSchema(): Promise<void> {
    this.schemaChecked ??= loadMigrations()
      .then((migrations) => assertMigrated(this.parts.pool, this.options.schema, migrations))
      .catch((error) => {
        this.schemaChecked = null;
        throw error;
      });
    return this.schemaChecked;
  }

  // crash stops claiming, aborts running handlers, gives back every job still held (refunding the
  // attempt) and reports to the owner through `runtime:crashed`.
  private async crash(error: unknown, job: Job): Promise<void> {
    if (!this.move({ type: 'CRASH' })) return;
    this.logger.fatal({ err: error, jobId: job.id }, 'onException policy crashed the runtime');
    await this.shutdown.crash(error);
    this.events.emit('runtime:crashed', { error, jobId: job.id });
  }

  private reportError(error: unknown, during: RuntimeErrorEvent['during']): void {
    this.parts.database.failed(error);
    this.logger.warn({ err: error, during }, `${during} failed; will retry`);
    this.events.emit('runtime:error', { error, during });
  }
}

/**
 * createRuntime builds a runtime from options; call `start()` on it before use. Given `task()`
 * declarations, the runtime's enqueue, enqueueMany, schedules, waitFor and subscribe are typed by them.
 */
export function createRuntime<T extends TaskMap = TaskMap, const E extends string = never>(
  options: RuntimeOptions<T, E>,
): Runtime<CatalogOf<T, E>> {
  return new Runtime<CatalogOf<T, E>>(options as unknown as RuntimeOptions);
}

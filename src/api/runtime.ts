import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { AnyActorLogic } from 'xstate';
import { type DatabaseHealth, DatabaseStatus } from '../core/database-status.js';
import {
  JobchartError,
  PresumedDeadError,
  RuntimeStateError,
  ShutdownError,
  UnknownTaskError,
  ValidationError,
} from '../core/errors.js';
import { type Logger, redactConnectionString } from '../core/logger.js';
import { finishedChannel, notifyChannel } from '../core/schema-name.js';
import { LIVE_STATES, planTransition, sourcesOf, targetOf } from '../core/transitions.js';
import { CompletionWriter } from '../dispatch/completions.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { toPolicyLogic } from '../dispatch/exceptions.js';
import { ProgressWriter } from '../dispatch/progress.js';
import { bucketOf, TokenBuckets } from '../dispatch/token-buckets.js';
import { type EnqueueOptions, type EnqueueSpec, prepareJob } from '../jobs/enqueue.js';
import { type RuntimeErrorEvent, RuntimeEvents } from '../jobs/events.js';
import { toOutcome } from '../jobs/outcome.js';
import { type TaskDefinition, validateInteger } from '../jobs/tasks.js';
import { ConsumerRegistry } from '../maintenance/consumers.js';
import type { Job } from '../storage/job-row.js';
import { insertJobs } from '../storage/keyed-enqueue.js';
import { assertMigrated, loadMigrations, migrate } from '../storage/migrator.js';
import { CANCEL_PREFIX, type Queryable, Storage, type SweepResult } from '../storage/storage.js';
import { Listener } from '../wake/listener.js';
import { Waker } from '../wake/waker.js';
import { JobAdmin, type JobPage, type ListJobsOptions, validateJobId } from './admin.js';
import { JobWaiter, type WaitForOptions } from './job-waiter.js';
import { type ResolvedOptions, type RuntimeOptions, resolveOptions } from './options.js';
import { Schedules } from './schedules.js';
import { type SubscribeOptions, TransitionSubscription } from './subscription.js';

/** StartOptions tune `runtime.start()`. */
export interface StartOptions {
  /** migrate the schema first (default true); with false the schema must already be current. */
  migrate?: boolean;
}

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

/** RuntimePhase is where a runtime is in its own life. */
export type RuntimePhase = 'created' | 'starting' | 'started' | 'stopping' | 'stopped' | 'crashed';

/** RuntimeCrashedError is the abort reason given to running jobs when the runtime crashes. */
export class RuntimeCrashedError extends JobchartError {
  constructor(cause: unknown) {
    super('RUNTIME_CRASHED', 'the runtime crashed: expected it to keep running', { cause });
  }
}

/**
 * Runtime is one embedded jobchart instance: a producer that enqueues and inspects jobs and, if it has
 * tasks, a consumer that works them.
 */
export class Runtime {
  /** events emits job transitions (`job:<state>`, `job:transition`) and runtime events. */
  readonly events = new RuntimeEvents();
  /** consumerId is written to `locked_by` of the jobs this runtime holds. */
  readonly consumerId: string;

  private readonly options: ResolvedOptions;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly storage: Storage;
  private readonly logger: Logger;
  private readonly completions: CompletionWriter;
  private readonly dispatcher: Dispatcher;
  private readonly waker: Waker;
  private readonly listener: Listener | null;
  private readonly waiter: JobWaiter;
  // stopped aborts once the runtime has closed its connections; it ends every subscription.
  private readonly stopped = new AbortController();
  private readonly policy: AnyActorLogic;
  private phaseNow: RuntimePhase = 'created';
  private schemaChecked: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private lastPollAt: Date | null = null;
  private readonly progress: ProgressWriter;
  private readonly admin: JobAdmin;
  private readonly registry: ConsumerRegistry;
  private readonly buckets: TokenBuckets;
  /** schedules keeps named recurring jobs; worker runtimes enqueue their ticks. */
  readonly schedules: Schedules;
  private forceStop: (() => void) | null = null;
  private readonly database: DatabaseStatus;
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
    this.ownsPool = o.pool === null;
    this.pool = o.pool ?? new pg.Pool({ ...o.connectionConfig, max: 8 });
    if (this.ownsPool)
      this.pool.on('error', (error) => this.logger.warn({ err: error }, 'idle database client failed'));
    this.storage = new Storage(this.pool, o.schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
    this.policy = toPolicyLogic(o.onException);
    this.database = new DatabaseStatus(o.clock, this.logger);
    this.completions = new CompletionWriter(
      this.storage,
      this.consumerId,
      () => o.clock.now(),
      this.logger,
      this.database,
      {
        onError: (error) => this.events.emit('runtime:error', { error, during: 'complete' }),
      },
    );
    this.buckets = new TokenBuckets(this.pool, o.schema);
    this.progress = new ProgressWriter(this.storage, this.consumerId, o.clock, this.events, (error) =>
      this.reportError(error, 'complete'),
    );
    this.dispatcher = new Dispatcher({
      progress: this.progress,
      storage: this.storage,
      completions: this.completions,
      clock: o.clock,
      events: this.events,
      logger: this.logger,
      tasks: o.tasks,
      maxRunningJobs: o.maxRunningJobs,
      prefetch: o.prefetch,
      queueLimits: o.queueLimits,
      serialQueues: o.serialQueues,
      takeToken: (task, job) => this.takeToken(task, job),
      // This runtime claims the queue's next job at once; the notification is for the others, and
      // waiting for it here too would add its delivery to every serial job's turn.
      onSerialDone: () => {
        this.dispatcher.wake();
        void this.storage.notifyJobsChanged().catch((error) => this.reportError(error, 'complete'));
      },
      expiredState: targetOf('EXPIRE'),
      onExpired: (ids) =>
        void this.storage.notifyFinished(ids).catch((error) => this.reportError(error, 'complete')),
      consumerId: this.consumerId,
      policy: this.policy,
      inspect: o.inspect,
      armAt: (next) => this.waker.armAt(next),
      onCrash: (error, job) => void this.crash(error, job),
      onClaimed: (claimed, at) => {
        this.database.reached();
        this.lastPollAt = at;
        if (this.events.listenerCount('runtime:polled') > 0)
          this.events.emit('runtime:polled', { claimed, at });
      },
      onClaimError: (error) => this.reportError(error, 'claim'),
      onReleased: () =>
        void this.storage.notifyJobsChanged().catch((error) => this.reportError(error, 'claim')),
      maxInterruptions: o.maxInterruptions,
    });
    this.admin = new JobAdmin({
      storage: this.storage,
      clock: o.clock,
      events: this.events,
      cancelHeld: (id, reason) => this.dispatcher.cancelRunning(id, reason),
    });
    this.waker = new Waker(o.clock, o.pollIntervalMs, () => this.dispatcher.wake());
    this.listener =
      this.isWorker && o.listen
        ? new Listener(
            o.connectionConfig,
            notifyChannel(o.schema),
            {
              onNotify: (payload) => {
                if (payload.startsWith(CANCEL_PREFIX)) {
                  this.dispatcher.cancelRunning(
                    payload.slice(CANCEL_PREFIX.length),
                    'cancelled by an operator',
                  );
                } else this.dispatcher.wake();
              },
              onConnected: () => {
                this.database.reached();
                this.events.emit('runtime:connected', { at: o.clock.now() });
                this.dispatcher.wake();
              },
              onDisconnected: (error) => {
                this.events.emit('runtime:disconnected', { at: o.clock.now(), error });
                this.reportError(error, 'listen');
              },
            },
            this.logger,
          )
        : null;
    this.registry = new ConsumerRegistry(
      this.consumerId,
      o.name ?? 'jobchart',
      this.storage,
      o.clock,
      o,
      { from: targetOf('CLAIM'), interrupted: targetOf('INTERRUPT'), failed: targetOf('FAIL') },
      this.database,
      {
        onBeat: (at, swept) => {
          this.dispatcher.reconcile();
          this.events.emit('runtime:heartbeat', { at, swept });
        },
        onPresumedDead: () => this.presumedDead(),
        onRejoined: () => {
          if (this.phaseNow !== 'started') return;
          this.dispatcher.resumeClaiming();
          this.dispatcher.wake();
        },
        onSweep: (result, at) => this.swept(result, at),
        onError: (error, during) => this.reportError(error, during),
      },
    );
    this.schedules = new Schedules({
      pool: this.pool,
      schema: o.schema,
      storage: this.storage,
      clock: o.clock,
      events: this.events,
      consumerId: this.consumerId,
      ensureSchema: () => this.ready('schedules'),
      lookupTask: this.lookupTask,
      liveStates: LIVE_STATES,
      onError: (error) => this.reportError(error, 'schedule'),
    });
    this.waiter = new JobWaiter({
      connectionConfig: o.connectionConfig,
      channel: o.listen ? finishedChannel(o.schema) : null,
      read: async (id) => {
        await this.ensureSchema();
        return this.storage.jobGet(id);
      },
      clock: o.clock,
      pollIntervalMs: o.pollIntervalMs,
      logger: this.logger,
      onError: (error, during) => this.reportError(error, during),
    });
  }

  /** phase is where the runtime is in its life. */
  get phase(): RuntimePhase {
    return this.phaseNow;
  }

  /** start migrates (unless told not to), then, if the runtime has tasks, listens and starts claiming. */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.phaseNow !== 'created')
      throw new RuntimeStateError(`start: expected a new runtime, it is ${this.phaseNow}`);
    this.phaseNow = 'starting';
    try {
      const migrations = await loadMigrations();
      if (options.migrate ?? true) {
        const applied = await migrate(this.pool, this.options.schema, migrations);
        if (applied.length > 0) this.logger.info({ applied }, 'migrated');
      } else {
        await assertMigrated(this.pool, this.options.schema, migrations);
      }
      this.schemaChecked = Promise.resolve();
      if (this.isWorker) {
        this.keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
        // Registered before the first claim: a job is never held by a consumer without a row.
        await this.registry.register();
        this.schedules.start(this.options.pollIntervalMs);
        this.waker.start();
        await this.listener?.start();
        this.dispatcher.wake();
      }
      this.phaseNow = 'started';
      this.logger.info(
        {
          tasks: [...this.options.tasks.keys()],
          database: redactConnectionString(this.options.connectionConfig.connectionString),
        },
        this.isWorker ? 'runtime started' : 'producer started',
      );
    } catch (error) {
      // A runtime whose start failed has closed its pool: it cannot be started again, so it is stopped.
      this.phaseNow = 'stopped';
      this.schemaChecked = null;
      this.releaseProcess();
      this.waker.stop();
      await this.schedules.stop();
      await this.dispatcher.stopClaiming();
      await this.closeConnections();
      throw error;
    }
  }

  /**
   * enqueue validates and inserts one job (in the caller's transaction when `options.client` is
   * given). With a key, `options.mode` says what happens if a live job already has it.
   */
  async enqueue(task: string, payload?: unknown, options: EnqueueOptions = {}): Promise<Job> {
    const { client, ...spec } = options;
    const [job] = await this.insert([{ ...spec, task, payload }], client, '');
    return job as Job;
  }

  /** enqueueMany validates every job first, then inserts them all (one statement when none has a key). */
  async enqueueMany(specs: readonly EnqueueSpec[], options: { client?: Queryable } = {}): Promise<Job[]> {
    if (!Array.isArray(specs)) throw new ValidationError('jobs', 'an array of { task, payload, ... }', specs);
    return this.insert(specs, options.client, 'jobs');
  }

  private async insert(specs: readonly EnqueueSpec[], client: Queryable | undefined, field: string) {
    const now = this.options.clock.now();
    const rows = specs.map((spec, i) =>
      prepareJob(spec, now, this.lookupTask, field ? `${field}[${i}].` : ''),
    );
    await this.ready(field ? 'enqueueMany' : 'enqueue');
    const { jobs, created, replaced } = await insertJobs(rows, {
      storage: this.storage,
      pool: this.pool,
      createdBy: this.consumerId,
      now,
      client,
    });
    const replacedJobs = new Map(replaced.map((r) => [r.job, r.from]));
    for (const job of jobs) {
      const from = replacedJobs.get(job);
      if (from !== undefined) this.events.emitTransition(job, from, 'REPLACE', now);
      else if (created.has(job)) this.events.emitTransition(job, null, 'ENQUEUE', now);
    }
    return jobs;
  }

  /** getJob reads a job by id; null if there is none. */
  async getJob(id: string | number): Promise<Job | null> {
    const text = validateJobId(id);
    await this.ready('getJob');
    return this.storage.jobGet(text);
  }

  /** listJobs pages through jobs by state, task, queue and key, newest first. */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    await this.ready('listJobs');
    return this.admin.listJobs(options);
  }

  /**
   * cancel ends an unfinished job: a waiting one at once; a running one (here or in another process)
   * has its AbortSignal fired and ends cancelled when its handler returns. Refused for finished jobs.
   */
  async cancel(id: string | number, reason?: string): Promise<Job> {
    await this.ready('cancel');
    return this.admin.cancel(validateJobId(id), reason);
  }

  /** retry runs a failed, cancelled or expired job again now, with fresh attempts. */
  async retry(id: string | number): Promise<Job> {
    await this.ready('retry');
    return this.admin.retry(validateJobId(id));
  }

  /** reschedule moves a waiting job to `runAt` (null parks it). */
  async reschedule(id: string | number, runAt: Date | null): Promise<Job> {
    await this.ready('reschedule');
    return this.admin.reschedule(validateJobId(id), runAt);
  }

  /** remove deletes a job that is not running. */
  async remove(id: string | number): Promise<Job> {
    await this.ready('remove');
    return this.admin.remove(validateJobId(id));
  }

  /**
   * subscribe iterates over the job transitions of this runtime that match `options` (task and/or
   * target states): `for await (const e of runtime.subscribe({ states: ['failed'] })) …`. It listens
   * only while iterated, buffers what arrives between steps without bound, and ends when the runtime
   * stops or `options.signal` aborts. See TransitionSubscription.
   */
  subscribe(options: SubscribeOptions = {}): TransitionSubscription {
    this.assertOpen('subscribe');
    return new TransitionSubscription(this.events, options, this.stopped.signal);
  }

  /**
   * waitFor resolves with the job once it is finished (succeeded, failed, cancelled or expired),
   * whichever process works it. It rejects with a JobNotFoundError if the job does not exist or is
   * deleted while waited for (`removed` is then true), a WaitTimeoutError after `options.timeoutMs` of
   * the runtime's clock, and a RuntimeStateError if the runtime stops first. See JobWaiter.
   */
  waitFor(id: string | number, options: WaitForOptions = {}): Promise<Job> {
    try {
      const text = validateJobId(id);
      const timeoutMs =
        options.timeoutMs === undefined
          ? null
          : validateInteger(options.timeoutMs, 'timeoutMs', 0, 2 ** 31 - 1);
      if (this.stopping || this.phaseNow === 'stopped')
        throw new RuntimeStateError(`waitFor: expected a running runtime, it is ${this.phaseNow}`);
      return this.waiter.wait(text, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** health reports the runtime's phase, whether its database is reachable, its connection and load. */
  health(): RuntimeHealth {
    return {
      ...this.database.health,
      phase: this.phaseNow,
      consumerId: this.consumerId,
      listening: this.listener?.connected ?? false,
      running: this.dispatcher.runningCount,
      pendingWrites: this.completions.size,
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
      this.forceStop?.();
      return this.stopping;
    }
    this.stopping = this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const wasCrashed = this.phaseNow === 'crashed';
    this.phaseNow = 'stopping';
    this.waker.stop();
    this.registry.stopBeating();
    const schedulesStopped = this.schedules.stop();
    // The grace period is armed before the first await, so it is measured from the call.
    const ended = await this.runningJobsEnd(async () => {
      await this.dispatcher.stopClaiming();
      await this.releasePrefetched();
      await this.dispatcher.idle();
    });
    if (ended !== 'finished') {
      const reason = new ShutdownError(ended === 'forced' ? null : this.options.shutdownTimeoutMs);
      this.logger.warn({ running: this.dispatcher.runningCount }, reason.message);
      this.dispatcher.abortAll(reason);
    }
    // Only the database can hold stop() up from here: it gets shutdownTimeoutMs more, then whatever
    // is still unwritten is left held by this consumer, for the others' sweep to take back.
    const settled = await this.withinShutdownTimeout(async () => {
      await schedulesStopped;
      await this.progress.stop();
      await this.completions.drained();
      if (!this.isWorker) return;
      // Everything still held is given back, known or not (a claim whose reply was lost).
      await this.releaseHeld();
      if (!wasCrashed) await this.registry.deregister();
    });
    if (!settled) {
      this.logger.error(
        { pendingWrites: this.completions.size },
        `stop: the database did not take the last writes within ${this.options.shutdownTimeoutMs} ms; other runtimes will take back the jobs still held`,
      );
      this.completions.abandon();
    }
    await this.closeConnections();
    this.releaseProcess();
    this.phaseNow = wasCrashed ? 'crashed' : 'stopped';
    this.logger.info('runtime stopped');
  }

  // withinShutdownTimeout runs `work` for shutdownTimeoutMs of clock time at most, or until stop()
  // is called again; it says whether the work finished. Its failures are reported, not thrown.
  private withinShutdownTimeout(work: () => Promise<void>): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimeout(() => resolve(false), this.options.shutdownTimeoutMs);
      this.forceStop = () => resolve(false);
      void work()
        .catch((error) => this.reportError(error, 'stop'))
        .then(() => {
          this.options.clock.clearTimeout(timer);
          resolve(true);
        });
    });
  }

  private releaseProcess(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
  }

  // runningJobsEnd runs `drain` (stop claiming, wait for the handlers) for shutdownTimeoutMs of clock
  // time at most, or until stop() is called again.
  private runningJobsEnd(drain: () => Promise<void>): Promise<'finished' | 'timeout' | 'forced'> {
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimeout(() => resolve('timeout'), this.options.shutdownTimeoutMs);
      this.forceStop = () => resolve('forced');
      void drain().then(() => {
        this.options.clock.clearTimeout(timer);
        resolve('finished');
      });
    });
  }

  // releaseHeld gives back, through the machine's RELEASE (attempt refunded), every job the database
  // says this runtime still holds as running: on stop, and when it abandons running handlers (crash).
  private async releaseHeld(): Promise<void> {
    const now = this.options.clock.now();
    try {
      const released = await this.storage.jobsReleaseHeld(
        this.consumerId,
        [],
        targetOf('CLAIM'),
        targetOf('RELEASE'),
        now,
      );
      for (const job of released) this.events.emitTransition(job, targetOf('CLAIM'), 'RELEASE', now);
      if (released.length > 0) await this.storage.notifyJobsChanged();
    } catch (error) {
      this.database.failed(error);
      this.logger.error({ err: error }, 'giving back held jobs failed; the sweep will interrupt them');
    }
  }

  // takeToken takes a token from the bucket a rate-limited task's job draws on, on the runtime's clock.
  private takeToken(task: TaskDefinition, job: Job): Promise<Date | null> {
    const key =
      typeof task.rateLimit === 'function' ? task.rateLimit(job.payload) : (task.rateLimit as string);
    const limit = typeof key === 'string' ? this.options.rateLimits.get(bucketOf(key)) : undefined;
    if (!limit) {
      throw new ValidationError(
        `tasks.${job.task}.rateLimit`,
        `a key of a configured bucket (${[...this.options.rateLimits.keys()].join(', ')})`,
        key,
      );
    }
    return this.buckets.take(key, limit, this.options.clock.now());
  }

  // presumedDead runs when other runtimes swept this one as dead (a long pause, a partition): its
  // running jobs were taken back, so their handlers are aborted (their late outcomes are refused by
  // the guarded write) and the local queue is given back; claiming resumes once it is registered again.
  private async presumedDead(): Promise<void> {
    const at = this.options.clock.now();
    this.logger.warn({ consumerId: this.consumerId }, 'presumed dead by other runtimes; registering again');
    this.events.emit('runtime:presumed-dead', { consumerId: this.consumerId, at });
    await this.dispatcher.stopClaiming();
    this.dispatcher.abortRunning(new PresumedDeadError(this.consumerId));
    await this.releasePrefetched();
  }

  // swept reports a sweep of silent consumers and wakes every worker for the jobs it made claimable.
  private swept(result: SweepResult, at: Date): void {
    this.logger.warn({ consumers: result.consumers, jobs: result.jobs.length }, 'swept silent consumers');
    this.events.emit('runtime:swept', { ...result, at });
    const failed = result.jobs.filter((job) => job.state === targetOf('FAIL')).map((job) => job.id);
    void Promise.all([
      this.storage.notifyJobsChanged(),
      failed.length > 0 ? this.storage.notifyFinished(failed) : undefined,
    ]).catch((error) => this.reportError(error, 'sweep'));
    this.dispatcher.wake();
  }

  // releasePrefetched gives back, through the machine's RELEASE, the claimed jobs no handler started.
  private async releasePrefetched(): Promise<void> {
    const outcomes = this.dispatcher
      .takePrefetched()
      .map(({ job }) => toOutcome(job, planTransition(job, { type: 'RELEASE' })));
    await Promise.all(outcomes.map((outcome) => this.completions.write(outcome)));
  }

  private async closeConnections(): Promise<void> {
    this.closed = true;
    this.stopped.abort();
    await this.waiter.close();
    await this.listener?.stop();
    if (this.ownsPool) await this.pool.end().catch(() => undefined);
  }

  private get isWorker(): boolean {
    return this.options.tasks.size > 0;
  }

  // lookupTask accepts any well-formed task on a producer, and only known or external tasks on a worker,
  // so that a typo cannot leave a job nothing will ever claim.
  private readonly lookupTask = (task: string): TaskDefinition | null => {
    const definition = this.options.tasks.get(task);
    if (definition) return definition;
    if (!this.isWorker || this.options.externalTasks.has(task)) return null;
    throw new UnknownTaskError(task, [...this.options.tasks.keys(), ...this.options.externalTasks]);
  };

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
      throw new RuntimeStateError(`${call}: expected a runtime that is not stopped, it is ${this.phaseNow}`);
  }

  private ensureSchema(): Promise<void> {
    this.schemaChecked ??= loadMigrations()
      .then((migrations) => assertMigrated(this.pool, this.options.schema, migrations))
      .catch((error) => {
        this.schemaChecked = null;
        throw error;
      });
    return this.schemaChecked;
  }

  // crash stops claiming, aborts running handlers, gives back every job still held (refunding the
  // attempt) and reports to the owner through `runtime:crashed`.
  private async crash(error: unknown, job: Job): Promise<void> {
    if (this.phaseNow === 'crashed' || this.stopping) return;
    this.phaseNow = 'crashed';
    this.logger.fatal({ err: error, jobId: job.id }, 'onException policy crashed the runtime');
    this.waker.stop();
    this.registry.stopBeating();
    await this.schedules.stop();
    await this.dispatcher.stopClaiming();
    this.dispatcher.abortAll(new RuntimeCrashedError(error));
    // The prefetched jobs are given back with the running ones by jobsReleaseHeld below.
    this.dispatcher.takePrefetched();
    await this.completions.drained();
    await this.releaseHeld();
    await this.listener?.stop();
    this.events.emit('runtime:crashed', { error, jobId: job.id });
  }

  private reportError(error: unknown, during: RuntimeErrorEvent['during']): void {
    this.database.failed(error);
    this.logger.warn({ err: error, during }, `${during} failed; will retry`);
    this.events.emit('runtime:error', { error, during });
  }
}

/** createRuntime builds a runtime from options; call `start()` on it before use. */
export function createRuntime(options: RuntimeOptions): Runtime {
  return new Runtime(options);
}

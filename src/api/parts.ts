import pg from 'pg';
import { DatabaseStatus } from '../core/database-status.js';
import type { Logger } from '../core/logger.js';
import { finishedChannel, notifyChannel } from '../core/schema-name.js';
import { LIVE_STATES, sourcesOf, targetOf } from '../core/transitions.js';
import { CompletionWriter } from '../dispatch/completions.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { toPolicyLogic } from '../dispatch/exceptions.js';
import { ProgressWriter } from '../dispatch/progress.js';
import { RateLimiter } from '../dispatch/rate-limit.js';
import { TokenBuckets } from '../dispatch/token-buckets.js';
import type { RuntimeErrorEvent, RuntimeEvents } from '../jobs/events.js';
import type { TaskSettings } from '../jobs/tasks.js';
import { RetentionService } from '../maintenance/cleaner.js';
import { ConsumerRegistry } from '../maintenance/consumers.js';
import type { Job } from '../storage/job-row.js';
import { Storage, type SweepResult } from '../storage/storage.js';
import { readJobsNotification } from '../wake/jobs-notification.js';
import { Listener } from '../wake/listener.js';
import { Waker } from '../wake/waker.js';
import { JobAdmin } from './admin.js';
import { JobWaiter } from './job-waiter.js';
import type { ResolvedOptions } from './options.js';
import { Schedules } from './schedules.js';

/** RuntimeHooks are the runtime's own reactions that its parts call. */
export interface RuntimeHooks {
  /** reportError reports a failure the runtime recovers from (and retries). */
  reportError(error: unknown, during: RuntimeErrorEvent['during']): void;
  /** crash runs when the onException policy asks for a crash on `job`. */
  crash(error: unknown, job: Job): void;
  /** presumedDead runs when this runtime finds its consumer row swept by the others. */
  presumedDead(): Promise<void>;
  /** rejoined runs when this runtime is registered again after presumedDead. */
  rejoined(): void;
  /** swept runs after a sweep of silent consumers took something back. */
  swept(result: SweepResult, at: Date): void;
  /** ready admits a public call (see Runtime), for the parts that serve one. */
  ready(call: string): Promise<void>;
  /** ensureSchema resolves once the schema is known to be migrated. */
  ensureSchema(): Promise<void>;
  /** lookupTask says which settings a new job of `task` gets (see Runtime). */
  lookupTask(task: string): TaskSettings | null;
}

/**
 * RuntimeParts are the working parts of one runtime, wired to each other and to its hooks: the
 * runtime's methods only call into them. Worker-only parts exist on producers too, idle.
 */
export interface RuntimeParts {
  pool: pg.Pool;
  ownsPool: boolean;
  storage: Storage;
  database: DatabaseStatus;
  completions: CompletionWriter;
  progress: ProgressWriter;
  dispatcher: Dispatcher;
  admin: JobAdmin;
  waker: Waker;
  listener: Listener | null;
  registry: ConsumerRegistry;
  schedules: Schedules;
  waiter: JobWaiter;
  /** retention runs the cleaner: periodically on a worker, on demand (`runtime.clean()`) anywhere. */
  retention: RetentionService;
}

/**
 * buildParts wires a runtime's parts from its resolved options. `lastPolled` hears of every claim
 * round that reached the database.
 */
export function buildParts(
  o: ResolvedOptions,
  consumerId: string,
  events: RuntimeEvents,
  logger: Logger,
  hooks: RuntimeHooks,
  lastPolled: (at: Date) => void,
): RuntimeParts {
  const ownsPool = o.pool === null;
  const pool = o.pool ?? new pg.Pool({ ...o.connectionConfig, max: 8 });
  if (ownsPool) pool.on('error', (error) => logger.warn({ err: error }, 'idle database client failed'));
  const storage = new Storage(pool, o.schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
  const database = new DatabaseStatus(o.clock, logger);
  const notifyFailed = (error: unknown) => hooks.reportError(error, 'notify');
  const completions = new CompletionWriter(storage, consumerId, () => o.clock.now(), logger, database, {
    onError: (error) => events.emit('runtime:error', { error, during: 'complete' }),
  });
  const buckets = new TokenBuckets(pool, o.schema);
  const rateLimiter = new RateLimiter(o.rateLimits, (key, limit, now) => buckets.take(key, limit, now));
  const progress = new ProgressWriter(storage, consumerId, o.clock, events, (error) =>
    hooks.reportError(error, 'progress'),
  );
  let waker: Waker | null = null;
  const dispatcher: Dispatcher = new Dispatcher({
    storage,
    progress,
    completions,
    clock: o.clock,
    events,
    logger,
    tasks: o.tasks,
    maxRunningJobs: o.maxRunningJobs,
    prefetch: o.prefetch,
    queueLimits: o.queueLimits,
    serialQueues: o.serialQueues,
    takeToken: (task, job) => rateLimiter.take(task, job, o.clock.now()),
    // This runtime claims the queue's next job at once; the notification is for the others, and
    // waiting for it here too would add its delivery to every serial job's turn.
    onSerialDone: () => {
      dispatcher.wake();
      void storage.notifyJobsChanged().catch(notifyFailed);
    },
    expiredState: targetOf('EXPIRE'),
    onExpired: (ids) => void storage.notifyFinished(ids).catch(notifyFailed),
    consumerId,
    policy: toPolicyLogic(o.onException),
    inspect: o.inspect,
    armAt: (next) => waker?.armAt(next),
    onCrash: (error, job) => hooks.crash(error, job),
    onClaimed: (claimed, at) => {
      database.reached();
      lastPolled(at);
      if (events.listenerCount('runtime:polled') > 0) events.emit('runtime:polled', { claimed, at });
    },
    onClaimError: (error) => hooks.reportError(error, 'claim'),
    onReleased: () => void storage.notifyJobsChanged().catch(notifyFailed),
    maxInterruptions: o.maxInterruptions,
  });
  waker = new Waker(o.clock, o.pollIntervalMs, () => dispatcher.wake());
  const isWorker = o.tasks.size > 0;
  const listener =
    isWorker && o.listen
      ? new Listener(
          o.connectionConfig,
          notifyChannel(o.schema),
          {
            onNotify: (payload) => {
              const notification = readJobsNotification(payload);
              if (notification.kind === 'cancel')
                dispatcher.cancelRunning(notification.jobId, 'cancelled by an operator');
              else dispatcher.wake();
            },
            onConnected: () => {
              database.reached();
              events.emit('runtime:connected', { at: o.clock.now() });
              dispatcher.wake();
            },
            onDisconnected: (error) => {
              events.emit('runtime:disconnected', { at: o.clock.now(), error });
              hooks.reportError(error, 'listen');
            },
          },
          logger,
        )
      : null;
  const registry = new ConsumerRegistry(
    consumerId,
    o.name ?? 'jobchart',
    storage,
    o.clock,
    o,
    targetOf('CLAIM'),
    database,
    {
      onBeat: (at, swept) => {
        dispatcher.reconcile();
        events.emit('runtime:heartbeat', { at, swept });
      },
      onPresumedDead: () => hooks.presumedDead(),
      onRejoined: () => hooks.rejoined(),
      onSweep: (result, at) => hooks.swept(result, at),
      onError: (error, during) => hooks.reportError(error, during),
    },
  );
  const schedules = new Schedules({
    pool,
    schema: o.schema,
    storage,
    clock: o.clock,
    events,
    consumerId,
    ensureSchema: () => hooks.ready('schedules'),
    lookupTask: (task) => hooks.lookupTask(task),
    liveStates: LIVE_STATES,
    onError: (error) => hooks.reportError(error, 'schedule'),
  });
  const admin = new JobAdmin({
    storage,
    clock: o.clock,
    events,
    cancelHeld: (id, reason) => dispatcher.cancelRunning(id, reason),
  });
  const waiter = new JobWaiter({
    connectionConfig: o.connectionConfig,
    channel: o.listen ? finishedChannel(o.schema) : null,
    read: async (id) => {
      await hooks.ensureSchema();
      return storage.jobGet(id);
    },
    clock: o.clock,
    pollIntervalMs: o.pollIntervalMs,
    logger,
    onError: (error, during) => hooks.reportError(error, during),
  });
  const retention = new RetentionService(storage, o.clock, o.retention, o.rateLimits, database, {
    onCleaned: (counts, at) => events.emit('maintenance:cleaned', { ...counts, at }),
    onError: (error) => hooks.reportError(error, 'clean'),
  });
  return {
    pool,
    ownsPool,
    storage,
    database,
    completions,
    progress,
    dispatcher,
    admin,
    waker,
    listener,
    registry,
    schedules,
    waiter,
    retention,
  };
}

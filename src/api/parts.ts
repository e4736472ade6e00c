import pg from 'pg';
import { DatabaseStatus } from '../core/database-status.js';
import type { Logger } from '../core/logger.js';
import { finishedChannel, notifyChannel } from '../core/schema-name.js';
import { LIVE_STATES, sourcesOf, targetOf } from '../core/transitions.js';
import { CompletionWriter } from '../dispatch/completions.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { toPolicyLogic } from '../dispatch/exceptions.js';
import { PausedQueues } from '../dispatch/paused-queues.js';
import { ProgressWriter } from '../dispatch/progress.js';
import { RateLimiter } from '../dispatch/rate-limit.js';
import { TokenBuckets } from '../dispatch/token-buckets.js';
import type { RuntimeErrorEvent, RuntimeEvents } from '../jobs/events.js';
import { RetentionService } from '../maintenance/cleaner.js';
import { ConsumerRegistry } from '../maintenance/consumers.js';
import { Periodic } from '../maintenance/periodic.js';
import { TransitionCounter, type TransitionFlushCounts } from '../maintenance/transition-counts.js';
import type { Job } from '../storage/job-row.js';
import { Storage } from '../storage/storage.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { readJobsNotification } from '../wake/jobs-notification.js';
import { Listener } from '../wake/listener.js';
import { Waker } from '../wake/waker.js';
import { type AdminDeps, JobAdmin } from './admin.js';
import { JobBulk } from './bulk.js';
import { announceSweep, givePresumedDeadWorkBack, type ReactionParts } from './consumer-reactions.js';
import { Enqueuer, taskLookupOf } from './enqueuer.js';
import { JobWaiter } from './job-waiter.js';
import type { ResolvedOptions } from './options.js';
import { Queues } from './queues.js';
import { Schedules } from './schedules.js';
import { Stats } from './stats.js';

/** RuntimeHooks are the runtime's own reactions that its parts call. */
export interface RuntimeHooks {
  /** reportError reports a failure the runtime recovers from (and retries). */
  reportError(error: unknown, during: RuntimeErrorEvent['during']): void;
  /** crash runs when the onException policy asks for a crash on `job`. */
  crash(error: unknown, job: Job): void;
  /** rejoined runs when this runtime is registered again after presumedDead. */
  rejoined(): void;
  /** ready admits a public call (see Runtime), for the parts that serve one. */
  ready(call: string): Promise<void>;
  /** ensureSchema resolves once the schema is known to be migrated. */
  ensureSchema(): Promise<void>;
}

/**
 * RuntimeParts are the working parts of one runtime, wired to each other and to its hooks: the
 * runtime's methods only call into them. Worker-only parts exist on producers too, idle.
 */
export interface RuntimeParts {
  enqueuer: Enqueuer;
  pool: pg.Pool;
  ownsPool: boolean;
  storage: Storage;
  database: DatabaseStatus;
  completions: CompletionWriter;
  progress: ProgressWriter;
  dispatcher: Dispatcher;
  admin: JobAdmin;
  /** bulk carries out the bulk actions (retryMany, cancelMany, removeMany, rescheduleMany). */
  bulk: JobBulk;
  waker: Waker;
  listener: Listener | null;
  registry: ConsumerRegistry;
  schedules: Schedules;
  waiter: JobWaiter;
  /** paused is this runtime's view of the paused queues, which its claims leave out. */
  paused: PausedQueues;
  stats: Stats;
  queues: Queues;
  /** transitionCounts counts this runtime's transitions; statsFlusher adds them to the database. */
  transitionCounts: TransitionCounter;
  statsFlusher: Periodic<TransitionFlushCounts>;
  telemetry: Telemetry;
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
  const lookupTask = taskLookupOf(o);
  const completions = new CompletionWriter(storage, consumerId, () => o.clock.now(), logger, database, {
    onError: (error) => events.emit('runtime:error', { error, during: 'complete' }),
  });
  const buckets = new TokenBuckets(pool, o.schema);
  const rateLimiter = new RateLimiter(o.rateLimits, (key, limit, now) => buckets.take(key, limit, now));
  const progress = new ProgressWriter(storage, consumerId, o.clock, events, (error) =>
    hooks.reportError(error, 'progress'),
  );
  const stats = new Stats({ storage, clock: o.clock, maxAgeMs: o.statsMaxAgeMs });
  const telemetry = new Telemetry({
    enabled: o.telemetry,
    events,
    clock: o.clock,
    logger,
    consumerId,
    // The jobs gauge reads the counts of runtime.stats(): a snapshot at most statsMaxAgeMs old, so a
    // scrape never counts a large table itself more often than that.
    countsByState: async () => {
      await hooks.ensureSchema();
      return (await stats.read(null, null)).counts;
    },
  });
  let waker: Waker | null = null;
  const paused = new PausedQueues(() => storage.queuesPausedNames(), [...o.queueLimits.keys()]);
  const dispatcher: Dispatcher = new Dispatcher({
    paused,
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
    attemptHook: telemetry,
  });
  // readPausedThenWake re-reads the paused queues before a claim: on every poll and after a
  // (re)connect, so that a lost pause or resume notification costs at most one poll interval.
  const readPausedThenWake = () =>
    void paused.refresh().then(
      () => dispatcher.wake(),
      (error) => {
        hooks.reportError(error, 'queues');
        dispatcher.wake();
      },
    );
  waker = new Waker(o.clock, o.pollIntervalMs, () => dispatcher.wake(), readPausedThenWake);
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
              else if (notification.kind === 'queue') {
                if (paused.apply(notification.queue, notification.paused) && !notification.paused)
                  dispatcher.wake();
              } else dispatcher.wake();
            },
            onConnected: () => {
              database.reached();
              events.emit('runtime:connected', { at: o.clock.now() });
              readPausedThenWake();
            },
            onDisconnected: (error) => {
              events.emit('runtime:disconnected', { at: o.clock.now(), error });
              hooks.reportError(error, 'listen');
            },
          },
          logger,
        )
      : null;
  const reactionParts: ReactionParts = {
    consumerId,
    storage,
    dispatcher,
    completions,
    events,
    logger,
    onNotifyError: notifyFailed,
  };
  const enqueuer = new Enqueuer({
    storage,
    pool,
    clock: o.clock,
    events,
    consumerId,
    lookupTask,
    traceContextJson: () => telemetry.traceContextJson(),
    ready: (call) => hooks.ready(call),
  });
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
      onPresumedDead: () => givePresumedDeadWorkBack(reactionParts, o.clock.now()),
      onRejoined: () => hooks.rejoined(),
      onSweep: (result, at) => announceSweep(reactionParts, result, at),
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
    lookupTask,
    liveStates: LIVE_STATES,
    onError: (error) => hooks.reportError(error, 'schedule'),
  });
  const adminDeps: AdminDeps = {
    storage,
    clock: o.clock,
    events,
    cancelHeld: (id, reason) => dispatcher.cancelRunning(id, reason),
  };
  const admin = new JobAdmin(adminDeps);
  const bulk = new JobBulk(adminDeps);
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
  const queues = new Queues({
    storage,
    clock: o.clock,
    stats,
    paused,
    queueLimits: o.queueLimits,
    ready: (call) => hooks.ready(call),
    wake: () => {
      if (isWorker) dispatcher.wake();
    },
  });
  // The flush is armed by the first transition counted after the last one: an idle runtime keeps
  // no timer for it (a simulated clock's timers are then only those of the work under way).
  const transitionCounts: TransitionCounter = new TransitionCounter(storage, events, () =>
    statsFlusher.due(),
  );
  const statsFlusher: Periodic<TransitionFlushCounts> = new Periodic(
    transitionCounts,
    o.clock,
    { intervalMs: o.statsFlushIntervalMs, runAtStart: false, whenBusy: 'once-more', onDemand: true },
    {
      onRun: ({ rows }, at) => {
        if (rows > 0) events.emit('stats:flushed', { at, rows });
      },
      onError: (error) => hooks.reportError(error, 'stats'),
    },
  );
  const retention = new RetentionService(storage, o.clock, o.retention, o.rateLimits, database, {
    onCleaned: (counts, at) => events.emit('maintenance:cleaned', { ...counts, at }),
    onError: (error) => hooks.reportError(error, 'clean'),
  });
  return {
    enqueuer,
    paused,
    stats,
    queues,
    transitionCounts,
    statsFlusher,
    pool,
    ownsPool,
    storage,
    database,
    completions,
    progress,
    dispatcher,
    admin,
    bulk,
    waker,
    listener,
    registry,
    schedules,
    waiter,
    telemetry,
    retention,
  };
}

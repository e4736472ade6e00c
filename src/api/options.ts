import type pg from 'pg';
import { DEFAULT_MAX_INTERRUPTIONS } from '../../machines/job.js';
import { type Clock, SystemClock } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { validateSchemaName } from '../core/schema-name.js';
import type { OnExceptionPolicy } from '../dispatch/exceptions.js';
import type { Inspector } from '../dispatch/job-actors.js';
import { bucketOf, type RateLimit, validateRateLimits } from '../dispatch/token-buckets.js';
import { type HandlersFor, resolveTasks, type TaskMap } from '../jobs/task-declarations.js';
import {
  type TaskDefinition,
  type TaskSettings,
  validateInteger,
  validateQueueName,
  validateTaskName,
} from '../jobs/tasks.js';
import { MAX_CONSUMER_TIMEOUT_MS } from '../maintenance/cleaner.js';
import { type RetentionConfig, type RetentionOptions, resolveRetention } from '../maintenance/retention.js';

/**
 * RuntimeOptions configure `createRuntime`. Every field is optional except a way to reach PostgreSQL.
 * T is the `tasks` map and E the `externalTasks` names, inferred by createRuntime to type its calls.
 */
export interface RuntimeOptions<T extends TaskMap = TaskMap, E extends string = string> {
  /** connectionString of the database (default `process.env.DATABASE_URL`). */
  connectionString?: string;
  /** pool to use instead of a connection string; the runtime never ends a pool it did not create. */
  pool?: pg.Pool;
  /**
   * tasks this runtime knows: a handler or a `defineTask` definition (worked here), or a `task()`
   * declaration (from `defineTasks`), worked here only if `handlers` has its handler. A runtime
   * with tasks refuses to enqueue any other task (but externalTasks); one without accepts any name.
   */
  tasks?: T;
  /**
   * handlers work the `task()` declarations of `tasks`, one for each, typed by its declaration. A
   * runtime with at least one handler (here or in `tasks`) is a worker; without, a producer only.
   */
  handlers?: NoInfer<HandlersFor<T>>;
  /** externalTasks may be enqueued here although another process works (or declares) them. */
  externalTasks?: readonly E[];
  /** maxRunningJobs bounds the handlers running at once (default 10). */
  maxRunningJobs?: number;
  /**
   * prefetch claims up to this many jobs beyond the free slots, held as running by this runtime while
   * they wait locally. Fewer, larger claims raise throughput; prefetched jobs are given back, attempt
   * refunded, on stop. 'auto' (the default) keeps about 100 ms of work waiting, measured from how
   * fast this runtime finishes jobs (at most 2,000; none while jobs are slow or the queue is idle).
   */
  prefetch?: number | 'auto';
  /**
   * queues caps how many jobs of a named queue this runtime runs at once, e.g.
   * `{ emails: { concurrency: 2 } }`; other queues share maxRunningJobs freely.
   */
  queues?: Record<string, QueueOptions>;
  /**
   * rateLimits are token buckets tasks take from (`defineTask({ rateLimit: 'smtp' })`), held in the
   * database so they hold across runtimes, e.g. `{ smtp: { capacity: 5, refillPerSecond: 1 } }`.
   */
  rateLimits?: Record<string, RateLimit>;
  /** schema holding jobchart's tables (default "jobchart"). */
  schema?: string;
  /** heartbeatIntervalMs is how often a worker proves it is alive and sweeps up after silent ones (default 5 s). */
  heartbeatIntervalMs?: number;
  /**
   * consumerTimeoutMs is how long a worker may stay silent before others take its running jobs back
   * (default 30 s; must exceed heartbeatIntervalMs).
   */
  consumerTimeoutMs?: number;
  /**
   * maxInterruptions is how many times a job may be taken back from consumers that stopped
   * heartbeating before the sweep fails it (default 5). Interruptions refund the attempt, since the
   * handler may never have started; this bound stops a job that kills its worker every time. The
   * sweeping runtime's value applies, so give every worker of a schema the same one.
   */
  maxInterruptions?: number;
  /**
   * shutdownTimeoutMs is how long `stop()` lets running jobs finish before it aborts them and gives
   * them back (default 30 s), and then how long it waits for the database to take the last outcomes
   * and releases: `stop()` returns within twice this, whatever the database does. A second `stop()`
   * does not wait.
   */
  shutdownTimeoutMs?: number;
  /** logger, a pino logger (default: JSON to stdout at JOBCHART_LOG_LEVEL or info). */
  logger?: Logger;
  /** clock for every timestamp and delay (default the system clock; tests pass a SimulatedClock). */
  clock?: Clock;
  /** onException decides what a thrown error does: a function or XState logic (default retry with backoff). */
  onException?: OnExceptionPolicy;
  /** pollIntervalMs between polls, the backstop behind notifications (default 1000). */
  pollIntervalMs?: number;
  /** listen for insert notifications (default true); without it only the poll wakes the runtime. */
  listen?: boolean;
  /**
   * inspect receives XState inspection events of every job actor: a function, or an observer
   * `{ next, error?, complete? }` such as @statelyai/inspect's `inspector.inspect`, as XState takes.
   */
  inspect?: Inspector;
  /** name identifies this runtime in `created_by` and `locked_by` (default host:pid:random). */
  name?: string;
  /**
   * statsMaxAgeMs is how old the job counts behind `runtime.stats()` and `runtime.queues.list()` may
   * be before a call counts them again (default 5 s; 0 counts on every call). See the Stats section.
   */
  statsMaxAgeMs?: number;
  /** statsFlushIntervalMs is how often this runtime adds its transition counts to the database (default 5 s). */
  statsFlushIntervalMs?: number;
  /**
   * telemetry traces attempts and feeds OpenTelemetry metrics when `@opentelemetry/api` is installed
   * and an SDK is registered (default true); false never loads the API. See the README's Observability.
   */
  telemetry?: boolean;
  /**
   * retention is how long finished jobs are kept, per state, before worker runtimes delete them
   * (default DEFAULT_RETENTION: succeeded 1 day, cancelled and expired 7 days, failed 30 days), and
   * how often they clean; `false` keeps every job forever. See RetentionOptions.
   */
  retention?: RetentionOptions | false;
}

/** ResolvedOptions are RuntimeOptions checked and with defaults applied. */
export interface ResolvedOptions {
  connectionConfig: pg.PoolConfig;
  pool: pg.Pool | null;
  /** tasks are the tasks this runtime works (with a handler); none makes it a producer only. */
  tasks: Map<string, TaskDefinition>;
  /** declared are the settings of every task of `tasks`, worked here or not. */
  declared: Map<string, TaskSettings>;
  externalTasks: Set<string>;
  maxRunningJobs: number;
  prefetch: number | 'auto';
  queueLimits: ReadonlyMap<string, number>;
  serialQueues: ReadonlySet<string>;
  rateLimits: ReadonlyMap<string, RateLimit>;
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
  maxInterruptions: number;
  shutdownTimeoutMs: number;
  schema: string;
  logger: Logger;
  clock: Clock;
  onException: OnExceptionPolicy | undefined;
  pollIntervalMs: number;
  listen: boolean;
  inspect: Inspector | undefined;
  name: string | undefined;
  statsMaxAgeMs: number;
  statsFlushIntervalMs: number;
  telemetry: boolean;
  retention: RetentionConfig;
}

/** resolveOptions validates every option and throws a ValidationError naming the first bad one. */
export function resolveOptions(options: RuntimeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object')
    throw new ValidationError('options', 'an object', options);
  assertKnownKeys(options, RUNTIME_OPTION_NAMES, '');
  const { handled: tasks, declared } = resolveTasks(options.tasks, options.handlers);
  const externalTasks = new Set(
    (options.externalTasks ?? []).map((name) => validateTaskName(name, 'externalTasks')),
  );
  const rateLimits = validateRateLimits(options.rateLimits);
  assertRateLimitsKnown(tasks, rateLimits);
  return {
    connectionConfig: connectionConfigOf(options),
    pool: options.pool ?? null,
    tasks,
    declared,
    externalTasks,
    maxRunningJobs: validateInteger(options.maxRunningJobs ?? 10, 'maxRunningJobs', 1, 10_000),
    prefetch:
      options.prefetch === 'auto' || options.prefetch === undefined
        ? 'auto'
        : validateInteger(options.prefetch, 'prefetch', 0, 100_000),
    queueLimits: queueLimitsOf(options.queues),
    serialQueues: serialQueuesOf(options.queues),
    rateLimits,
    schema: validateSchemaName(options.schema ?? 'jobchart'),
    logger: options.logger ?? defaultLogger(),
    clock: options.clock ?? new SystemClock(),
    onException: checkPolicy(options.onException),
    pollIntervalMs: validateInteger(options.pollIntervalMs ?? 1000, 'pollIntervalMs', 1, 3_600_000),
    ...consumerTimingOf(options),
    maxInterruptions: validateInteger(
      options.maxInterruptions ?? DEFAULT_MAX_INTERRUPTIONS,
      'maxInterruptions',
      1,
      1_000_000,
    ),
    shutdownTimeoutMs: validateInteger(
      options.shutdownTimeoutMs ?? 30_000,
      'shutdownTimeoutMs',
      0,
      86_400_000,
    ),
    listen: options.listen ?? true,
    telemetry: telemetryOf(options.telemetry),
    inspect: checkInspector(options.inspect),
    name: options.name,
    statsMaxAgeMs: validateInteger(options.statsMaxAgeMs ?? 5_000, 'statsMaxAgeMs', 0, 86_400_000),
    statsFlushIntervalMs: validateInteger(
      options.statsFlushIntervalMs ?? 5_000,
      'statsFlushIntervalMs',
      10,
      3_600_000,
    ),
    retention: resolveRetention(options.retention),
  };
}

function connectionConfigOf(options: RuntimeOptions): pg.PoolConfig {
  if (options.pool) {
    // pool is duck-typed: the caller's pg may be another copy of the package than ours.
    if (typeof options.pool.connect !== 'function' || typeof options.pool.query !== 'function')
      throw new ValidationError('pool', 'a pg.Pool', options.pool);
    return options.pool.options;
  }
  const connectionString = options.connectionString ?? process.env.DATABASE_URL;
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw new ValidationError(
      'connectionString',
      'a postgres:// URL, a pool, or DATABASE_URL set',
      connectionString,
    );
  }
  return { connectionString };
}

function checkPolicy(policy: OnExceptionPolicy | undefined): OnExceptionPolicy | undefined {
  const isLogic = typeof policy === 'object' && policy !== null && 'transition' in policy;
  if (policy !== undefined && typeof policy !== 'function' && !isLogic) {
    throw new ValidationError('onException', 'a policy function or XState actor logic', policy);
  }
  return policy;
}

// checkInspector accepts what XState would: a function, or an observer whose `next` receives the
// events (its error and complete, if given, must be functions too, or XState would throw later).
function checkInspector(inspect: Inspector | undefined): Inspector | undefined {
  if (inspect === undefined || typeof inspect === 'function') return inspect;
  const observer = inspect as Record<string, unknown> | null;
  const isObserver =
    typeof observer === 'object' &&
    observer !== null &&
    typeof observer.next === 'function' &&
    ['error', 'complete'].every((k) => observer[k] === undefined || typeof observer[k] === 'function');
  if (!isObserver)
    throw new ValidationError('inspect', 'a function or an observer { next, error?, complete? }', inspect);
  return inspect;
}

/**
 * QueueOptions limit a named queue: `concurrency` caps its jobs running in this runtime; `serial`
 * runs at most one of its jobs at a time across all runtimes, in order of run_at then id.
 */
export interface QueueOptions {
  concurrency?: number;
  serial?: boolean;
}

const QUEUE_OPTION_NAMES = optionNames<QueueOptions>({ concurrency: true, serial: true });

// queueLimitsOf returns each limited queue's cap in this runtime (a serial queue's is 1).
function queueLimitsOf(queues: RuntimeOptions['queues']): Map<string, number> {
  if (queues === undefined) return new Map();
  if (typeof queues !== 'object' || queues === null || Array.isArray(queues)) {
    throw new ValidationError(
      'queues',
      'an object of { [queue]: { concurrency } or { serial: true } }',
      queues,
    );
  }
  return new Map(
    Object.entries(queues).map(([queue, config]) => {
      validateQueueName(queue, `queues.${queue}`);
      if (typeof config === 'object' && config !== null)
        assertKnownKeys(config, QUEUE_OPTION_NAMES, `queues.${queue}`);
      if (config?.serial !== undefined && typeof config.serial !== 'boolean') {
        throw new ValidationError(`queues.${queue}.serial`, 'a boolean', config.serial);
      }
      if (config?.serial) {
        if (config.concurrency !== undefined && config.concurrency !== 1) {
          throw new ValidationError(
            `queues.${queue}.concurrency`,
            'no concurrency (or 1) on a serial queue',
            config.concurrency,
          );
        }
        return [queue, 1];
      }
      return [queue, validateInteger(config?.concurrency, `queues.${queue}.concurrency`, 1, 10_000)];
    }),
  );
}

function serialQueuesOf(queues: RuntimeOptions['queues']): Set<string> {
  return new Set(
    Object.entries(queues ?? {})
      .filter(([, config]) => config?.serial === true)
      .map(([queue]) => queue),
  );
}

function telemetryOf(telemetry: unknown): boolean {
  if (telemetry === undefined) return true;
  if (typeof telemetry !== 'boolean') throw new ValidationError('telemetry', 'true or false', telemetry);
  return telemetry;
}

// assertRateLimitsKnown checks that every task's named bucket is configured.
function assertRateLimitsKnown(
  tasks: ReadonlyMap<string, TaskDefinition>,
  buckets: ReadonlyMap<string, RateLimit>,
): void {
  for (const [name, task] of tasks) {
    if (typeof task.rateLimit === 'string' && !buckets.has(bucketOf(task.rateLimit))) {
      throw new ValidationError(
        `tasks.${name}.rateLimit`,
        `a bucket of rateLimits (${[...buckets.keys()].join(', ') || 'none configured'})`,
        task.rateLimit,
      );
    }
  }
}

function consumerTimingOf(options: RuntimeOptions): {
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
} {
  const heartbeatIntervalMs = validateInteger(
    options.heartbeatIntervalMs ?? 5_000,
    'heartbeatIntervalMs',
    10,
    3_600_000,
  );
  const consumerTimeoutMs = validateInteger(
    options.consumerTimeoutMs ?? Math.max(30_000, 3 * heartbeatIntervalMs),
    'consumerTimeoutMs',
    1,
    MAX_CONSUMER_TIMEOUT_MS,
  );
  if (consumerTimeoutMs <= heartbeatIntervalMs) {
    throw new ValidationError(
      'consumerTimeoutMs',
      `more than heartbeatIntervalMs (${heartbeatIntervalMs})`,
      options.consumerTimeoutMs,
    );
  }
  return { heartbeatIntervalMs, consumerTimeoutMs };
}

// RUNTIME_OPTION_NAMES are the options createRuntime knows. optionNames makes this list and the
// RuntimeOptions interface agree at compile time: a new option added to the interface and not here
// (or the other way round) does not build, so the check can never refuse an option that exists.
const RUNTIME_OPTION_NAMES = optionNames<RuntimeOptions>({
  connectionString: true,
  pool: true,
  tasks: true,
  handlers: true,
  externalTasks: true,
  maxRunningJobs: true,
  prefetch: true,
  queues: true,
  rateLimits: true,
  schema: true,
  heartbeatIntervalMs: true,
  consumerTimeoutMs: true,
  maxInterruptions: true,
  shutdownTimeoutMs: true,
  logger: true,
  clock: true,
  onException: true,
  pollIntervalMs: true,
  listen: true,
  inspect: true,
  telemetry: true,
  name: true,
  statsMaxAgeMs: true,
  statsFlushIntervalMs: true,
  retention: true,
});

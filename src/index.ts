// The public API of jobchart. Everything exported here is documented where it is defined.

export {
  type Backoff,
  type BackoffFunction,
  backoffDelay,
  DEFAULT_BACKOFF,
  type ExponentialBackoff,
  type FixedBackoff,
  type LinearBackoff,
} from '../machines/backoff.js';
export {
  DEFAULT_MAX_INTERRUPTIONS,
  JOB_STATES,
  type JobEvent,
  type JobEventType,
  type JobMachine,
  type JobMachineContext,
  type JobState,
  jobMachine,
  STORED_STATES,
} from '../machines/job.js';
export {
  type PolicyDecision,
  type PolicyInput,
  type PolicyMachine,
  policyMachine,
} from '../machines/policy.js';
export { type RuntimeEvent, type RuntimeMachine, runtimeMachine } from '../machines/runtime.js';
export type { JobPage, ListJobsOptions } from './api/admin.js';
export {
  BULK_BATCH_SIZE,
  type BulkCounts,
  type BulkFilter,
  type BulkOptions,
  type BulkResult,
} from './api/bulk.js';
export type { JobFilterOptions } from './api/job-filter.js';
export { FINISHED_STATES, type WaitForOptions } from './api/job-waiter.js';
export type { RuntimeOptions } from './api/options.js';
export type { QueueInfo, QueueState, Queues } from './api/queues.js';
export {
  createRuntime,
  Runtime,
  type RuntimeHealth,
  type RuntimePhase,
  type StartOptions,
} from './api/runtime.js';
export type { LastRun, Schedule, Schedules, TypedScheduleOptions } from './api/schedules.js';
export type {
  JobCounts,
  RuntimeStats,
  StatsOptions,
  StoredJobState,
  TransitionMinute,
} from './api/stats.js';
export type { SubscribeOptions, TransitionSubscription } from './api/subscription.js';
export { type Clock, SimulatedClock, SystemClock, type TimerHandle } from './core/clock.js';
export type { DatabaseHealth } from './core/database-status.js';
export {
  DuplicateJobError,
  InvalidResultError,
  InvalidTransitionError,
  JobCancelledError,
  JobchartError,
  JobNotFoundError,
  OutcomeRefusedError,
  PolicyError,
  PresumedDeadError,
  RuntimeCrashedError,
  RuntimeStateError,
  SchemaNotMigratedError,
  SchemaTooNewError,
  ShutdownError,
  TimeoutError,
  UnknownOptionError,
  UnknownTaskError,
  ValidationError,
  WaitTimeoutError,
} from './core/errors.js';
export type { Logger } from './core/logger.js';
export { MAX_DELAY_MS, TIMESTAMP_MAX_MS, TIMESTAMP_MIN_MS } from './core/time-range.js';
export { CSRF_HEADER, createDashboard, type DashboardOptions } from './dashboard/api.js';
export { RESULT_MAX_BYTES } from './dispatch/attempt-outcomes.js';
export type { OnExceptionPolicy, PolicyFunction } from './dispatch/exceptions.js';
export type { HandlerContext } from './dispatch/handler-context.js';
export { type JobProgress, PROGRESS_WRITE_INTERVAL_MS } from './dispatch/progress.js';
export {
  type EnqueueOptions,
  type EnqueueSpec,
  KEY_MAX_LENGTH,
  KEY_MODES,
  type KeyMode,
} from './jobs/enqueue.js';
export type {
  CleanCounts,
  CleanedEvent,
  ConnectionEvent,
  CrashEvent,
  FinishedJobState,
  PolledEvent,
  ProgressEvent,
  RuntimeErrorEvent,
  RuntimeEventMap,
  RuntimeEvents,
  ScheduleTickEvent,
  SweptEvent,
  TransitionEvent,
} from './jobs/events.js';
export {
  cancel,
  fail,
  type HandlerOutcome,
  isHandlerOutcome,
  remove,
  rerunAfter,
  rerunAt,
} from './jobs/handler-outcomes.js';
export type { CatchUp, Overlap, ScheduleOptions } from './jobs/schedule-spec.js';
export type {
  InferSchemaOutput,
  StandardSchemaV1,
  StandardSchemaV1Failure,
  StandardSchemaV1Issue,
  StandardSchemaV1PathSegment,
  StandardSchemaV1Props,
  StandardSchemaV1Result,
  StandardSchemaV1Success,
  StandardSchemaV1Types,
} from './jobs/standard-schema.js';
export { TAG_MAX_LENGTH, TAGS_PER_JOB_LIMIT } from './jobs/tags.js';
export {
  type AnyJobOf,
  type CatalogOf,
  defineTasks,
  type HandlersFor,
  type JobOf,
  type PayloadArgs,
  type PayloadField,
  type PayloadOf,
  type ResultOf,
  type SpecOf,
  type TaskCatalog,
  type TaskDeclaration,
  type TaskEntry,
  type TaskMap,
  type TaskNameOf,
  type TaskTypes,
  task,
  type UntypedCatalog,
} from './jobs/task-declarations.js';
export {
  defineTask,
  type JobContext,
  type TaskDefinition,
  type TaskHandler,
  type TaskSettings,
} from './jobs/tasks.js';
export { DEFAULT_RETENTION, type RetentionOptions } from './maintenance/retention.js';
export type { AttemptError, Job, TraceContext } from './storage/job-row.js';
export type { Queryable } from './storage/storage.js';
export {
  type CountSeries,
  DURATION_BUCKETS,
  type HistogramSeries,
  type JobMetrics,
  type MetricsSnapshot,
  WAIT_BUCKETS,
} from './telemetry/job-metrics.js';
export {
  createMetricsHandler,
  type MetricsHandlerOptions,
  type MetricsSource,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
} from './telemetry/prometheus.js';

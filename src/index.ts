// The public API of jobchart. Everything exported here is documented where it is defined.
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
export type { JobPage, ListJobsOptions } from './admin.js';
export { RESULT_MAX_BYTES } from './attempt-outcomes.js';
export {
  type Backoff,
  type BackoffFunction,
  backoffDelay,
  DEFAULT_BACKOFF,
  type ExponentialBackoff,
  type FixedBackoff,
  type LinearBackoff,
} from './backoff.js';
export { type Clock, SimulatedClock, SystemClock, type TimerHandle } from './clock.js';
export type { DatabaseHealth } from './database-status.js';
export {
  type EnqueueOptions,
  type EnqueueSpec,
  KEY_MAX_LENGTH,
  KEY_MODES,
  type KeyMode,
} from './enqueue.js';
export {
  DuplicateJobError,
  InvalidResultError,
  InvalidTransitionError,
  JobCancelledError,
  JobchartError,
  JobNotFoundError,
  OutcomeRefusedError,
  PresumedDeadError,
  RuntimeStateError,
  SchemaNotMigratedError,
  SchemaTooNewError,
  ShutdownError,
  TimeoutError,
  UnknownTaskError,
  ValidationError,
  WaitTimeoutError,
} from './errors.js';
export type {
  ConnectionEvent,
  CrashEvent,
  PolledEvent,
  ProgressEvent,
  RuntimeErrorEvent,
  RuntimeEventMap,
  RuntimeEvents,
  ScheduleTickEvent,
  SweptEvent,
  TransitionEvent,
} from './events.js';
export { type OnExceptionPolicy, PolicyError, type PolicyFunction } from './exceptions.js';
export {
  cancel,
  fail,
  type HandlerOutcome,
  isHandlerOutcome,
  remove,
  rerunAfter,
  rerunAt,
} from './handler-outcomes.js';
export type { AttemptError, Job } from './job-row.js';
export { FINISHED_STATES, type WaitForOptions } from './job-waiter.js';
export type { Logger } from './logger.js';
export type { RuntimeOptions } from './options.js';
export { type JobProgress, PROGRESS_WRITE_INTERVAL_MS } from './progress.js';
export {
  createRuntime,
  Runtime,
  RuntimeCrashedError,
  type RuntimeHealth,
  type RuntimePhase,
  type StartOptions,
} from './runtime.js';
export type { CatchUp, Overlap, ScheduleOptions } from './schedule-spec.js';
export type { LastRun, Schedule, Schedules } from './schedules.js';
export type { Queryable } from './storage.js';
export type { SubscribeOptions, TransitionSubscription } from './subscription.js';
export { defineTask, type JobContext, type TaskDefinition, type TaskHandler } from './tasks.js';
export { MAX_DELAY_MS, TIMESTAMP_MAX_MS, TIMESTAMP_MIN_MS } from './time-range.js';

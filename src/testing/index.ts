// jobchart/testing: the kit for testing your own tasks. `runTask` answers what the runtime would do
// with one attempt of a handler, without a database; `drainDueJobs` works a real runtime's jobs to the
// end on a simulated clock. Both run the runtime's own code, so a test of a task is a test of what
// production will do with it. Nothing in jobchart itself imports this module.

export { type Clock, SimulatedClock } from '../core/clock.js';
export type { HandlerContext } from '../dispatch/handler-context.js';
export {
  type DrainOptions,
  DrainStalledError,
  type DrainSummary,
  drainDueJobs,
  type FinishedCounts,
} from './drain.js';
export type {
  CancelledRun,
  CrashedRun,
  FailedRun,
  ProgressReport,
  RemovedRun,
  RerunRun,
  RetryRun,
  RunOutcome,
  RunResult,
  SucceededRun,
  TimedOutRun,
} from './run-result.js';
export { type RunTaskOptions, runTask } from './run-task.js';

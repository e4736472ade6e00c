import type { PolicyDecision, PolicyInput } from '../../machines/policy.js';
import { TimeoutError } from '../core/errors.js';
import type { JobContext } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { Outcome } from '../storage/outcome-statements.js';

/** ProgressReport is one `ctx.progress(completed, total)` call, with the clock time it was made. */
export interface ProgressReport {
  completed: number;
  total: number;
  at: Date;
}

/** SucceededRun: the job succeeds and `result` is stored (as JSON: what getJob would return). */
export interface SucceededRun {
  kind: 'succeeded';
  result: unknown;
}

/** RemovedRun: the handler returned remove(); the job succeeds and its row is deleted. */
export interface RemovedRun {
  kind: 'removed';
}

/** RerunRun: the handler returned rerunAt or rerunAfter; the job waits until `runAt`, its attempt refunded. */
export interface RerunRun {
  kind: 'rerun';
  runAt: Date;
}

/** CancelledRun: the handler returned cancel(reason); the job ends cancelled. */
export interface CancelledRun {
  kind: 'cancelled';
  reason: string;
}

/** RetryRun: the attempt failed and the policy retries the job at `runAt`, `delayMs` after the decision. */
export interface RetryRun {
  kind: 'retry';
  runAt: Date;
  delayMs: number;
  /** error is what the policy was told failed the attempt. */
  error: unknown;
}

/**
 * FailedRun: the job fails for good: the handler returned fail(reason) (`error` is the reason), or
 * the attempt failed and the policy abandoned it, no attempt was left, or the policy's delay was out
 * of range (`error` is what failed the attempt; `job.lastError` says why the runtime stopped).
 */
export interface FailedRun {
  kind: 'failed';
  error: unknown;
}

/**
 * CrashedRun: the policy decided to crash (or itself failed, `error` being a PolicyError): the
 * runtime would give the job back, attempt refunded, and stop with `runtime:crashed`.
 */
export interface CrashedRun {
  kind: 'crashed';
  error: unknown;
}

/**
 * TimedOutRun: the handler overran the task's timeoutMs: its signal fired with `error` and the
 * attempt failed with it; `next` is what the policy made of that failure.
 */
export interface TimedOutRun {
  kind: 'timed_out';
  timeoutMs: number;
  error: TimeoutError;
  next: RetryRun | FailedRun | CrashedRun;
}

/** RunOutcome is what the runtime does with one attempt, told apart by `kind`. */
export type RunOutcome =
  | SucceededRun
  | RemovedRun
  | RerunRun
  | CancelledRun
  | RetryRun
  | FailedRun
  | CrashedRun
  | TimedOutRun;

/**
 * RunResult is the attempt's RunOutcome, plus every progress report the handler made and the job as
 * the runtime leaves it (state, attempts, runAt, lastError, result; state `removed` after remove()).
 */
export type RunResult = RunOutcome & { progress: ProgressReport[]; job: Job };

/** PolicyCall is what the onException policy was told about a failed attempt, and what it answered. */
export interface PolicyCall {
  input: PolicyInput;
  decision?: PolicyDecision;
}

/** AttemptWitness is what runTask saw of the attempt besides its outcome. */
export interface AttemptWitness {
  /** job is the job object the dispatcher ran and updated once the outcome was "written". */
  job: Job;
  /** context is the ctx the handler got; null if the handler never ran. */
  context: JobContext | null;
  /** told is the policy's call, if the attempt failed. */
  told: PolicyCall | null;
  /** crash is what the dispatcher reported crashing with, if the policy crashed or failed. */
  crash: { error: unknown } | null;
  /** timeoutMs is the task's. */
  timeoutMs: number | undefined;
}

/**
 * describeAttempt reads the outcome the dispatcher decided (the job machine's event and its extras)
 * as the kit's plain RunOutcome. It decides nothing: every answer was the runtime's.
 */
export function describeAttempt(outcome: Outcome, witness: AttemptWitness): RunOutcome {
  const decided = describeOutcome(outcome, witness);
  const cause = witness.told?.input.error;
  // A failure caused by the dispatcher's own timeout: the error the policy was told is the very
  // reason the handler's signal fired with (a handler throwing a TimeoutError of its own is not one).
  if (
    cause instanceof TimeoutError &&
    witness.timeoutMs !== undefined &&
    witness.context?.signal.reason === cause &&
    (decided.kind === 'retry' || decided.kind === 'failed' || decided.kind === 'crashed')
  ) {
    return { kind: 'timed_out', timeoutMs: witness.timeoutMs, error: cause, next: decided };
  }
  return decided;
}

function describeOutcome(
  outcome: Outcome,
  { job, told, crash }: AttemptWitness,
): Exclude<RunOutcome, TimedOutRun> {
  switch (outcome.event) {
    case 'SUCCEED':
      return outcome.remove ? { kind: 'removed' } : { kind: 'succeeded', result: job.result };
    case 'RERUN':
      return { kind: 'rerun', runAt: outcome.runAt as Date };
    case 'CANCEL':
      return { kind: 'cancelled', reason: outcome.error ?? '' };
    case 'RETRY': {
      // Only the policy retries, so it was asked: its delay is the one the runtime added to now.
      const decision = told?.decision;
      if (decision?.action !== 'retry') break;
      return {
        kind: 'retry',
        runAt: outcome.runAt as Date,
        delayMs: decision.delayMs,
        error: told?.input.error,
      };
    }
    case 'FAIL':
      // Without a policy call the handler itself failed the job (fail(), or a refused rerun time).
      return { kind: 'failed', error: told ? told.input.error : outcome.error };
    case 'RELEASE':
      if (crash) return { kind: 'crashed', error: crash.error };
      break;
  }
  throw new Error(
    `runTask: the runtime ended the attempt with ${outcome.event}, which the kit cannot describe`,
  );
}

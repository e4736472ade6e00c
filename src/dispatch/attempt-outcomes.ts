import type { AnyActorLogic } from 'xstate';
import { DEFAULT_BACKOFF } from '../../machines/backoff.js';
import type { JobEvent } from '../../machines/job.js';
import type { PolicyDecision } from '../../machines/policy.js';
import type { Clock } from '../core/clock.js';
import { InvalidResultError, type ValidationError } from '../core/errors.js';
import { storableText, toJsonText } from '../core/json.js';
import { delayedTime } from '../core/time-range.js';
import { planTransition, tryTransition } from '../core/transitions.js';
import { type HandlerOutcome, isHandlerOutcome } from '../jobs/handler-outcomes.js';
import { type OutcomeExtras, toOutcome } from '../jobs/outcome.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Outcome } from '../storage/outcome-statements.js';
import type { RunningJob } from './dispatcher.js';
import { decide } from './exceptions.js';
import type { JobActor } from './job-actors.js';

/** RESULT_MAX_BYTES bounds a stored result: results are for small summaries, not for data. */
export const RESULT_MAX_BYTES = 1_000_000;

// SUCCEED is shared by every success: events are never changed, and this one is sent for most jobs.
const SUCCEED: JobEvent = { type: 'SUCCEED' };

/**
 * resultOutcome turns what a handler returned into its outcome: a handler outcome (rerun, remove,
 * cancel, fail) or a result to store. A result that cannot be stored is returned as an
 * InvalidResultError, for the caller to send down the failure path instead.
 */
export function resultOutcome(
  entry: RunningJob,
  value: unknown,
  progressJson: string | null,
  clock: Clock,
): Outcome | InvalidResultError {
  if (isHandlerOutcome(value)) return fromHandlerOutcome(entry, value, progressJson, clock);
  let resultJson: string | null = null;
  if (value !== undefined) {
    try {
      resultJson = toJsonText(value, 'result');
    } catch (error) {
      return new InvalidResultError(entry.job.id, 'a JSON-serializable result', error);
    }
    if (resultJson.length * 3 > RESULT_MAX_BYTES && Buffer.byteLength(resultJson) > RESULT_MAX_BYTES) {
      return new InvalidResultError(entry.job.id, `a result of at most ${RESULT_MAX_BYTES} bytes of JSON`);
    }
  }
  return decideOutcome(entry, SUCCEED, { resultJson, progressJson });
}

function fromHandlerOutcome(
  entry: RunningJob,
  returned: HandlerOutcome,
  progressJson: string | null,
  clock: Clock,
): Outcome {
  switch (returned.kind) {
    case 'rerun':
      return decideOutcome(entry, { type: 'RERUN' }, { runAt: returned.runAt, progressJson });
    case 'rerunAfter': {
      // rerunAfter bounded the delay, but a clock near the end of time can still overshoot the range.
      const runAt = delayedTime(clock.now(), returned.delayMs, 'rerunAfter', entry.job.id);
      if (runAt instanceof Date) return decideOutcome(entry, { type: 'RERUN' }, { runAt, progressJson });
      return decideOutcome(entry, { type: 'FAIL' }, { error: refusedDelay(runAt), progressJson });
    }
    case 'remove': {
      const outcome = decideOutcome(entry, { type: 'SUCCEED' }, { remove: true, progressJson });
      // The row goes once it has succeeded: the machine must allow REMOVE from there too.
      planTransition({ ...entry.job, state: outcome.to }, { type: 'REMOVE' });
      actorOf(entry).send({ type: 'REMOVE' });
      return outcome;
    }
    case 'cancel':
      return decideOutcome(entry, { type: 'CANCEL' }, { error: returned.reason, progressJson });
    case 'fail':
      return decideOutcome(entry, { type: 'FAIL' }, { error: returned.reason, progressJson });
  }
}

/**
 * policyOutcome asks the onException policy what a failed attempt leads to. A crash (or a policy
 * that fails) gives the job back (RELEASE, attempt refunded, error recorded) and names what to
 * report once that write is durable, so the crashing job is not lost either.
 */
export async function policyOutcome(
  entry: RunningJob,
  task: TaskDefinition,
  error: unknown,
  policy: AnyActorLogic,
  clock: Clock,
): Promise<{ outcome: Outcome } | { outcome: Outcome; crash: unknown }> {
  const { job } = entry;
  const cause = error ?? new Error(`job ${job.id}: the attempt failed without an error`);
  let decision: PolicyDecision;
  try {
    decision = await decide(policy, {
      jobId: job.id,
      task: job.task,
      attempt: job.attempts,
      maxAttempts: job.maxAttempts,
      error: cause,
      backoff: task.backoff ?? DEFAULT_BACKOFF,
      random: Math.random(),
    });
  } catch (policyError) {
    return {
      outcome: decideOutcome(entry, { type: 'RELEASE' }, { error: errorMessage(cause) }),
      crash: policyError,
    };
  }
  const message = errorMessage(cause);
  if (decision.action === 'crash') {
    return { outcome: decideOutcome(entry, { type: 'RELEASE' }, { error: message }), crash: cause };
  }
  if (decision.action === 'retry' && tryTransition(job, 'RETRY') !== null) {
    // A backoff function or a policy may answer any delay; one past the range would be written as no
    // time at all and retry the job at once, so the job fails instead, saying why.
    const runAt = delayedTime(clock.now(), decision.delayMs, 'backoff', job.id);
    if (runAt instanceof Date) {
      return { outcome: decideOutcome(entry, { type: 'RETRY' }, { runAt, error: message }) };
    }
    const error = `${refusedDelay(runAt)}\nafter the attempt failed with: ${message}`;
    return { outcome: decideOutcome(entry, { type: 'FAIL' }, { error }) };
  }
  return { outcome: decideOutcome(entry, { type: 'FAIL' }, { error: message }) };
}

/**
 * decideOutcome plans a change with the machine (throwing if it refuses) and moves the job's actor
 * with the same event, so that an inspector sees the decision as it is made.
 */
export function decideOutcome(entry: RunningJob, event: JobEvent, extras: OutcomeExtras = {}): Outcome {
  const plan = planTransition(entry.job, event);
  actorOf(entry).send(event);
  return toOutcome(entry.job, plan, extras);
}

// actorOf is the job's live actor; there is none once its outcome was decided, and a second decision
// for one attempt would be a bug in the dispatcher.
function actorOf(entry: RunningJob): JobActor {
  if (!entry.actor) throw new Error(`job ${entry.job.id}: its attempt's outcome was already decided`);
  return entry.actor;
}

// errorMessage is the text stored for an error, made storable (storableText): one message with a NUL
// or a lone surrogate would otherwise fail the whole batch of outcomes it is written with.
function errorMessage(error: unknown): string {
  const text =
    error instanceof Error
      ? (error.stack ?? `${error.name}: ${error.message}`)
      : typeof error === 'string'
        ? error
        : String(safeJson(error) ?? error);
  return storableText(text);
}

// refusedDelay is the stored text of a computed time out of range: the error without its stack, which
// would only point into jobchart.
function refusedDelay(error: ValidationError): string {
  return `${error.name}: ${error.message}`;
}

function safeJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

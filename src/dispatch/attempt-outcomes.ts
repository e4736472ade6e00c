import type { AnyActorLogic } from 'xstate';
import { DEFAULT_BACKOFF } from '../../machines/backoff.js';
import type { JobEvent } from '../../machines/job.js';
import type { PolicyDecision } from '../../machines/policy.js';
import type { Clock } from '../core/clock.js';
import { errorText } from '../core/error-text.js';
import { InvalidResultError, type ValidationError } from '../core/errors.js';
import { toJsonText } from '../core/json.js';
import type { Logger } from '../core/logger.js';
import { delayedTime } from '../core/time-range.js';
import { planTransition, tryTransition } from '../core/transitions.js';
import type { RuntimeEvents } from '../jobs/events.js';
import { type HandlerOutcome, isHandlerOutcome } from '../jobs/handler-outcomes.js';
import { type OutcomeExtras, toOutcome } from '../jobs/outcome.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { Outcome } from '../storage/outcome-statements.js';
import type { CompletionWriter } from './completions.js';
import { askPolicy } from './exceptions.js';
import type { JobActor, JobActors } from './job-actors.js';
import type { ProgressWriter } from './progress.js';
import type { RunningJob } from './running-job.js';

// An attempt's conclusion is what it came to (a success, a rerun, a retry, a failure, a crash...);
// its write is the storage `Outcome`, the row update that records the conclusion.

/** RESULT_MAX_BYTES bounds a stored result: results are for small summaries, not for data. */
export const RESULT_MAX_BYTES = 1_000_000;

// SUCCEED is shared by every success: events are never changed, and this one is sent for most jobs.
const SUCCEED: JobEvent = { type: 'SUCCEED' };

/** AttemptEnd is how an attempt's handler ended: the value it returned, or what it threw or timed out with. */
export type AttemptEnd = { ok: true; value: unknown } | { ok: false; error: unknown };

/** ConclusionDeps is what concluding attempts works with; the dispatcher builds it from its own deps. */
export interface ConclusionDeps {
  completions: CompletionWriter;
  progress: ProgressWriter;
  clock: Clock;
  events: RuntimeEvents;
  logger: Logger;
  policy: AnyActorLogic;
  actors: JobActors;
  /** runningById holds every attempt until its write is settled: a concluded attempt leaves it here. */
  runningById: Map<string, RunningJob>;
  serialQueues: ReadonlySet<string>;
  /** onSerialDone is told that a serial queue's job has ended (see DispatcherDeps). */
  onSerialDone(): void;
  /** armAt is told a retry's or rerun's run_at once its write is durable. */
  armAt(next: Date | null): void;
  /** onCrashDecided is told as soon as the policy decides to crash (or fails): claiming stops at once. */
  onCrashDecided(): void;
  /** onCrash is told of that crash once the crashing job was given back. */
  onCrash(error: unknown, job: Job): void;
}

// FailureConclusion is what a failed attempt came to: its write and, for a crash, the error to report
// once that write is durable.
type FailureConclusion = { write: Outcome } | { write: Outcome; crash: unknown };

/**
 * Conclusions turns how each attempt ended into its conclusion, through the job machine (and the
 * onException policy for a failure), moves the job's actor with it, and submits the write to the
 * completion writer; once the write is settled the job object is brought up to date, listeners are
 * told, and the attempt is forgotten.
 */
export class Conclusions {
  private discarding = false;

  constructor(private readonly deps: ConclusionDeps) {}

  /**
   * discardFromNow drops the conclusions of attempts that end from now on: their jobs are about to be
   * given back whole, not half-recorded.
   */
  discardFromNow(): void {
    this.discarding = true;
  }

  /**
   * conclude decides a finished attempt's conclusion: synchronously for a success, through the policy
   * actor for a failure.
   */
  conclude(running: RunningJob, task: TaskDefinition, end: AttemptEnd): void {
    if (this.discarding) {
      this.forget(running);
      return;
    }
    let failure: unknown = end.ok ? undefined : end.error;
    try {
      const progressJson = this.deps.progress.take(running.job.id);
      if (running.cancelReason !== undefined) {
        // Cancelled while it ran: whatever the handler made of its aborted signal, the job ends cancelled.
        this.submit(
          running,
          planWrite(running, { type: 'CANCEL' }, { error: running.cancelReason, progressJson }),
          null,
        );
        return;
      }
      if (end.ok) {
        const write = this.returnedWrite(running, end.value, progressJson);
        if (!(write instanceof InvalidResultError)) {
          this.submit(running, write, null);
          return;
        }
        failure = write;
      }
    } catch (error) {
      this.concludingFailed(running, error);
      return;
    }
    this.failureConclusion(running, task, failure).then(
      (concluded) => {
        // A crash stops claiming at once; it is reported once the crashing job is given back.
        if ('crash' in concluded) this.deps.onCrashDecided();
        this.submit(running, concluded.write, 'crash' in concluded ? { error: concluded.crash } : null);
      },
      (error) => this.concludingFailed(running, error),
    );
  }

  /** rerun sends back a job that got no rate-limit token, until `runAt` (RERUN: no attempt spent). */
  rerun(running: RunningJob, runAt: Date): void {
    try {
      this.submit(running, planWrite(running, { type: 'RERUN' }, { runAt }), null);
    } catch (error) {
      this.concludingFailed(running, error);
    }
  }

  /** cancelUnstarted ends cancelled a claimed job whose handler never started. */
  cancelUnstarted(running: RunningJob, reason: string): void {
    this.submit(running, planWrite(running, { type: 'CANCEL' }, { error: reason }), null);
  }

  // returnedWrite is the write for what a handler returned: a handler outcome (rerun, remove, cancel,
  // fail) or a result to store. A result that cannot be stored is returned as an InvalidResultError,
  // for the caller to send down the failure path instead.
  private returnedWrite(
    running: RunningJob,
    value: unknown,
    progressJson: string | null,
  ): Outcome | InvalidResultError {
    if (isHandlerOutcome(value)) return this.handlerOutcomeWrite(running, value, progressJson);
    let resultJson: string | null = null;
    if (value !== undefined) {
      try {
        resultJson = toJsonText(value, 'result');
      } catch (error) {
        return new InvalidResultError(running.job.id, 'a JSON-serializable result', error);
      }
      if (resultJson.length * 3 > RESULT_MAX_BYTES && Buffer.byteLength(resultJson) > RESULT_MAX_BYTES) {
        return new InvalidResultError(
          running.job.id,
          `a result of at most ${RESULT_MAX_BYTES} bytes of JSON`,
        );
      }
    }
    return planWrite(running, SUCCEED, { resultJson, progressJson });
  }

  private handlerOutcomeWrite(
    running: RunningJob,
    returned: HandlerOutcome,
    progressJson: string | null,
  ): Outcome {
    switch (returned.kind) {
      case 'rerun':
        return planWrite(running, { type: 'RERUN' }, { runAt: returned.runAt, progressJson });
      case 'rerunAfter': {
        // rerunAfter bounded the delay, but a clock near the end of time can still overshoot the range.
        const runAt = delayedTime(this.deps.clock.now(), returned.delayMs, 'rerunAfter', running.job.id);
        if (runAt instanceof Date) return planWrite(running, { type: 'RERUN' }, { runAt, progressJson });
        return planWrite(running, { type: 'FAIL' }, { error: refusedDelay(runAt), progressJson });
      }
      case 'remove': {
        const write = planWrite(running, { type: 'SUCCEED' }, { remove: true, progressJson });
        // The row goes once it has succeeded: the machine must allow REMOVE from there too.
        planTransition({ ...running.job, state: write.to }, { type: 'REMOVE' });
        actorOf(running).send({ type: 'REMOVE' });
        return write;
      }
      case 'cancel':
        return planWrite(running, { type: 'CANCEL' }, { error: returned.reason, progressJson });
      case 'fail':
        return planWrite(
          running,
          { type: 'FAIL' },
          { error: returned.reason, stack: returned.stack, progressJson },
        );
    }
  }

  // failureConclusion asks the onException policy what a failed attempt leads to. A crash (or a
  // policy that fails) gives the job back (RELEASE, attempt refunded, error recorded) and names what
  // to report once that write is durable, so the crashing job is not lost either.
  private async failureConclusion(
    running: RunningJob,
    task: TaskDefinition,
    error: unknown,
  ): Promise<FailureConclusion> {
    const { job } = running;
    const cause = error ?? new Error(`job ${job.id}: the attempt failed without an error`);
    let decision: PolicyDecision;
    try {
      decision = await askPolicy(this.deps.policy, {
        jobId: job.id,
        task: job.task,
        attempt: job.attempts,
        maxAttempts: job.maxAttempts,
        error: cause,
        backoff: task.backoff ?? DEFAULT_BACKOFF,
        random: Math.random(),
      });
    } catch (policyError) {
      const { message, stack } = errorText(cause);
      return {
        write: planWrite(running, { type: 'RELEASE' }, { error: message, stack }),
        crash: policyError,
      };
    }
    const { message, stack } = errorText(cause);
    if (decision.action === 'crash') {
      return { write: planWrite(running, { type: 'RELEASE' }, { error: message, stack }), crash: cause };
    }
    if (decision.action === 'retry' && tryTransition(job, 'RETRY') !== null) {
      // A backoff function or a policy may answer any delay; one past the range would be written as no
      // time at all and retry the job at once, so the job fails instead, saying why.
      const runAt = delayedTime(this.deps.clock.now(), decision.delayMs, 'backoff', job.id);
      if (runAt instanceof Date) {
        return { write: planWrite(running, { type: 'RETRY' }, { runAt, error: message, stack }) };
      }
      const error = `${refusedDelay(runAt)}, after the attempt failed with ${message}`;
      return { write: planWrite(running, { type: 'FAIL' }, { error, stack }) };
    }
    return { write: planWrite(running, { type: 'FAIL' }, { error: message, stack }) };
  }

  // submit hands the write to the completion writer; once it is durable the job object is brought up
  // to date, listeners are told, and a crash (if this write was a crash's release) is reported.
  private submit(running: RunningJob, write: Outcome, crash: { error: unknown } | null): void {
    this.stopActor(running);
    this.deps.completions.submit(write, (written, at, asWritten) => {
      try {
        if (written) this.applyWritten(running.job, asWritten, at);
        else {
          this.deps.logger.warn(
            { jobId: running.job.id, attempt: write.attempt, to: write.to },
            'outcome discarded: the job is no longer held by this attempt',
          );
        }
      } finally {
        this.forget(running);
        if (this.deps.serialQueues.has(running.job.queue)) this.deps.onSerialDone();
        if (crash) this.deps.onCrash(crash.error, running.job);
      }
    });
  }

  private applyWritten(job: Job, write: Outcome, at: Date): void {
    // A retry's run_at is known here, so the waker is armed for it without asking the database.
    if (write.runAt) this.deps.armAt(write.runAt);
    job.state = write.to;
    job.attempts += write.attemptDelta;
    if (write.runAt) job.runAt = write.runAt;
    if (write.error !== null) job.lastError = write.error;
    if (write.resultJson !== null) job.result = JSON.parse(write.resultJson);
    job.finishedAt = write.finished ? at : null;
    job.lockedBy = null;
    job.lockedAt = null;
    job.updatedAt = at;
    this.deps.events.emitTransition(job, write.from, write.event, at);
    if (write.remove) {
      job.state = 'removed';
      this.deps.events.emitTransition(job, write.to, 'REMOVE', at);
    }
  }

  // concludingFailed gives up on an attempt whose conclusion could not be decided: the job stays held,
  // and the next reconciliation of what this runtime holds gives it back.
  private concludingFailed(running: RunningJob, error: unknown): void {
    this.deps.logger.error({ err: error, jobId: running.job.id }, 'concluding a job failed');
    this.forget(running);
  }

  private forget(running: RunningJob): void {
    this.deps.runningById.delete(running.job.id);
    this.stopActor(running);
  }

  private stopActor(running: RunningJob): void {
    if (!running.actor) return;
    this.deps.actors.stop(running.actor);
    running.actor = null;
  }
}

/**
 * planWrite plans a change with the machine (throwing if it refuses) and moves the job's actor with
 * the same event, so that an inspector sees the conclusion as it is decided.
 */
function planWrite(running: RunningJob, event: JobEvent, extras: OutcomeExtras = {}): Outcome {
  const plan = planTransition(running.job, event);
  actorOf(running).send(event);
  return toOutcome(running.job, plan, extras);
}

// actorOf is the job's live actor; there is none once its conclusion was decided, and a second
// conclusion for one attempt would be a bug in the dispatcher.
function actorOf(running: RunningJob): JobActor {
  if (!running.actor) throw new Error(`job ${running.job.id}: its attempt's outcome was already decided`);
  return running.actor;
}

// refusedDelay is the stored text of a computed time out of range: the error without its stack, which
// would only point into jobchart (the stack kept is the failure's own).
function refusedDelay(error: ValidationError): string {
  return errorText(error).message;
}

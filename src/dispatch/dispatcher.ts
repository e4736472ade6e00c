import PQueue from 'p-queue';
import type { AnyActorLogic, InspectionEvent } from 'xstate';
import type { JobState } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { InvalidResultError, JobCancelledError, TimeoutError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { targetOf } from '../core/transitions.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { Outcome } from '../storage/outcome-statements.js';
import type { ClaimedJob, Storage } from '../storage/storage.js';
import { decideOutcome, policyOutcome, resultOutcome } from './attempt-outcomes.js';
import type { CompletionWriter } from './completions.js';
import { HandlerContext } from './handler-context.js';
import { type JobActor, JobActors } from './job-actors.js';
import { PrefetchSizer } from './prefetch.js';
import type { ProgressWriter } from './progress.js';

/** DispatcherDeps is everything the dispatcher works with; it owns none of it. */
export interface DispatcherDeps {
  storage: Storage;
  completions: CompletionWriter;
  clock: Clock;
  events: RuntimeEvents;
  logger: Logger;
  tasks: ReadonlyMap<string, TaskDefinition>;
  maxRunningJobs: number;
  /** prefetch is how many claimed jobs may wait locally for a free slot, or 'auto' (see PrefetchSizer). */
  prefetch: number | 'auto';
  /** queueLimits caps, per named queue, how many of its jobs this runtime holds at once. */
  queueLimits: ReadonlyMap<string, number>;
  /** expiredState is the state a claim leaves a job in when its expiry had passed (the machine's EXPIRE). */
  expiredState: JobState;
  /** serialQueues run one job at a time across all runtimes (claimed through claim_serial_job). */
  serialQueues: ReadonlySet<string>;
  /** takeToken takes a rate-limit token for a job of a limited task: null if taken, else when one is due. */
  takeToken(task: TaskDefinition, job: Job): Promise<Date | null>;
  /** onSerialDone is told that a serial queue's job has ended, so that every runtime may claim the next. */
  onSerialDone(): void;
  /** progress persists what handlers report through ctx.progress. */
  progress: ProgressWriter;
  /** onExpired is told the ids of jobs a claim expired, so that waiting processes hear of them. */
  onExpired(ids: string[]): void;
  consumerId: string;
  policy: AnyActorLogic;
  inspect: ((event: InspectionEvent) => void) | undefined;
  /** armAt is told the earliest future run_at after a claim found less work than it had room for. */
  armAt(next: Date | null): void;
  /** onCrash is told that the policy decided to crash (or failed), once the crashing job was given back. */
  onCrash(error: unknown, job: Job): void;
  /** onClaimed is told how many jobs a claim round took, and at what clock time. */
  onClaimed(count: number, at: Date): void;
  /** onClaimError is told about a claim that failed; the next wake-up tries again. */
  onClaimError(error: unknown): void;
  /** onReleased is told of jobs a reconciliation gave back, so that other runtimes hear of them. */
  onReleased(jobs: readonly Job[]): void;
  /** maxInterruptions is shown in the job actors' context (see the machine's INTERRUPT). */
  maxInterruptions: number;
}

/** RunningJob is a job this runtime is executing: its actor and the means to abort it. */
export interface RunningJob {
  job: Job;
  /**
   * actor is the job's live actor until its outcome is decided. It is stopped then, not once the
   * outcome is written: no event reaches it after the decision, and an actor kept alive through
   * the write outlived V8's young generation, which made garbage collection the largest CPU cost
   * of a quick job.
   */
  actor: JobActor | null;
  /** controller is created when the handler first asks for its signal; nobody to tell before that. */
  controller: AbortController | null;
  /** abortReason is kept so that a signal first asked for after the abort is born aborted. */
  abortReason?: unknown;
  /** cancelReason is set when someone cancelled the job while it ran: it then ends cancelled. */
  cancelReason?: string;
}

function abortEntry(entry: RunningJob, reason: unknown): void {
  entry.abortReason = reason;
  entry.controller?.abort(reason);
}

/**
 * TURN_STARTS bounds how many jobs start within one turn of the event loop. Quick handlers settle in
 * microtasks, so without a bound a whole local queue would run before the event loop saw any I/O:
 * the claim that refills the queue and the write of finished outcomes would wait for it, and the
 * database would idle while Node works, then Node while the database works.
 */
const TURN_STARTS = 128;

// REFILL_AT is the share of the local queue left when a refilling claim goes out (see freeSlot).
const REFILL_AT = 0.75;

type AttemptResult = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Dispatcher claims due jobs when woken, as many as it has free slots, and runs each as an actor in a
 * p-queue bounded by maxRunningJobs. It counts running handlers itself: a handler that outlives its
 * timeout still holds its slot. Outcomes go through the job machine, then to the completion writer.
 */
export class Dispatcher {
  private readonly queue: PQueue;
  private readonly running = new Map<string, RunningJob>();
  private slotsHeld = 0;
  private readonly prefetched: ClaimedJob[] = [];
  private accepting = true;
  private claimInFlight: Promise<void> | null = null;
  private wakeAgain = false;
  private lastClaimFilled = false;
  private wakePending = false;
  private discardOutcomes = false;
  private readonly taskNames: string[];
  private readonly limitedQueues: string[];
  /** queueHeld counts, per limited queue, the jobs this runtime holds (running or waiting locally). */
  private readonly queueHeld = new Map<string, number>();
  private readonly actors: JobActors;
  private readonly prefetch: PrefetchSizer;
  /** turnStarts counts the jobs started in this turn of the event loop (see TURN_STARTS). */
  private turnStarts = 0;
  private turnFull = false;
  /** reconcileDue asks the next claim round to first give back what this runtime holds unknowingly. */
  private reconcileDue = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.queue = new PQueue({ concurrency: deps.maxRunningJobs });
    this.taskNames = [...deps.tasks.keys()];
    this.limitedQueues = [...deps.queueLimits.keys()];
    this.actors = new JobActors(deps.maxInterruptions, deps.inspect);
    this.prefetch = new PrefetchSizer(deps.prefetch);
  }

  /** runningCount is how many handlers hold a slot right now. */
  get runningCount(): number {
    return this.slotsHeld;
  }

  /** wake asks for a claim; wake-ups that arrive during a claim fold into one more round. */
  wake(): void {
    if (!this.accepting) return;
    if (this.claimInFlight) {
      this.wakeAgain = true;
      return;
    }
    // A wake-up can land after the rounds' last check but before this settles; it must not be lost.
    this.claimInFlight = this.claimRounds().finally(() => {
      this.claimInFlight = null;
      if (this.wakeAgain) this.wake();
    });
  }

  /**
   * reconcile asks for a check, before the next claim, of what the database says this runtime holds
   * against what it knows it holds (running, waiting locally, outcome not yet written); the rest is
   * given back through the machine's RELEASE, attempt refunded. A claim whose reply was lost (a
   * crash, a dropped connection after the commit) leaves such jobs; the heartbeat calls this too.
   */
  reconcile(): void {
    this.reconcileDue = true;
    this.wake();
  }

  /** stopClaiming makes every later wake-up a no-op and resolves once any claim under way has returned. */
  async stopClaiming(): Promise<void> {
    this.accepting = false;
    await this.claimInFlight;
  }

  /** idle resolves when every handler has settled (timed-out ones included). */
  async idle(): Promise<void> {
    await this.queue.onIdle();
  }

  /** resumeClaiming undoes stopClaiming, for a runtime that paused to register again. */
  resumeClaiming(): void {
    this.accepting = true;
  }

  /**
   * abortRunning fires the AbortSignal of every running job with `reason`; their outcomes are still
   * written, and the guarded write refuses those whose jobs are no longer this runtime's.
   */
  abortRunning(reason: unknown): void {
    for (const entry of this.running.values()) abortEntry(entry, reason);
  }

  /**
   * abortAll fires the AbortSignal of every running job with `reason` and discards the outcomes of
   * attempts that end from now on: their jobs are about to be given back whole, not half-recorded.
   */
  abortAll(reason: unknown): void {
    this.accepting = false;
    this.discardOutcomes = true;
    for (const entry of this.running.values()) abortEntry(entry, reason);
  }

  /**
   * cancelRunning cancels a job this runtime is running: its AbortSignal fires with a
   * JobCancelledError and, however its handler ends, the job ends cancelled. A job waiting in the
   * local queue is taken out and ends cancelled at once. Returns false if this runtime does not hold it.
   */
  cancelRunning(jobId: string, reason: string): boolean {
    const entry = this.running.get(jobId);
    if (entry) {
      if (entry.cancelReason === undefined) {
        entry.cancelReason = reason;
        abortEntry(entry, new JobCancelledError(jobId, reason));
      }
      return true;
    }
    const waiting = this.prefetched.findIndex((claimed) => claimed.job.id === jobId);
    if (waiting === -1) return false;
    const [claimed] = this.prefetched.splice(waiting, 1) as [ClaimedJob];
    this.holdInQueue(claimed.job.queue, -1);
    const actor = this.actors.start(claimed.job);
    const cancelled: RunningJob = { job: claimed.job, actor, controller: null, cancelReason: reason };
    this.running.set(jobId, cancelled);
    this.write(cancelled, decideOutcome(cancelled, { type: 'CANCEL' }, { error: reason }), null);
    return true;
  }

  /**
   * takePrefetched empties the local queue and returns what it held: claimed jobs no handler has
   * started, which the caller gives back.
   */
  takePrefetched(): ClaimedJob[] {
    return this.prefetched.splice(0);
  }

  // claimRounds fills the free slots and the local queue (prefetch): first each queue with a
  // concurrency limit that has room (never beyond it, and never prefetched), then every other queue.
  private async claimRounds(): Promise<void> {
    try {
      do {
        this.wakeAgain = false;
        // Claims and this check take turns: a claim under way holds jobs not yet known here.
        if (this.reconcileDue) await this.releaseUnknown();
        const now = this.deps.clock.now();
        let room = this.deps.maxRunningJobs - this.slotsHeld - this.prefetched.length;
        let asked = 0;
        let taken = 0;
        for (const [queue, limit] of this.deps.queueLimits) {
          const queueRoom = Math.min(room, limit - (this.queueHeld.get(queue) ?? 0));
          if (queueRoom <= 0) continue;
          const got = await this.claim(now, queueRoom, { queue, serial: this.deps.serialQueues.has(queue) });
          room -= got;
          asked += queueRoom;
          taken += got;
        }
        const limit = room + this.prefetch.size;
        if (limit > 0) {
          asked += limit;
          taken += await this.claim(now, limit, { skipQueues: this.limitedQueues });
        }
        if (asked === 0) return;
        this.deps.onClaimed(taken, now);
        this.lastClaimFilled = taken === asked;
        if (!this.lastClaimFilled && !this.wakeAgain) this.lookAhead(now);
      } while (this.accepting && this.wakeAgain);
    } catch (error) {
      // A claim that failed may have committed all the same, its reply lost: check what is held.
      this.reconcileDue = true;
      this.deps.onClaimError(error);
    }
  }

  // releaseUnknown gives back the jobs the database says this runtime holds that it does not know of.
  private async releaseUnknown(): Promise<void> {
    const known = [...this.running.keys()];
    for (const claimed of this.prefetched) known.push(claimed.job.id);
    for (const id of this.deps.completions.pendingIds()) known.push(id);
    const now = this.deps.clock.now();
    const held = targetOf('CLAIM');
    const released = await this.deps.storage.jobsReleaseHeld(
      this.deps.consumerId,
      known,
      held,
      targetOf('RELEASE'),
      now,
    );
    this.reconcileDue = false;
    if (released.length === 0) return;
    this.deps.logger.warn(
      { jobIds: released.map((job) => job.id) },
      'gave back jobs this runtime held without knowing (a claim whose reply was lost)',
    );
    for (const job of released) this.deps.events.emitTransition(job, held, 'RELEASE', now);
    this.deps.onReleased(released);
  }

  // claim takes up to `limit` jobs and starts what it can; it returns how many it took to run.
  private async claim(
    now: Date,
    limit: number,
    where: { queue: string; serial: boolean } | { skipQueues: readonly string[] },
  ): Promise<number> {
    const claimed = await this.deps.storage.jobsClaim({
      consumerId: this.deps.consumerId,
      now,
      limit,
      tasks: this.taskNames,
      ...where,
    });
    let held = 0;
    const expired: string[] = [];
    for (const entry of claimed) {
      if (entry.job.state === this.deps.expiredState) {
        // Past its expiry when its turn came: the claim finished it instead; it never runs.
        expired.push(entry.job.id);
        this.deps.events.emitTransition(entry.job, entry.from, 'EXPIRE', now);
        continue;
      }
      held++;
      this.holdInQueue(entry.job.queue, 1);
      this.prefetched.push(entry);
    }
    if (expired.length > 0) this.deps.onExpired(expired);
    this.startPrefetched();
    return held;
  }

  // holdInQueue counts a job of a limited queue from its claim until its handler settles.
  private holdInQueue(queue: string, delta: number): void {
    if (!this.deps.queueLimits.has(queue)) return;
    this.queueHeld.set(queue, (this.queueHeld.get(queue) ?? 0) + delta);
  }

  private lookAhead(now: Date): void {
    this.deps.storage.jobsNextRunAt(now, this.taskNames).then(
      (next) => this.deps.armAt(next),
      (error) => this.deps.onClaimError(error),
    );
  }

  private startPrefetched(): void {
    if (!this.accepting) return;
    while (this.slotsHeld < this.deps.maxRunningJobs && this.prefetched.length > 0) {
      if (this.turnStarts === 0) setImmediate(this.nextTurn);
      else if (this.turnStarts >= TURN_STARTS) {
        this.turnFull = true;
        return;
      }
      this.turnStarts++;
      this.start(this.prefetched.shift() as ClaimedJob);
    }
  }

  // nextTurn opens a new turn's budget of starts, and spends it if the last turn ran out.
  private readonly nextTurn = (): void => {
    this.turnStarts = 0;
    if (!this.turnFull) return;
    this.turnFull = false;
    this.startPrefetched();
  };

  // start runs a claimed job as an actor. The claim itself was written by SQL whose states come from
  // the machine (checked when the runtime was built), so the actor starts in the state the claim entered.
  private start({ job, from }: ClaimedJob): void {
    const entry: RunningJob = {
      job,
      actor: this.actors.start(job),
      controller: null,
    };
    this.running.set(job.id, entry);
    this.slotsHeld++;
    // The CLAIM happened when the claim statement ran (lockedAt), not when a slot freed for the job.
    this.deps.events.emitTransition(job, from, 'CLAIM', job.lockedAt ?? this.deps.clock.now());
    void this.queue.add(() => this.execute(entry));
  }

  // execute holds the slot until the handler settles, but decides and writes the outcome as soon as
  // the attempt ends (which a timeout may make earlier than the handler).
  private execute(entry: RunningJob): Promise<void> {
    const task = this.deps.tasks.get(entry.job.task) as TaskDefinition;
    return task.rateLimit ? this.executeLimited(entry, task) : this.runHandler(entry, task);
  }

  // executeLimited takes a token before the handler runs; without one the job goes back until a
  // token is due (RERUN: no attempt spent), and its slot is free at once.
  private async executeLimited(entry: RunningJob, task: TaskDefinition): Promise<void> {
    let retryAt: Date | null;
    try {
      retryAt = await this.deps.takeToken(task, entry.job);
    } catch (error) {
      this.conclude(entry, task, { ok: false, error });
      this.freeSlot(entry.job.queue);
      return;
    }
    if (retryAt === null) return this.runHandler(entry, task);
    try {
      this.write(entry, decideOutcome(entry, { type: 'RERUN' }, { runAt: retryAt }), null);
    } catch (error) {
      this.concludeFailed(entry, error);
    }
    this.freeSlot(entry.job.queue);
  }

  private runHandler(entry: RunningJob, task: TaskDefinition): Promise<void> {
    const handlerDone = this.invoke(task, entry);
    if (!task.timeoutMs) {
      return handlerDone.then((attempt) => {
        this.conclude(entry, task, attempt);
        this.freeSlot(entry.job.queue);
      });
    }
    void this.withTimeout(handlerDone, task.timeoutMs, entry).then((attempt) =>
      this.conclude(entry, task, attempt),
    );
    return handlerDone.then(() => this.freeSlot(entry.job.queue));
  }

  private freeSlot(queue: string): void {
    this.slotsHeld--;
    this.holdInQueue(queue, -1);
    this.prefetch.finished();
    this.startPrefetched();
    // Refill once a quarter of the local queue has gone: the claim stays large, and leaves while
    // three quarters of the queue still cover its round trip.
    if (this.lastClaimFilled && this.prefetched.length <= this.prefetch.size * REFILL_AT) this.wakeSoon();
  }

  // wakeSoon folds the slots freed within one turn of the event loop into a single claim, instead of
  // one round trip per finished job.
  private wakeSoon(): void {
    if (this.wakePending) return;
    this.wakePending = true;
    setImmediate(() => {
      this.wakePending = false;
      this.wake();
    });
  }

  // invoke runs the handler; a handler that returns a plain value costs no extra promise turn.
  private invoke(task: TaskDefinition, entry: RunningJob): Promise<AttemptResult> {
    let returned: unknown;
    try {
      returned = task.handler(
        entry.job.payload,
        new HandlerContext(entry, this.deps.logger, this.deps.progress),
      );
    } catch (error) {
      return Promise.resolve({ ok: false, error });
    }
    if (
      returned instanceof Promise ||
      (typeof returned === 'object' && returned !== null && 'then' in returned)
    ) {
      return Promise.resolve(returned).then(
        (value): AttemptResult => ({ ok: true, value }),
        (error): AttemptResult => ({ ok: false, error }),
      );
    }
    return Promise.resolve({ ok: true, value: returned });
  }

  private withTimeout(
    done: Promise<AttemptResult>,
    timeoutMs: number,
    entry: RunningJob,
  ): Promise<AttemptResult> {
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimeout(() => {
        const error = new TimeoutError(entry.job.id, timeoutMs);
        abortEntry(entry, error);
        resolve({ ok: false, error });
      }, timeoutMs);
      void done.then((result) => {
        this.deps.clock.clearTimeout(timer);
        resolve(result);
      });
    });
  }

  // conclude decides a finished attempt's outcome: synchronously for a success, through the policy
  // actor for a failure.
  private conclude(entry: RunningJob, task: TaskDefinition, attempt: AttemptResult): void {
    if (this.discardOutcomes) {
      this.forget(entry);
      return;
    }
    let failure: unknown = attempt.ok ? undefined : attempt.error;
    try {
      const progressJson = this.deps.progress.take(entry.job.id);
      if (entry.cancelReason !== undefined) {
        // Cancelled while it ran: whatever the handler made of its aborted signal, the job ends cancelled.
        this.write(
          entry,
          decideOutcome(entry, { type: 'CANCEL' }, { error: entry.cancelReason, progressJson }),
          null,
        );
        return;
      }
      if (attempt.ok) {
        const settled = resultOutcome(entry, attempt.value, progressJson, this.deps.clock);
        if (!(settled instanceof InvalidResultError)) {
          this.write(entry, settled, null);
          return;
        }
        failure = settled;
      }
    } catch (error) {
      this.concludeFailed(entry, error);
      return;
    }
    policyOutcome(entry, task, failure, this.deps.policy, this.deps.clock).then(
      (decided) => {
        // A crash stops claiming at once; it is reported once the crashing job is given back.
        if ('crash' in decided) this.accepting = false;
        this.write(entry, decided.outcome, 'crash' in decided ? { error: decided.crash } : null);
      },
      (error) => this.concludeFailed(entry, error),
    );
  }

  private concludeFailed(entry: RunningJob, error: unknown): void {
    this.deps.logger.error({ err: error, jobId: entry.job.id }, 'concluding a job failed');
    this.forget(entry);
  }

  private forget(entry: RunningJob): void {
    this.running.delete(entry.job.id);
    this.stopActor(entry);
  }

  private stopActor(entry: RunningJob): void {
    if (!entry.actor) return;
    this.actors.stop(entry.actor);
    entry.actor = null;
  }

  // write hands the outcome to the completion writer; once it is durable the job object is brought up
  // to date, listeners are told, and a crash (if this outcome was a crash's release) is reported.
  private write(entry: RunningJob, outcome: Outcome, crash: { error: unknown } | null): void {
    this.stopActor(entry);
    this.deps.completions.submit(outcome, (written, at, writtenOutcome) => {
      try {
        if (written) this.applyWritten(entry.job, writtenOutcome, at);
        else {
          this.deps.logger.warn(
            { jobId: entry.job.id, attempt: outcome.attempt, to: outcome.to },
            'outcome discarded: the job is no longer held by this attempt',
          );
        }
      } finally {
        this.forget(entry);
        if (this.deps.serialQueues.has(entry.job.queue)) this.deps.onSerialDone();
        if (crash) this.deps.onCrash(crash.error, entry.job);
      }
    });
  }

  private applyWritten(job: Job, outcome: Outcome, at: Date): void {
    // A retry's run_at is known here, so the waker is armed for it without asking the database.
    if (outcome.runAt) this.deps.armAt(outcome.runAt);
    job.state = outcome.to;
    job.attempts += outcome.attemptDelta;
    if (outcome.runAt) job.runAt = outcome.runAt;
    if (outcome.error !== null) job.lastError = outcome.error;
    if (outcome.resultJson !== null) job.result = JSON.parse(outcome.resultJson);
    job.finishedAt = outcome.finished ? at : null;
    job.lockedBy = null;
    job.lockedAt = null;
    job.updatedAt = at;
    this.deps.events.emitTransition(job, outcome.from, outcome.event, at);
    if (outcome.remove) {
      job.state = 'removed';
      this.deps.events.emitTransition(job, outcome.to, 'REMOVE', at);
    }
  }
}

import type { AnyActorLogic } from 'xstate';
import type { JobState } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { JobCancelledError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { SingleFlight } from '../core/single-flight.js';
import { targetOf } from '../core/transitions.js';
import type { AttemptHook } from '../jobs/attempt-hook.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { ClaimedJob, Storage } from '../storage/storage.js';
import { Conclusions } from './attempt-outcomes.js';
import type { CompletionWriter } from './completions.js';
import { Executor } from './executor.js';
import { type Inspector, JobActors } from './job-actors.js';
import type { PausedQueues } from './paused-queues.js';
import { PrefetchSizer } from './prefetch.js';
import type { ProgressWriter } from './progress.js';
import { abortJob, type RunningJob } from './running-job.js';

/**
 * DispatcherDeps is everything the dispatcher works with, and hands on to its executor and its
 * conclusions, each the part it needs; it owns none of it.
 */
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
  inspect: Inspector | undefined;
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
  /** paused are the queues no claim takes from (see PausedQueues); without it none is paused. */
  paused?: PausedQueues;
  /** attemptHook, when given, wraps each handler's call (see AttemptHook). */
  attemptHook?: AttemptHook | null;
}

/**
 * TURN_STARTS bounds how many jobs start within one turn of the event loop. Quick handlers settle in
 * microtasks, so without a bound a whole local queue would run before the event loop saw any I/O:
 * the claim that refills the queue and the writes of finished attempts would wait for it, and the
 * database would idle while Node works, then Node while the database works.
 */
const TURN_STARTS = 128;

// REFILL_AT is the share of the local queue left when a refilling claim goes out (see freeSlot).
const REFILL_AT = 0.75;

/**
 * Dispatcher claims due jobs when woken, as many as it has free slots and room in its local queue
 * (prefetch), and hands each to the executor once a slot is free. It counts running handlers
 * itself: a handler that outlives its timeout still holds its slot.
 */
export class Dispatcher {
  /** runningById holds each attempt from its start until its write is settled (see RunningJob). */
  private readonly runningById = new Map<string, RunningJob>();
  private readonly executor: Executor;
  private readonly conclusions: Conclusions;
  private readonly claims: SingleFlight;
  /**
   * wakeups counts wake-ups, so that a claim round can tell whether another round was asked for
   * meanwhile: SingleFlight runs that round but does not say it is coming.
   */
  private wakeups = 0;
  private slotsHeld = 0;
  private readonly prefetched: ClaimedJob[] = [];
  private accepting = true;
  private lastClaimFilled = false;
  // slotsFreedInRound counts handlers that settled while a claim round ran: a fast handler can end
  // before its own claim's round does, when freeSlot cannot yet know that the claim came back full.
  private slotsFreedInRound = 0;
  private wakePending = false;
  private readonly taskNames: string[];
  private readonly limitedQueues: string[];
  /** queueHeld counts, per limited queue, the jobs this runtime holds (running or waiting locally). */
  private readonly queueHeld = new Map<string, number>();
  private readonly prefetch: PrefetchSizer;
  /** turnStarts counts the jobs started in this turn of the event loop (see TURN_STARTS). */
  private turnStarts = 0;
  private turnFull = false;
  /** reconcileDue asks the next claim round to first give back what this runtime holds unknowingly. */
  private reconcileDue = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.taskNames = [...deps.tasks.keys()];
    this.limitedQueues = [...deps.queueLimits.keys()];
    this.prefetch = new PrefetchSizer(deps.prefetch);
    this.claims = new SingleFlight(
      () => this.claimRound(),
      (error) => this.claimFailed(error),
    );
    const actors = new JobActors(deps.maxInterruptions, deps.inspect);
    this.conclusions = new Conclusions({
      completions: deps.completions,
      progress: deps.progress,
      clock: deps.clock,
      events: deps.events,
      logger: deps.logger,
      policy: deps.policy,
      actors,
      runningById: this.runningById,
      serialQueues: deps.serialQueues,
      onSerialDone: () => deps.onSerialDone(),
      armAt: (next) => deps.armAt(next),
      onCrashDecided: () => {
        this.accepting = false;
      },
      onCrash: (error, job) => deps.onCrash(error, job),
    });
    this.executor = new Executor({
      tasks: deps.tasks,
      maxRunningJobs: deps.maxRunningJobs,
      clock: deps.clock,
      events: deps.events,
      logger: deps.logger,
      progress: deps.progress,
      actors,
      runningById: this.runningById,
      conclusions: this.conclusions,
      takeToken: (task, job) => deps.takeToken(task, job),
      freeSlot: this.freeSlot,
      attemptHook: deps.attemptHook,
    });
  }

  /** runningCount is how many handlers hold a slot right now. */
  get runningCount(): number {
    return this.slotsHeld;
  }

  /** wake asks for a claim; wake-ups that arrive during a claim fold into one more round. */
  wake(): void {
    if (!this.accepting) return;
    this.wakeups++;
    this.claims.request();
  }

  /**
   * reconcile asks for a check, before the next claim, of what the database says this runtime holds
   * against what it knows it holds (running, waiting locally, write not yet durable); the rest is
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
    await this.claims.settled();
  }

  /** idle resolves when every handler has settled (timed-out ones included). */
  async idle(): Promise<void> {
    await this.executor.idle();
  }

  /** resumeClaiming undoes stopClaiming, for a runtime that paused to register again. */
  resumeClaiming(): void {
    this.accepting = true;
  }

  /**
   * abortRunning fires the AbortSignal of every running job with `reason`; their conclusions are
   * still written, and the guarded write refuses those whose jobs are no longer this runtime's.
   */
  abortRunning(reason: unknown): void {
    for (const running of this.runningById.values()) abortJob(running, reason);
  }

  /**
   * abortAll fires the AbortSignal of every running job with `reason` and discards the conclusions
   * of attempts that end from now on: their jobs are about to be given back whole, not half-recorded.
   */
  abortAll(reason: unknown): void {
    this.accepting = false;
    this.conclusions.discardFromNow();
    for (const running of this.runningById.values()) abortJob(running, reason);
  }

  /**
   * cancelRunning cancels a job this runtime is running: its AbortSignal fires with a
   * JobCancelledError and, however its handler ends, the job ends cancelled. A job waiting in the
   * local queue is taken out and ends cancelled at once. Returns false if this runtime does not hold it.
   */
  cancelRunning(jobId: string, reason: string): boolean {
    const running = this.runningById.get(jobId);
    if (running) {
      if (running.cancelReason === undefined) {
        running.cancelReason = reason;
        abortJob(running, new JobCancelledError(jobId, reason));
      }
      return true;
    }
    const waiting = this.prefetched.findIndex((claimed) => claimed.job.id === jobId);
    if (waiting === -1) return false;
    const [claimed] = this.prefetched.splice(waiting, 1) as [ClaimedJob];
    this.holdInQueue(claimed.job.queue, -1);
    this.executor.cancelUnstarted(claimed.job, reason);
    return true;
  }

  /**
   * takePrefetched empties the local queue and returns what it held: claimed jobs no handler has
   * started, which the caller gives back.
   */
  takePrefetched(): ClaimedJob[] {
    return this.prefetched.splice(0);
  }

  // claimRound fills the free slots and the local queue (prefetch): first each queue with a
  // concurrency limit that has room (never beyond it, and never prefetched), then every other queue.
  // The claims flight runs one round at a time, and one more if woken meanwhile.
  private async claimRound(): Promise<undefined> {
    if (!this.accepting) return;
    const wakeups = this.wakeups;
    // Claims and this check take turns: a claim under way holds jobs not yet known here.
    if (this.reconcileDue) await this.releaseUnknown();
    // stopClaiming may have been called while the check ran: a stopping runtime claims nothing more.
    if (!this.accepting) return;
    const now = this.deps.clock.now();
    this.slotsFreedInRound = 0;
    let room = this.deps.maxRunningJobs - this.slotsHeld - this.prefetched.length;
    let asked = 0;
    let taken = 0;
    const paused = this.deps.paused;
    for (const [queue, limit] of this.deps.queueLimits) {
      if (paused?.has(queue)) continue;
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
      taken += await this.claim(now, limit, { skipQueues: paused?.skipQueues ?? this.limitedQueues });
    }
    if (asked === 0) return;
    this.deps.onClaimed(taken, now);
    this.lastClaimFilled = taken === asked;
    if (this.lastClaimFilled && this.slotsFreedInRound > 0 && this.refillDue()) this.wakeSoon();
    // Woken meanwhile, the next round claims at once: looking ahead now would be a wasted query.
    if (!this.lastClaimFilled && this.wakeups === wakeups) this.lookAhead(now);
  }

  // claimFailed reports a failed round. A claim that failed may have committed all the same, its
  // reply lost: the next round first checks what is held.
  private claimFailed(error: unknown): void {
    this.reconcileDue = true;
    this.deps.onClaimError(error);
  }

  // releaseUnknown gives back the jobs the database says this runtime holds that it does not know of.
  private async releaseUnknown(): Promise<void> {
    const known = [...this.runningById.keys()];
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

  // startPrefetched hands waiting jobs to the executor while slots are free, within this turn's budget.
  private startPrefetched(): void {
    if (!this.accepting) return;
    while (this.slotsHeld < this.deps.maxRunningJobs && this.prefetched.length > 0) {
      if (this.turnStarts === 0) setImmediate(this.nextTurn);
      else if (this.turnStarts >= TURN_STARTS) {
        this.turnFull = true;
        return;
      }
      this.turnStarts++;
      this.slotsHeld++;
      this.executor.run(this.prefetched.shift() as ClaimedJob);
    }
  }

  // nextTurn opens a new turn's budget of starts, and spends it if the last turn ran out.
  private readonly nextTurn = (): void => {
    this.turnStarts = 0;
    if (!this.turnFull) return;
    this.turnFull = false;
    this.startPrefetched();
  };

  // freeSlot is told by the executor that a handler settled (or never ran): the next waiting job may
  // start, and the local queue is refilled in time.
  private readonly freeSlot = (queue: string): void => {
    this.slotsHeld--;
    this.slotsFreedInRound++;
    this.holdInQueue(queue, -1);
    this.prefetch.finished();
    this.startPrefetched();
    if (this.lastClaimFilled && this.refillDue()) this.wakeSoon();
  };

  // refillDue says whether the local queue is low enough to claim again: once a quarter of it has
  // gone, so the claim stays large, and leaves while three quarters of it still cover its round trip.
  private refillDue(): boolean {
    return this.prefetched.length <= this.prefetch.size * REFILL_AT;
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
}

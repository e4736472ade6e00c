import PQueue from 'p-queue';
import type { Clock } from '../core/clock.js';
import { TimeoutError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { AttemptHook, AttemptScope } from '../jobs/attempt-hook.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { ClaimedJob } from '../storage/storage.js';
import type { AttemptEnd, Conclusions } from './attempt-outcomes.js';
import { HandlerContext } from './handler-context.js';
import type { JobActors } from './job-actors.js';
import type { ProgressWriter } from './progress.js';
import { abortJob, type RunningJob } from './running-job.js';

/** ExecutorDeps is what running attempts works with; the dispatcher builds it from its own deps. */
export interface ExecutorDeps {
  tasks: ReadonlyMap<string, TaskDefinition>;
  maxRunningJobs: number;
  clock: Clock;
  events: RuntimeEvents;
  logger: Logger;
  progress: ProgressWriter;
  actors: JobActors;
  /** runningById is where a started attempt is registered, for cancels, aborts and reconciliation. */
  runningById: Map<string, RunningJob>;
  conclusions: Conclusions;
  /** takeToken takes a rate-limit token for a job of a limited task (see DispatcherDeps). */
  takeToken(task: TaskDefinition, job: Job): Promise<Date | null>;
  /** freeSlot is told that an attempt's handler settled, or will never run: its slot is free. */
  freeSlot(queue: string): void;
  /** attemptHook, when given, wraps each handler's call (telemetry's spans). */
  attemptHook?: AttemptHook | null;
}

/**
 * Executor runs each claimed job's attempt from start to end: its actor, its rate-limit token, its
 * handler under its timeout and abort signal, then its conclusion. The attempts run in a p-queue
 * bounded by maxRunningJobs; a handler that outlives its timeout still holds its slot.
 */
export class Executor {
  private readonly queue: PQueue;

  constructor(private readonly deps: ExecutorDeps) {
    this.queue = new PQueue({ concurrency: deps.maxRunningJobs });
  }

  /**
   * run starts a claimed job's attempt as an actor. The claim itself was written by SQL whose states
   * come from the machine (checked when the runtime was built), so the actor starts in the state the
   * claim entered.
   */
  run({ job, from }: ClaimedJob): void {
    const running: RunningJob = {
      job,
      actor: this.deps.actors.start(job, from),
      controller: null,
    };
    this.deps.runningById.set(job.id, running);
    // The CLAIM happened when the claim statement ran (lockedAt), not when a slot freed for the job.
    this.deps.events.emitTransition(job, from, 'CLAIM', job.lockedAt ?? this.deps.clock.now());
    void this.queue.add(() => this.execute(running));
  }

  /** cancelUnstarted ends cancelled, at once, a claimed job whose handler never started. */
  cancelUnstarted(job: Job, reason: string): void {
    const actor = this.deps.actors.start(job);
    const running: RunningJob = { job, actor, controller: null, cancelReason: reason };
    this.deps.runningById.set(job.id, running);
    this.deps.conclusions.cancelUnstarted(running, reason);
  }

  /** idle resolves when every handler has settled (timed-out ones included). */
  idle(): Promise<void> {
    return this.queue.onIdle();
  }

  // execute holds the slot until the handler settles, but concludes the attempt as soon as it ends
  // (which a timeout may make earlier than the handler).
  private execute(running: RunningJob): Promise<void> {
    const task = this.deps.tasks.get(running.job.task) as TaskDefinition;
    return task.rateLimit ? this.executeLimited(running, task) : this.runHandler(running, task);
  }

  // executeLimited takes a token before the handler runs; without one the job goes back until a
  // token is due, and its slot is free at once.
  private async executeLimited(running: RunningJob, task: TaskDefinition): Promise<void> {
    let retryAt: Date | null;
    try {
      retryAt = await this.deps.takeToken(task, running.job);
    } catch (error) {
      this.deps.conclusions.conclude(running, task, { ok: false, error });
      this.deps.freeSlot(running.job.queue);
      return;
    }
    if (retryAt === null) return this.runHandler(running, task);
    this.deps.conclusions.rerun(running, retryAt);
    this.deps.freeSlot(running.job.queue);
  }

  private runHandler(running: RunningJob, task: TaskDefinition): Promise<void> {
    const scope = this.deps.attemptHook?.begin(running.job) ?? null;
    const handlerDone = this.invoke(task, running, scope);
    if (!task.timeoutMs) {
      return handlerDone.then((end) => {
        scope?.settled(!end.ok, end.ok ? undefined : end.error);
        this.deps.conclusions.conclude(running, task, end);
        this.deps.freeSlot(running.job.queue);
      });
    }
    void this.withTimeout(handlerDone, task.timeoutMs, running).then((end) => {
      scope?.settled(!end.ok, end.ok ? undefined : end.error);
      this.deps.conclusions.conclude(running, task, end);
    });
    return handlerDone.then(() => this.deps.freeSlot(running.job.queue));
  }

  // invoke runs the handler (inside the attempt hook's scope, if any); a handler that returns a plain
  // value costs no extra promise turn.
  private invoke(task: TaskDefinition, running: RunningJob, scope: AttemptScope | null): Promise<AttemptEnd> {
    let returned: unknown;
    try {
      returned = scope ? scope.run(() => this.call(task, running)) : this.call(task, running);
    } catch (error) {
      return Promise.resolve({ ok: false, error });
    }
    if (
      returned instanceof Promise ||
      (typeof returned === 'object' && returned !== null && 'then' in returned)
    ) {
      return Promise.resolve(returned).then(
        (value): AttemptEnd => ({ ok: true, value }),
        (error): AttemptEnd => ({ ok: false, error }),
      );
    }
    return Promise.resolve({ ok: true, value: returned });
  }

  private call(task: TaskDefinition, running: RunningJob): unknown {
    return task.handler(
      running.job.payload,
      new HandlerContext(running, this.deps.logger, this.deps.progress),
    );
  }

  // withTimeout ends the attempt with a TimeoutError, and aborts its signal, once timeoutMs have
  // passed without the handler settling.
  private withTimeout(
    done: Promise<AttemptEnd>,
    timeoutMs: number,
    running: RunningJob,
  ): Promise<AttemptEnd> {
    return new Promise((resolve) => {
      const timer = this.deps.clock.setTimeout(() => {
        const error = new TimeoutError(running.job.id, timeoutMs);
        abortJob(running, error);
        resolve({ ok: false, error });
      }, timeoutMs);
      void done.then((end) => {
        this.deps.clock.clearTimeout(timer);
        resolve(end);
      });
    });
  }
}

import type { Clock } from '../core/clock.js';
import { RuntimeCrashedError, ShutdownError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { type HeldJobsOwner, releaseHeld, releasePrefetched } from '../dispatch/give-back.js';
import type { RuntimeErrorEvent } from '../jobs/events.js';
import type { RuntimeParts } from './parts.js';

/** ShutdownContext is what the stop and crash sequences need besides the parts. */
export interface ShutdownContext {
  clock: Clock;
  shutdownTimeoutMs: number;
  logger: Logger;
  isWorker: boolean;
  heldBy: HeldJobsOwner;
  reportError(error: unknown, during: RuntimeErrorEvent['during']): void;
}

/**
 * Shutdown is the order in which a runtime stops: stop claiming and give back what waits locally,
 * let running handlers finish for up to shutdownTimeoutMs, abort the rest; then give the database up
 * to shutdownTimeoutMs more for the last writes, give back whatever is still held, deregister.
 * `force()` (a second stop()) stops waiting at once.
 */
export class Shutdown {
  private forceNow: (() => void) | null = null;

  constructor(
    private readonly parts: RuntimeParts,
    private readonly context: ShutdownContext,
  ) {}

  /** force stops waiting for handlers or the database at once. */
  force(): void {
    this.forceNow?.();
  }

  /** run stops the parts; `crashed` runtimes keep their consumer row (the others sweep it). */
  async run(crashed: boolean): Promise<void> {
    const { dispatcher, registry, schedules, waker, progress, completions, retention } = this.parts;
    const { logger, shutdownTimeoutMs } = this.context;
    waker.stop();
    registry.stopBeating();
    const schedulesStopped = schedules.stop();
    const flusherStopped = this.parts.statsFlusher.stop();
    // The cleaner stops after its batch under way, which is waited for with the last writes below.
    const retentionStopped = retention.stop();
    // The grace period is armed before the first await, so it is measured from the call.
    const ended = await this.runningJobsEnd(async () => {
      await dispatcher.stopClaiming();
      await releasePrefetched(dispatcher, completions);
      await dispatcher.idle();
    });
    if (ended !== 'finished') {
      const reason = new ShutdownError(ended === 'forced' ? null : shutdownTimeoutMs);
      logger.warn({ running: dispatcher.runningCount }, reason.message);
      dispatcher.abortAll(reason);
    }
    // Only the database can hold stop() up from here: it gets shutdownTimeoutMs more, then whatever
    // is still unwritten is left held by this consumer, for the others' sweep to take back.
    const settled = await this.withinShutdownTimeout(async (givenUp) => {
      // A claim round under way when stop() stopped waiting may still take jobs: it must be over
      // before what is held is given back, or what it took stays held by a deregistered consumer.
      await dispatcher.stopClaiming();
      await schedulesStopped;
      await flusherStopped;
      await retentionStopped;
      await progress.stop();
      await completions.drained();
      // Once stop() has returned nothing more is written: what is held stays held, for the sweep.
      if (givenUp()) return;
      if (this.context.isWorker) {
        // Everything still held is given back, known or not (a claim whose reply was lost).
        await releaseHeld(this.context.heldBy, this.context.clock.now());
        if (!crashed) await registry.deregister();
      }
      await this.flushTransitionCounts(givenUp);
    });
    if (!settled) {
      logger.error(
        { pendingWrites: completions.size },
        `stop: the database did not take the last writes within ${shutdownTimeoutMs} ms; other runtimes will take back the jobs still held`,
      );
      completions.abandon();
    }
  }

  // flushTransitionCounts adds the transitions counted since the last flush (the give-backs of stop
  // included) to the database, unless stop() gave up on it meanwhile.
  private async flushTransitionCounts(givenUp: () => boolean): Promise<void> {
    const { transitionCounts } = this.parts;
    if (givenUp() || transitionCounts.pending === 0) return;
    await transitionCounts.runOnce(this.context.clock.now());
  }

  /**
   * crash stops claiming, aborts running handlers with a RuntimeCrashedError and gives back every
   * job still held (refunding the attempt); the runtime's connections stay open until stop().
   */
  async crash(error: unknown): Promise<void> {
    const { dispatcher, registry, schedules, waker, completions, listener, retention } = this.parts;
    waker.stop();
    registry.stopBeating();
    await schedules.stop();
    await retention.stop();
    await dispatcher.stopClaiming();
    dispatcher.abortAll(new RuntimeCrashedError(error));
    // The prefetched jobs are given back with the running ones by releaseHeld below.
    dispatcher.takePrefetched();
    await completions.drained();
    await releaseHeld(this.context.heldBy, this.context.clock.now());
    await listener?.stop();
  }

  // runningJobsEnd runs `drain` (stop claiming, wait for the handlers) for shutdownTimeoutMs of clock
  // time at most, or until force().
  private runningJobsEnd(drain: () => Promise<void>): Promise<'finished' | 'timeout' | 'forced'> {
    const { clock, shutdownTimeoutMs } = this.context;
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => resolve('timeout'), shutdownTimeoutMs);
      this.forceNow = () => resolve('forced');
      void drain().then(() => {
        clock.clearTimeout(timer);
        resolve('finished');
      });
    });
  }

  // withinShutdownTimeout runs `work` for shutdownTimeoutMs of clock time at most, or until force();
  // it says whether the work finished. `work` is told when it was given up on, so that it does not
  // write after stop() returned. Its failures are reported, not thrown.
  private withinShutdownTimeout(work: (givenUp: () => boolean) => Promise<void>): Promise<boolean> {
    const { clock, shutdownTimeoutMs } = this.context;
    let givenUp = false;
    return new Promise((resolve) => {
      const giveUp = () => {
        givenUp = true;
        resolve(false);
      };
      const timer = clock.setTimeout(giveUp, shutdownTimeoutMs);
      this.forceNow = giveUp;
      void work(() => givenUp)
        .catch((error) => this.context.reportError(error, 'stop'))
        .then(() => {
          clock.clearTimeout(timer);
          resolve(true);
        });
    });
  }
}

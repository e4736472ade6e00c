import type { Clock, TimerHandle } from '../core/clock.js';

/**
 * Waker is the timer half of the wake-up source (the listener is the other half). It wakes the
 * dispatcher every `pollIntervalMs` of clock time, the guarantee behind NOTIFY's hint, and once more
 * exactly when the earliest future job falls due if that is sooner.
 */
export class Waker {
  private pollTimer: TimerHandle | null = null;
  private dueTimer: TimerHandle | null = null;
  private dueAt: number | null = null;
  private running = false;

  constructor(
    private readonly clock: Clock,
    private readonly pollIntervalMs: number,
    private readonly wake: () => void,
    /** poll runs on each poll tick instead of `wake` (to re-read what a lost notification said first). */
    private readonly poll: () => void = wake,
  ) {}

  /** start arms the poll timer. */
  start(): void {
    this.running = true;
    this.armPoll();
  }

  /** stop clears every timer. */
  stop(): void {
    this.running = false;
    if (this.pollTimer) this.clock.clearTimeout(this.pollTimer);
    if (this.dueTimer) this.clock.clearTimeout(this.dueTimer);
    this.pollTimer = this.dueTimer = null;
    this.dueAt = null;
  }

  /** armAt sets a wake-up for `next` when it comes before the next poll and before any wake-up already set. */
  armAt(next: Date | null): void {
    if (!this.running || next === null) return;
    const at = next.getTime();
    const delay = at - this.clock.now().getTime();
    // Already due: wake now. A zero-delay timer would wait for a simulated clock's next advance.
    if (delay <= 0) {
      setImmediate(() => {
        if (this.running) this.wake();
      });
      return;
    }
    if (this.dueAt !== null && this.dueAt <= at) return;
    if (delay >= this.pollIntervalMs) return;
    if (this.dueTimer) this.clock.clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = this.clock.setTimeout(() => {
      this.dueTimer = null;
      this.dueAt = null;
      this.wake();
    }, delay);
  }

  // armPoll re-arms before waking, so a simulated clock advanced far ahead fires every poll on the way.
  private armPoll(): void {
    this.pollTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.armPoll();
      this.poll();
    }, this.pollIntervalMs);
  }
}

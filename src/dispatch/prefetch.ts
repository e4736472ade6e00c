/**
 * AUTO_PREFETCH_HORIZON_MS is how much work, in time, an automatic prefetch keeps waiting locally:
 * enough that claims overlap with running jobs, little enough that a slow queue's jobs are not
 * hoarded by one runtime while others idle.
 */
export const AUTO_PREFETCH_HORIZON_MS = 100;
/**
 * AUTO_PREFETCH_MAX caps an automatic prefetch. The local queue is refilled once a quarter of it has
 * gone, so the cap sets both the claim size (a quarter of it) and the work left to cover the claim's
 * round trip (the rest): at 2,000, claims of about 500 leave while 1,500 quick jobs remain. Measured
 * on no-op jobs (10 running, 60,000-job drains, medians of four or five): caps of 1,000 and 1,500
 * refilled at half drained about 36,700 and 38,400 jobs a second, 2,000 refilled at a quarter about
 * 42,000; 3,000 and 4,000 were no better.
 */
export const AUTO_PREFETCH_MAX = 2000;
// RATE_WINDOW_MS is how often the finishing rate is re-estimated, or sooner once QUICK_SAMPLE jobs
// have finished in at least QUICK_WINDOW_MS (so that a burst of quick jobs gets large claims within
// milliseconds, not after a whole window); IDLE_RESET_MS of silence forgets the rate.
const RATE_WINDOW_MS = 50;
const QUICK_SAMPLE = 20;
const QUICK_WINDOW_MS = 5;
const IDLE_RESET_MS = 1_000;

/**
 * PrefetchSizer decides how many claimed jobs may wait locally for a free slot. A fixed number is
 * used as given; 'auto' follows the rate at which this runtime finishes jobs, so that the local
 * queue holds about AUTO_PREFETCH_HORIZON_MS of work: hundreds of jobs for no-op handlers, none for
 * handlers that take a second each. The rate is measured on the monotonic wall clock, not the
 * runtime's Clock, because it measures how fast this process works.
 */
export class PrefetchSizer {
  private finishedInWindow = 0;
  private windowStart: number;
  private perMs = 0;
  private lastFinishedAt = 0;

  /** `monotonicNow` is in milliseconds; tests pass their own. */
  constructor(
    private readonly fixed: number | 'auto',
    private readonly monotonicNow: () => number = () => performance.now(),
  ) {
    this.windowStart = monotonicNow();
  }

  /** finished records that a job's handler settled. */
  finished(): void {
    if (this.fixed !== 'auto') return;
    this.finishedInWindow++;
    const now = this.monotonicNow();
    this.lastFinishedAt = now;
    const elapsed = now - this.windowStart;
    const quick = this.finishedInWindow >= QUICK_SAMPLE && elapsed >= QUICK_WINDOW_MS;
    if (elapsed < RATE_WINDOW_MS && !quick) return;
    const measured = this.finishedInWindow / elapsed;
    // Half the weight on the newest window: quick to grow under a burst, quick to shrink after it.
    this.perMs = this.perMs === 0 ? measured : (this.perMs + measured) / 2;
    this.finishedInWindow = 0;
    this.windowStart = now;
  }

  /** size is how many jobs may wait locally right now. */
  get size(): number {
    if (this.fixed !== 'auto') return this.fixed;
    // After a quiet spell the old rate says nothing about the next jobs: start again from nothing.
    if (this.perMs > 0 && this.monotonicNow() - this.lastFinishedAt > IDLE_RESET_MS) {
      this.perMs = 0;
      this.finishedInWindow = 0;
      this.windowStart = this.monotonicNow();
    }
    return Math.min(AUTO_PREFETCH_MAX, Math.floor(this.perMs * AUTO_PREFETCH_HORIZON_MS));
  }
}

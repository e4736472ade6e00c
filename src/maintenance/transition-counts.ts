import type { JobState } from '../../machines/job.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { Job } from '../storage/job-row.js';
import type { Storage, TransitionCount } from '../storage/storage.js';
import type { MaintenanceService } from './periodic.js';

/** MINUTE_MS is the width of one transition-count bucket. */
export const MINUTE_MS = 60_000;

/** TRANSITION_COUNTS_KEPT_MS is how long the database keeps a minute's transition counts (two hours). */
export const TRANSITION_COUNTS_KEPT_MS = 2 * 60 * MINUTE_MS;

/** TransitionFlushCounts is what one flush did. */
export interface TransitionFlushCounts {
  /** rows is how many (minute, from, to, queue, task) counts it added; 0 when nothing was counted. */
  rows: number;
}

/**
 * TransitionCounter counts, in memory, every transition this runtime announces (each one
 * `job:transition` carries, tapped where it is emitted so that it costs no event object), per
 * minute of its clock, from and to which state, queue and task; each flush (`runOnce`, run by
 * Periodic and once more at stop) adds the counts to the database in one statement, which also
 * deletes the minutes older than two hours. A flush that fails puts its counts back for the next.
 * `onCounted` arms the next flush, so that an idle runtime keeps no flush timer.
 * Each runtime emits each of its transitions exactly once, so the table adds up every process.
 */
export class TransitionCounter implements MaintenanceService<TransitionFlushCounts> {
  /** name says which service this is, in errors and logs. */
  readonly name = 'transition counts';
  private counts = new Map<string, TransitionCount>();
  // last is the count the last transition went to, in the minute starting at lastMinuteMs.
  private last: TransitionCount | null = null;
  private lastMinuteMs = 0;

  /**
   * `onCounted` is told when a transition is counted while nothing waited for a flush (the first
   * since the last flush), so that a flush can be armed only when there is something to add.
   */
  constructor(
    private readonly storage: Storage,
    events: RuntimeEvents,
    private readonly onCounted: () => void = () => undefined,
  ) {
    events.tapTransitions(this.count);
  }

  /** pending is how many counts wait for the next flush. */
  get pending(): number {
    return this.counts.size;
  }

  /** runOnce adds what was counted since the last flush to the database; it does nothing when that is nothing. */
  async runOnce(now: Date): Promise<TransitionFlushCounts> {
    if (this.counts.size === 0) return { rows: 0 };
    const taken = this.counts;
    this.counts = new Map();
    this.last = null;
    const deleteBefore = new Date(now.getTime() - TRANSITION_COUNTS_KEPT_MS);
    // A minute the same statement deletes cannot be written by it too; such counts are too old to show.
    const rows = [...taken.values()].filter((c) => c.minute >= deleteBefore);
    try {
      await this.storage.transitionCountsAdd(rows, deleteBefore);
    } catch (error) {
      for (const [key, c] of taken) this.add(key, c.minute, c.from, c.to, c.queue, c.task, c.n);
      this.onCounted();
      throw error;
    }
    return { rows: rows.length };
  }

  // count adds one transition to its minute's count. Transitions come in runs of the same kind (a
  // claim's jobs, a batch of outcomes), so the count last added to is tried first: building the
  // map key costs about 1 µs, a run's next transition about 20 ns.
  private readonly count = (job: Job, fromState: JobState | null, at: Date): void => {
    const ms = at.getTime();
    const from = fromState ?? '';
    const { queue, task, state: to } = job;
    const last = this.last;
    if (
      last !== null &&
      ms >= this.lastMinuteMs &&
      ms < this.lastMinuteMs + MINUTE_MS &&
      last.to === to &&
      last.from === from &&
      last.queue === queue &&
      last.task === task
    ) {
      last.n++;
      return;
    }
    const minuteMs = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    const key = `${minuteMs}\u0000${from}\u0000${to}\u0000${queue}\u0000${task}`;
    let known = this.counts.get(key);
    if (known) known.n++;
    else {
      if (this.counts.size === 0) this.onCounted();
      known = { minute: new Date(minuteMs), from, to, queue, task, n: 1 };
      this.counts.set(key, known);
    }
    this.last = known;
    this.lastMinuteMs = minuteMs;
  };

  private add(key: string, minute: Date, from: string, to: string, queue: string, task: string, n: number) {
    const known = this.counts.get(key);
    if (known) known.n += n;
    else this.counts.set(key, { minute, from, to, queue, task, n });
  }
}

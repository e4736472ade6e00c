import type { Clock } from '../core/clock.js';
import type { PausedQueues } from '../dispatch/paused-queues.js';
import { validateQueueName } from '../jobs/tasks.js';
import type { Storage } from '../storage/storage.js';
import { emptyCounts, type JobCounts, type Stats } from './stats.js';

/**
 * QueueInfo is one queue as `runtime.queues.list()` shows it. `counts` comes from the job counts
 * snapshot (at most `statsMaxAgeMs` old, see `runtime.stats()`); `concurrency` is this runtime's
 * limit for the queue (`queues: { name: { concurrency } }`, 1 for a serial queue), or null.
 */
export interface QueueInfo {
  name: string;
  paused: boolean;
  /** pausedAt is when the queue was paused, null while it is not. */
  pausedAt: Date | null;
  counts: JobCounts;
  concurrency: number | null;
}

/** QueueState is what a pause or a resume left: the queue's name, whether it is paused, since when. */
export interface QueueState {
  name: string;
  paused: boolean;
  pausedAt: Date | null;
}

/** QueuesDeps is what the queues facade works with. */
export interface QueuesDeps {
  storage: Storage;
  clock: Clock;
  stats: Stats;
  paused: PausedQueues;
  /** queueLimits are this runtime's concurrency limits per queue. */
  queueLimits: ReadonlyMap<string, number>;
  /** ready admits a public call (see Runtime). */
  ready(call: string): Promise<void>;
  /** wake asks this runtime for a claim (a worker's; a producer's does nothing). */
  wake(): void;
}

/**
 * Queues is `runtime.queues`: pausing and resuming a queue for every runtime of the schema, and the
 * list of known queues. A paused queue is persisted (a runtime started later reads it before its
 * first claim); no runtime claims its jobs from the moment it hears of the pause (a notification,
 * or at the latest its next poll), and jobs already running finish normally.
 */
export class Queues {
  constructor(private readonly deps: QueuesDeps) {}

  /**
   * pause stops every runtime claiming jobs of `queue`. A queue with no job yet may be paused (its
   * jobs then wait from the first). Pausing a paused queue changes nothing (its pausedAt stays).
   */
  async pause(queue: string): Promise<QueueState> {
    return this.write('queues.pause', queue, true);
  }

  /** resume lets every runtime claim jobs of `queue` again, and wakes them to claim at once. */
  async resume(queue: string): Promise<QueueState> {
    return this.write('queues.resume', queue, false);
  }

  /**
   * list returns every known queue, by name: those with jobs (in the counts snapshot), those paused
   * or resumed once, and those this runtime has a concurrency limit for.
   */
  async list(): Promise<QueueInfo[]> {
    await this.deps.ready('queues.list');
    const [records, snapshot] = await Promise.all([
      this.deps.storage.queuesList(),
      this.deps.stats.snapshot(),
    ]);
    const queues = new Map<string, QueueInfo>();
    const entry = (name: string): QueueInfo => {
      let info = queues.get(name);
      if (!info) {
        info = {
          name,
          paused: false,
          pausedAt: null,
          counts: emptyCounts(),
          concurrency: this.deps.queueLimits.get(name) ?? null,
        };
        queues.set(name, info);
      }
      return info;
    };
    for (const name of this.deps.queueLimits.keys()) entry(name);
    for (const record of records)
      Object.assign(entry(record.name), { paused: record.paused, pausedAt: record.pausedAt });
    for (const row of snapshot.rows) {
      const counts = entry(row.queue).counts as Record<string, number>;
      if (row.state in counts) counts[row.state] = (counts[row.state] ?? 0) + row.n;
    }
    return [...queues.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private async write(call: string, queue: string, paused: boolean): Promise<QueueState> {
    const name = validateQueueName(queue);
    await this.deps.ready(call);
    const record = await this.deps.storage.queueWritePaused(name, paused, this.deps.clock.now());
    // This runtime applies its own change at once, whether or not it listens.
    if (this.deps.paused.apply(name, paused) && !paused) this.deps.wake();
    return { name: record.name, paused: record.paused, pausedAt: record.pausedAt };
  }
}

import { JOB_STATES, type JobState, STORED_STATES } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { validateQueueName, validateTaskName } from '../jobs/tasks.js';
import { MINUTE_MS } from '../maintenance/transition-counts.js';
import type { JobCountsSnapshot, Storage } from '../storage/storage.js';

/** StatsOptions narrow `runtime.stats()` to one queue and/or one task. */
export interface StatsOptions {
  queue?: string;
  task?: string;
}

const STATS_OPTION_NAMES = optionNames<StatsOptions>({ queue: true, task: true });

/** StoredJobState is a state a job row can be in (every state but `removed`). */
export type StoredJobState = Exclude<JobState, 'removed'>;

/** JobCounts holds how many jobs are in each stored state, every state present (zero included). */
export type JobCounts = Record<StoredJobState, number>;

/** TransitionMinute is one minute of transitions: how many jobs moved, in all and by the state they reached. */
export interface TransitionMinute {
  /** startsAt is the start of the minute (on the clocks of the runtimes that made the transitions). */
  startsAt: Date;
  /** total counts every transition made in the minute, enqueues included. */
  total: number;
  /** to counts them by the state they led to (`removed` included); a state none reached is absent. */
  to: Partial<Record<JobState, number>>;
}

/**
 * RuntimeStats is what `runtime.stats()` returns. `counts` comes from a snapshot at most
 * `statsMaxAgeMs` old, taken at `countedAt` (see the Stats section of the README); the transitions
 * are those every runtime of the schema has flushed (every `statsFlushIntervalMs` and at stop).
 */
export interface RuntimeStats {
  /** queue and task are the filters given, or null. */
  queue: string | null;
  task: string | null;
  /** counts holds how many jobs are in each stored state. */
  counts: JobCounts;
  /** total is the sum of counts. */
  total: number;
  /** countedAt is when the counts were taken. */
  countedAt: Date;
  /** transitionsPerMinute holds the last 60 minutes, oldest first, the current (partial) minute last. */
  transitionsPerMinute: TransitionMinute[];
}

/** StatsDeps is what the stats work with. */
export interface StatsDeps {
  storage: Storage;
  clock: Clock;
  /** maxAgeMs is how old the job counts snapshot may be before a reader recounts it. */
  maxAgeMs: number;
}

/** validateStatsOptions checks a stats filter; it returns the queue and task, null when not given. */
export function validateStatsOptions(options: StatsOptions): { queue: string | null; task: string | null } {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new ValidationError('options', 'an object of stats options { queue?, task? }', options);
  assertKnownKeys(options, STATS_OPTION_NAMES, 'stats');
  return {
    queue: options.queue === undefined ? null : validateQueueName(options.queue),
    task: options.task === undefined ? null : validateTaskName(options.task),
  };
}

/** emptyCounts returns a count of zero for every stored state (from the machine's list). */
export function emptyCounts(): JobCounts {
  return Object.fromEntries(STORED_STATES.map((state) => [state, 0])) as JobCounts;
}

/**
 * Stats reads the job counts snapshot (recounting it when older than its max age; see
 * job_counts_json in migrations/0012) and the transition counts of the last hour.
 */
export class Stats {
  constructor(private readonly deps: StatsDeps) {}

  /** snapshot returns the job counts snapshot, recounted first if it is older than the max age. */
  snapshot(): Promise<JobCountsSnapshot> {
    const now = this.deps.clock.now();
    return this.deps.storage.jobCountsRead(now, new Date(now.getTime() - this.deps.maxAgeMs));
  }

  /** read returns the stats of the jobs of `queue` and/or `task` (all when null). */
  async read(queue: string | null, task: string | null): Promise<RuntimeStats> {
    const now = this.deps.clock.now();
    const firstMinute = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS - 59 * MINUTE_MS;
    const [snapshot, transitions] = await Promise.all([
      this.snapshot(),
      this.deps.storage.transitionCountsPerMinute(new Date(firstMinute), queue, task),
    ]);
    const counts = emptyCounts();
    let total = 0;
    for (const row of snapshot.rows) {
      if ((queue !== null && row.queue !== queue) || (task !== null && row.task !== task)) continue;
      if (!(row.state in counts)) continue;
      counts[row.state as StoredJobState] += row.n;
      total += row.n;
    }
    const minutes: TransitionMinute[] = Array.from({ length: 60 }, (_, i) => ({
      startsAt: new Date(firstMinute + i * MINUTE_MS),
      total: 0,
      to: {},
    }));
    for (const row of transitions) {
      const minute = minutes[(row.minute.getTime() - firstMinute) / MINUTE_MS];
      if (minute === undefined || !JOB_STATES.includes(row.to as JobState)) continue;
      const to = row.to as JobState;
      minute.total += row.n;
      minute.to[to] = (minute.to[to] ?? 0) + row.n;
    }
    return { queue, task, counts, total, countedAt: snapshot.countedAt, transitionsPerMinute: minutes };
  }
}

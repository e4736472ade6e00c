import type { Clock } from '../core/clock.js';
import type { DatabaseStatus } from '../core/database-status.js';
import { RuntimeStateError } from '../core/errors.js';
import type { CleanCounts } from '../jobs/events.js';
import type { BucketHorizon, CleanerLock, DeleteBatch, Storage } from '../storage/storage.js';
import { type MaintenanceService, Periodic } from './periodic.js';
import { CLEANABLE_STATES, type RetentionConfig } from './retention.js';

/**
 * MAX_CONSUMER_TIMEOUT_MS is the longest consumerTimeoutMs a runtime accepts (one day): a consumer
 * silent for longer is dead by every runtime's measure, so every sweep would have deleted its row.
 */
export const MAX_CONSUMER_TIMEOUT_MS = 86_400_000;

/**
 * UNKNOWN_BUCKET_IDLE_MS is how long a token bucket this runtime has no limit for (configured only
 * on other runtimes, or no longer at all) must be idle before the cleaner deletes it: a week, or the
 * longest refill horizon this runtime knows if that is longer. Its true horizon is unknowable here;
 * a week is only too short for a bucket that takes more than a week to refill from empty.
 */
export const UNKNOWN_BUCKET_IDLE_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * BucketLimit is a rate limit's capacity and refill rate, all the cleaner needs of one (the
 * dispatch room's RateLimit, which this room cannot import).
 */
export interface BucketLimit {
  capacity: number;
  refillPerSecond: number;
}

/**
 * PAUSE_FACTOR is how many times as long as its last full batch took a pass waits before the next:
 * 4 keeps a backlog's deletes to a fifth of the time on the cleaner's connection. The deletes take
 * server CPU that a worker's claims and writes need: on 2 cores, a default worker draining 50,000
 * jobs while its cleaner deleted a million old rows ran at 0.81× its empty-table rate with no pause
 * (median of 3 rounds, machine loaded) and 0.78× with a factor of 1 (median of 5 rounds; 0.75× to
 * 0.80× in four of them). With 4 the rounds were too noisy to tell (0.47× to 1.57×, median 1.18×).
 * A steady load needs far less than a fifth: rows finish only as fast as workers finish jobs.
 */
export const PAUSE_FACTOR = 4;

/** zeroCounts is a pass that deleted nothing. */
export function zeroCounts(): CleanCounts {
  const counts = { tokenBuckets: 0, consumers: 0, batches: 0, skipped: false } as CleanCounts;
  for (const state of CLEANABLE_STATES) counts[state] = 0;
  return counts;
}

/**
 * Cleaner is the retention pass: it deletes the finished jobs older than their state's retention,
 * the token buckets idle past their refill horizon, and consumer rows long gone that hold no job,
 * each in batches of at most `batchSize` rows, one statement (one transaction) per batch, so a
 * million old rows never make one long transaction.
 *
 * Between two full batches the pass pauses PAUSE_FACTOR times as long as the last one took.
 *
 * One runtime cleans a schema at a time: every batch takes the schema's cleaner lock, a transaction
 * advisory lock held for that one statement. A periodic pass try-locks and, refused, ends where it
 * is (`skipped`): another runtime is cleaning, and its pass will finish the work. A pass asked for
 * (`runtime.clean()`) waits for the lock instead, which is at most the other's batch under way. A
 * lock per statement rather than a session lock held across the pass keeps no client checked out
 * between batches and leaves nothing to release if a connection breaks. The rows of a batch are
 * picked FOR UPDATE SKIP LOCKED besides, so a row an operator is changing at that moment (a retry,
 * a remove) is never waited for; the DELETE re-checks the state on the row itself.
 */
export class Cleaner implements MaintenanceService<CleanCounts> {
  readonly name = 'clean';
  private halted = false;
  // wakeUp ends the pause under way between two batches, if any (see pause).
  private wakeUp: (() => void) | null = null;
  // tail chains this runtime's passes: a pass asked for while another runs starts after it.
  private tail: Promise<unknown> = Promise.resolve();
  private readonly horizons: BucketHorizon[];
  private readonly unknownSeconds: number;

  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly config: RetentionConfig,
    rateLimits: ReadonlyMap<string, BucketLimit>,
    private readonly database: DatabaseStatus,
  ) {
    this.horizons = [...rateLimits].map(([bucket, limit]) => ({
      bucket,
      seconds: limit.capacity / limit.refillPerSecond,
    }));
    this.unknownSeconds = Math.max(UNKNOWN_BUCKET_IDLE_MS / 1000, ...this.horizons.map((h) => h.seconds));
  }

  /** halt makes the pass under way end after its current batch, and every later one at once. */
  halt(): void {
    this.halted = true;
    this.wakeUp?.();
  }

  /** settled resolves once every pass started so far has ended. */
  async settled(): Promise<void> {
    await this.tail;
  }

  /** runOnce is a periodic pass at `now`: it skips the rest of its work if another runtime is cleaning. */
  runOnce(now: Date): Promise<CleanCounts> {
    return this.serial(() => this.pass(now, 'try'));
  }

  /** runNow is a pass asked for at `now`: it waits for another runtime's batch rather than skipping. */
  runNow(now: Date): Promise<CleanCounts> {
    if (this.halted) return Promise.reject(new RuntimeStateError('clean: the runtime is stopping'));
    return this.serial(() => this.pass(now, 'wait'));
  }

  // pause waits PAUSE_FACTOR times as long as the last full batch took before the next one, on the
  // runtime's clock, so that a backlog keeps the database busy at most a fifth of the time on the
  // cleaner's connection. halt() ends it at once.
  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.halted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        this.clock.clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
    });
  }

  private serial(pass: () => Promise<CleanCounts>): Promise<CleanCounts> {
    const next = this.tail.then(pass);
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async pass(now: Date, lock: CleanerLock): Promise<CleanCounts> {
    const counts = zeroCounts();
    const { keepMs, batchSize } = this.config;
    // batches runs `batch` until one comes back short; false when the lock was refused or the
    // runtime is stopping, which ends the pass.
    const batches = async (batch: () => Promise<DeleteBatch>, add: (n: number) => void) => {
      for (;;) {
        if (this.halted) return false;
        const startedAt = this.clock.now().getTime();
        const done = await batch();
        if (!done.locked) {
          counts.skipped = true;
          return false;
        }
        this.database.reached();
        counts.batches++;
        add(done.deleted);
        if (done.deleted < batchSize) return true;
        await this.pause(PAUSE_FACTOR * (this.clock.now().getTime() - startedAt));
      }
    };
    try {
      for (const state of CLEANABLE_STATES) {
        const keep = keepMs[state];
        if (!Number.isFinite(keep)) continue;
        const before = new Date(now.getTime() - keep);
        const go = await batches(
          () => this.storage.jobsDeleteFinished(state, before, batchSize, lock),
          (n) => {
            counts[state] += n;
          },
        );
        if (!go) return counts;
      }
      const bucketsDone = await batches(
        () => this.storage.tokenBucketsDeleteIdle(this.horizons, this.unknownSeconds, now, batchSize, lock),
        (n) => {
          counts.tokenBuckets += n;
        },
      );
      if (!bucketsDone) return counts;
      const silentSince = new Date(now.getTime() - MAX_CONSUMER_TIMEOUT_MS);
      await batches(
        () => this.storage.consumersDeleteGone(silentSince, batchSize, lock),
        (n) => {
          counts.consumers += n;
        },
      );
      return counts;
    } catch (error) {
      this.database.failed(error);
      throw error;
    }
  }
}

/** CleaningHooks are what the retention service tells its runtime. */
export interface CleaningHooks {
  /** onCleaned hears of every pass that completed, periodic or asked for, with when it started. */
  onCleaned(counts: CleanCounts, at: Date): void;
  /** onError hears of a periodic pass that failed; the next round tries again. */
  onError(error: unknown): void;
}

/**
 * RetentionService runs the Cleaner every `intervalMs` on a worker (from its start, when
 * `config.periodic`), and one pass whenever asked (`runNow`, on any runtime). `stop()` ends the pass
 * under way after its current batch and waits for that batch.
 */
export class RetentionService {
  private readonly cleaner: Cleaner;
  private readonly periodic: Periodic<CleanCounts>;

  constructor(
    storage: Storage,
    private readonly clock: Clock,
    private readonly config: RetentionConfig,
    rateLimits: ReadonlyMap<string, BucketLimit>,
    database: DatabaseStatus,
    private readonly hooks: CleaningHooks,
  ) {
    this.cleaner = new Cleaner(storage, clock, config, rateLimits, database);
    this.periodic = new Periodic(
      this.cleaner,
      clock,
      { intervalMs: config.intervalMs, runAtStart: true, whenBusy: 'skip' },
      { onRun: (counts, at) => hooks.onCleaned(counts, at), onError: (error) => hooks.onError(error) },
    );
  }

  /** start begins the periodic passes, the first at once, unless retention keeps everything. */
  start(): void {
    if (this.config.periodic) this.periodic.start();
  }

  /** runNow runs one pass now (after one under way in this runtime) and reports it. */
  async runNow(): Promise<CleanCounts> {
    const at = this.clock.now();
    const counts = await this.cleaner.runNow(at);
    this.hooks.onCleaned(counts, at);
    return counts;
  }

  /** stop ends the passes: the one under way stops after its current batch, which stop waits for. */
  async stop(): Promise<void> {
    this.cleaner.halt();
    await this.periodic.stop();
    await this.cleaner.settled();
  }
}

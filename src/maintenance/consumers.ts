import type { JobState } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import type { DatabaseStatus } from '../core/database-status.js';
import type { Storage, SweepResult } from '../storage/storage.js';
import { Heartbeat, type HeartbeatCounts, type HeartbeatHooks } from './heartbeat.js';
import { type MaintenanceService, Periodic, periodicConfig } from './periodic.js';
import { type SweepCounts, Sweeper } from './sweeper.js';

/** ConsumerHooks are what the consumer registry tells its runtime. */
export interface ConsumerHooks extends HeartbeatHooks {
  /**
   * onBeat runs after each heartbeat that landed, once its sweep (if it was time for one) is done:
   * the runtime then checks what it holds (see Dispatcher.reconcile).
   */
  onBeat(at: Date, swept: boolean): void;
  /** onSweep runs after a sweep of others that took something back. */
  onSweep(result: SweepResult, at: Date): void;
  /** onError reports a failed heartbeat or sweep; the next round tries again. */
  onError(error: unknown, during: 'heartbeat' | 'sweep'): void;
}

/** ConsumerTiming is how often a consumer heartbeats and how long a silent one is given. */
export interface ConsumerTiming {
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
  /** maxInterruptions is the interruption at which the sweep fails a job instead (see the machine's INTERRUPT). */
  maxInterruptions: number;
}

/** UpkeepCounts is what one round of a consumer's upkeep did: its heartbeat, then its sweep if any. */
export interface UpkeepCounts {
  heartbeat: HeartbeatCounts;
  /** sweep is null when the round did not sweep (the beat did not land, or it is too early to judge). */
  sweep: SweepCounts | null;
}

/**
 * ConsumerUpkeep is one round of a consumer's upkeep: heartbeat, then sweep. A consumer that cannot
 * prove itself alive must not judge others, so the sweep runs only after a heartbeat that landed.
 *
 * A runtime judges others only after it has watched them for a whole consumerTimeoutMs while it
 * could reach the database itself: since it registered, and again since it last found the database
 * unreachable. An outage silences every consumer at once, and the first to come back must not take
 * the others' jobs for a silence that was the database's, not theirs.
 */
export class ConsumerUpkeep implements MaintenanceService<UpkeepCounts> {
  readonly name = 'consumer upkeep';

  constructor(
    readonly heartbeat: Heartbeat,
    private readonly sweeper: Sweeper,
    private readonly database: DatabaseStatus,
    private readonly consumerTimeoutMs: number,
    private readonly hooks: ConsumerHooks,
  ) {}

  /** runOnce heartbeats at `now`, then sweeps if this runtime has watched the others long enough. */
  async runOnce(now: Date): Promise<UpkeepCounts> {
    let heartbeat: HeartbeatCounts;
    try {
      heartbeat = await this.heartbeat.runOnce(now);
    } catch (error) {
      this.hooks.onError(error, 'heartbeat');
      return { heartbeat: { landed: false, rejoined: false }, sweep: null };
    }
    if (!heartbeat.landed || !this.hasWatchedLongEnough(now)) return { heartbeat, sweep: null };
    try {
      const sweep = await this.sweeper.runOnce(now);
      if (sweep.consumers.length > 0 || sweep.jobs.length > 0) this.hooks.onSweep(sweep, now);
      return { heartbeat, sweep };
    } catch (error) {
      this.hooks.onError(error, 'sweep');
      // The heartbeat landed: the round still counts as one that tried to sweep.
      return { heartbeat, sweep: { consumers: [], jobs: [], interrupted: 0, failed: 0 } };
    }
  }

  // hasWatchedLongEnough says whether this runtime has reached the database without a break for a
  // whole consumerTimeoutMs, and been registered as long: only then is another's silence its own.
  private hasWatchedLongEnough(now: Date): boolean {
    const upSince = this.database.upSince;
    const registeredAt = this.heartbeat.registeredAt;
    if (upSince === null || registeredAt === null) return false;
    const watchingSince = Math.max(upSince.getTime(), registeredAt.getTime());
    return now.getTime() - watchingSince >= this.consumerTimeoutMs;
  }
}

/**
 * ConsumerRegistry registers this runtime as a consumer and runs its upkeep (ConsumerUpkeep) every
 * heartbeatIntervalMs of the runtime's clock, until it stops beating or deregisters.
 */
export class ConsumerRegistry {
  private readonly upkeep: ConsumerUpkeep;
  private readonly periodic: Periodic<UpkeepCounts>;

  constructor(
    consumerId: string,
    name: string,
    storage: Storage,
    private readonly clock: Clock,
    timing: ConsumerTiming,
    heldState: JobState,
    database: DatabaseStatus,
    hooks: ConsumerHooks,
  ) {
    const heartbeat = new Heartbeat(consumerId, name, storage, database, hooks);
    const sweeper = new Sweeper(storage, heldState, timing, database);
    this.upkeep = new ConsumerUpkeep(heartbeat, sweeper, database, timing.consumerTimeoutMs, hooks);
    const config = periodicConfig(
      'heartbeat',
      { intervalMs: timing.heartbeatIntervalMs },
      { intervalMs: timing.heartbeatIntervalMs, runAtStart: false, whenBusy: 'skip' },
    );
    this.periodic = new Periodic(this.upkeep, clock, config, {
      onRun: ({ heartbeat: beat, sweep }, at) => {
        if (beat.landed) hooks.onBeat(at, sweep !== null);
      },
      onError: (error) => hooks.onError(error, 'heartbeat'),
    });
  }

  /** register writes this runtime's row (before it claims anything) and starts the heartbeat. */
  async register(): Promise<void> {
    await this.upkeep.heartbeat.register(this.clock.now());
    this.periodic.start();
  }

  /** deregister stops the heartbeat and deletes the row, once this runtime holds no job any more. */
  async deregister(): Promise<void> {
    await this.periodic.stop();
    await this.upkeep.heartbeat.deregister();
  }

  /** stopBeating stops the heartbeat and sweeps without touching the row (a crash leaves it to expire). */
  stopBeating(): void {
    this.periodic.halt();
  }
}

import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { DatabaseStatus } from '../core/database-status.js';
import type { ConsumerRecord, Storage, SweepResult, SweepTransitions } from '../storage/storage.js';

/** ConsumerHooks are what the consumer registry tells its runtime. */
export interface ConsumerHooks {
  /** onPresumedDead runs when this runtime finds its own row gone: others presumed it dead and swept it. */
  onPresumedDead(): Promise<void>;
  /** onRejoined runs once this runtime's row is written again after onPresumedDead. */
  onRejoined(): void;
  /**
   * onBeat runs after each heartbeat that landed, once its sweep (if it was time for one) is done:
   * the runtime then checks what it holds (see Dispatcher.reconcile).
   */
  onBeat(at: Date, swept: boolean): void;
  /** onSweep runs after a sweep of others that took something back. */
  onSweep(result: SweepResult, at: Date): void;
  /** onError reports a failed heartbeat or sweep; the next tick tries again. */
  onError(error: unknown, during: 'heartbeat' | 'sweep'): void;
}

/** ConsumerTiming is how often a consumer heartbeats and how long a silent one is given. */
export interface ConsumerTiming {
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
  /** maxInterruptions is the interruption at which the sweep fails a job instead (see the machine's INTERRUPT). */
  maxInterruptions: number;
}

/**
 * ConsumerRegistry keeps this runtime's row in the consumers table alive and, on the same beat,
 * sweeps up after consumers that went silent: their running jobs go back to claimable (or to failed
 * when out of attempts) so that another runtime finishes them. All timing is on the runtime's clock.
 * A runtime that finds its own row gone (a long pause made others presume it dead) hears about it
 * through onPresumedDead and registers again.
 *
 * A runtime judges others only after it has watched them for a whole consumerTimeoutMs while it
 * could reach the database itself: since it registered, and again since it last found the database
 * unreachable. An outage silences every consumer at once, and the first to come back must not take
 * the others' jobs for a silence that was the database's, not theirs.
 */
export class ConsumerRegistry {
  private timer: TimerHandle | null = null;
  private running = false;
  private beating: Promise<void> = Promise.resolve();
  private beatInFlight = false;
  private readonly record: ConsumerRecord;
  /** registeredAt is when this runtime started watching the others (see the class comment). */
  private registeredAt: Date | null = null;

  constructor(
    consumerId: string,
    name: string,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly timing: ConsumerTiming,
    private readonly transitions: SweepTransitions,
    private readonly database: DatabaseStatus,
    private readonly hooks: ConsumerHooks,
  ) {
    this.record = { id: consumerId, name, host: hostname(), pid: process.pid };
  }

  /** register writes this runtime's row (before it claims anything) and starts the heartbeat. */
  async register(): Promise<void> {
    this.registeredAt = this.clock.now();
    await this.storage.consumerRegister(this.record, this.registeredAt);
    this.running = true;
    this.arm();
  }

  /** deregister stops the heartbeat and deletes the row, once this runtime holds no job any more. */
  async deregister(): Promise<void> {
    this.stopBeating();
    await this.beating;
    await this.storage.consumerDelete(this.record.id);
  }

  /** stopBeating stops the heartbeat and sweeps without touching the row (a crash leaves it to expire). */
  stopBeating(): void {
    this.running = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  // arm schedules the next beat before this one runs, so beats keep their cadence however long a
  // statement takes; a beat still under way when the next falls due makes it skip its turn.
  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      this.arm();
      if (this.beatInFlight) return;
      this.beatInFlight = true;
      this.beating = this.beat()
        .catch((error: unknown) => {
          this.hooks.onError(error, 'heartbeat');
          return null;
        })
        .then((landed) => {
          // Cleared before onBeat, so that whoever hears of this beat may make the next one fall due.
          this.beatInFlight = false;
          if (landed) this.hooks.onBeat(landed.at, landed.swept);
        });
    }, this.timing.heartbeatIntervalMs);
  }

  // beat heartbeats, then sweeps: a consumer that cannot prove itself alive must not judge others.
  // It returns when the heartbeat landed and whether it swept, or null if it did not land.
  private async beat(): Promise<{ at: Date; swept: boolean } | null> {
    const now = this.clock.now();
    try {
      const alive = await this.storage.consumerHeartbeat(this.record.id, now);
      this.database.reached();
      if (!alive) {
        await this.hooks.onPresumedDead();
        // Cut off long enough to be swept, it watches the others afresh before judging them.
        this.registeredAt = this.clock.now();
        await this.storage.consumerRegister(this.record, this.registeredAt);
        this.hooks.onRejoined();
        return null;
      }
    } catch (error) {
      this.database.failed(error);
      this.hooks.onError(error, 'heartbeat');
      return null;
    }
    if (!this.hasWatchedLongEnough(now)) return { at: now, swept: false };
    try {
      const silentSince = new Date(now.getTime() - this.timing.consumerTimeoutMs);
      const result = await this.storage.consumersSweep(
        silentSince,
        now,
        this.transitions,
        this.timing.maxInterruptions,
      );
      if (result.consumers.length > 0 || result.jobs.length > 0) this.hooks.onSweep(result, now);
    } catch (error) {
      this.database.failed(error);
      this.hooks.onError(error, 'sweep');
    }
    return { at: now, swept: true };
  }

  // hasWatchedLongEnough says whether this runtime has reached the database without a break for a
  // whole consumerTimeoutMs, and been registered as long: only then is another's silence its own.
  private hasWatchedLongEnough(now: Date): boolean {
    const upSince = this.database.upSince;
    if (upSince === null || this.registeredAt === null) return false;
    const watchingSince = Math.max(upSince.getTime(), this.registeredAt.getTime());
    return now.getTime() - watchingSince >= this.timing.consumerTimeoutMs;
  }
}

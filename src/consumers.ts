import { hostname } from 'node:os';
import type { Clock, TimerHandle } from './clock.js';
import type { ConsumerRecord, Storage, SweepResult, SweepTransitions } from './storage.js';

/** ConsumerHooks are what the consumer registry tells its runtime. */
export interface ConsumerHooks {
  /** onPresumedDead runs when this runtime finds its own row gone: others presumed it dead and swept it. */
  onPresumedDead(): Promise<void>;
  /** onRejoined runs once this runtime's row is written again after onPresumedDead. */
  onRejoined(): void;
  /** onSweep runs after a sweep of others that took something back. */
  onSweep(result: SweepResult, at: Date): void;
  /** onError reports a failed heartbeat or sweep; the next tick tries again. */
  onError(error: unknown, during: 'heartbeat' | 'sweep'): void;
}

/** ConsumerTiming is how often a consumer heartbeats and how long a silent one is given. */
export interface ConsumerTiming {
  heartbeatIntervalMs: number;
  consumerTimeoutMs: number;
}

/**
 * ConsumerRegistry keeps this runtime's row in the consumers table alive and, on the same beat,
 * sweeps up after consumers that went silent: their running jobs go back to claimable (or to failed
 * when out of attempts) so that another runtime finishes them. All timing is on the runtime's clock.
 * A runtime that finds its own row gone (a long pause made others presume it dead) hears about it
 * through onPresumedDead and registers again.
 */
export class ConsumerRegistry {
  private timer: TimerHandle | null = null;
  private running = false;
  private beating: Promise<void> = Promise.resolve();
  private readonly record: ConsumerRecord;

  constructor(
    consumerId: string,
    name: string,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly timing: ConsumerTiming,
    private readonly transitions: SweepTransitions,
    private readonly hooks: ConsumerHooks,
  ) {
    this.record = { id: consumerId, name, host: hostname(), pid: process.pid };
  }

  /** register writes this runtime's row (before it claims anything) and starts the heartbeat. */
  async register(): Promise<void> {
    await this.storage.consumerRegister(this.record, this.clock.now());
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

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      this.beating = this.beat().finally(() => {
        if (this.running) this.arm();
      });
    }, this.timing.heartbeatIntervalMs);
  }

  // beat heartbeats, then sweeps: a consumer that cannot prove itself alive must not judge others.
  private async beat(): Promise<void> {
    const now = this.clock.now();
    try {
      if (!(await this.storage.consumerHeartbeat(this.record.id, now))) {
        await this.hooks.onPresumedDead();
        await this.storage.consumerRegister(this.record, this.clock.now());
        this.hooks.onRejoined();
        return;
      }
    } catch (error) {
      this.hooks.onError(error, 'heartbeat');
      return;
    }
    try {
      const silentSince = new Date(now.getTime() - this.timing.consumerTimeoutMs);
      const result = await this.storage.consumersSweep(silentSince, now, this.transitions);
      if (result.consumers.length > 0 || result.jobs.length > 0) this.hooks.onSweep(result, now);
    } catch (error) {
      this.hooks.onError(error, 'sweep');
    }
  }
}

import { hostname } from 'node:os';
import type { DatabaseStatus } from '../core/database-status.js';
import type { ConsumerRecord, Storage } from '../storage/storage.js';
import type { MaintenanceService } from './periodic.js';

/** HeartbeatHooks are what a heartbeat tells its runtime when it finds its own row gone. */
export interface HeartbeatHooks {
  /** onPresumedDead runs when this runtime finds its own row gone: others presumed it dead and swept it. */
  onPresumedDead(): Promise<void>;
  /** onRejoined runs once this runtime's row is written again after onPresumedDead. */
  onRejoined(): void;
}

/** HeartbeatCounts is what one heartbeat did. */
export interface HeartbeatCounts {
  /** landed says the row was found and its heartbeat written: this runtime proved itself alive. */
  landed: boolean;
  /** rejoined says the row was gone and has been written again (this beat did not land). */
  rejoined: boolean;
}

/**
 * Heartbeat keeps this runtime's row in the consumers table alive. A runtime that finds its own row
 * gone (a long pause made others presume it dead) hears of it through onPresumedDead and registers
 * again. `registeredAt` is when it last (re)registered: it watches the others only from then on.
 */
export class Heartbeat implements MaintenanceService<HeartbeatCounts> {
  readonly name = 'heartbeat';
  private readonly record: ConsumerRecord;
  private registered: Date | null = null;

  constructor(
    consumerId: string,
    consumerName: string,
    private readonly storage: Storage,
    private readonly database: DatabaseStatus,
    private readonly hooks: HeartbeatHooks,
  ) {
    this.record = { id: consumerId, name: consumerName, host: hostname(), pid: process.pid };
  }

  /** registeredAt is when this runtime's row was last written anew; null before register(). */
  get registeredAt(): Date | null {
    return this.registered;
  }

  /** register writes this runtime's row, as alive at `now`. */
  async register(now: Date): Promise<void> {
    this.registered = now;
    await this.storage.consumerRegister(this.record, now);
  }

  /** deregister deletes this runtime's row. */
  async deregister(): Promise<void> {
    await this.storage.consumerDelete(this.record.id);
  }

  /** runOnce writes the heartbeat at `now`; a failure is the database's, recorded, and thrown. */
  async runOnce(now: Date): Promise<HeartbeatCounts> {
    let alive: boolean;
    try {
      alive = await this.storage.consumerHeartbeat(this.record.id, now);
    } catch (error) {
      this.database.failed(error);
      throw error;
    }
    this.database.reached();
    if (alive) return { landed: true, rejoined: false };
    await this.hooks.onPresumedDead();
    // Cut off long enough to be swept, it watches the others afresh before judging them.
    await this.register(now);
    this.hooks.onRejoined();
    return { landed: false, rejoined: true };
  }
}

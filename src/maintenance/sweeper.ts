import type { DatabaseStatus } from '../core/database-status.js';
import type { Storage, SweepResult, SweepTransitions } from '../storage/storage.js';
import type { MaintenanceService } from './periodic.js';

/** SweeperConfig is how long a silent consumer is given, and how often a job may be taken back. */
export interface SweeperConfig {
  consumerTimeoutMs: number;
  /** maxInterruptions is the interruption at which a job fails instead (see the machine's INTERRUPT). */
  maxInterruptions: number;
}

/** SweepCounts is what one sweep did: the consumers it deleted and the jobs it took back. */
export interface SweepCounts extends SweepResult {
  /** interrupted counts the jobs made claimable again; failed those out of interruptions. */
  interrupted: number;
  failed: number;
}

/**
 * Sweeper takes back the jobs of consumers silent for consumerTimeoutMs: their running jobs go back
 * to claimable through INTERRUPT, or to failed when out of interruptions, so that another runtime
 * finishes them; their rows are deleted.
 */
export class Sweeper implements MaintenanceService<SweepCounts> {
  readonly name = 'sweep';

  constructor(
    private readonly storage: Storage,
    private readonly transitions: SweepTransitions,
    private readonly config: SweeperConfig,
    private readonly database: DatabaseStatus,
  ) {}

  /** runOnce sweeps the consumers silent since `now − consumerTimeoutMs`. */
  async runOnce(now: Date): Promise<SweepCounts> {
    const silentSince = new Date(now.getTime() - this.config.consumerTimeoutMs);
    try {
      const result = await this.storage.consumersSweep(
        silentSince,
        now,
        this.transitions,
        this.config.maxInterruptions,
      );
      const failed = result.jobs.filter((job) => job.state === this.transitions.failed).length;
      return { ...result, interrupted: result.jobs.length - failed, failed };
    } catch (error) {
      this.database.failed(error);
      throw error;
    }
  }
}

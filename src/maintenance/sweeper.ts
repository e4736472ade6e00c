import type { DatabaseStatus } from '../core/database-status.js';
import { planTakeBack } from '../core/transitions.js';
import type { OrphanedJob, Storage, SweepResult, TakeBackWrite } from '../storage/storage.js';
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
 * Sweeper takes back the jobs of consumers silent for consumerTimeoutMs, so that another runtime
 * finishes them, and deletes their rows. What becomes of each job is the machine's INTERRUPT, asked
 * with the job's own counts: claimable again while it has interruptions left, else failed.
 */
export class Sweeper implements MaintenanceService<SweepCounts> {
  readonly name = 'sweep';

  constructor(
    private readonly storage: Storage,
    // heldState is the state of a job a consumer holds: the machine's CLAIM target.
    private readonly heldState: OrphanedJob['state'],
    private readonly config: SweeperConfig,
    private readonly database: DatabaseStatus,
  ) {}

  /** runOnce sweeps the consumers silent since `now − consumerTimeoutMs`. */
  async runOnce(now: Date): Promise<SweepCounts> {
    const silentSince = new Date(now.getTime() - this.config.consumerTimeoutMs);
    const finished = new Set<string>();
    try {
      const result = await this.storage.consumersSweep(silentSince, now, this.heldState, (job) => {
        const write = this.takeBack(job);
        if (write.finished) finished.add(job.id);
        return write;
      });
      const failed = result.jobs.filter((job) => finished.has(job.id)).length;
      return { ...result, interrupted: result.jobs.length - failed, failed };
    } catch (error) {
      this.database.failed(error);
      throw error;
    }
  }

  private takeBack(job: OrphanedJob): TakeBackWrite {
    const { maxInterruptions } = this.config;
    const plan = planTakeBack({ ...job, maxInterruptions });
    return {
      state: plan.to,
      attempts: plan.attempts,
      interruptions: plan.interruptions,
      finished: plan.finished,
      message: `consumer ${job.lockedBy} stopped heartbeating while holding this job (interruption ${plan.interruptions} of at most ${maxInterruptions})`,
    };
  }
}

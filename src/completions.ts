import type { Logger } from './logger.js';
import type { Outcome } from './outcome-statements.js';
import type { Storage } from './storage.js';

/**
 * OutcomeCallback is told whether an outcome was written (true) or refused by the guard (false), and
 * the clock time the write carried (the job's new updated_at and finished_at).
 */
export type OutcomeCallback = (written: boolean, at: Date) => void;

interface PendingOutcome {
  outcome: Outcome;
  settle: OutcomeCallback;
}

// BATCH_LIMIT bounds one UPDATE's size; RETRY_MAX_MS caps the wait between failed flushes.
const BATCH_LIMIT = 1000;
const RETRY_MAX_MS = 5_000;

/**
 * CompletionWriter batches job outcomes into one UPDATE per flush. A flush that fails is retried with
 * backoff (wall-clock, since it paces a database outage) until it succeeds, so no result is lost
 * while the process lives; each outcome is settled once durable (true) or refused by the guard
 * because the job is no longer this consumer's attempt (false).
 */
export class CompletionWriter {
  private pending: PendingOutcome[] = [];
  private flushing: Promise<void> | null = null;
  private failures = 0;

  constructor(
    private readonly storage: Storage,
    private readonly consumerId: string,
    private readonly now: () => Date,
    private readonly logger: Logger,
    private readonly onError: (error: unknown) => void,
  ) {}

  /**
   * submit queues an outcome for the next flush and calls `settle` once it is durable or refused. It
   * takes a callback rather than returning a promise because it runs once per job on the hot path.
   */
  submit(outcome: Outcome, settle: OutcomeCallback): void {
    this.pending.push({ outcome, settle });
    if (!this.flushing) this.flushing = this.flushSoon();
  }

  /** write is submit as a promise, for the paths that are not hot. */
  write(outcome: Outcome): Promise<boolean> {
    return new Promise((settle) => this.submit(outcome, settle));
  }

  /** drained resolves when every submitted outcome has been written or refused. */
  async drained(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** size is how many outcomes wait to be written. */
  get size(): number {
    return this.pending.length;
  }

  // flushSoon waits one turn of the event loop so that outcomes of jobs finishing together share a write.
  private async flushSoon(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.pending.length > 0) await this.flushBatch(this.pending.splice(0, BATCH_LIMIT));
    } finally {
      this.flushing = null;
    }
  }

  private async flushBatch(batch: PendingOutcome[]): Promise<void> {
    for (;;) {
      try {
        const at = this.now();
        const refused = await this.storage.jobsApplyOutcomes(
          batch.map((p) => p.outcome),
          this.consumerId,
          at,
        );
        this.failures = 0;
        for (const p of batch) p.settle(!refused.has(p.outcome.jobId), at);
        return;
      } catch (error) {
        this.failures++;
        this.onError(error);
        const delay = Math.min(100 * 2 ** this.failures, RETRY_MAX_MS);
        this.logger.warn(
          { err: error, outcomes: batch.length, retryInMs: delay },
          'writing job outcomes failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

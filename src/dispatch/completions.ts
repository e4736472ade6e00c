import { classifyDatabaseError, type DatabaseStatus } from '../core/database-status.js';
import { OutcomeRefusedError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { SingleFlight } from '../core/single-flight.js';
import { tryTransition } from '../core/transitions.js';
import type { Outcome } from '../storage/outcome-statements.js';
import type { Storage } from '../storage/storage.js';

// Here a write is one job's `Outcome`: the guarded row update that records how its attempt ended.

/**
 * WriteSettled is told whether a write was made (true) or not (false: refused by the guard because
 * the job is no longer this attempt's, or abandoned by a stop that could not wait any longer), the
 * clock time the write carried, and the write as made: a failure in place of a write the database
 * refused (see CompletionWriter).
 */
export type WriteSettled = (written: boolean, at: Date, asWritten: Outcome) => void;

interface PendingWrite {
  write: Outcome;
  settle: WriteSettled;
  /** replaces is set on the failure written in place of a refused write: it is not replaced again. */
  replaces?: Outcome;
}

/** CompletionHooks are what the completion writer reports to its runtime. */
export interface CompletionHooks {
  /**
   * onError is told of every failed flush (the batch is retried), of every refused write, and of
   * anything else that escapes a flush.
   */
  onError(error: unknown): void;
}

// BATCH_LIMIT bounds one UPDATE's size; RETRY_MAX_MS caps the wait between failed flushes.
const BATCH_LIMIT = 1000;
const RETRY_MAX_MS = 5_000;

/**
 * CompletionWriter batches the writes of finished attempts into one UPDATE per flush, one flush at a
 * time. A flush that fails because the database is unreachable or busy is retried with backoff
 * (wall-clock, since it paces an outage) until it lands, so no result is lost while the process
 * lives. A flush the database refuses for its data is split in halves until the refused writes are
 * found; each of those is written as the machine's FAIL with an OutcomeRefusedError instead, and the
 * rest are written as they were: one bad write never holds up another. Each write is settled once
 * durable, refused by the guard, or abandoned (see abandon).
 */
export class CompletionWriter {
  private pending: PendingWrite[] = [];
  /** writing holds the writes taken from pending for a flush, until each is settled. */
  private readonly writing = new Set<PendingWrite>();
  /** flushes runs one flush at a time, and once more if writes were submitted meanwhile. */
  private readonly flushes: SingleFlight;
  private failures = 0;
  private abandoned = false;
  private wakeRetry: (() => void) | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly consumerId: string,
    private readonly now: () => Date,
    private readonly logger: Logger,
    private readonly database: DatabaseStatus,
    private readonly hooks: CompletionHooks,
  ) {
    this.flushes = new SingleFlight(
      () => this.flush(),
      (error) => this.hooks.onError(error),
    );
  }

  /**
   * submit queues a write for the next flush and calls `settle` once it is durable or refused. It
   * takes a callback rather than returning a promise because it runs once per job on the hot path.
   */
  submit(write: Outcome, settle: WriteSettled): void {
    if (this.abandoned) {
      settle(false, this.now(), write);
      return;
    }
    this.pending.push({ write, settle });
    this.flushes.request();
  }

  /** write is submit as a promise, for the paths that are not hot. */
  write(write: Outcome): Promise<boolean> {
    return new Promise((settle) => this.submit(write, settle));
  }

  /** drained resolves when every submitted write has been made, refused or abandoned. */
  async drained(): Promise<void> {
    // A settled write's owner may submit another, which starts a new flight after this one.
    while (this.flushes.busy) await this.flushes.settled();
  }

  /**
   * abandon stops retrying: every write not yet made is settled as not written, now and from
   * now on. A stop that has waited as long as it may calls it; the jobs stay held by this consumer
   * in the database, and other runtimes take them back once its row expires or is gone.
   */
  abandon(): void {
    this.abandoned = true;
    this.wakeRetry?.();
  }

  /** size is how many writes wait to be made, the batch being written included. */
  get size(): number {
    return this.pending.length + this.writing.size;
  }

  /** pendingIds lists the jobs whose write waits to be made: their jobs are still held. */
  pendingIds(): string[] {
    const ids = this.pending.map((p) => p.write.jobId);
    for (const p of this.writing) ids.push(p.write.jobId);
    return ids;
  }

  // flush waits one turn of the event loop, so that the writes of jobs finishing together share a
  // statement, then writes whatever is pending, batch by batch. The run asked for meanwhile finds
  // nothing to do unless a write was submitted after the last batch was taken.
  private async flush(): Promise<undefined> {
    if (this.pending.length === 0) return;
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, BATCH_LIMIT);
      for (const p of batch) this.writing.add(p);
      await this.flushBatch(batch);
    }
  }

  private async flushBatch(batch: PendingWrite[]): Promise<void> {
    for (;;) {
      if (this.abandoned) {
        this.settleAbandoned(batch);
        return;
      }
      try {
        const at = this.now();
        const refused = await this.storage.jobsApplyOutcomes(
          batch.map((p) => p.write),
          this.consumerId,
          at,
        );
        this.database.reached();
        this.failures = 0;
        for (const p of batch) this.settle(p, !refused.has(p.write.jobId), at);
        return;
      } catch (error) {
        if (classifyDatabaseError(error) === 'refused') {
          this.database.reached();
          await this.isolate(batch, error);
          return;
        }
        this.database.failed(error);
        this.hooks.onError(error);
        this.failures++;
        const delay = Math.min(100 * 2 ** this.failures, RETRY_MAX_MS);
        this.logger.warn(
          { err: error, outcomes: batch.length, retryInMs: delay },
          'writing job outcomes failed; retrying',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRetry = null;
      }
    }
  }

  // isolate splits a batch the database refused until each refused write stands alone, and
  // writes a failure in its place (see failureInstead).
  private async isolate(batch: PendingWrite[], error: unknown): Promise<void> {
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      await this.flushBatch(batch.slice(0, half));
      await this.flushBatch(batch.slice(half));
      return;
    }
    const [refused] = batch as [PendingWrite];
    const original = refused.replaces ?? refused.write;
    const refusal = new OutcomeRefusedError(original.jobId, original.event, error);
    this.logger.error({ err: refusal, jobId: original.jobId }, 'the database refused a job outcome');
    this.hooks.onError(refusal);
    const failure = refused.replaces ? null : failureInstead(refused.write, refusal);
    if (!failure) {
      // Even the failure was refused, or the machine allows none: the job stays held, and the next
      // reconciliation of what this runtime holds gives it back.
      this.settle(refused, false, this.now());
      return;
    }
    const replacement = { write: failure, settle: refused.settle, replaces: refused.write };
    this.writing.delete(refused);
    this.writing.add(replacement);
    await this.flushBatch([replacement]);
  }

  private settleAbandoned(batch: readonly PendingWrite[]): void {
    const at = this.now();
    this.logger.error(
      { outcomes: batch.length, jobIds: batch.map((p) => p.write.jobId).slice(0, 20) },
      'outcomes abandoned unwritten: their jobs stay held until other runtimes take them back',
    );
    for (const p of batch) this.settle(p, false, at);
  }

  // settle ends a write's wait: it no longer counts as pending once its owner hears of it.
  private settle(p: PendingWrite, written: boolean, at: Date): void {
    this.writing.delete(p);
    p.settle(written, at, p.write);
  }
}

// failureInstead is the machine's FAIL for a job whose write was refused, carrying nothing of the
// refused write but its guard (state, attempt): no result, progress, run_at or removal, and the
// refusal as its error, whose text is the database's own and so storable. Null if the machine
// refuses FAIL from that state.
function failureInstead(refused: Outcome, refusal: OutcomeRefusedError): Outcome | null {
  const plan = tryTransition(
    { id: refused.jobId, state: refused.from, attempts: refused.attempt, maxAttempts: refused.attempt },
    'FAIL',
  );
  if (plan === null) return null;
  return {
    jobId: refused.jobId,
    attempt: refused.attempt,
    event: plan.event,
    from: plan.from,
    to: plan.to,
    attemptDelta: plan.attempts - refused.attempt,
    runAt: null,
    error: refusal.message,
    resultJson: null,
    finished: plan.finished,
    remove: false,
    progressJson: null,
  };
}

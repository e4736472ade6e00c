import type { JobState } from '../../machines/job.js';
import {
  type JobFilter,
  jobDelete,
  jobGet,
  jobsList,
  jobWrite,
  type OperatorChange,
} from './admin-statements.js';
import {
  type BulkChange,
  jobsDeleteMany,
  jobsScan,
  jobsWriteMany,
  type PlannedRow,
  type ScannedJob,
} from './bulk-statements.js';
import {
  type ClaimedJob,
  type ClaimRequest,
  type ClaimSql,
  claimSqlOf,
  jobsClaim,
  jobsNextRunAt,
  jobsReleaseHeld,
} from './claim-statements.js';
import {
  type ConsumerRecord,
  consumerDelete,
  consumerHeartbeat,
  consumerRegister,
  consumersSweep,
  type OrphanedJob,
  type SweepResult,
  type TakeBackWrite,
} from './consumer-statements.js';
import {
  jobReplace,
  jobsInsert,
  jobsInsertUnlessKeyLive,
  jobsLiveByKeys,
  type ReplaceChange,
} from './insert-statements.js';
import type { Job } from './job-row.js';
import {
  jobNotifyCancel,
  jobsNotifyCancel,
  jobsNotifyChanged,
  jobsNotifyFinished,
} from './notification-statements.js';
import { jobsApplyOutcomes, jobsWriteProgress, type Outcome } from './outcome-statements.js';
import {
  type JobCountsSnapshot,
  jobCountsRead,
  type QueueRecord,
  queuesList,
  queuesPausedNames,
  queueWritePaused,
  type TransitionCount,
  transitionCountsAdd,
  transitionCountsPerMinute,
} from './queue-statements.js';
import {
  type BucketHorizon,
  type CleanerLock,
  consumersDeleteGone,
  type DeleteBatch,
  jobsDeleteFinished,
  tokenBucketsDeleteIdle,
} from './retention-statements.js';
import { type Tables, tablesOf } from './tables.js';
import type { ClaimTransition, NewJob, Queryable } from './types.js';

// The types of Storage's methods are exported here too, so that callers import the facade and its
// vocabulary from one place; each is defined beside its statements (or in types.ts if shared).
export type { JobFilter } from './admin-statements.js';
export type { BulkChange, PlannedRow, ScannedJob } from './bulk-statements.js';
export type { ClaimedJob, ClaimRequest } from './claim-statements.js';
export type { ConsumerRecord, OrphanedJob, SweepResult, TakeBackWrite } from './consumer-statements.js';
export { CANCEL_PREFIX } from './notification-statements.js';
export type { JobCountsSnapshot, QueueRecord, TransitionCount } from './queue-statements.js';
export { PAUSE_PREFIX, RESUME_PREFIX } from './queue-statements.js';
export type { BucketHorizon, CleanerLock, DeleteBatch } from './retention-statements.js';
export type { ClaimTransition, NewJob, Queryable } from './types.js';

/**
 * Storage owns every SQL statement jobchart runs against its jobs and consumers: one method per
 * statement, every value a parameter, every timestamp from the caller's clock. It is a facade: each
 * statement is a function of its area's module (inserts, claim, outcomes, consumers, admin,
 * notifications), which it calls with its pool and the schema's names.
 */
export class Storage {
  private readonly tables: Tables;
  private readonly claimSql: ClaimSql;

  constructor(
    private readonly db: Queryable,
    schema: string,
    private readonly claim: ClaimTransition,
  ) {
    this.tables = tablesOf(schema);
    this.claimSql = claimSqlOf(this.tables);
  }

  /** jobsInsert inserts jobs in one statement and returns them in order (see insert-statements). */
  jobsInsert(
    jobs: readonly NewJob[],
    createdBy: string,
    now: Date,
    client: Queryable = this.db,
  ): Promise<Job[]> {
    return jobsInsert(client, this.tables, jobs, createdBy, now);
  }

  /** jobsInsertUnlessKeyLive inserts the keyed jobs whose key no live job holds; returns them by key. */
  jobsInsertUnlessKeyLive(
    jobs: readonly NewJob[],
    createdBy: string,
    now: Date,
    client: Queryable,
  ): Promise<Map<string, Job>> {
    return jobsInsertUnlessKeyLive(client, this.tables, jobs, createdBy, now);
  }

  /** jobsLiveByKeys reads the live jobs holding any of `keys`. */
  jobsLiveByKeys(keys: readonly string[], client: Queryable = this.db): Promise<Job[]> {
    return jobsLiveByKeys(client, this.tables, keys);
  }

  /** jobReplace gives a job still in `from` a new specification (the machine's REPLACE), or returns null. */
  jobReplace(
    id: string,
    from: JobState,
    change: ReplaceChange,
    job: NewJob,
    now: Date,
    client: Queryable,
  ): Promise<Job | null> {
    return jobReplace(client, this.tables, id, from, change, job, now);
  }

  /** notifyJobsChanged wakes listening workers, as an insert does, after an update made jobs due. */
  notifyJobsChanged(client: Queryable = this.db): Promise<void> {
    return jobsNotifyChanged(client, this.tables);
  }

  /** jobsClaim takes up to `limit` due jobs and marks them running for the claiming consumer. */
  jobsClaim(request: ClaimRequest): Promise<ClaimedJob[]> {
    return jobsClaim(this.db, this.claimSql, request, this.claim.to);
  }

  /** jobsApplyOutcomes writes a batch of state changes and returns the ids the guard refused. */
  jobsApplyOutcomes(outcomes: readonly Outcome[], consumerId: string, now: Date): Promise<Set<string>> {
    return jobsApplyOutcomes(this.db, this.tables, outcomes, consumerId, now);
  }

  /** jobsWriteProgress stores the latest progress of running jobs this consumer holds at that attempt. */
  jobsWriteProgress(
    entries: readonly { jobId: string; attempt: number; progressJson: string }[],
    consumerId: string,
    now: Date,
  ): Promise<void> {
    return jobsWriteProgress(this.db, this.tables, this.claim.to, entries, consumerId, now);
  }

  /** notifyFinished announces jobs that reached a finished state outside an outcome batch. */
  notifyFinished(ids: readonly string[]): Promise<void> {
    return jobsNotifyFinished(this.db, this.tables, ids);
  }

  /** jobsNextRunAt returns the earliest run_at after `now` among claimable jobs of the given tasks. */
  jobsNextRunAt(now: Date, tasks: readonly string[]): Promise<Date | null> {
    return jobsNextRunAt(this.db, this.tables, this.claim.from, now, tasks);
  }

  /** jobWrite applies an operator's change to a job still in `from`, or returns null (see admin-statements). */
  jobWrite(id: string, from: JobState, change: OperatorChange, now: Date): Promise<Job | null> {
    return jobWrite(this.db, this.tables, id, from, change, now);
  }

  /** jobDelete deletes a job only if it is still in `from`; returns whether it did. */
  jobDelete(id: string, from: JobState): Promise<boolean> {
    return jobDelete(this.db, this.tables, id, from);
  }

  /** notifyCancel asks whichever runtime runs job `id` to cancel it (see the jobs channel's payloads). */
  notifyCancel(id: string): Promise<void> {
    return jobNotifyCancel(this.db, this.tables, id);
  }

  /** jobsList reads jobs matching `filter`, newest first, after `cursor` (an id) if given. */
  jobsList(filter: JobFilter, limit: number, cursor: string | null): Promise<Job[]> {
    return jobsList(this.db, this.tables, filter, limit, cursor);
  }

  /** jobsScan reads a keyset page of the jobs matching `filter`, in id order (see bulk-statements). */
  jobsScan(filter: JobFilter, afterId: string | null, limit: number): Promise<ScannedJob[]> {
    return jobsScan(this.db, this.tables, filter, afterId, limit);
  }

  /** jobsWriteMany applies planned changes to jobs still in their planned-from state (see bulk-statements). */
  jobsWriteMany(rows: readonly PlannedRow[], change: BulkChange, now: Date): Promise<Job[]> {
    return jobsWriteMany(this.db, this.tables, rows, change, now);
  }

  /** jobsDeleteMany deletes jobs still in the state given beside each id; returns them as they were. */
  jobsDeleteMany(rows: readonly { id: string; from: JobState }[]): Promise<Job[]> {
    return jobsDeleteMany(this.db, this.tables, rows);
  }

  /** notifyCancelMany asks whichever runtimes run the jobs `ids` to cancel them, in one statement. */
  notifyCancelMany(ids: readonly string[]): Promise<void> {
    return jobsNotifyCancel(this.db, this.tables, ids);
  }

  /** consumerRegister records a runtime that is about to claim jobs. */
  consumerRegister(consumer: ConsumerRecord, now: Date): Promise<void> {
    return consumerRegister(this.db, this.tables, consumer, now);
  }

  /** consumerHeartbeat says a consumer is alive; false means its row is gone (it was swept). */
  consumerHeartbeat(id: string, now: Date): Promise<boolean> {
    return consumerHeartbeat(this.db, this.tables, id, now);
  }

  /** consumerDelete removes a consumer that stopped cleanly. */
  consumerDelete(id: string): Promise<void> {
    return consumerDelete(this.db, this.tables, id);
  }

  /**
   * consumersSweep deletes silent consumers and takes back the jobs in state `from` whose holder is
   * gone, each as `takeBack` decides (see consumer-statements).
   */
  consumersSweep(
    silentSince: Date,
    now: Date,
    from: JobState,
    takeBack: (job: OrphanedJob) => TakeBackWrite,
  ): Promise<SweepResult> {
    return consumersSweep(this.db, this.tables, silentSince, now, from, takeBack);
  }

  /** jobsReleaseHeld gives back the jobs `consumerId` holds but `exceptIds` does not list (RELEASE). */
  jobsReleaseHeld(
    consumerId: string,
    exceptIds: readonly string[],
    from: JobState,
    to: JobState,
    now: Date,
  ): Promise<Job[]> {
    return jobsReleaseHeld(this.db, this.tables, consumerId, exceptIds, from, to, now);
  }

  /** jobGet reads one job by id, or null. */
  jobGet(id: string): Promise<Job | null> {
    return jobGet(this.db, this.tables, id);
  }

  /** queueWritePaused pauses or resumes a queue and notifies every runtime, in one statement. */
  queueWritePaused(name: string, paused: boolean, now: Date): Promise<QueueRecord> {
    return queueWritePaused(this.db, this.tables, name, paused, now);
  }

  /** queuesPausedNames reads the names of the paused queues. */
  queuesPausedNames(): Promise<string[]> {
    return queuesPausedNames(this.db, this.tables);
  }

  /** queuesList reads every row of the queues table, by name. */
  queuesList(): Promise<QueueRecord[]> {
    return queuesList(this.db, this.tables);
  }

  /** jobCountsRead returns the job counts snapshot, recounted first if taken before `staleBefore`. */
  jobCountsRead(now: Date, staleBefore: Date): Promise<JobCountsSnapshot> {
    return jobCountsRead(this.db, this.tables, now, staleBefore);
  }

  /** transitionCountsAdd adds to the per-minute transition counts and deletes minutes before `deleteBefore`. */
  transitionCountsAdd(counts: readonly TransitionCount[], deleteBefore: Date): Promise<void> {
    return transitionCountsAdd(this.db, this.tables, counts, deleteBefore);
  }

  /** transitionCountsPerMinute sums the transitions per minute and target state since `since`. */
  transitionCountsPerMinute(
    since: Date,
    queue: string | null,
    task: string | null,
  ): Promise<{ minute: Date; to: string; n: number }[]> {
    return transitionCountsPerMinute(this.db, this.tables, since, queue, task);
  }

  /** jobsDeleteFinished deletes up to `limit` jobs of finished `state` older than `finishedBefore` (see retention-statements). */
  jobsDeleteFinished(
    state: JobState,
    finishedBefore: Date,
    limit: number,
    lock: CleanerLock,
  ): Promise<DeleteBatch> {
    return jobsDeleteFinished(this.db, this.tables, state, finishedBefore, limit, lock);
  }

  /** tokenBucketsDeleteIdle deletes up to `limit` token buckets idle past their refill horizon at `now`. */
  tokenBucketsDeleteIdle(
    horizons: readonly BucketHorizon[],
    unknownSeconds: number,
    now: Date,
    limit: number,
    lock: CleanerLock,
  ): Promise<DeleteBatch> {
    return tokenBucketsDeleteIdle(this.db, this.tables, horizons, unknownSeconds, now, limit, lock);
  }

  /** consumersDeleteGone deletes up to `limit` consumer rows silent since `silentSince` that hold no job. */
  consumersDeleteGone(silentSince: Date, limit: number, lock: CleanerLock): Promise<DeleteBatch> {
    return consumersDeleteGone(this.db, this.tables, silentSince, limit, lock);
  }
}

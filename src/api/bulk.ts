import type { JobEventType, JobState } from '../../machines/job.js';
import { ValidationError } from '../core/errors.js';
import { storableText } from '../core/json.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { validateTimestamp } from '../core/time-range.js';
import { targetOf, tryTransition } from '../core/transitions.js';
import type { Job } from '../storage/job-row.js';
import type { BulkChange, JobFilter, PlannedRow } from '../storage/storage.js';
import type { AdminDeps } from './admin.js';
import { hasCriterion, JOB_FILTER_NAMES, type JobFilterOptions, toJobFilter } from './job-filter.js';

/**
 * BulkFilter selects the jobs a bulk action works on: a JobFilterOptions with at least one criterion,
 * or `{ all: true }` to mean every job on purpose (an empty filter is refused, since a lost argument
 * would otherwise act on the whole table).
 */
export interface BulkFilter extends JobFilterOptions {
  /** all must be true to act with no criterion; beside criteria it changes nothing. */
  all?: boolean;
}

/** BulkOptions tune one bulk action. */
export interface BulkOptions {
  /** batchSize is how many matching jobs each statement reads and writes, 1 to 10,000 (default 1,000). */
  batchSize?: number;
}

/** BulkCounts count what a bulk action did with the jobs it found in one state (or in all). */
export interface BulkCounts {
  /** changed counts the jobs written (for removeMany: deleted). */
  changed: number;
  /**
   * refused counts the matching jobs left as they were: the machine refuses the event in their state
   * (or situation), or they moved to another state between the read and the guarded write.
   */
  refused: number;
  /**
   * signalled counts running jobs asked to cancel (cancelMany only): their handlers' AbortSignals
   * fire, wherever they run, and they end cancelled when the handlers return, as `cancel` does.
   */
  signalled: number;
}

/** BulkResult is what a bulk action did, in total and by the state each job was found in. */
export interface BulkResult extends BulkCounts {
  byState: Partial<Record<JobState, BulkCounts>>;
}

/** BULK_BATCH_SIZE is the default batchSize: big enough that a million jobs take a thousand short statements. */
export const BULK_BATCH_SIZE = 1_000;
const BULK_BATCH_MAX = 10_000;

const BULK_FILTER_NAMES = optionNames<BulkFilter>({ ...JOB_FILTER_NAMES, all: true });
const BULK_OPTION_NAMES = optionNames<BulkOptions>({ batchSize: true });

// Walk is one bulk action: its name, its event, what its write adds to each planned row, and (for
// cancelMany) the reason a running job's handler is given.
interface Walk {
  call: string;
  event: JobEventType;
  change: (now: Date) => BulkChange;
  reason?: string;
}

/**
 * JobBulk carries out an operator's request on every job a filter selects. It walks them in id order,
 * a batch per statement (never one long transaction), asks the job machine for each job's change from
 * the state it was read in, and writes each batch with one statement guarded by those states, so a job
 * that moved on meanwhile is left alone and counted as refused. Notifications go once per batch;
 * `job:transition` (and `job:<state>`) events go per job, as for the single-job calls.
 */
export class JobBulk {
  constructor(private readonly deps: AdminDeps) {}

  /** retryMany runs the selected failed, cancelled or expired jobs again now, with fresh attempts. */
  retryMany(filter: BulkFilter, options: BulkOptions = {}): Promise<BulkResult> {
    // An expired job would expire again at its next claim: run now means no deadline (as retry does).
    return this.walk(filter, options, {
      call: 'retryMany',
      event: 'RESTART',
      change: (now) => ({ runAt: now, expiresAt: null }),
    });
  }

  /**
   * cancelMany cancels the selected unfinished jobs: waiting ones at once, running ones through their
   * AbortSignal (counted as `signalled`, still running when it returns).
   */
  cancelMany(
    filter: BulkFilter,
    reasonInput = 'cancelled by an operator',
    options: BulkOptions = {},
  ): Promise<BulkResult> {
    if (typeof reasonInput !== 'string')
      return Promise.reject(new ValidationError('reason', 'a string', reasonInput));
    const reason = storableText(reasonInput);
    return this.walk(filter, options, {
      call: 'cancelMany',
      event: 'CANCEL',
      change: () => ({ error: reason }),
      reason,
    });
  }

  /** removeMany deletes the selected jobs that are not running. */
  removeMany(filter: BulkFilter, options: BulkOptions = {}): Promise<BulkResult> {
    return this.walk(filter, options, { call: 'removeMany', event: 'REMOVE', change: () => ({}) });
  }

  /** rescheduleMany moves the selected waiting jobs to `runAt`; null parks them. */
  rescheduleMany(
    filter: BulkFilter,
    runAtInput: Date | null,
    options: BulkOptions = {},
  ): Promise<BulkResult> {
    try {
      const runAt = validateTimestamp(runAtInput, 'runAt', true);
      return this.walk(filter, options, {
        call: 'rescheduleMany',
        event: 'RESCHEDULE',
        change: () => ({ runAt }),
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async walk(filterInput: BulkFilter, options: BulkOptions, walk: Walk): Promise<BulkResult> {
    const { filter, batchSize } = checkRequest(filterInput, options, walk.call);
    const { storage, clock, events } = this.deps;
    // running is where CLAIM leads: a job there is changed by its holder, never by a row update.
    const running = targetOf('CLAIM');
    const result: BulkResult = { changed: 0, refused: 0, signalled: 0, byState: {} };
    const count = (state: JobState, what: keyof BulkCounts, n = 1) => {
      if (n === 0) return;
      result[what] += n;
      const counts = result.byState[state] ?? { changed: 0, refused: 0, signalled: 0 };
      counts[what] += n;
      result.byState[state] = counts;
    };
    let afterId: string | null = null;
    for (;;) {
      const page = await storage.jobsScan(filter, afterId, batchSize);
      if (page.length === 0) break;
      afterId = (page[page.length - 1] as { id: string }).id;
      const planned: PlannedRow[] = [];
      const signal: string[] = [];
      for (const job of page) {
        const plan = tryTransition(job, walk.event);
        if (plan === null) count(job.state, 'refused');
        else if (job.state === running) signal.push(job.id);
        else planned.push({ id: job.id, ...plan });
      }
      const now = clock.now();
      const written =
        walk.event === 'REMOVE'
          ? (await storage.jobsDeleteMany(planned)).map((job): Job => ({ ...job, state: targetOf('REMOVE') }))
          : await storage.jobsWriteMany(planned, walk.change(now), now);
      const fromOf = new Map(planned.map((row) => [row.id, row.from]));
      const unwritten = new Set(fromOf.keys());
      for (const job of written) {
        unwritten.delete(job.id);
        count(fromOf.get(job.id) as JobState, 'changed');
      }
      // What is left was planned but not written: it moved on between the read and the write.
      for (const id of unwritten) count(fromOf.get(id) as JobState, 'refused');
      if (signal.length > 0) {
        // As cancel does: the handler is aborted here if this runtime runs it, else wherever it runs.
        const elsewhere = signal.filter((id) => !this.deps.cancelHeld(id, walk.reason ?? ''));
        await storage.notifyCancelMany(elsewhere);
        count(running, 'signalled', signal.length);
      }
      await this.announce(walk.event, written);
      for (const job of written) events.emitTransition(job, fromOf.get(job.id) as JobState, walk.event, now);
      if (page.length < batchSize) break;
    }
    return result;
  }

  // announce tells other runtimes, once per batch, what the single-job calls tell them per job: jobs
  // made due wake the workers, finished jobs wake their waiters.
  private async announce(event: JobEventType, written: readonly Job[]): Promise<void> {
    if (written.length === 0) return;
    const { storage } = this.deps;
    if (event === 'RESTART' || event === 'RESCHEDULE') await storage.notifyJobsChanged();
    else if (event === 'CANCEL') await storage.notifyFinished(written.map((job) => job.id));
  }
}

// checkRequest validates a bulk action's filter and options before anything is read or written.
function checkRequest(
  filterInput: BulkFilter,
  options: BulkOptions,
  call: string,
): { filter: JobFilter; batchSize: number } {
  if (typeof filterInput !== 'object' || filterInput === null)
    throw new ValidationError('filter', `an object of ${call} criteria`, filterInput);
  // A misspelled criterion would otherwise widen the action to jobs it was meant to spare.
  assertKnownKeys(filterInput, BULK_FILTER_NAMES, call);
  if (typeof options !== 'object' || options === null)
    throw new ValidationError('options', `an object of ${call} options`, options);
  assertKnownKeys(options, BULK_OPTION_NAMES, call);
  const { all, ...criteria } = filterInput;
  if (all !== undefined && typeof all !== 'boolean') throw new ValidationError('all', 'true or false', all);
  const filter = toJobFilter(criteria);
  if (!hasCriterion(filter) && all !== true) {
    throw new ValidationError(
      'filter',
      `at least one criterion (state, task, queue, key, keyPrefix, tags, created…, finished…), or { all: true } to ${call.replace('Many', '')} every job`,
      filterInput,
    );
  }
  const batchSize = options.batchSize ?? BULK_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > BULK_BATCH_MAX) {
    throw new ValidationError('batchSize', `an integer from 1 to ${BULK_BATCH_MAX}`, options.batchSize);
  }
  return { filter, batchSize };
}

import type { JobEventType } from '../../machines/job.js';
import type { Clock } from '../core/clock.js';
import { InvalidTransitionError, JobNotFoundError, ValidationError } from '../core/errors.js';
import { storableText } from '../core/json.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { validateTimestamp } from '../core/time-range.js';
import { type PlannedTransition, planTransition } from '../core/transitions.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { Job } from '../storage/job-row.js';
import type { Storage } from '../storage/storage.js';
import { JOB_FILTER_NAMES, type JobFilterOptions, toJobFilter } from './job-filter.js';

/** ListJobsOptions filter (see JobFilterOptions) and page `runtime.listJobs`. */
export interface ListJobsOptions extends JobFilterOptions {
  /** limit is the page size, 1 to 1000 (default 100). */
  limit?: number;
  /** cursor is the `nextCursor` of the previous page. */
  cursor?: string | null;
}

/** JobPage is one page of `listJobs`, newest job first. */
export interface JobPage {
  jobs: Job[];
  /** nextCursor fetches the next page, or is null after the last one. */
  nextCursor: string | null;
}

/** AdminDeps is what the admin operations work with. */
export interface AdminDeps {
  storage: Storage;
  clock: Clock;
  events: RuntimeEvents;
  /** cancelHeld cancels a job this runtime itself runs; false if it does not hold it. */
  cancelHeld(jobId: string, reason: string): boolean;
}

const LIST_JOBS_OPTION_NAMES = optionNames<ListJobsOptions>({
  ...JOB_FILTER_NAMES,
  limit: true,
  cursor: true,
});

// RACE_ROUNDS bounds how often an operation re-reads a job that changed between its read and its write.
const RACE_ROUNDS = 5;
const ID_PATTERN = /^[1-9][0-9]{0,18}$/;

/** validateJobId returns a job id as text, or throws a ValidationError for `field`. */
export function validateJobId(id: unknown, field = 'id'): string {
  const text = typeof id === 'number' || typeof id === 'bigint' ? String(id) : id;
  if (typeof text !== 'string' || !ID_PATTERN.test(text)) {
    throw new ValidationError(field, 'a positive integer job id', id);
  }
  return text;
}

/**
 * JobAdmin carries out an operator's requests on single jobs. Each is planned by the job machine from
 * the state the job was read in and written only if the job is still in that state (re-read and
 * re-planned if it moved on), so a refused request is an InvalidTransitionError, never a silent no-op.
 */
export class JobAdmin {
  constructor(private readonly deps: AdminDeps) {}

  /** listJobs pages through jobs matching the options, newest first. */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    if (typeof options !== 'object' || options === null)
      throw new ValidationError('options', 'an object of listJobs options', options);
    // A misspelled filter would otherwise list every job, which looks like an answer.
    assertKnownKeys(options, LIST_JOBS_OPTION_NAMES, 'listJobs');
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError('limit', 'an integer from 1 to 1000', options.limit);
    }
    const { limit: _limit, cursor: _cursor, ...criteria } = options;
    const filter = toJobFilter(criteria);
    const cursor = options.cursor == null ? null : validateJobId(options.cursor, 'cursor');
    const jobs = await this.deps.storage.jobsList(filter, limit, cursor);
    const last = jobs[jobs.length - 1];
    return { jobs, nextCursor: jobs.length === limit && last ? last.id : null };
  }

  /**
   * cancel ends a job that has not finished. A waiting job is cancelled at once; a running one gets
   * its AbortSignal fired by the runtime running it and ends cancelled when its handler returns, so
   * the job returned may still be running (`waitFor` sees it end). The reason, stored as the job's
   * lastError, is free text: NUL is dropped and lone surrogates replaced, as in every error text.
   */
  async cancel(id: string, reasonInput = 'cancelled by an operator'): Promise<Job> {
    if (typeof reasonInput !== 'string') throw new ValidationError('reason', 'a string', reasonInput);
    const reason = storableText(reasonInput);
    return this.change(id, 'CANCEL', async (job, planned) => {
      if (job.state === 'running') {
        if (!this.deps.cancelHeld(job.id, reason)) await this.deps.storage.notifyCancel(job.id);
        return job;
      }
      const written = await this.deps.storage.jobWrite(
        job.id,
        job.state,
        { ...planned, finished: true, error: reason },
        this.deps.clock.now(),
      );
      if (written) await this.deps.storage.notifyFinished([written.id]);
      return written;
    });
  }

  /** retry runs a failed, cancelled or expired job again, now, with its attempts reset. */
  async retry(id: string): Promise<Job> {
    return this.change(id, 'RESTART', async (job, planned) => {
      const now = this.deps.clock.now();
      const written = await this.deps.storage.jobWrite(
        job.id,
        job.state,
        // An expired job would expire again at its next claim: run now means no deadline.
        { ...planned, runAt: now, expiresAt: null, finished: false },
        now,
      );
      if (written) await this.deps.storage.notifyJobsChanged();
      return written;
    });
  }

  /** reschedule moves a waiting job to `runAt`; null parks it until rescheduled again. */
  async reschedule(id: string, runAtInput: Date | null): Promise<Job> {
    const runAt = validateTimestamp(runAtInput, 'runAt', true);
    return this.change(id, 'RESCHEDULE', async (job, planned) => {
      const now = this.deps.clock.now();
      const written = await this.deps.storage.jobWrite(
        job.id,
        job.state,
        { ...planned, runAt, finished: false },
        now,
      );
      if (written) await this.deps.storage.notifyJobsChanged();
      return written;
    });
  }

  /** remove deletes a job that is not running; it is announced as `job:removed`. */
  async remove(id: string): Promise<Job> {
    return this.change(id, 'REMOVE', async (job, planned) => {
      if (!(await this.deps.storage.jobDelete(job.id, job.state))) return null;
      return { ...job, state: planned.to };
    });
  }

  // change reads the job, asks the machine whether `event` may happen to it, and lets `write` carry
  // it out; a null from `write` means the job moved on meanwhile, so it is read and planned again.
  private async change(
    idInput: string,
    event: JobEventType,
    write: (job: Job, planned: PlannedTransition) => Promise<Job | null>,
  ): Promise<Job> {
    const id = validateJobId(idInput);
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const job = await this.deps.storage.jobGet(id);
      if (!job) throw new JobNotFoundError(id);
      const planned = planTransition(job, { type: event });
      const written = await write(job, planned);
      if (!written) continue;
      if (written !== job) this.deps.events.emitTransition(written, job.state, event, this.deps.clock.now());
      return written;
    }
    const job = await this.deps.storage.jobGet(id);
    throw new InvalidTransitionError(
      id,
      job?.state ?? 'removed',
      event,
      `it kept changing for ${RACE_ROUNDS} tries`,
    );
  }
}

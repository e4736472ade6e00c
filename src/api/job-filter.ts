import type { JobState } from '../../machines/job.js';
import { STORED_STATES } from '../../machines/job.js';
import { ValidationError } from '../core/errors.js';
import { isStorableText } from '../core/json.js';
import { validateTimestamp } from '../core/time-range.js';
import { validateTag } from '../jobs/tags.js';
import { validateQueueName, validateTaskName } from '../jobs/tasks.js';
import type { JobFilter } from '../storage/storage.js';

/**
 * JobFilterOptions select jobs for `listJobs` and the bulk actions (`retryMany`, `cancelMany`,
 * `removeMany`, `rescheduleMany`) alike; every criterion given must match (AND). Time bounds are
 * half-open: `…After` includes its instant, `…Before` excludes it, so `{ createdAfter: t1,
 * createdBefore: t2 }` and `{ createdAfter: t2, … }` never overlap nor leave a gap.
 */
export interface JobFilterOptions {
  /** state, or several, to select (default all). */
  state?: JobState | readonly JobState[];
  /** task is the task name the jobs must have. */
  task?: string;
  /** queue is the queue the jobs must be in. */
  queue?: string;
  /** key is the exact key the jobs must have. */
  key?: string;
  /** keyPrefix selects jobs whose key starts with it; `%` and `_` in it are plain characters. */
  keyPrefix?: string;
  /** tags selects the jobs carrying every one of these tags (all of them, not any). */
  tags?: readonly string[];
  /** createdAfter selects jobs created at or after this time. */
  createdAfter?: Date;
  /** createdBefore selects jobs created before this time. */
  createdBefore?: Date;
  /** finishedAfter selects finished jobs that finished at or after this time (unfinished ones never match). */
  finishedAfter?: Date;
  /** finishedBefore selects finished jobs that finished before this time (unfinished ones never match). */
  finishedBefore?: Date;
}

/**
 * JOB_FILTER_NAMES names every key of JobFilterOptions, for the option records of the calls that
 * take a filter (spread into their own `optionNames` record, so a new criterion is listed once).
 */
export const JOB_FILTER_NAMES = {
  state: true,
  task: true,
  queue: true,
  key: true,
  keyPrefix: true,
  tags: true,
  createdAfter: true,
  createdBefore: true,
  finishedAfter: true,
  finishedBefore: true,
} as const satisfies { readonly [K in keyof Required<JobFilterOptions>]: true };

/**
 * toJobFilter validates the criteria of `options` (its other keys are the caller's to check) and
 * returns them as the storage's JobFilter, or throws a ValidationError naming the bad criterion.
 */
export function toJobFilter(options: JobFilterOptions): JobFilter {
  const filter: JobFilter = {};
  if (options.state !== undefined) {
    const states = typeof options.state === 'string' ? [options.state] : options.state;
    if (!Array.isArray(states) || !states.every((state) => STORED_STATES.includes(state))) {
      throw new ValidationError('state', `one or more of ${STORED_STATES.join(', ')}`, options.state);
    }
    filter.states = states;
  }
  if (options.task !== undefined) filter.task = validateTaskName(options.task);
  if (options.queue !== undefined) filter.queue = validateQueueName(options.queue);
  if (options.key !== undefined) filter.key = storableKeyText(options.key, 'key');
  if (options.keyPrefix !== undefined) {
    const prefix = storableKeyText(options.keyPrefix, 'keyPrefix');
    // An empty prefix matches every keyed job, which is surely not what was meant.
    if (prefix === '') throw new ValidationError('keyPrefix', 'a non-empty string', prefix);
    filter.keyPrefix = prefix;
  }
  if (options.tags !== undefined) {
    if (!Array.isArray(options.tags) || options.tags.length === 0) {
      throw new ValidationError('tags', 'an array of one or more tags', options.tags);
    }
    filter.tags = [...new Set(options.tags.map((tag, i) => validateTag(tag, `tags[${i}]`)))];
  }
  if (options.createdAfter !== undefined)
    filter.createdAfter = validateTimestamp(options.createdAfter, 'createdAfter');
  if (options.createdBefore !== undefined)
    filter.createdBefore = validateTimestamp(options.createdBefore, 'createdBefore');
  if (options.finishedAfter !== undefined)
    filter.finishedAfter = validateTimestamp(options.finishedAfter, 'finishedAfter');
  if (options.finishedBefore !== undefined)
    filter.finishedBefore = validateTimestamp(options.finishedBefore, 'finishedBefore');
  return filter;
}

/** hasCriterion says whether `filter` narrows anything: an empty filter selects every job. */
export function hasCriterion(filter: JobFilter): boolean {
  return Object.values(filter).some((value) => value !== undefined);
}

// storableKeyText checks a key or key prefix: no stored key holds NUL or a lone surrogate, and
// PostgreSQL would refuse the NUL as a parameter.
function storableKeyText(value: unknown, field: string): string {
  if (typeof value !== 'string' || !isStorableText(value)) {
    throw new ValidationError(field, 'a string without NUL (\\u0000) or lone surrogates', value);
  }
  return value;
}

/**
 * The command line's job filter: the flags that `jobchart jobs` and the bulk forms of `retry`,
 * `cancel`, `remove` and `reschedule` share, turned into the JobFilterOptions that `listJobs` and the
 * bulk actions take (which validate them again, as every caller's filter).
 */
import { type JobState, STORED_STATES } from '../machines/job.js';
import type { BulkFilter, BulkOptions } from './api/bulk.js';
import type { JobFilterOptions } from './api/job-filter.js';

/** CliError is a usage mistake: its message is printed with the usage and the exit code is 2. */
export class CliError extends Error {}

/** FILTER_FLAGS are the parseArgs options of the filter, beside --state, --task, --queue and --key. */
export const FILTER_FLAGS = {
  'key-prefix': { type: 'string' },
  tag: { type: 'string', multiple: true },
  'created-before': { type: 'string' },
  'created-after': { type: 'string' },
  'finished-before': { type: 'string' },
  'finished-after': { type: 'string' },
} as const;

/** BULK_FLAGS are the parseArgs options of the bulk commands. */
export const BULK_FLAGS = {
  all: { type: 'boolean' },
  'batch-size': { type: 'string' },
  'run-at': { type: 'string' },
  park: { type: 'boolean' },
  reason: { type: 'string' },
} as const;

/** FilterFlags are the parsed values of the filter's flags. */
export interface FilterFlags {
  state?: string[];
  task?: string;
  queue?: string;
  key?: string;
  'key-prefix'?: string;
  tag?: string[];
  'created-before'?: string;
  'created-after'?: string;
  'finished-before'?: string;
  'finished-after'?: string;
}

/** BulkFlags are the parsed values of the bulk commands' own flags. */
export interface BulkFlags {
  all?: boolean;
  'batch-size'?: string;
  'run-at'?: string;
  park?: boolean;
  reason?: string;
}

const FILTER_FLAG_NAMES: readonly (keyof FilterFlags)[] = [
  'state',
  'task',
  'queue',
  'key',
  'key-prefix',
  'tag',
  'created-before',
  'created-after',
  'finished-before',
  'finished-after',
];

/** filterFlagsGiven lists the filter flags given, as `--name`. */
export function filterFlagsGiven(values: FilterFlags): string[] {
  return FILTER_FLAG_NAMES.filter((name) => values[name] !== undefined).map((name) => `--${name}`);
}

/** filterOfFlags turns the filter flags into JobFilterOptions, or throws a CliError for `command`. */
export function filterOfFlags(command: string, values: FilterFlags): JobFilterOptions {
  const filter: JobFilterOptions = {};
  if (values.state) {
    filter.state = values.state.map((state) => {
      if (!STORED_STATES.includes(state as JobState)) {
        throw new CliError(
          `${command}: unknown state ${state} (expected one of ${STORED_STATES.join(', ')})`,
        );
      }
      return state as JobState;
    });
  }
  if (values.task !== undefined) filter.task = values.task;
  if (values.queue !== undefined) filter.queue = values.queue;
  if (values.key !== undefined) filter.key = values.key;
  if (values['key-prefix'] !== undefined) filter.keyPrefix = values['key-prefix'];
  if (values.tag !== undefined) filter.tags = values.tag;
  const time = (flag: keyof FilterFlags & `${string}-${'before' | 'after'}`) => {
    const text = values[flag];
    return text === undefined ? undefined : timeOfFlag(command, flag, text);
  };
  const bounds = {
    createdBefore: time('created-before'),
    createdAfter: time('created-after'),
    finishedBefore: time('finished-before'),
    finishedAfter: time('finished-after'),
  };
  for (const [name, value] of Object.entries(bounds)) {
    if (value !== undefined) filter[name as keyof typeof bounds] = value;
  }
  return filter;
}

/**
 * bulkRequestOfFlags turns a bulk command's flags into its filter and options: at least one filter
 * flag, or --all on purpose, as the bulk actions themselves require.
 */
export function bulkRequestOfFlags(
  command: string,
  values: FilterFlags & BulkFlags,
): { filter: BulkFilter; options: BulkOptions } {
  const filter: BulkFilter = filterOfFlags(command, values);
  if (values.all) filter.all = true;
  else if (filterFlagsGiven(values).length === 0) {
    throw new CliError(
      `${command}: expected a job id, or filter flags (--state, --task, --tag, …), or --all`,
    );
  }
  const options: BulkOptions = {};
  if (values['batch-size'] !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values['batch-size'])) {
      throw new CliError(
        `${command}: --batch-size expects a positive integer, received ${values['batch-size']}`,
      );
    }
    options.batchSize = Number(values['batch-size']);
  }
  return { filter, options };
}

/** runAtOfFlags reads reschedule's --run-at (an ISO time, or `now`) or --park (null): exactly one. */
export function runAtOfFlags(values: BulkFlags): Date | null {
  const runAt = values['run-at'];
  if ((runAt === undefined) === (values.park !== true)) {
    throw new CliError('reschedule: expected either --run-at <ISO time> or --park');
  }
  if (runAt === undefined) return null;
  return runAt === 'now' ? new Date() : timeOfFlag('reschedule', 'run-at', runAt);
}

// ISO_TIME is the start of an ISO 8601 date: Date.parse would also take "5" (the year 2005) or
// "May 1", which a script should not be able to pass by mistake.
const ISO_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}($|T)/;

// timeOfFlag reads a time flag: an ISO 8601 date (midnight UTC) or date and time (local time unless it
// names a zone, as JavaScript's Date reads it).
function timeOfFlag(command: string, flag: string, text: string): Date {
  const date = new Date(text);
  if (!ISO_TIME.test(text) || Number.isNaN(date.getTime())) {
    throw new CliError(
      `${command}: --${flag} expects an ISO time such as 2026-12-01T09:00:00Z, received ${text}`,
    );
  }
  return date;
}

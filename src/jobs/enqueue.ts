import { ValidationError } from '../core/errors.js';
import { isStorableText, toJsonText } from '../core/json.js';
import { assertKnownKeys } from '../core/known-keys.js';
import { validateTimestamp } from '../core/time-range.js';
import type { NewJob, Queryable } from '../storage/storage.js';
import { validateWithSchema } from './standard-schema.js';
import { validateTags } from './tags.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  MAX_ATTEMPTS_LIMIT,
  PRIORITY_LIMIT,
  type TaskSettings,
  validateInteger,
  validateQueueName,
  validateTaskName,
} from './tasks.js';

/** EnqueueOptions are the per-job options of `enqueue`. */
export interface EnqueueOptions {
  /** runAt is when the job may start (default now); null parks it until rescheduled. */
  runAt?: Date | null;
  /** maxAttempts overrides the task's (default 25). */
  maxAttempts?: number;
  /** priority orders due jobs: higher runs first (default 0). */
  priority?: number;
  /** queue names the job's queue (default "default"). */
  queue?: string;
  /**
   * key identifies the job for deduplication: at most one live (unfinished) job has a given key;
   * finished jobs keep theirs as history. 1 to 512 characters.
   */
  key?: string;
  /**
   * mode says what an enqueue does when a live job already has `key`: 'new' (the default) throws a
   * DuplicateJobError, 'ignore_if_exists' returns that job untouched, 'reschedule' replaces its task,
   * payload and options and resets its attempts (refused with an InvalidTransitionError while it runs).
   */
  mode?: KeyMode;
  /** expiresAt is when a job that has not started yet must no longer start; it then ends expired. */
  expiresAt?: Date;
  /**
   * tags label the job, for listJobs, bulk actions and counts to filter on: at most 32, each a letter
   * or digit then letters, digits or `_ . : / = @ -`, up to 100 characters. Repeats are dropped.
   */
  tags?: readonly string[];
  /** client inserts with the caller's pg client, inside the caller's transaction. */
  client?: Queryable;
}

/** KeyMode is what an enqueue does about a live job with the same key. */
export type KeyMode = 'new' | 'ignore_if_exists' | 'reschedule';

/** KEY_MODES lists the key modes. */
export const KEY_MODES: readonly KeyMode[] = ['new', 'ignore_if_exists', 'reschedule'];

/** KEY_MAX_LENGTH is the longest key accepted. */
export const KEY_MAX_LENGTH = 512;

/** EnqueueSpec is one job of `enqueueMany`. */
export interface EnqueueSpec extends Omit<EnqueueOptions, 'client'> {
  task: string;
  payload?: unknown;
}

/** ENQUEUE_SPEC_KEYS are the keys of an EnqueueSpec: any other is a misspelling, refused. */
export const ENQUEUE_SPEC_KEYS: readonly string[] = [
  'task',
  'payload',
  'runAt',
  'maxAttempts',
  'priority',
  'queue',
  'key',
  'mode',
  'expiresAt',
  'tags',
];

// NO_TAGS is shared by every untagged job, so that a bulk enqueue's rows compare their tags at once.
const NO_TAGS: readonly string[] = [];

/**
 * TaskLookup answers whether a task may be enqueued and with which settings (null: none known, the
 * defaults apply); it throws an UnknownTaskError for a task the runtime refuses.
 */
export type TaskLookup = (task: string) => TaskSettings | null;

/**
 * prepareJob validates one job's task, payload and options and returns the row to insert. It throws
 * a ValidationError or UnknownTaskError before anything is written; `field` prefixes error fields.
 * `traceContextJson` is the enqueuer's trace context (see Telemetry), stored as the job's.
 */
export function prepareJob(
  spec: EnqueueSpec,
  now: Date,
  lookup: TaskLookup,
  field = '',
  traceContextJson: string | null = null,
): NewJob {
  if (typeof spec !== 'object' || spec === null) {
    throw new ValidationError(field.replace(/\.$/, '') || 'job', 'an object { task, payload, ... }', spec);
  }
  assertKnownKeys(spec, ENQUEUE_SPEC_KEYS, field.replace(/\.$/, ''));
  const task = validateTaskName(spec.task, `${field}task`);
  const definition = lookup(task);
  const runAt = spec.runAt === undefined ? now : validateTimestamp(spec.runAt, `${field}runAt`, true);
  // The job's own queue and priority win; then its task's defaults (checked where it was declared).
  const queue =
    spec.queue === undefined
      ? (definition?.queue ?? 'default')
      : validateQueueName(spec.queue, `${field}queue`);
  const key = spec.key ?? null;
  // A key is compared as written: one PostgreSQL cannot store as it is would fail the insert, or,
  // with a lone surrogate turned into U+FFFD on the way, match a different key.
  if (
    key !== null &&
    (typeof key !== 'string' || key.length === 0 || key.length > KEY_MAX_LENGTH || !isStorableText(key))
  ) {
    throw new ValidationError(
      `${field}key`,
      `a string of 1 to ${KEY_MAX_LENGTH} characters, without NUL (\\u0000) or lone surrogates`,
      spec.key,
    );
  }
  if (spec.mode !== undefined && !KEY_MODES.includes(spec.mode)) {
    throw new ValidationError(`${field}mode`, `one of ${KEY_MODES.join(', ')}`, spec.mode);
  }
  if (spec.mode !== undefined && key === null) {
    throw new ValidationError(`${field}mode`, 'no mode unless a key is given', spec.mode);
  }
  const expiresAt =
    spec.expiresAt === undefined || spec.expiresAt === null
      ? null
      : validateTimestamp(spec.expiresAt, `${field}expiresAt`);
  if (expiresAt !== null && runAt !== null && expiresAt.getTime() <= runAt.getTime()) {
    throw new ValidationError(`${field}expiresAt`, `a time after runAt (${runAt.toISOString()})`, expiresAt);
  }
  return {
    task,
    queue,
    payloadJson: toJsonText(spec.payload, `${field}payload`),
    priority:
      spec.priority === undefined
        ? (definition?.priority ?? 0)
        : validateInteger(spec.priority, `${field}priority`, -PRIORITY_LIMIT, PRIORITY_LIMIT),
    runAt,
    maxAttempts:
      spec.maxAttempts === undefined
        ? (definition?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
        : validateInteger(spec.maxAttempts, `${field}maxAttempts`, 1, MAX_ATTEMPTS_LIMIT),
    key,
    mode: spec.mode ?? 'new',
    expiresAt,
    tags: spec.tags === undefined ? NO_TAGS : validateTags(spec.tags, `${field}tags`),
    traceContextJson,
  };
}

/**
 * prepareJobs prepares every job (prepareJob), then validates the payload of each whose task has a
 * schema, in order, storing the value the schema returns. All are checked before the caller writes
 * any, so a batch is written whole or not at all. `field` names the batch (`jobs`), or is '' for one.
 * Every job carries `traceContextJson`, the one context active where they were enqueued.
 */
export async function prepareJobs(
  specs: readonly EnqueueSpec[],
  now: Date,
  lookup: TaskLookup,
  field: string,
  traceContextJson: string | null = null,
): Promise<NewJob[]> {
  const prefix = (i: number) => (field ? `${field}[${i}].` : '');
  const rows = specs.map((spec, i) => prepareJob(spec, now, lookup, prefix(i), traceContextJson));
  for (const [i, row] of rows.entries()) {
    const schema = lookup(row.task)?.schema;
    if (!schema) continue;
    const value = await validateWithSchema(schema, specs[i]?.payload, `${prefix(i)}payload`);
    row.payloadJson = toJsonText(value, `${prefix(i)}payload`);
  }
  return rows;
}

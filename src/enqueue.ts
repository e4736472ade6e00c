import { ValidationError } from './errors.js';
import { toJsonText } from './json.js';
import type { NewJob, Queryable } from './storage.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  type TaskDefinition,
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
  /** client inserts with the caller's pg client, inside the caller's transaction. */
  client?: Queryable;
}

/** EnqueueSpec is one job of `enqueueMany`. */
export interface EnqueueSpec extends Omit<EnqueueOptions, 'client'> {
  task: string;
  payload?: unknown;
}

const PRIORITY_LIMIT = 32_767;

/** TaskLookup answers whether a task may be enqueued and with which definition. */
export type TaskLookup = (task: string) => TaskDefinition | null;

/**
 * prepareJob validates one job's task, payload and options and returns the row to insert. It throws
 * a ValidationError or UnknownTaskError before anything is written; `field` prefixes error fields.
 */
export function prepareJob(spec: EnqueueSpec, now: Date, lookup: TaskLookup, field = ''): NewJob {
  const task = validateTaskName(spec.task, `${field}task`);
  const definition = lookup(task);
  const runAt = spec.runAt === undefined ? now : spec.runAt;
  if (runAt !== null && !(runAt instanceof Date && Number.isFinite(runAt.getTime()))) {
    throw new ValidationError(`${field}runAt`, 'a valid Date or null', spec.runAt);
  }
  const queue = validateQueueName(spec.queue ?? 'default', `${field}queue`);
  return {
    task,
    queue,
    payloadJson: toJsonText(spec.payload, `${field}payload`),
    priority:
      spec.priority === undefined
        ? 0
        : validateInteger(spec.priority, `${field}priority`, -PRIORITY_LIMIT, PRIORITY_LIMIT),
    runAt,
    maxAttempts:
      spec.maxAttempts === undefined
        ? (definition?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)
        : validateInteger(spec.maxAttempts, `${field}maxAttempts`, 1, 1_000_000),
    key: null,
    expiresAt: null,
  };
}

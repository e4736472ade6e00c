import type { Backoff } from '../../machines/backoff.js';
import { ValidationError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { validateDelay } from '../core/time-range.js';
import type { Job } from '../storage/job-row.js';

/** JobContext is the second argument of every handler. */
export interface JobContext<Payload = unknown> {
  /** job is the job as claimed: state running, attempts counting this attempt. */
  readonly job: Job<Payload>;
  /** signal aborts when the job times out, is cancelled, or the runtime crashes or is forced to stop. */
  readonly signal: AbortSignal;
  /** logger is a child logger carrying the job id and task. */
  readonly logger: Logger;
  /**
   * progress reports how far the job has come (0 <= completed <= total): emitted at once as
   * `job:progress`, stored on the job at most every half second.
   */
  progress(completed: number, total: number): void;
}

/** TaskHandler does a job's work; what it returns is stored as the job's result, what it throws goes to the policy. */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export type TaskHandler<Payload = any> = (payload: Payload, ctx: JobContext<Payload>) => unknown;

/** TaskDefinition is a handler with its per-task options. */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export interface TaskDefinition<Payload = any> {
  handler: TaskHandler<Payload>;
  /** maxAttempts is the default number of attempts for jobs of this task (default 25). */
  maxAttempts?: number;
  /** backoff spaces retries (default exponential from 1 s to 1 h with 10 % jitter). */
  backoff?: Backoff;
  /** timeoutMs aborts an attempt that runs longer; the attempt fails with a TimeoutError. */
  timeoutMs?: number;
  /**
   * rateLimit names a bucket of the runtime's `rateLimits` each run takes a token from, or gives a
   * key per payload (`bucket:anything`, e.g. per customer). A run that finds no token is put back
   * until one is due, without spending an attempt.
   */
  rateLimit?: string | ((payload: Payload) => string);
}

/** TASK_NAME_PATTERN is what a task name may look like: a letter or _, then letters, digits, `_.:-`. */
export const TASK_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/** DEFAULT_MAX_ATTEMPTS is used when neither the job nor its task says otherwise. */
export const DEFAULT_MAX_ATTEMPTS = 25;

/**
 * MAX_ATTEMPTS_LIMIT is the most attempts a job or task may allow: far past any real retry budget,
 * and far inside the int column (a task allowing 1e12 made every enqueue of it fail with 22003).
 */
export const MAX_ATTEMPTS_LIMIT = 1_000_000;

/**
 * TIMEOUT_MS_LIMIT is the longest timeoutMs: Node's timers hold at most 2^31 - 1 ms and fire after
 * 1 ms for anything longer, which timed every attempt out at once.
 */
export const TIMEOUT_MS_LIMIT = 2 ** 31 - 1;

/** validateTaskName returns `name` if it is a well-formed task name, else throws. */
export function validateTaskName(name: unknown, field = 'task'): string {
  if (typeof name !== 'string' || !TASK_NAME_PATTERN.test(name)) {
    throw new ValidationError(field, `a task name matching ${TASK_NAME_PATTERN}`, name);
  }
  return name;
}

/** QUEUE_NAME_PATTERN is what a queue name may look like. */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** validateQueueName returns `name` if it is a valid queue name, else throws a ValidationError for `field`. */
export function validateQueueName(name: unknown, field = 'queue'): string {
  if (typeof name !== 'string' || !QUEUE_NAME_PATTERN.test(name)) {
    throw new ValidationError(field, `a queue name matching ${QUEUE_NAME_PATTERN}`, name);
  }
  return name;
}

/** validatePositiveInteger returns `value` if it is an integer >= `min`, else throws naming `field`. */
export function validateInteger(
  value: unknown,
  field: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function validateBackoff(backoff: unknown, field: string): Backoff {
  if (typeof backoff === 'function') return backoff as Backoff;
  const b = backoff as Record<string, unknown> | null;
  // Delays are bounded as rerunAfter's are: a larger one would put the retry past what a timestamptz
  // (or a Date) holds, and the job would be retried at once instead.
  const delay = (value: unknown, name: string) => validateDelay(value, `${field}.${name}`);
  switch (b?.type) {
    case 'fixed':
      delay(b.delayMs, 'delayMs');
      break;
    case 'linear':
      delay(b.stepMs, 'stepMs');
      if (b.maxMs !== undefined) delay(b.maxMs, 'maxMs');
      break;
    case 'exponential':
      if (b.baseMs !== undefined) delay(b.baseMs, 'baseMs');
      if (b.maxMs !== undefined) delay(b.maxMs, 'maxMs');
      if (b.jitter !== undefined && (typeof b.jitter !== 'number' || !(b.jitter >= 0 && b.jitter <= 1))) {
        throw new ValidationError(`${field}.jitter`, 'a fraction from 0 to 1', b.jitter);
      }
      break;
    default:
      throw new ValidationError(
        field,
        "a function or { type: 'fixed' | 'linear' | 'exponential', ... }",
        backoff,
      );
  }
  return backoff as Backoff;
}

/** defineTask checks a task's options and returns its definition, so mistakes surface where the task is written. */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export function defineTask<Payload = any>(definition: TaskDefinition<Payload>): TaskDefinition<Payload> {
  return validateTaskDefinition(definition, 'task');
}

/** validateTaskDefinition checks a handler or definition and returns it as a definition. */
export function validateTaskDefinition<Payload>(
  definition: TaskDefinition<Payload> | TaskHandler<Payload>,
  field: string,
): TaskDefinition<Payload> {
  if (typeof definition === 'function') return { handler: definition };
  if (definition === null || typeof definition !== 'object' || typeof definition.handler !== 'function') {
    throw new ValidationError(
      field,
      'a handler function or { handler, maxAttempts?, backoff?, timeoutMs?, rateLimit? }',
      definition,
    );
  }
  if (definition.maxAttempts !== undefined)
    validateInteger(definition.maxAttempts, `${field}.maxAttempts`, 1, MAX_ATTEMPTS_LIMIT);
  if (definition.timeoutMs !== undefined)
    validateInteger(definition.timeoutMs, `${field}.timeoutMs`, 1, TIMEOUT_MS_LIMIT);
  if (definition.backoff !== undefined) validateBackoff(definition.backoff, `${field}.backoff`);
  const { rateLimit } = definition;
  if (
    rateLimit !== undefined &&
    typeof rateLimit !== 'function' &&
    (typeof rateLimit !== 'string' || !rateLimit)
  ) {
    throw new ValidationError(`${field}.rateLimit`, 'a bucket name or a function of the payload', rateLimit);
  }
  return definition;
}

import type { Backoff } from '../../machines/backoff.js';
import { ValidationError } from '../core/errors.js';
import { assertKnownKeys } from '../core/known-keys.js';
import type { Logger } from '../core/logger.js';
import { validateDelay } from '../core/time-range.js';
import type { Job } from '../storage/job-row.js';
import { isStandardSchema, type StandardSchemaV1 } from './standard-schema.js';

/** JobContext is the second argument of every handler. */
export interface JobContext<Payload = unknown, Result = unknown> {
  /** job is the job as claimed: state running, attempts counting this attempt. */
  readonly job: Job<Payload, Result>;
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

/**
 * TaskHandler does a job's work; what it returns is stored as the job's result, what it throws goes to
 * the policy. Result is unknown unless the task's declaration says otherwise (see `task`). Its
 * `ctx.job` is typed by the payload only: a running job has no result yet, and so a typed handler
 * still passes where any handler of its payload is asked for (`runTask`).
 */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export type TaskHandler<Payload = any, Result = unknown> = (
  payload: Payload,
  ctx: JobContext<Payload>,
) => Result | Promise<Result>;

/**
 * TaskSettings are a task's own defaults and checks, whether declared alone (`task`) or beside its
 * handler (`defineTask`). An enqueue's own queue, priority and maxAttempts win over them.
 */
// biome-ignore lint/suspicious/noExplicitAny: tasks choose their own payload type
export interface TaskSettings<Payload = any> {
  /** maxAttempts is the default number of attempts for jobs of this task (default 25). */
  maxAttempts?: number;
  /** backoff spaces retries (default exponential from 1 s to 1 h with 10 % jitter). */
  backoff?: Backoff;
  /** timeoutMs aborts an attempt that runs longer; the attempt fails with a TimeoutError. */
  timeoutMs?: number;
  /** queue is the default queue of this task's jobs (else "default"). */
  queue?: string;
  /** priority is the default priority of this task's jobs (else 0; higher runs first). */
  priority?: number;
  /**
   * rateLimit names a bucket of the runtime's `rateLimits` each run takes a token from, or gives a
   * key per payload (`bucket:anything`, e.g. per customer). A run that finds no token is put back
   * until one is due, without spending an attempt.
   */
  rateLimit?: string | ((payload: Payload) => string);
  /**
   * schema validates every payload at enqueue (any Standard Schema v1 validator: Zod, Valibot,
   * ArkType…); a payload it refuses is a ValidationError and nothing is written. The value it
   * returns is the payload stored.
   */
  schema?: StandardSchemaV1<unknown, Payload>;
}

/** TaskDefinition is a handler with its per-task settings. */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export interface TaskDefinition<Payload = any> extends TaskSettings<Payload> {
  handler: TaskHandler<Payload>;
}

/** TASK_SETTING_KEYS are the keys a task declaration may have. */
export const TASK_SETTING_KEYS: readonly string[] = [
  'maxAttempts',
  'backoff',
  'timeoutMs',
  'queue',
  'priority',
  'rateLimit',
  'schema',
];

/** TASK_DEFINITION_KEYS are the keys a task definition (`defineTask`) may have. */
export const TASK_DEFINITION_KEYS: readonly string[] = ['handler', ...TASK_SETTING_KEYS];

/** PRIORITY_LIMIT bounds a priority either way: the column is a smallint. */
export const PRIORITY_LIMIT = 32_767;

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
      'a handler function or { handler, maxAttempts?, backoff?, timeoutMs?, queue?, priority?, rateLimit?, schema? }',
      definition,
    );
  }
  assertKnownKeys(definition, TASK_DEFINITION_KEYS, field);
  validateTaskSettings(definition, field);
  return definition;
}

/** validateTaskSettings checks every setting a task declaration or definition carries. */
export function validateTaskSettings(settings: TaskSettings, field: string): void {
  if (settings.maxAttempts !== undefined)
    validateInteger(settings.maxAttempts, `${field}.maxAttempts`, 1, MAX_ATTEMPTS_LIMIT);
  if (settings.timeoutMs !== undefined)
    validateInteger(settings.timeoutMs, `${field}.timeoutMs`, 1, TIMEOUT_MS_LIMIT);
  if (settings.backoff !== undefined) validateBackoff(settings.backoff, `${field}.backoff`);
  if (settings.queue !== undefined) validateQueueName(settings.queue, `${field}.queue`);
  if (settings.priority !== undefined)
    validateInteger(settings.priority, `${field}.priority`, -PRIORITY_LIMIT, PRIORITY_LIMIT);
  if (settings.schema !== undefined && !isStandardSchema(settings.schema)) {
    throw new ValidationError(`${field}.schema`, 'a Standard Schema v1 validator', settings.schema);
  }
  const { rateLimit } = settings;
  if (
    rateLimit !== undefined &&
    typeof rateLimit !== 'function' &&
    (typeof rateLimit !== 'string' || !rateLimit)
  ) {
    throw new ValidationError(`${field}.rateLimit`, 'a bucket name or a function of the payload', rateLimit);
  }
}

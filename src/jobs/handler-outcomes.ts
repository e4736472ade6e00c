import { errorText } from '../core/error-text.js';
import { storableText } from '../core/json.js';
import { validateDelay, validateTimestamp } from '../core/time-range.js';

const OUTCOME = Symbol('jobchart.handlerOutcome');

/**
 * HandlerOutcome is what a handler returns to end its job some other way than "succeeded with this
 * result": build one with rerunAt, rerunAfter, remove, cancel or fail.
 */
export type HandlerOutcome = { readonly [OUTCOME]: true } & (
  | { readonly kind: 'rerun'; readonly runAt: Date }
  | { readonly kind: 'rerunAfter'; readonly delayMs: number }
  | { readonly kind: 'remove' }
  | { readonly kind: 'cancel'; readonly reason: string }
  | {
      readonly kind: 'fail';
      readonly reason: string;
      /** stack is the stack of the Error given to fail(), kept with the attempt's `errors` entry. */
      readonly stack: string | null;
    }
);

/**
 * rerunAt ends the attempt and runs the job again at `runAt`, without spending an attempt. A time
 * PostgreSQL cannot store is a ValidationError here, in the handler, not a failed write later.
 */
export function rerunAt(runAt: Date): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'rerun', runAt: validateTimestamp(runAt, 'rerunAt') };
}

/**
 * rerunAfter ends the attempt and runs the job again `delayMs` later (at most MAX_DELAY_MS, 100
 * years), without spending an attempt.
 */
export function rerunAfter(delayMs: number): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'rerunAfter', delayMs: validateDelay(delayMs, 'rerunAfter') };
}

/** remove ends the job as succeeded and deletes its row: for work that needs no history. */
export function remove(): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'remove' };
}

/**
 * cancel ends the job as cancelled, recording `reason` (NUL dropped and lone surrogates replaced, as
 * for every error text, so that the reason cannot fail the write).
 */
export function cancel(reason = 'cancelled by its handler'): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'cancel', reason: storableText(String(reason)) };
}

/**
 * fail ends the job as failed for good, recording `reason` (made storable as cancel's is): no retry,
 * whatever attempts are left. An Error is recorded as a thrown one is: its name and first line as
 * the job's lastError, its stack in the attempt's `errors` entry.
 */
export function fail(reason: string | Error): HandlerOutcome {
  if (reason instanceof Error) {
    const { message, stack } = errorText(reason);
    return { [OUTCOME]: true, kind: 'fail', reason: message, stack };
  }
  return { [OUTCOME]: true, kind: 'fail', reason: storableText(String(reason)), stack: null };
}

/** isHandlerOutcome says whether a handler's return value is an outcome rather than a result. */
export function isHandlerOutcome(value: unknown): value is HandlerOutcome {
  return typeof value === 'object' && value !== null && OUTCOME in value;
}

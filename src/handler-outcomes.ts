import { ValidationError } from './errors.js';

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
  | { readonly kind: 'fail'; readonly reason: string }
);

/** rerunAt ends the attempt and runs the job again at `runAt`, without spending an attempt. */
export function rerunAt(runAt: Date): HandlerOutcome {
  if (!(runAt instanceof Date) || !Number.isFinite(runAt.getTime())) {
    throw new ValidationError('rerunAt', 'a valid Date', runAt);
  }
  return { [OUTCOME]: true, kind: 'rerun', runAt };
}

/** rerunAfter ends the attempt and runs the job again `delayMs` later, without spending an attempt. */
export function rerunAfter(delayMs: number): HandlerOutcome {
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new ValidationError('rerunAfter', 'a number of milliseconds >= 0', delayMs);
  }
  return { [OUTCOME]: true, kind: 'rerunAfter', delayMs };
}

/** remove ends the job as succeeded and deletes its row: for work that needs no history. */
export function remove(): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'remove' };
}

/** cancel ends the job as cancelled, recording `reason`. */
export function cancel(reason = 'cancelled by its handler'): HandlerOutcome {
  return { [OUTCOME]: true, kind: 'cancel', reason: String(reason) };
}

/** fail ends the job as failed for good, recording `reason`: no retry, whatever attempts are left. */
export function fail(reason: string | Error): HandlerOutcome {
  return {
    [OUTCOME]: true,
    kind: 'fail',
    reason: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
  };
}

/** isHandlerOutcome says whether a handler's return value is an outcome rather than a result. */
export function isHandlerOutcome(value: unknown): value is HandlerOutcome {
  return typeof value === 'object' && value !== null && OUTCOME in value;
}

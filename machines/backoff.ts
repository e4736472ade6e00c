/** FixedBackoff waits the same time before every retry. */
export interface FixedBackoff {
  type: 'fixed';
  delayMs: number;
}

/** LinearBackoff waits `stepMs` times the attempt number, capped at `maxMs`. */
export interface LinearBackoff {
  type: 'linear';
  stepMs: number;
  maxMs?: number;
}

/**
 * ExponentialBackoff waits `baseMs * 2^(attempt-1)`, capped at `maxMs`, then takes away up to a
 * `jitter` fraction at random so that jobs failing together do not retry together.
 */
export interface ExponentialBackoff {
  type: 'exponential';
  baseMs?: number;
  maxMs?: number;
  jitter?: number;
}

/** BackoffFunction computes the delay before the next attempt from the attempt just failed (1-based). */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** Backoff says how long a failed job waits before its next attempt. */
export type Backoff = FixedBackoff | LinearBackoff | ExponentialBackoff | BackoffFunction;

/** DEFAULT_BACKOFF is used by tasks that name none: 1 s doubling to at most 1 h, with 10 % jitter. */
export const DEFAULT_BACKOFF: ExponentialBackoff = {
  type: 'exponential',
  baseMs: 1000,
  maxMs: 3_600_000,
  jitter: 0.1,
};

/**
 * backoffDelay returns the whole number of milliseconds to wait after `attempt` failed. `random` is a
 * number in [0, 1) passed in so that the computation stays pure and testable.
 */
export function backoffDelay(backoff: Backoff, attempt: number, error: unknown, random: number): number {
  const raw = rawDelay(backoff, attempt, error, random);
  return Number.isFinite(raw) && raw > 0 ? Math.round(raw) : 0;
}

function rawDelay(backoff: Backoff, attempt: number, error: unknown, random: number): number {
  if (typeof backoff === 'function') return backoff(attempt, error);
  switch (backoff.type) {
    case 'fixed':
      return backoff.delayMs;
    case 'linear':
      return Math.min(backoff.stepMs * attempt, backoff.maxMs ?? Number.POSITIVE_INFINITY);
    case 'exponential': {
      const base = backoff.baseMs ?? DEFAULT_BACKOFF.baseMs ?? 1000;
      const max = backoff.maxMs ?? DEFAULT_BACKOFF.maxMs ?? Number.POSITIVE_INFINITY;
      const capped = Math.min(base * 2 ** Math.max(0, attempt - 1), max);
      return capped * (1 - (backoff.jitter ?? 0) * random);
    }
  }
}

import { ValidationError } from './errors.js';

/**
 * TIMESTAMP_MIN_MS is the earliest time jobchart writes, in epoch milliseconds: 4714-11-25 00:00 UTC
 * BC. PostgreSQL's timestamptz starts one day earlier (4714-11-24 BC, -210866803200000 ms, measured
 * with `extract(epoch from '4714-11-24 00:00:00+00 BC'::timestamptz)`), but pg sends a Date parameter
 * as local time, and west of UTC that first day is still 4714-11-23 locally, which PostgreSQL refuses
 * (seen with TZ=America/New_York); a day of margin holds in every time zone.
 */
export const TIMESTAMP_MIN_MS = -210_866_716_800_000;

/**
 * TIMESTAMP_MAX_MS is the latest time a JavaScript Date holds (275760-09-13 UTC). PostgreSQL's
 * timestamptz goes on to 294276 AD, so every valid Date up to here can be stored (checked as a Date
 * parameter and as epoch milliseconds).
 */
export const TIMESTAMP_MAX_MS = 8.64e15;

/**
 * MAX_DELAY_MS bounds every delay a job waits (rerunAfter, backoff options, a policy's retry delay,
 * a schedule's everyMs): 100 years of 365.25 days. No real retry waits that long, so a larger value
 * is a unit mistake worth an error, and from any time before the year 275660 the delayed time still
 * lies inside the range PostgreSQL and Date share, so a delay accepted when it is written never
 * turns into an unstorable time later.
 */
export const MAX_DELAY_MS = 100 * 365.25 * 24 * 60 * 60 * 1000;

// TIMESTAMP_EXPECTED says what validateTimestamp accepts, for error messages.
const TIMESTAMP_EXPECTED =
  "a valid Date from 4714-11-25 BC to 275760-09-13 (the range PostgreSQL's timestamptz and a Date share)";

// isStorableTime says whether `ms` (epoch milliseconds) lies in the range jobchart writes; NaN does not.
function isStorableTime(ms: number): boolean {
  return ms >= TIMESTAMP_MIN_MS && ms <= TIMESTAMP_MAX_MS;
}

/**
 * validateTimestamp returns `value` if it is a valid Date inside the range PostgreSQL's timestamptz
 * stores, else throws a ValidationError naming `field`; with `nullable`, null passes too (a parked
 * job). Checking here keeps PostgreSQL's 22008 (out of range) from surfacing as a raw DatabaseError.
 */
export function validateTimestamp(value: unknown, field: string): Date;
export function validateTimestamp(value: unknown, field: string, nullable: true): Date | null;
export function validateTimestamp(value: unknown, field: string, nullable = false): Date | null {
  if (nullable && value === null) return null;
  if (!(value instanceof Date) || !isStorableTime(value.getTime())) {
    throw new ValidationError(field, nullable ? `${TIMESTAMP_EXPECTED}, or null` : TIMESTAMP_EXPECTED, value);
  }
  return value;
}

/** validateDelay returns `value` if it is a number of milliseconds from 0 to MAX_DELAY_MS, else throws naming `field`. */
export function validateDelay(value: unknown, field: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_DELAY_MS)) {
    throw new ValidationError(field, `a number of milliseconds from 0 to ${MAX_DELAY_MS} (100 years)`, value);
  }
  return value;
}

/**
 * delayedTime returns `delayMs` after `now`, or a ValidationError naming `field` if the delay is not a
 * number from 0 to MAX_DELAY_MS or the time falls outside the storable range. It is for times
 * computed at run time (a backoff function or a policy may answer anything): the caller turns the
 * error into the job's failure, since writing an invalid time would rerun the job at once.
 */
export function delayedTime(
  now: Date,
  delayMs: number,
  field: string,
  jobId: string,
): Date | ValidationError {
  const at = now.getTime() + delayMs;
  if (delayMs >= 0 && delayMs <= MAX_DELAY_MS && isStorableTime(at)) return new Date(at);
  return new ValidationError(
    field,
    `a delay for job ${jobId} from 0 to ${MAX_DELAY_MS} ms (100 years) ending by 275760-09-13`,
    delayMs,
  );
}

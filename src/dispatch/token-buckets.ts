import { ValidationError } from '../core/errors.js';
import { isStorableText } from '../core/json.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { MAX_DELAY_MS } from '../core/time-range.js';
import { type Tables, tablesOf } from '../storage/tables.js';
import { tokenBucketReadWait, tokenBucketTake } from '../storage/token-bucket-statements.js';
import type { Queryable } from '../storage/types.js';

/** RateLimit is a token bucket: it holds up to `capacity` tokens and gains `refillPerSecond` a second. */
export interface RateLimit {
  capacity: number;
  refillPerSecond: number;
}

const RATE_LIMIT_OPTION_NAMES = optionNames<RateLimit>({ capacity: true, refillPerSecond: true });

/** validateRateLimits checks the `rateLimits` option and returns the buckets by name. */
export function validateRateLimits(limits: unknown): Map<string, RateLimit> {
  if (limits === undefined) return new Map();
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    throw new ValidationError(
      'rateLimits',
      'an object of { [bucket]: { capacity, refillPerSecond } }',
      limits,
    );
  }
  const buckets = new Map<string, RateLimit>();
  for (const [name, limit] of Object.entries(limits as Record<string, Partial<RateLimit>>)) {
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) {
      throw new ValidationError(`rateLimits.${name}`, 'a bucket name of letters, digits, _ . -', name);
    }
    // Checked first: a misspelled refillPerSecond is better named as such than as a missing one.
    if (typeof limit === 'object' && limit !== null)
      assertKnownKeys(limit, RATE_LIMIT_OPTION_NAMES, `rateLimits.${name}`);
    const capacity = limit?.capacity;
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) {
      throw new ValidationError(`rateLimits.${name}.capacity`, 'an integer >= 1', capacity);
    }
    const refill = limit?.refillPerSecond;
    if (typeof refill !== 'number' || !Number.isFinite(refill) || refill <= 0) {
      throw new ValidationError(`rateLimits.${name}.refillPerSecond`, 'a number > 0', refill);
    }
    buckets.set(name, { capacity, refillPerSecond: refill });
  }
  return buckets;
}

/**
 * bucketOf splits a rate-limit key into its configured bucket and the key itself: `smtp` is bucket
 * smtp, `smtp:customer-42` is bucket smtp's own bucket for customer 42 (same capacity and rate).
 */
export function bucketOf(key: string): string {
  const colon = key.indexOf(':');
  return colon === -1 ? key : key.slice(0, colon);
}

/**
 * TokenBuckets keeps rate-limit buckets in the database, so that a limit holds across every runtime.
 * A take is one statement on the bucket's row: refill it by the time passed (on the runtime's
 * clock), then spend one token if there is one.
 */
export class TokenBuckets {
  private readonly tables: Tables;

  constructor(
    private readonly db: Queryable,
    schema: string,
  ) {
    this.tables = tablesOf(schema);
  }

  /**
   * take spends a token of bucket `key` at `now`; null if it got one, else when the next one is due.
   * A key PostgreSQL cannot store as it is (a rateLimit function's, from the payload) is a
   * ValidationError, which fails the attempt like any error of the job's.
   */
  async take(key: string, limit: RateLimit, now: Date): Promise<Date | null> {
    if (!isStorableText(key)) {
      throw new ValidationError('rateLimit', 'a bucket key without NUL (\\u0000) or lone surrogates', key);
    }
    if (await tokenBucketTake(this.db, this.tables, key, limit, now)) return null;
    const wait = await tokenBucketReadWait(this.db, this.tables, key, limit, now);
    // A bucket refilling very slowly may name a wait past any storable time: it is capped like every delay.
    const waitMs = Math.min(MAX_DELAY_MS, Math.max(1, Math.ceil(wait ?? 1)));
    return new Date(now.getTime() + waitMs);
  }
}

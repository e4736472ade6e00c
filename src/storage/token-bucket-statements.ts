import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

// REFILLED is the bucket's token count at $3 (the runtime's clock, not the server's): what it held,
// plus the refill for the time passed since its last refill, at most the capacity ($2).
const REFILLED = `LEAST($2::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM ($3::timestamptz - b.refilled_at))) * $4::float8)`;

/**
 * tokenBucketTake spends one token of bucket `key` at `now`, in one statement on the bucket's row:
 * refill it by the time passed, then spend a token if there is one. A bucket seen for the first time
 * starts full. Returns whether it got a token.
 */
export async function tokenBucketTake(
  db: Queryable,
  tables: Tables,
  key: string,
  limit: { capacity: number; refillPerSecond: number },
  now: Date,
): Promise<boolean> {
  const taken = await db.query(
    `INSERT INTO ${tables.tokenBuckets} AS b (ident, tokens, refilled_at) VALUES ($1, $2::float8 - 1, $3)
       ON CONFLICT (ident) DO UPDATE SET tokens = ${REFILLED} - 1, refilled_at = GREATEST(b.refilled_at, $3)
        WHERE ${REFILLED} >= 1
       RETURNING tokens`,
    [key, limit.capacity, now, limit.refillPerSecond],
  );
  return taken.rowCount === 1;
}

/**
 * tokenBucketReadWait reads how many milliseconds after `now` bucket `key` holds a whole token again,
 * or null if the bucket has no row.
 */
export async function tokenBucketReadWait(
  db: Queryable,
  tables: Tables,
  key: string,
  limit: { capacity: number; refillPerSecond: number },
  now: Date,
): Promise<number | null> {
  const result = await db.query<{ wait_ms: number }>(
    `SELECT (1 - ${REFILLED}) / $4::float8 * 1000 AS wait_ms FROM ${tables.tokenBuckets} AS b WHERE b.ident = $1`,
    [key, limit.capacity, now, limit.refillPerSecond],
  );
  const row = result.rows[0];
  return row === undefined ? null : Number(row.wait_ms);
}

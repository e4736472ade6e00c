/**
 * The raw-SQL ceiling: no runtime and no history beyond a state column. Draining is two loops that
 * each claim 500 ready rows with FOR UPDATE SKIP LOCKED and mark them done, as fast as the database
 * allows; enqueueing is one INSERT per batch from an array parameter. No concurrency setting, and no
 * worker to measure start latency on.
 */
import type pg from 'pg';
import { quietPool } from '../database.js';
import { batchSizes, DrainTimer, ratePerSecond, type System } from './system.js';

const CLAIM = 500;
const LOOPS = 2;

/** createTable makes the minimal jobs table and its claim index. */
async function createTable(pool: pg.Pool): Promise<void> {
  await pool.query(`CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, task text NOT NULL, payload jsonb,
                      state text NOT NULL DEFAULT 'ready', run_at timestamptz NOT NULL DEFAULT now())`);
  await pool.query(`CREATE INDEX raw_jobs_ready ON raw_jobs (id) WHERE state = 'ready'`);
}

/** insertNoops inserts `total` rows, one statement per batch, and returns rows per second. */
async function insertNoops(pool: pg.Pool, total: number): Promise<number> {
  const startedAt = performance.now();
  for (const size of batchSizes(total)) {
    await pool.query(`INSERT INTO raw_jobs (task, payload) SELECT 'noop', p FROM unnest($1::jsonb[]) AS p`, [
      Array.from({ length: size }, () => '{}'),
    ]);
  }
  return ratePerSecond(total, startedAt);
}

/** claimLoop claims and finishes batches until none is left. */
async function claimLoop(pool: pg.Pool): Promise<void> {
  for (;;) {
    const claimed = await pool.query<{ id: string }>(
      `UPDATE raw_jobs SET state = 'running' WHERE id IN
         (SELECT id FROM raw_jobs WHERE state = 'ready' ORDER BY id LIMIT ${CLAIM} FOR UPDATE SKIP LOCKED)
       RETURNING id`,
    );
    if (claimed.rowCount === 0) return;
    await pool.query(`UPDATE raw_jobs SET state = 'done' WHERE id = ANY($1::bigint[])`, [
      claimed.rows.map((row) => row.id),
    ]);
  }
}

/** rawSqlSystem is the hand-written SQL ceiling. */
export function rawSqlSystem(): System {
  return {
    id: 'raw-sql',
    label: `raw SQL (claim ${CLAIM}, ${LOOPS} loops)`,
    config: `${LOOPS} loops, each UPDATE ... claiming ${CLAIM} rows FOR UPDATE SKIP LOCKED then marking them done; enqueue: INSERT ... SELECT FROM unnest($1::jsonb[])`,
    drainTakesConcurrency: false,
    async drain(connectionString, total) {
      const pool = quietPool(connectionString, LOOPS);
      try {
        await createTable(pool);
        await pool.query(
          `INSERT INTO raw_jobs (task, payload) SELECT 'noop', '{}'::jsonb FROM generate_series(1, $1)`,
          [total],
        );
        // A ceiling must not depend on luck: without statistics the claim's planner reads and sorts
        // every ready row on each claim (about 52 µs of server time per job where it otherwise takes
        // 31), and whether autovacuum has analyzed a fresh table when the drain starts is a matter of
        // timing. Analyzed, the loop runs at its best in every round.
        await pool.query('ANALYZE raw_jobs');
        const timer = new DrainTimer();
        await Promise.all(Array.from({ length: LOOPS }, () => claimLoop(pool)));
        return timer.finish(total);
      } finally {
        await pool.end();
      }
    },
    async enqueue(connectionString, total) {
      const pool = quietPool(connectionString, 1);
      try {
        await createTable(pool);
        return await insertNoops(pool, total);
      } finally {
        await pool.end();
      }
    },
  };
}

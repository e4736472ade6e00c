/**
 * The raw-SQL ceiling: no runtime and no history beyond a state column. Draining is two loops that
 * each claim 500 ready rows with FOR UPDATE SKIP LOCKED and mark them done, as fast as the database
 * allows; enqueueing is one INSERT per batch from an array parameter. No concurrency setting, and no
 * worker to measure start latency on.
 *
 * The same two loops also drain jobchart's own jobs table, writing the columns jobchart's claim and
 * outcome write: the gap between the two loops is what the table costs (its width, its indexes,
 * the history it keeps), and the gap between that loop and jobchart is what the runtime costs.
 */
import type pg from 'pg';
import { quietPool } from '../database.js';
import { enqueueNoops } from './jobchart.js';
import { batchSizes, type DrainFigures, DrainTimer, ratePerSecond, type System } from './system.js';

const CLAIM = 500;
/** LOOPS is how many loops drain in parallel, each on a connection of its own. */
export const LOOPS = 2;

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

/** LoopStatements are a loop's claim (returning the claimed ids) and its finish (taking them as $1). */
interface LoopStatements {
  claim: string;
  finish: string;
}

const MINIMAL_TABLE: LoopStatements = {
  claim: `UPDATE raw_jobs SET state = 'running' WHERE id IN
            (SELECT id FROM raw_jobs WHERE state = 'ready' ORDER BY id LIMIT ${CLAIM} FOR UPDATE SKIP LOCKED)
          RETURNING id`,
  finish: `UPDATE raw_jobs SET state = 'done' WHERE id = ANY($1::bigint[])`,
};

// JOBS_TABLE claims as jobchart's claim does (its claimable states, its order, an attempt spent,
// the holder and the times set) and finishes as its outcome write does (succeeded, holder cleared).
const JOBS_TABLE: LoopStatements = {
  claim: `UPDATE jobchart.jobs SET state = 'running', attempts = attempts + 1, locked_by = 'raw-sql',
                 locked_at = now(), updated_at = now()
           WHERE id IN (SELECT id FROM jobchart.jobs
                         WHERE state IN ('not_started', 'retry', 'interrupted') AND run_at IS NOT NULL
                           AND run_at <= now()
                         ORDER BY priority DESC, run_at, id LIMIT ${CLAIM} FOR UPDATE SKIP LOCKED)
          RETURNING id`,
  finish: `UPDATE jobchart.jobs SET state = 'succeeded', finished_at = now(), locked_by = NULL, locked_at = NULL,
                  updated_at = now()
            WHERE id = ANY($1::bigint[])`,
};

/** claimLoop claims and finishes batches until none is left. */
async function claimLoop(pool: pg.Pool, statements: LoopStatements): Promise<void> {
  for (;;) {
    const claimed = await pool.query<{ id: string }>(statements.claim);
    if (claimed.rowCount === 0) return;
    await pool.query(statements.finish, [claimed.rows.map((row) => row.id)]);
  }
}

/**
 * drainLoops analyzes `table` and times LOOPS loops draining it. A ceiling must not depend on luck:
 * without statistics the claim's planner reads and sorts every ready row on each claim (about 52 µs
 * of server time per job where it otherwise takes 31), and whether autovacuum has analyzed a fresh
 * table when the drain starts is a matter of timing. Analyzed, the loops run at their best in every
 * round.
 */
async function drainLoops(
  connectionString: string,
  pool: pg.Pool,
  table: string,
  statements: LoopStatements,
  total: number,
): Promise<DrainFigures> {
  await pool.query(`ANALYZE ${table}`);
  const timer = await DrainTimer.start(connectionString);
  await Promise.all(Array.from({ length: LOOPS }, () => claimLoop(pool, statements)));
  return await timer.finish(total);
}

/** fillMinimalTable creates the minimal table and inserts `total` ready rows into it. */
export async function fillMinimalTable(pool: pg.Pool, total: number): Promise<void> {
  await createTable(pool);
  await pool.query(
    `INSERT INTO raw_jobs (task, payload) SELECT 'noop', '{}'::jsonb FROM generate_series(1, $1)`,
    [total],
  );
}

/** drainMinimalTable times the loops draining the minimal table on `pool`. */
export function drainMinimalTable(
  connectionString: string,
  pool: pg.Pool,
  total: number,
): Promise<DrainFigures> {
  return drainLoops(connectionString, pool, 'raw_jobs', MINIMAL_TABLE, total);
}

/** drainJobsTable times the loops draining jobchart's jobs table (filled by enqueueNoops) on `pool`. */
export function drainJobsTable(
  connectionString: string,
  pool: pg.Pool,
  total: number,
): Promise<DrainFigures> {
  return drainLoops(connectionString, pool, 'jobchart.jobs', JOBS_TABLE, total);
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
        await fillMinimalTable(pool, total);
        return await drainMinimalTable(connectionString, pool, total);
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

/**
 * rawSqlOnJobsTableSystem is the same loops on jobchart's jobs table, filled by jobchart's bulk
 * enqueue: a drain-only reference for what the table itself costs.
 */
export function rawSqlOnJobsTableSystem(): System {
  return {
    id: 'raw-sql-jobs-table',
    label: "raw SQL on jobchart's table",
    config: `${LOOPS} loops on jobchart.jobs (migrated and filled by jobchart), each UPDATE ... claiming ${CLAIM} rows FOR UPDATE SKIP LOCKED as jobchart's claim does (state, attempts, holder, times) then marking them succeeded as its outcome write does`,
    drainTakesConcurrency: false,
    async drain(connectionString, total) {
      await enqueueNoops(connectionString, total);
      const pool = quietPool(connectionString, LOOPS);
      try {
        return await drainJobsTable(connectionString, pool, total);
      } finally {
        await pool.end();
      }
    },
  };
}

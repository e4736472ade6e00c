/**
 * compare-drain measures the drain workload for jobchart, graphile-worker, pg-boss and a raw-SQL ceiling in one run: each system
 * gets a fresh database, 20,000 no-op jobs enqueued in bulk (batches of 1,000), then a worker with 10
 * jobs at once; the clock stops when the database shows every job finished (durably written). Runs
 * are interleaved and each figure is the median of `rounds` runs, so ratios come from one run.
 *
 * Usage: DATABASE_URL=... node dist/bench/compare-drain.js [--quick] [jobs=20000] [rounds=3]
 *   (`npm run bench` runs it, with an embedded PostgreSQL when DATABASE_URL is unset; --quick: 2,000 jobs, 1 round)
 */
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { pino } from 'pino';
import { createRuntime } from '../src/index.js';

const CONCURRENCY = 10;

interface System {
  name: string;
  /** drain enqueues `total` jobs into the fresh database and returns jobs per second drained. */
  drain(connectionString: string, total: number): Promise<number>;
}

async function withFreshDatabase<T>(baseUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  const name = `bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
  }
}

// untilEmpty polls the database, the one completion signal every system shares: a job counts as
// done only once its final state is written.
async function untilEmpty(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (;;) {
      const result = await client.query<{ n: string }>(sql);
      if (Number(result.rows[0]?.n) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    await client.end();
  }
}

function jobchart(prefetch: number): System {
  return {
    name: prefetch > 0 ? `jobchart (prefetch ${prefetch})` : 'jobchart (defaults)',
    async drain(connectionString, total) {
      const logger = pino({ level: 'warn' });
      const producer = createRuntime({ connectionString, logger });
      await producer.start();
      for (let i = 0; i < total; i += 1000) {
        await producer.enqueueMany(
          Array.from({ length: Math.min(1000, total - i) }, () => ({ task: 'noop' })),
        );
      }
      await producer.stop();
      const worker = createRuntime({
        connectionString,
        logger,
        maxRunningJobs: CONCURRENCY,
        prefetch,
        tasks: { noop: () => undefined },
      });
      const start = performance.now();
      await worker.start();
      await untilEmpty(
        connectionString,
        `SELECT count(*) AS n FROM jobchart.jobs WHERE state <> 'succeeded'`,
      );
      const seconds = (performance.now() - start) / 1000;
      await worker.stop();
      return total / seconds;
    },
  };
}

function graphile(batched: boolean): System {
  return {
    name: batched ? 'graphile-worker 0.18 (batched)' : 'graphile-worker 0.18 (defaults)',
    async drain(connectionString, total) {
      const logger = new Logger(() => () => undefined);
      // pgPool is the bench's own, so that it is ended (and its errors handled) before the drop.
      const pgPool = new pg.Pool({ connectionString, max: 12 });
      pgPool.on('error', () => undefined);
      pgPool.on('connect', (client) => client.on('error', () => undefined));
      const utils = await makeWorkerUtils({ pgPool, logger });
      await utils.migrate();
      for (let i = 0; i < total; i += 1000) {
        await utils.addJobs(
          Array.from({ length: Math.min(1000, total - i) }, () => ({ identifier: 'noop', payload: {} })),
        );
      }
      await utils.release();
      const start = performance.now();
      const runner = await run({
        pgPool,
        concurrency: CONCURRENCY,
        noHandleSignals: true,
        logger,
        taskList: { noop: async () => undefined },
        ...(batched
          ? {
              preset: {
                worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
              },
            }
          : {}),
      });
      await untilEmpty(connectionString, 'SELECT count(*) AS n FROM graphile_worker.jobs');
      const seconds = (performance.now() - start) / 1000;
      await runner.stop();
      await pgPool.end();
      return total / seconds;
    },
  };
}

// pgBoss follows the configuration DESIGN.md measured: four workers each fetching batches of 250.
function pgBoss(): System {
  return {
    name: 'pg-boss 10.4 (4 workers, batchSize 250)',
    async drain(connectionString, total) {
      const boss = new PgBoss({ connectionString, max: 8 });
      boss.on('error', () => undefined);
      await boss.start();
      await boss.createQueue('noop');
      for (let i = 0; i < total; i += 1000) {
        await boss.insert(
          Array.from({ length: Math.min(1000, total - i) }, () => ({ name: 'noop', data: {} })),
        );
      }
      const start = performance.now();
      for (let w = 0; w < 4; w++) {
        await boss.work('noop', { batchSize: 250, pollingIntervalSeconds: 0.5 }, async () => undefined);
      }
      await untilEmpty(
        connectionString,
        `SELECT count(*) AS n FROM pgboss.job WHERE name = 'noop' AND state <> 'completed'`,
      );
      const seconds = (performance.now() - start) / 1000;
      await boss.stop({ graceful: false, wait: true });
      return total / seconds;
    },
  };
}

// rawSql is the ceiling: no runtime, no history beyond a state column, two loops that each claim 500
// rows with SKIP LOCKED and mark them done, as fast as the database allows.
function rawSql(): System {
  return {
    name: 'raw SQL (claim 500, two loops)',
    async drain(connectionString, total) {
      const pool = new pg.Pool({ connectionString, max: 2 });
      pool.on('error', () => undefined);
      await pool.query(`CREATE TABLE raw_jobs (id bigserial PRIMARY KEY, task text NOT NULL, payload jsonb,
                          state text NOT NULL DEFAULT 'ready', run_at timestamptz NOT NULL DEFAULT now())`);
      await pool.query(`CREATE INDEX raw_jobs_ready ON raw_jobs (id) WHERE state = 'ready'`);
      await pool.query(
        `INSERT INTO raw_jobs (task, payload) SELECT 'noop', '{}'::jsonb FROM generate_series(1, $1)`,
        [total],
      );
      const loop = async () => {
        for (;;) {
          const claimed = await pool.query<{ id: string }>(
            `UPDATE raw_jobs SET state = 'running' WHERE id IN
               (SELECT id FROM raw_jobs WHERE state = 'ready' ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)
             RETURNING id`,
          );
          if (claimed.rowCount === 0) return;
          await pool.query(`UPDATE raw_jobs SET state = 'done' WHERE id = ANY($1::bigint[])`, [
            claimed.rows.map((row) => row.id),
          ]);
        }
      };
      const start = performance.now();
      await Promise.all([loop(), loop()]);
      const seconds = (performance.now() - start) / 1000;
      await pool.end();
      return total / seconds;
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const [jobsArg, roundsArg] = args.filter((arg) => !arg.startsWith('--'));
  const total = Number(jobsArg ?? (quick ? 2_000 : 20_000));
  const rounds = Number(roundsArg ?? (quick ? 1 : 3));
  const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test';
  const systems = [jobchart(0), jobchart(500), graphile(false), graphile(true), pgBoss(), rawSql()];
  const runs = new Map<string, number[]>(systems.map((s) => [s.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const system of systems) {
      const rate = await withFreshDatabase(baseUrl, (url) => system.drain(url, total));
      runs.get(system.name)?.push(rate);
      process.stderr.write(`round ${round + 1}: ${system.name} ${Math.round(rate)} jobs/s\n`);
    }
  }
  const medians = new Map([...runs].map(([name, rates]) => [name, median(rates)]));
  const reference = medians.get('jobchart (prefetch 500)') ?? Number.NaN;
  console.log(`| system | jobs/s drained (median of ${rounds}) | jobchart (prefetch 500) ÷ system |`);
  console.log('| --- | --- | --- |');
  for (const [name, rate] of medians) {
    console.log(`| ${name} | ${Math.round(rate)} | ${(reference / rate).toFixed(2)}× |`);
  }
}

await main();

/**
 * What `runtime.stats()` costs. On a fresh database it seeds a jobs table of `--rows` finished and
 * waiting jobs (several queues, tasks and states), then measures:
 *   1. stats() latency: a read that recounts the snapshot (statsMaxAgeMs 0) and a read of the
 *      snapshot within its max age;
 *   2. the drain of `--drain` no-op jobs over that table by a default worker, without and with a
 *      producer in the same process calling stats() every second (statsMaxAgeMs `--max-age`, by
 *      default the default), in
 *      alternating order over `--rounds` rounds; the ratio is taken within each round.
 *
 * Usage: DATABASE_URL=... node dist/bench/stats-cost.js [--rows=1000000] [--drain=100000] [--rounds=3] [--max-age=5000]
 */
import { createRuntime } from '../src/index.js';
import { execute, withFreshDatabase } from './database.js';
import { median, percentile } from './stats.js';
import { drainBacklog, enqueueNoops, quietLogger } from './systems/jobchart.js';

// SEED_SQL inserts $1 jobs over a day: four queues, five tasks, most succeeded, some failed,
// cancelled or parked (not_started without run_at, so that the drain does not claim them).
const SEED_SQL = `
  INSERT INTO jobchart.jobs (task, queue, state, run_at, attempts, created_at, created_by, finished_at, updated_at)
  SELECT 'task' || (g % 5), CASE WHEN g % 4 = 0 THEN 'default' ELSE 'q' || (g % 4) END,
         CASE WHEN g % 50 = 0 THEN 'failed' WHEN g % 70 = 0 THEN 'cancelled'
              WHEN g % 90 = 0 THEN 'not_started' ELSE 'succeeded' END,
         CASE WHEN g % 90 = 0 AND g % 50 <> 0 AND g % 70 <> 0 THEN NULL ELSE t END, 1, t, 'bench-stats',
         CASE WHEN g % 90 = 0 AND g % 50 <> 0 AND g % 70 <> 0 THEN NULL ELSE t END, t
  FROM (SELECT g, now() - interval '1 day' + g * (interval '1 day' / $1) AS t
          FROM generate_series(1, $1::int) AS g) AS s`;

function flag(name: string, fallback: number): number {
  const given = process.argv.find((arg) => arg.startsWith(`--${name}=`));
  const value = given === undefined ? fallback : Number(given.slice(name.length + 3));
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: expected a positive integer`);
  return value;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

// timeStats returns the milliseconds each of `calls` stats() calls took, one after another.
async function timeStats(url: string, statsMaxAgeMs: number, calls: number): Promise<number[]> {
  const runtime = createRuntime({ connectionString: url, logger: quietLogger(), statsMaxAgeMs });
  await runtime.start();
  try {
    await runtime.stats(); // the first call recounts (or reads) before the timed ones
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const startedAt = performance.now();
      await runtime.stats();
      times.push(performance.now() - startedAt);
    }
    return times;
  } finally {
    await runtime.stop();
  }
}

// drainOnce enqueues `jobs` no-op jobs and times their drain by a default worker, with a producer
// calling stats() every second meanwhile when `polled`.
async function drainOnce(
  url: string,
  jobs: number,
  polled: boolean,
): Promise<{ rate: number; calls: number }> {
  await enqueueNoops(url, jobs);
  await execute(url, ['VACUUM ANALYZE jobchart.jobs']);
  const statsMaxAgeMs = flag('max-age', 5_000);
  const poller = polled
    ? createRuntime({ connectionString: url, logger: quietLogger(), statsMaxAgeMs })
    : null;
  await poller?.start();
  let calls = 0;
  let timer: NodeJS.Timeout | null = null;
  const poll = () => {
    if (!poller) return;
    void poller.stats().then(() => {
      calls++;
    });
    timer = setTimeout(poll, 1000);
  };
  try {
    poll();
    const figures = await drainBacklog(url, jobs, 10);
    return { rate: figures.jobsPerSecond, calls };
  } finally {
    if (timer) clearTimeout(timer);
    await poller?.stop();
  }
}

async function main(): Promise<void> {
  const rows = flag('rows', 1_000_000);
  const drainJobs = flag('drain', 100_000);
  const rounds = flag('rounds', 3);
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test';
  await withFreshDatabase(base, async (url) => {
    const seedStart = performance.now();
    await enqueueNoops(url, 0, () => execute(url, [SEED_SQL, [rows]]));
    await execute(url, ['VACUUM ANALYZE jobchart.jobs']);
    await execute(url, ['CHECKPOINT']).catch(() => undefined);
    log(`seeded ${rows} jobs in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    const recount = await timeStats(url, 0, 5);
    log(
      `stats() that recounts ${rows} rows: median ${median(recount).toFixed(1)} ms, each ${recount.map((t) => t.toFixed(1)).join(', ')} ms`,
    );
    const cached = await timeStats(url, 3_600_000, 200);
    log(
      `stats() within the max age: median ${median(cached).toFixed(2)} ms, p99 ${percentile(cached, 0.99).toFixed(2)} ms (200 calls)`,
    );
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [false, true] : [true, false];
      const rates = new Map<boolean, number>();
      let calls = 0;
      for (const polled of order) {
        const run = await drainOnce(url, drainJobs, polled);
        rates.set(polled, run.rate);
        if (polled) calls = run.calls;
      }
      const without = rates.get(false) as number;
      const withStats = rates.get(true) as number;
      ratios.push(withStats / without);
      log(
        `round ${round + 1}: drain of ${drainJobs} jobs over ${rows}+ rows: ${without.toFixed(0)} jobs/s without stats(), ${withStats.toFixed(0)} jobs/s with stats() every second (${calls} calls): ratio ${(withStats / without).toFixed(3)}`,
      );
    }
    log(`median ratio (with / without): ${median(ratios).toFixed(3)}`);
  });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

/**
 * The cleaning workload's measurement: how much the retention cleaner slows jobchart's drain while
 * it deletes a large number of old rows. A run seeds `oldRows` succeeded jobs that finished two to
 * three days ago (past the default one-day retention of succeeded jobs) straight into jobchart.jobs,
 * enqueues the backlog on top, vacuums, analyzes and checkpoints, then times a default worker, whose
 * cleaner starts its first pass at once and deletes the old rows in batches while the worker drains.
 * The same drain runs on an empty table (the reference) and, to tell the rows' cost from the
 * cleaner's, over the same old rows with `retention: false` (nothing deleted).
 */
import pg from 'pg';
import { createRuntime } from '../src/index.js';
import { execute, untilDone } from './database.js';
import { enqueueNoops, quietLogger, UNFINISHED_SQL } from './systems/jobchart.js';
import { DrainTimer } from './systems/system.js';

/** CleaningRun is one measurement of the cleaning workload. */
export interface CleaningRun {
  /** jobsPerSecond drained. */
  jobsPerSecond: number;
  /** deletedDuringDrain counts the old rows gone when the drain ended. */
  deletedDuringDrain: number;
  /** cleanSeconds is how long the cleaner's first pass took (NaN when it did not run). */
  cleanSeconds: number;
}

/** OLD_ROWS_SQL inserts $1 succeeded no-op jobs that finished between three and two days ago. */
const OLD_ROWS_SQL = `
  INSERT INTO jobchart.jobs (task, state, run_at, attempts, created_at, created_by, locked_at, finished_at, updated_at)
  SELECT 'noop', 'succeeded', t, 1, t, 'bench-cleaning', t, t + interval '2 ms', t + interval '2 ms'
  FROM (SELECT now() - interval '3 days' + g * (interval '1 day' / $1) AS t FROM generate_series(1, $1::int) AS g) AS s`;

/** OLD_LEFT_SQL counts the seeded rows still there. */
const OLD_LEFT_SQL = `SELECT count(*)::int AS n FROM jobchart.jobs WHERE created_by = 'bench-cleaning'`;

/**
 * drainWhileCleaning measures one drain of `drainJobs` over `oldRows` old finished jobs, the worker
 * cleaning with the default retention (`clean`) or keeping everything.
 */
export async function drainWhileCleaning(
  url: string,
  drainJobs: number,
  oldRows: number,
  clean: boolean,
): Promise<CleaningRun> {
  await enqueueNoops(url, drainJobs, async () => {
    if (oldRows > 0) await execute(url, [OLD_ROWS_SQL, [oldRows]]);
  });
  await execute(url, ['VACUUM ANALYZE jobchart.jobs']);
  // As in the history workload: the seed's pages are written out before the clock starts.
  await execute(url, ['CHECKPOINT']).catch(() => undefined);
  const worker = createRuntime({
    connectionString: url,
    logger: quietLogger(),
    maxRunningJobs: 10,
    tasks: { noop: () => undefined },
    ...(clean ? {} : { retention: false as const }),
  });
  // firstPass resolves with the time the cleaner's first pass ended.
  const firstPass = new Promise<number>((resolve) =>
    worker.events.once('maintenance:cleaned', () => resolve(performance.now())),
  );
  const timer = await DrainTimer.start(url);
  const startedAt = performance.now();
  await worker.start();
  try {
    await untilDone(url, UNFINISHED_SQL);
    const { jobsPerSecond } = await timer.finish(drainJobs);
    const left = await countOld(url);
    let cleanSeconds = Number.NaN;
    if (clean) cleanSeconds = ((await firstPass) - startedAt) / 1000;
    return { jobsPerSecond, deletedDuringDrain: oldRows - left, cleanSeconds };
  } finally {
    await worker.stop();
  }
}

async function countOld(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<{ n: number }>(OLD_LEFT_SQL)).rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

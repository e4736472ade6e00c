/**
 * The history workload's measurement: how much a table full of finished jobs slows jobchart's
 * drain. A run seeds `finishedRows` succeeded jobs straight into jobchart.jobs with one
 * INSERT ... SELECT generate_series (after the runtime migrated the schema), enqueues the backlog on
 * top, vacuums and analyzes the table as autovacuum eventually would, checkpoints, then times a default worker.
 * The empty-table baseline runs the same steps with zero finished rows.
 */
import { execute } from './database.js';
import { drainBacklog, enqueueNoops } from './systems/jobchart.js';

/** HistoryRun is one history measurement. */
export interface HistoryRun {
  /** jobsPerSecond drained. */
  jobsPerSecond: number;
  /** seedSeconds is how long inserting the finished rows took. */
  seedSeconds: number;
}

/** SEED_SQL inserts $1 succeeded no-op jobs, oldest first, as a day of history before now. */
const SEED_SQL = `
  INSERT INTO jobchart.jobs (task, state, run_at, attempts, created_at, created_by, locked_at, finished_at, updated_at)
  SELECT 'noop', 'succeeded', t, 1, t, 'bench-history', t, t + interval '2 ms', t + interval '2 ms'
  FROM (SELECT now() - interval '1 day' + g * (interval '1 day' / $1) AS t FROM generate_series(1, $1::int) AS g) AS s`;

/** drainOnHistory measures one drain of `drainJobs` over `finishedRows` finished jobs (0 for empty). */
export async function drainOnHistory(
  url: string,
  drainJobs: number,
  finishedRows: number,
): Promise<HistoryRun> {
  let seedSeconds = 0;
  await enqueueNoops(url, drainJobs, async () => {
    if (finishedRows === 0) return;
    const startedAt = performance.now();
    await execute(url, [SEED_SQL, [finishedRows]]);
    seedSeconds = (performance.now() - startedAt) / 1000;
  });
  await execute(url, ['VACUUM ANALYZE jobchart.jobs']);
  // A checkpoint writes the seed's pages out before the clock starts: otherwise the server writes
  // back a million rows (and logs full pages after the checkpoint they trigger) during the drain,
  // and the figure measures the seeding rather than the hot path. It needs superuser or the
  // pg_checkpoint role; without either the drain runs as it is.
  await execute(url, ['CHECKPOINT']).catch(() => undefined);
  return { jobsPerSecond: (await drainBacklog(url, drainJobs, 10)).jobsPerSecond, seedSeconds };
}

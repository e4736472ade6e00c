/**
 * pg-boss as a peer, in the configuration tuned for throughput: four workers, each fetching and
 * completing batches of 250 jobs, polling every half second (pg-boss's shortest interval). pg-boss
 * has no per-job concurrency setting, so one drain per round stands for every concurrency level.
 * It has no start latency entry: it learns of new jobs only by polling, so that figure would measure
 * the polling interval.
 */
import PgBoss from 'pg-boss';
import { untilDone } from '../database.js';
import {
  batchSizes,
  DrainTimer,
  minorVersion,
  packageVersion,
  ratePerSecond,
  type System,
} from './system.js';

const VERSION = packageVersion('pg-boss');
const WORKERS = 4;
const BATCH_SIZE = 250;

/** withBoss starts pg-boss on the database with the `noop` queue created, runs `fn`, then stops it. */
async function withBoss<T>(connectionString: string, fn: (boss: PgBoss) => Promise<T>): Promise<T> {
  const boss = new PgBoss({ connectionString, max: 8 });
  boss.on('error', () => undefined);
  await boss.start();
  try {
    await boss.createQueue('noop');
    return await fn(boss);
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

/** insertNoops inserts `total` jobs with `insert`, BATCH at a time, and returns jobs per second. */
async function insertNoops(boss: PgBoss, total: number): Promise<number> {
  const startedAt = performance.now();
  for (const size of batchSizes(total)) {
    await boss.insert(Array.from({ length: size }, () => ({ name: 'noop', data: {} })));
  }
  return ratePerSecond(total, startedAt);
}

/** pgBossSystem is pg-boss with four batch workers. */
export function pgBossSystem(): System {
  return {
    id: 'pg-boss',
    label: `pg-boss ${minorVersion(VERSION)} (${WORKERS} workers, batchSize ${BATCH_SIZE})`,
    config: `${WORKERS} × work('noop', { batchSize: ${BATCH_SIZE}, pollingIntervalSeconds: 0.5 }); pool max 8; no concurrency setting`,
    drainTakesConcurrency: false,
    drain(connectionString, total) {
      return withBoss(connectionString, async (boss) => {
        await insertNoops(boss, total);
        const timer = await DrainTimer.start(connectionString);
        for (let w = 0; w < WORKERS; w++) {
          await boss.work(
            'noop',
            { batchSize: BATCH_SIZE, pollingIntervalSeconds: 0.5 },
            async () => undefined,
          );
        }
        await untilDone(
          connectionString,
          `SELECT EXISTS (SELECT 1 FROM pgboss.job WHERE name = 'noop' AND state <> 'completed') AS pending`,
        );
        return await timer.finish(total);
      });
    },
    enqueue(connectionString, total) {
      return withBoss(connectionString, (boss) => insertNoops(boss, total));
    },
  };
}

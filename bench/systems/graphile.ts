/**
 * graphile-worker as a peer, in two configurations: its defaults (only the concurrency set), and
 * batched (a local queue of 500 jobs fetched at once, completions and failures written in batches
 * with no delay), its documented way to high throughput. The bench owns the pg pool so that it is
 * ended, and its errors ignored, before the database is dropped.
 */
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import type pg from 'pg';
import { quietPool, untilDone } from '../database.js';
import {
  batchSizes,
  DrainTimer,
  measureStartLatency,
  minorVersion,
  packageVersion,
  ratePerSecond,
  StartSignal,
  type System,
} from './system.js';

const VERSION = packageVersion('graphile-worker');

/** BATCHED_PRESET is the high-throughput worker configuration. */
const BATCHED_PRESET: GraphileConfig.Preset = {
  worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
};

const silent = new Logger(() => () => undefined);

/**
 * MAX_POOL caps the pool: PostgreSQL allows 100 connections by default, which graphile-worker's
 * advice for 100 jobs at once (102) would exceed on its own.
 */
const MAX_POOL = 30;

/**
 * poolFor sizes the pool as graphile-worker recommends (10 or concurrency + 2, whichever is larger),
 * capped at MAX_POOL.
 */
function poolFor(connectionString: string, concurrency: number): pg.Pool {
  return quietPool(connectionString, Math.min(MAX_POOL, Math.max(10, concurrency + 2)));
}

/** graphileSystem is graphile-worker with defaults, or batched when `batched` is set. */
export function graphileSystem(batched: boolean): System {
  const preset = batched ? { preset: BATCHED_PRESET } : {};
  const startWorker = (pgPool: pg.Pool, concurrency: number, noop: () => void) =>
    run({
      pgPool,
      concurrency,
      noHandleSignals: true,
      logger: silent,
      taskList: {
        noop: async () => {
          noop();
        },
      },
      ...preset,
    });
  const system: System = {
    id: batched ? 'graphile-batched' : 'graphile-defaults',
    label: `graphile-worker ${minorVersion(VERSION)} (${batched ? 'batched' : 'defaults'})`,
    config: batched
      ? 'run() with concurrency, preset.worker localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0; pool min(30, max(10, concurrency + 2))'
      : 'run() with concurrency, otherwise defaults; pool min(30, max(10, concurrency + 2))',
    drainTakesConcurrency: true,
    async drain(connectionString, total, concurrency) {
      const pgPool = poolFor(connectionString, concurrency);
      try {
        await addNoops(pgPool, total);
        const timer = await DrainTimer.start(connectionString);
        const runner = await startWorker(pgPool, concurrency, () => undefined);
        try {
          await untilDone(connectionString, 'SELECT EXISTS (SELECT 1 FROM graphile_worker.jobs) AS pending');
          return await timer.finish(total);
        } finally {
          await runner.stop();
        }
      } finally {
        await pgPool.end();
      }
    },
    async latency(connectionString, samples) {
      const pgPool = poolFor(connectionString, 10);
      try {
        const utils = await makeWorkerUtils({ pgPool, logger: silent });
        await utils.migrate();
        const signal = new StartSignal();
        const runner = await startWorker(pgPool, 10, () => signal.hit());
        try {
          return await measureStartLatency(samples, signal, () => utils.addJob('noop', {}));
        } finally {
          await runner.stop();
          await utils.release();
        }
      } finally {
        await pgPool.end();
      }
    },
  };
  // Enqueueing does not depend on the worker configuration, so only the defaults entry measures it.
  if (!batched) {
    system.enqueue = async (connectionString, total) => {
      const pgPool = poolFor(connectionString, 10);
      try {
        return await addNoops(pgPool, total);
      } finally {
        await pgPool.end();
      }
    };
  }
  return system;
}

/** addNoops migrates graphile-worker's schema and adds `total` jobs with addJobs; returns jobs/s. */
async function addNoops(pgPool: pg.Pool, total: number): Promise<number> {
  const utils = await makeWorkerUtils({ pgPool, logger: silent });
  try {
    await utils.migrate();
    const startedAt = performance.now();
    for (const size of batchSizes(total)) {
      await utils.addJobs(Array.from({ length: size }, () => ({ identifier: 'noop', payload: {} })));
    }
    return ratePerSecond(total, startedAt);
  } finally {
    await utils.release();
  }
}

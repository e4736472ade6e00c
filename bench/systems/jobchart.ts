/**
 * jobchart as the benchmark runs it: the runtime with its defaults (no prefetch passed, so whatever
 * the runtime defaults to), only `maxRunningJobs` set to the workload's concurrency. The producer
 * helpers here are shared with the jobchart-only workloads (history, memory).
 */
import type pg from 'pg';
import { pino } from 'pino';
import { createRuntime } from '../../src/index.js';
import { untilDone } from '../database.js';
import {
  batchSizes,
  type DrainFigures,
  DrainTimer,
  measureStartLatency,
  ratePerSecond,
  StartSignal,
  type System,
} from './system.js';

/**
 * UNFINISHED_SQL tells whether any job in jobchart's default schema has not finished yet: one waiting
 * to be claimed or one held by a worker. Each half is served by a partial index, so the check costs
 * the same over a million finished rows as over none (a `state <> 'succeeded'` test would scan the
 * whole table every few milliseconds and slow the drain it measures).
 */
export const UNFINISHED_SQL = `SELECT
    EXISTS (SELECT 1 FROM jobchart.jobs WHERE state IN ('not_started', 'retry', 'interrupted') AND run_at IS NOT NULL)
    OR EXISTS (SELECT 1 FROM jobchart.jobs WHERE locked_by IS NOT NULL) AS pending`;

/** quietLogger is the logger every benchmark runtime gets: warnings and errors only. */
export function quietLogger() {
  return pino({ level: 'warn' });
}

/**
 * enqueueNoops migrates the schema (through a producer runtime's start) and enqueues `total` no-op
 * jobs with `enqueueMany`, BATCH at a time. `beforeEnqueue` runs after the migration, before the
 * first job (the history workload seeds finished rows there). Returns jobs per second enqueued.
 */
export async function enqueueNoops(
  connectionString: string,
  total: number,
  beforeEnqueue?: () => Promise<void>,
): Promise<number> {
  const producer = createRuntime({ connectionString, logger: quietLogger() });
  await producer.start();
  try {
    await beforeEnqueue?.();
    const startedAt = performance.now();
    for (const size of batchSizes(total)) {
      await producer.enqueueMany(Array.from({ length: size }, () => ({ task: 'noop', payload: {} })));
    }
    return ratePerSecond(total, startedAt);
  } finally {
    await producer.stop();
  }
}

/**
 * drainBacklog starts a worker with defaults and `maxRunningJobs`, and times it until all is done.
 * With `pool`, the worker runs its statements on that pool instead of one of its own.
 */
export async function drainBacklog(
  connectionString: string,
  total: number,
  maxRunningJobs: number,
  pool?: pg.Pool,
): Promise<DrainFigures> {
  const worker = createRuntime({
    connectionString,
    ...(pool ? { pool } : {}),
    logger: quietLogger(),
    maxRunningJobs,
    tasks: { noop: () => undefined },
  });
  const timer = await DrainTimer.start(connectionString);
  await worker.start();
  try {
    await untilDone(connectionString, UNFINISHED_SQL);
    return await timer.finish(total);
  } finally {
    await worker.stop();
  }
}

/** jobchartSystem is jobchart with its defaults. */
export function jobchartSystem(): System {
  return {
    id: 'jobchart',
    label: 'jobchart (defaults)',
    config:
      'createRuntime defaults (prefetch not passed); maxRunningJobs = the concurrency level (default 10)',
    drainTakesConcurrency: true,
    async drain(connectionString, total, concurrency) {
      await enqueueNoops(connectionString, total);
      return drainBacklog(connectionString, total, concurrency);
    },
    async enqueue(connectionString, total) {
      return enqueueNoops(connectionString, total);
    },
    async latency(connectionString, samples) {
      const signal = new StartSignal();
      const logger = quietLogger();
      const worker = createRuntime({ connectionString, logger, tasks: { noop: () => signal.hit() } });
      const producer = createRuntime({ connectionString, logger });
      await worker.start();
      await producer.start();
      try {
        return await measureStartLatency(samples, signal, () => producer.enqueue('noop', {}));
      } finally {
        await Promise.all([producer.stop(), worker.stop()]);
      }
    },
  };
}

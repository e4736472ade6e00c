/**
 * BullMQ as a peer, on its PostgreSQL backend (`createPostgresBackend`, bound to Queue and Worker
 * with `withBackend`) rather than Redis. The producer Queue runs BullMQ's migrations (`migrate:
 * true`) and enqueues with `addBulk`; the Worker runs at the workload's concurrency. Everything else
 * is BullMQ's default, including keeping completed jobs, which is what the completion poll counts.
 */
import { createPostgresBackend, withBackend } from 'bullmq';
import { untilDone } from '../database.js';
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

const VERSION = packageVersion('bullmq');
const QUEUE = 'noop';
const { Queue, Worker } = withBackend(createPostgresBackend);

/** openQueue connects a producer and brings BullMQ's schema up to date. */
async function openQueue(connectionString: string) {
  const queue = new Queue(QUEUE, { connection: { connectionString, migrate: true } });
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
  return queue;
}

/** startWorker starts a Worker on the queue whose processor calls `onJob`. */
function startWorker(connectionString: string, concurrency: number, onJob: () => void) {
  const worker = new Worker(
    QUEUE,
    async () => {
      onJob();
    },
    { connection: { connectionString }, concurrency },
  );
  worker.on('error', () => undefined);
  return worker;
}

/** addNoops adds `total` jobs with addBulk, BATCH at a time, and returns jobs per second. */
async function addNoops(connectionString: string, total: number): Promise<number> {
  const queue = await openQueue(connectionString);
  try {
    const startedAt = performance.now();
    for (const size of batchSizes(total)) {
      await queue.addBulk(Array.from({ length: size }, () => ({ name: QUEUE, data: {} })));
    }
    return ratePerSecond(total, startedAt);
  } finally {
    await queue.close();
  }
}

/** bullmqSystem is BullMQ with the PostgreSQL backend. */
export function bullmqSystem(): System {
  return {
    id: 'bullmq-postgres',
    label: `BullMQ ${minorVersion(VERSION)} (PostgreSQL backend)`,
    config:
      "withBackend(createPostgresBackend); Queue { connection: { connectionString, migrate: true } } with addBulk; Worker { connection: { connectionString }, concurrency }; pg pools at BullMQ's default size",
    drainTakesConcurrency: true,
    async drain(connectionString, total, concurrency) {
      await addNoops(connectionString, total);
      const timer = await DrainTimer.start(connectionString);
      const worker = startWorker(connectionString, concurrency, () => undefined);
      try {
        await untilDone(
          connectionString,
          `SELECT EXISTS (SELECT 1 FROM bullmq.job WHERE state <> 'completed') AS pending`,
        );
        return await timer.finish(total);
      } finally {
        await worker.close();
      }
    },
    enqueue(connectionString, total) {
      return addNoops(connectionString, total);
    },
    async latency(connectionString, samples) {
      const queue = await openQueue(connectionString);
      const signal = new StartSignal();
      const worker = startWorker(connectionString, 10, () => signal.hit());
      try {
        await worker.waitUntilReady();
        return await measureStartLatency(samples, signal, () => queue.add(QUEUE, {}));
      } finally {
        await worker.close();
        await queue.close();
      }
    },
  };
}

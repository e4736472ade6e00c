/**
 * drain measures jobchart alone: bulk-enqueue N no-op jobs into a fresh database, then time a worker
 * until every job's final state is durably written. The peer comparison (issue 3) builds on it.
 *
 * Usage: DATABASE_URL=... node dist/bench/drain.js [jobs=20000] [maxRunningJobs=10]
 */

import pg from 'pg';
import { pino } from 'pino';
import { createRuntime } from '../src/index.js';

async function freshDatabase(baseUrl: string): Promise<string> {
  const name = `bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const maxRunningJobs = Number(process.argv[3] ?? 10);
  const connectionString = await freshDatabase(
    process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
  );
  const logger = pino({ level: 'warn' });
  const producer = createRuntime({ connectionString, logger });
  await producer.start();
  const enqueueStart = performance.now();
  for (let i = 0; i < total; i += 1000) {
    await producer.enqueueMany(
      Array.from({ length: Math.min(1000, total - i) }, () => ({ task: 'noop', payload: {} })),
    );
  }
  const enqueueMs = performance.now() - enqueueStart;
  await producer.stop();

  let done = 0;
  const worker = createRuntime({
    connectionString,
    logger,
    maxRunningJobs,
    tasks: { noop: () => undefined },
  });
  const finished = new Promise<void>((resolve) => {
    worker.events.on('job:succeeded', () => {
      if (++done === total) resolve();
    });
  });
  const drainStart = performance.now();
  await worker.start();
  await finished;
  const drainMs = performance.now() - drainStart;
  await worker.stop();
  console.log(
    JSON.stringify({
      jobs: total,
      maxRunningJobs,
      enqueuePerSecond: Math.round((total / enqueueMs) * 1000),
      drainPerSecond: Math.round((total / drainMs) * 1000),
    }),
  );
}

await main();

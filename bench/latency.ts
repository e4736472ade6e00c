/**
 * latency measures how long an idle jobchart runtime takes to start a job: enqueue one job at a time
 * (from a second runtime, as a producer would), time from the enqueue call to the handler's first
 * line, and report p50 and p99.
 *
 * Usage: DATABASE_URL=... node dist/bench/latency.js [samples=500]
 */
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { createRuntime } from '../src/index.js';

async function main(): Promise<void> {
  const samples = Number(process.argv[2] ?? 500);
  const connectionString = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test';
  const schema = `bench_latency_${process.pid}`;
  const logger = pino({ level: 'warn' });
  let markStarted: (at: number) => void = () => undefined;
  const worker = createRuntime({
    connectionString,
    schema,
    logger,
    tasks: { noop: () => markStarted(performance.now()) },
  });
  const producer = createRuntime({ connectionString, schema, logger });
  await worker.start();
  await producer.start();
  const waits: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = new Promise<number>((resolve) => {
      markStarted = resolve;
    });
    const enqueuedAt = performance.now();
    await producer.enqueue('noop', {});
    waits.push((await started) - enqueuedAt);
    // A short gap lets the runtime go idle again, which is the case being measured.
    await delay(2);
  }
  await Promise.all([worker.stop(), producer.stop()]);
  waits.sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))]?.toFixed(2);
  console.log(JSON.stringify({ samples, p50Ms: Number(at(0.5)), p99Ms: Number(at(0.99)) }));
}

await main();

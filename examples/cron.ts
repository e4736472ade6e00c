/**
 * Recurring jobs with jobchart: a cron schedule (every 5 seconds here, `*\/5 * * * * *`, so the
 * example is quick) and an everyMs schedule that counts from the end of its previous run. Two
 * runtimes run side by side, as two processes would, and each tick still runs exactly once.
 *   npm run build && node dist/scripts/with-database.js node dist/examples/cron.js
 */
import { pino } from 'pino';
import { createRuntime, type Runtime } from '../src/index.js';

const schema = 'jobchart_cron_example';
const logger = pino({ level: 'warn' });
const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(1).padStart(5);

function worker(name: string): Runtime {
  return createRuntime({
    connectionString: process.env.DATABASE_URL,
    schema,
    name,
    logger,
    pollIntervalMs: 500,
    tasks: {
      digest: (payload: { list: string }) => {
        console.log(`${seconds()} s  ${name} sends the ${payload.list} digest`);
        return { sent: true };
      },
      cleanup: async () => {
        console.log(`${seconds()} s  ${name} cleans up (takes 1.5 s; the next run counts 3 s from its end)`);
        await new Promise((resolve) => setTimeout(resolve, 1_500));
      },
    },
  });
}

const runtimes = [worker('worker-a'), worker('worker-b')];
for (const runtime of runtimes) await runtime.start();
const [first] = runtimes as [Runtime, Runtime];
await first.schedules.upsert('digest', {
  cron: '*/5 * * * * *',
  timezone: 'Europe/Berlin',
  task: 'digest',
  payload: { list: 'newsletter' },
  description: 'the newsletter digest, every five seconds',
});
await first.schedules.upsert('cleanup', { everyMs: 3_000, task: 'cleanup' });

await new Promise((resolve) => setTimeout(resolve, 16_000));
const last = await first.schedules.lastRun('digest');
console.log(`\nlast digest tick ${last?.tickAt.toISOString()}: job ${last?.jobId}, ${last?.job?.state}`);
for (const runtime of runtimes) await runtime.stop();

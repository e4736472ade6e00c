/**
 * A token-bucket rate limit held in PostgreSQL: an SMTP relay that takes at most 3 messages at once
 * and 2 a second after that, shared by two runtimes. Jobs that find the bucket empty are put back
 * until a token is due, without spending an attempt. Per-customer buckets use a key function.
 *   npm run build && node dist/scripts/with-database.js node dist/examples/rate-limit.js
 */
import { pino } from 'pino';
import { createRuntime, defineTask, type Runtime } from '../src/index.js';

const schema = 'jobchart_rate_limit_example';
const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(2).padStart(5);
let sent = 0;

function worker(name: string): Runtime {
  return createRuntime({
    connectionString: process.env.DATABASE_URL,
    schema,
    name,
    logger: pino({ level: 'warn' }),
    pollIntervalMs: 100,
    rateLimits: { smtp: { capacity: 3, refillPerSecond: 2 } },
    tasks: {
      sendEmail: defineTask({
        handler: (payload: { to: string }) => {
          sent++;
          console.log(`${seconds()} s  ${name} sends to ${payload.to}`);
        },
        rateLimit: 'smtp',
      }),
      // Per customer: each customer has a bucket of its own, with smtp's capacity and rate.
      sendReceipt: defineTask({
        handler: () => undefined,
        rateLimit: (payload: { customer: string }) => `smtp:${payload.customer}`,
      }),
    },
  });
}

const runtimes = [worker('worker-a'), worker('worker-b')];
for (const runtime of runtimes) await runtime.start();
await runtimes[0]?.enqueueMany(
  Array.from({ length: 10 }, (_, i) => ({ task: 'sendEmail', payload: { to: `user${i}@example.com` } })),
);
while (sent < 10) await new Promise((resolve) => setTimeout(resolve, 100));
console.log('\n10 messages: 3 at once, then 2 a second, whichever runtime sent them.');
for (const runtime of runtimes) await runtime.stop();

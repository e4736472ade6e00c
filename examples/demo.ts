/**
 * The demo behind `npm start`: a small shop's background jobs on jobchart, printed as each job moves
 * through its lifecycle. It shows jobs that succeed, one that fails and then succeeds on retry, one
 * that fails for good, and reminders that wait for their run_at. Ctrl-C stops it gracefully.
 */
import { pino } from 'pino';
import { createRuntime, defineTask, type JobContext, type TransitionEvent } from '../src/index.js';

const startedAt = Date.now();

// pause waits like real I/O would, and gives up as soon as the job is aborted.
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

const runtime = createRuntime({
  connectionString: process.env.DATABASE_URL,
  schema: 'jobchart_demo',
  logger: pino({ level: 'warn' }),
  maxRunningJobs: 4,
  pollIntervalMs: 250,
  tasks: {
    sendWelcomeEmail: async (payload: { to: string }, ctx: JobContext) => {
      await pause(150, ctx.signal);
      return { delivered: payload.to };
    },
    // chargeCard's payment provider times out on the first attempt of every charge.
    chargeCard: defineTask({
      handler: async (payload: { order: number; cents: number }, ctx: JobContext) => {
        await pause(100, ctx.signal);
        if (ctx.job.attempts === 1) throw new Error('payment provider timed out');
        return { charged: payload.cents, order: payload.order };
      },
      maxAttempts: 3,
      backoff: { type: 'fixed', delayMs: 1000 },
    }),
    // syncInventory points at a warehouse API that is down for the whole demo.
    syncInventory: defineTask({
      handler: async () => {
        throw new Error('warehouse API returned 503');
      },
      maxAttempts: 2,
      backoff: { type: 'fixed', delayMs: 500 },
    }),
    sendReminder: async (payload: { to: string }) => ({ reminded: payload.to }),
  },
});

const seen = new Map<string, number>();

function describe(event: TransitionEvent): string {
  const { job } = event;
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(5);
  const from = (event.from ?? '·').padEnd(11);
  let line = `${seconds}s  job ${job.id.padStart(3)}  ${job.task.padEnd(16)} ${from} → ${job.state.padEnd(11)} ${event.event}`;
  if (event.to === 'running') line += ` (attempt ${job.attempts}/${job.maxAttempts})`;
  if (event.to === 'retry' || event.to === 'failed') line += `  ${firstLine(job.lastError)}`;
  if (event.to === 'retry' && job.runAt)
    line += `, next at +${Math.max(0, job.runAt.getTime() - Date.now())} ms`;
  if (event.to === 'succeeded') line += `  ${JSON.stringify(job.result)}`;
  return line;
}

function firstLine(text: string | null): string {
  return (text ?? '').split('\n')[0] ?? '';
}

runtime.events.on('job:transition', (event) => {
  seen.set(event.to, (seen.get(event.to) ?? 0) + 1);
  console.log(describe(event));
});
runtime.events.on('runtime:error', ({ error, during }) =>
  console.error(`runtime error during ${during}:`, error),
);

let order = 1000;

// enqueueRound adds one customer's worth of work: a welcome email, a charge, an inventory sync and a
// reminder a few seconds out.
async function enqueueRound(customer: number): Promise<void> {
  const to = `customer${customer}@example.com`;
  order += 1;
  await runtime.enqueueMany([
    { task: 'sendWelcomeEmail', payload: { to } },
    { task: 'chargeCard', payload: { order, cents: 1999 + customer } },
  ]);
  if (customer % 2 === 1) await runtime.enqueue('syncInventory', { sku: `SKU-${customer}` });
  await runtime.enqueue('sendReminder', { to }, { runAt: new Date(Date.now() + 3000) });
}

let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    // A second stop() stops waiting: running jobs are aborted and given back, attempt refunded.
    console.log(`${signal} again: giving running jobs back without waiting`);
    await runtime.stop();
    return;
  }
  stopping = true;
  clearInterval(producer);
  console.log(`\n${signal}: stopping… (running jobs finish first; Ctrl-C again to force)`);
  await runtime.stop();
  const summary = [...seen.entries()].map(([state, count]) => `${state} ${count}`).join(', ');
  console.log(`stopped. transitions seen: ${summary}`);
  process.exit(0);
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

await runtime.start();
console.log('jobchart demo: enqueueing a new customer every 4 s. Ctrl-C to stop.\n');
let customer = 1;
await enqueueRound(customer);
const producer = setInterval(() => {
  customer += 1;
  enqueueRound(customer).catch((error) => console.error('enqueue failed:', error));
}, 4000);

/**
 * A tour of jobchart's scheduling features on a real database, in the order a service meets them:
 * keyed jobs and their modes, expiry, parked jobs, handler outcomes, progress, waiting for a job from
 * a producer, and the admin API. Run it with
 *   npm run build && node dist/scripts/with-database.js node dist/examples/scheduling.js
 */
import { pino } from 'pino';
import { createRuntime, DuplicateJobError, type JobContext, rerunAfter } from '../src/index.js';

const logger = pino({ level: 'warn' });
const schema = 'jobchart_scheduling_example';
let polls = 0;

// The worker: a digest that reschedules itself until its data is ready, and a slow export that
// reports progress.
const worker = createRuntime({
  connectionString: process.env.DATABASE_URL,
  schema,
  logger,
  pollIntervalMs: 200,
  tasks: {
    sendDigest: (payload: { user: string }) => {
      polls++;
      return polls < 3 ? rerunAfter(300) : { sentTo: payload.user, afterPolls: polls };
    },
    exportReport: async (_payload: unknown, ctx: JobContext) => {
      for (let page = 1; page <= 5; page++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ctx.progress(page, 5);
      }
      return { pages: 5 };
    },
    remind: (payload: { about: string }) => ({ reminded: payload.about }),
  },
});
// The producer: a web process that enqueues and waits, but works no jobs itself.
const producer = createRuntime({ connectionString: process.env.DATABASE_URL, schema, logger });

worker.events.on('job:progress', (e) =>
  console.log(`  progress of job ${e.job.id}: ${e.completed}/${e.total}`),
);

await worker.start();
await producer.start();

console.log('1. Keys: one live digest per user, whatever the producer retries.');
const digest = await producer.enqueue('sendDigest', { user: 'ada' }, { key: 'digest:ada' });
try {
  await producer.enqueue('sendDigest', { user: 'ada' }, { key: 'digest:ada' });
} catch (error) {
  if (error instanceof DuplicateJobError) console.log(`  mode 'new' refused: ${error.message}`);
}
const same = await producer.enqueue(
  'sendDigest',
  { user: 'ada' },
  { key: 'digest:ada', mode: 'ignore_if_exists' },
);
console.log(`  mode 'ignore_if_exists' returned job ${same.id} (the first was ${digest.id})`);

console.log('2. Outcomes: the digest reruns itself until its data is ready; waitFor sees it finish.');
const done = await producer.waitFor(digest.id, { timeoutMs: 10_000 });
console.log(
  `  job ${done.id} ${done.state} with ${JSON.stringify(done.result)}, attempts spent: ${done.attempts}`,
);

console.log('3. Expiry: a reminder for a meeting that has already begun never runs.');
const stale = await producer.enqueue('remind', { about: 'standup' }, { expiresAt: new Date(Date.now() + 1) });
await new Promise((resolve) => setTimeout(resolve, 5));
console.log(`  reminder ended ${(await producer.waitFor(stale.id, { timeoutMs: 10_000 })).state}`);

console.log('4. Parked: a job with runAt null waits until someone gives it a time.');
const parked = await producer.enqueue('remind', { about: 'renewal' }, { runAt: null });
console.log(
  `  parked job ${parked.id} is ${(await producer.getJob(parked.id))?.state}; rescheduling it to now`,
);
await producer.reschedule(parked.id, new Date());
console.log(`  then ${(await producer.waitFor(parked.id, { timeoutMs: 10_000 })).state}`);

console.log('5. Progress: an export reports pages as it goes.');
const exported = await producer.enqueue('exportReport', {});
console.log(`  export ${(await producer.waitFor(exported.id, { timeoutMs: 10_000 })).state}`);

console.log('6. Admin: list what happened, cancel what is waiting.');
const later = await producer.enqueue(
  'remind',
  { about: 'next week' },
  { runAt: new Date(Date.now() + 7 * 86_400_000) },
);
await producer.cancel(later.id, 'plans changed');
const page = await producer.listJobs({ limit: 10 });
for (const job of page.jobs) console.log(`  job ${job.id} ${job.task.padEnd(12)} ${job.state}`);

await producer.stop();
await worker.stop();

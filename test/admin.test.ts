import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  InvalidTransitionError,
  JobCancelledError,
  JobNotFoundError,
  type PolledEvent,
  type Runtime,
  type TransitionEvent,
  ValidationError,
} from '../src/index.js';
import { freshSchema, gate, nextEvent, testRuntime, withPool } from './support/helpers.js';

const setState = (schema: string, id: string, state: string) =>
  withPool((pool) => pool.query(`UPDATE "${schema}".jobs SET state = $2 WHERE id = $1`, [id, state]));

describe('admin API', () => {
  const schema = freshSchema('admin');
  let producer: Runtime;

  before(async () => {
    producer = testRuntime({ schema });
    await producer.start();
  });
  after(() => producer.stop());

  it('lists jobs by state, task, queue and key, newest first, page by page', async () => {
    const jobs = await producer.enqueueMany(
      Array.from({ length: 7 }, (_, i) => ({
        task: i % 2 ? 'odd' : 'even',
        queue: i < 3 ? 'low' : 'high',
        key: `list-${i}`,
      })),
    );
    await setState(schema, jobs[0]?.id as string, 'failed');
    const evens = await producer.listJobs({ task: 'even', limit: 100 });
    assert.deepEqual(
      evens.jobs.map((j) => j.id),
      [jobs[6], jobs[4], jobs[2], jobs[0]].map((j) => j?.id),
    );
    assert.equal(evens.nextCursor, null);
    assert.deepEqual(
      (await producer.listJobs({ state: 'failed' })).jobs.map((j) => j.id),
      [jobs[0]?.id],
    );
    assert.deepEqual(
      (await producer.listJobs({ queue: 'low', task: 'odd' })).jobs.map((j) => j.id),
      [jobs[1]?.id],
    );
    assert.deepEqual(
      (await producer.listJobs({ key: 'list-5' })).jobs.map((j) => j.id),
      [jobs[5]?.id],
    );
    const first = await producer.listJobs({ limit: 4, state: ['not_started', 'failed'] });
    const second = await producer.listJobs({
      limit: 4,
      state: ['not_started', 'failed'],
      cursor: first.nextCursor,
    });
    const paged = [...first.jobs, ...second.jobs].map((j) => j.id);
    assert.deepEqual(
      paged.slice(0, 7),
      [...jobs].reverse().map((j) => j.id),
    );
    await assert.rejects(producer.listJobs({ state: 'sleeping' as never }), ValidationError);
    await assert.rejects(producer.listJobs({ limit: 0 }), ValidationError);
  });

  it('cancels a waiting job, and refuses to cancel a finished one', async () => {
    const job = await producer.enqueue('later', {}, { runAt: new Date(Date.now() + 3_600_000) });
    const cancelled = await producer.cancel(job.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(cancelled.finishedAt);
    await assert.rejects(
      producer.cancel(job.id),
      (error: unknown) =>
        error instanceof InvalidTransitionError && error.state === 'cancelled' && error.event === 'CANCEL',
    );
  });

  it('retries a failed job with fresh attempts, and refuses to retry a waiting one', async () => {
    const job = await producer.enqueue('flaky', {});
    await assert.rejects(producer.retry(job.id), InvalidTransitionError);
    await withPool((pool) =>
      pool.query(`UPDATE "${schema}".jobs SET state = 'failed', attempts = 3 WHERE id = $1`, [job.id]),
    );
    const retried = await producer.retry(job.id);
    assert.equal(retried.state, 'not_started');
    assert.equal(retried.attempts, 0);
  });

  it('removes a job that is not running; refuses a running one; unknown and bad ids are typed errors', async () => {
    const job = await producer.enqueue('gone', {});
    const removed = await producer.remove(job.id);
    assert.equal(removed.state, 'removed');
    assert.equal(await producer.getJob(job.id), null);
    const running = await producer.enqueue('busy', {});
    await setState(schema, running.id, 'running');
    await assert.rejects(
      producer.remove(running.id),
      (error: unknown) => error instanceof InvalidTransitionError && error.state === 'running',
    );
    await assert.rejects(producer.remove(job.id), JobNotFoundError);
    await assert.rejects(producer.cancel('0'), ValidationError);
    await assert.rejects(producer.reschedule('abc', new Date()), ValidationError);
  });
});

describe('parked jobs and reschedule', () => {
  it('a job enqueued with runAt null is never claimed until rescheduled', async () => {
    const schema = freshSchema('parked');
    const ran: string[] = [];
    const worker = testRuntime({
      schema,
      pollIntervalMs: 20,
      tasks: { park: (p: { n: string }) => void ran.push(p.n) },
    });
    await worker.start();
    const parked = await worker.enqueue('park', { n: 'parked' }, { runAt: null });
    const due = await worker.enqueue('park', { n: 'due' });
    await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === due.id);
    // A later poll that finds nothing proves the parked job is passed over, not merely not reached yet.
    await nextEvent<PolledEvent>(worker.events, 'runtime:polled', (e) => e.claimed === 0);
    assert.equal((await worker.getJob(parked.id))?.state, 'not_started');
    const ranParked = nextEvent<TransitionEvent>(
      worker.events,
      'job:succeeded',
      (e) => e.job.id === parked.id,
    );
    const rescheduled = await worker.reschedule(parked.id, new Date());
    assert.ok(rescheduled.runAt);
    await ranParked;
    await worker.stop();
    assert.deepEqual(ran, ['due', 'parked']);
  });
});

describe('cancelling running jobs', () => {
  it('fires the AbortSignal of a job running here and ends it cancelled', async () => {
    const schema = freshSchema('cancelrun');
    let reason: unknown;
    const started = gate();
    const worker = testRuntime({
      schema,
      tasks: {
        long: (_p, ctx) =>
          new Promise<void>((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              reason = ctx.signal.reason;
              resolve();
            });
            started.open();
          }),
      },
    });
    await worker.start();
    const job = await worker.enqueue('long', {});
    await started.opened;
    const cancelled = nextEvent<TransitionEvent>(worker.events, 'job:cancelled');
    const requested = await worker.cancel(job.id, 'operator said so');
    assert.equal(requested.state, 'running', 'cancel returns while the handler winds down');
    const event = await cancelled;
    await worker.stop();
    assert.equal(event.job.id, job.id);
    assert.ok(reason instanceof JobCancelledError);
    assert.equal(event.job.lastError, 'operator said so');
  });

  it('reaches a job running in another runtime through the notification channel', async () => {
    const schema = freshSchema('cancelfar');
    const started = gate();
    const worker = testRuntime({
      schema,
      tasks: {
        long: (_p, ctx) =>
          new Promise<void>((resolve) => {
            ctx.signal.addEventListener('abort', () => resolve());
            started.open();
          }),
      },
    });
    const operator = testRuntime({ schema });
    await worker.start();
    await operator.start();
    const job = await operator.enqueue('long', {});
    await started.opened;
    const cancelled = nextEvent<TransitionEvent>(worker.events, 'job:cancelled');
    await operator.cancel(job.id);
    await cancelled;
    assert.equal((await operator.getJob(job.id))?.state, 'cancelled');
    await worker.stop();
    await operator.stop();
  });
});

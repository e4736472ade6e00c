import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ProgressEvent, SimulatedClock, type TransitionEvent, ValidationError } from '../src/index.js';
import { countEvents, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

describe('named queues', () => {
  it('runs at most `concurrency` jobs of a limited queue while other queues use the free slots', async () => {
    const schema = freshSchema('queues');
    let emailsRunning = 0;
    let emailsMax = 0;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const worker = testRuntime({
      schema,
      maxRunningJobs: 10,
      queues: { emails: { concurrency: 2 } },
      tasks: {
        email: async () => {
          emailsRunning++;
          emailsMax = Math.max(emailsMax, emailsRunning);
          await gate;
          emailsRunning--;
        },
        report: () => undefined,
      },
    });
    await worker.start();
    const twoEmailsRunning = countEvents<TransitionEvent>(
      worker.events,
      'job:running',
      2,
      (e) => e.job.task === 'email',
    );
    const reports = countEvents<TransitionEvent>(
      worker.events,
      'job:succeeded',
      20,
      (e) => e.job.task === 'report',
    );
    await worker.enqueueMany(Array.from({ length: 8 }, () => ({ task: 'email', queue: 'emails' })));
    await worker.enqueueMany(Array.from({ length: 20 }, () => ({ task: 'report' })));
    await twoEmailsRunning;
    await reports;
    assert.equal(emailsRunning, 2, 'two emails hold their queue while every report ran');
    const emails = countEvents<TransitionEvent>(
      worker.events,
      'job:succeeded',
      8,
      (e) => e.job.task === 'email',
    );
    openGate();
    await emails;
    await worker.stop();
    assert.equal(emailsMax, 2);
  });

  it('limits the default queue too, while jobs of named queues use the free slots', async () => {
    const schema = freshSchema('queues');
    let running = 0;
    let mostRunning = 0;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const worker = testRuntime({
      schema,
      maxRunningJobs: 10,
      queues: { default: { concurrency: 2 } },
      tasks: {
        slow: async () => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          await gate;
          running--;
        },
        report: () => undefined,
      },
    });
    await worker.start();
    const twoRunning = countEvents<TransitionEvent>(
      worker.events,
      'job:running',
      2,
      (e) => e.job.task === 'slow',
    );
    const reports = countEvents<TransitionEvent>(
      worker.events,
      'job:succeeded',
      20,
      (e) => e.job.task === 'report',
    );
    await worker.enqueueMany(Array.from({ length: 6 }, () => ({ task: 'slow' })));
    await worker.enqueueMany(Array.from({ length: 20 }, () => ({ task: 'report', queue: 'reports' })));
    await twoRunning;
    await reports;
    assert.equal(running, 2, 'two default-queue jobs hold their queue while every report ran');
    const slowDone = countEvents<TransitionEvent>(
      worker.events,
      'job:succeeded',
      6,
      (e) => e.job.task === 'slow',
    );
    openGate();
    await slowDone;
    await worker.stop();
    assert.equal(mostRunning, 2);
  });

  it('rejects a bad queue configuration', () => {
    assert.throws(
      () => testRuntime({ schema: 'x', queues: { emails: { concurrency: 0 } } }),
      (error: unknown) => error instanceof ValidationError && error.field === 'queues.emails.concurrency',
    );
    assert.throws(
      () => testRuntime({ schema: 'x', queues: { 'bad queue': { concurrency: 1 } } }),
      ValidationError,
    );
  });
});

describe('progress', () => {
  it('emits every report, stores the latest at most every half second, and keeps the last with the outcome', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('progress');
    const errors: unknown[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const worker = testRuntime({
      schema,
      clock,
      tasks: {
        crunch: async (_p, ctx) => {
          for (let i = 1; i <= 1_000; i++) ctx.progress(i, 2_000);
          for (const [completed, total] of [
            [3, 2],
            [-1, 5],
            [1, Number.NaN],
          ] as const) {
            try {
              ctx.progress(completed, total);
            } catch (error) {
              errors.push(error);
            }
          }
          await held;
          ctx.progress(1_500, 2_000);
          return 'ok';
        },
      },
    });
    await worker.start();
    const reports = countEvents<ProgressEvent>(worker.events, 'job:progress', 1_000);
    const job = await worker.enqueue('crunch', {});
    const seen = await reports;
    assert.deepEqual(
      seen.slice(-1).map((e) => [e.completed, e.total]),
      [[1_000, 2_000]],
    );
    assert.equal(errors.length, 3);
    assert.ok(errors.every((error) => error instanceof ValidationError));
    assert.equal((await worker.getJob(job.id))?.progress, null, 'nothing written before the interval');
    clock.advance(500);
    // The write is one statement in flight: read until it has landed.
    let stored = await worker.getJob(job.id);
    for (let tries = 0; tries < 200 && stored?.progress === null; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      stored = await worker.getJob(job.id);
    }
    assert.deepEqual(stored?.progress, { completed: 1_000, total: 2_000 });
    const succeeded = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
    release();
    await succeeded;
    const finished = await worker.getJob(job.id);
    await worker.stop();
    assert.deepEqual(
      finished?.progress,
      { completed: 1_500, total: 2_000 },
      'the last report rides with the outcome',
    );
  });
});

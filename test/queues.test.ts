import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ProgressEvent, SimulatedClock, type TransitionEvent, ValidationError } from '../src/index.js';
import { countEvents, freshSchema, gate, nextEvent, testRuntime, withPool } from './support/helpers.js';

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

describe('pausing queues', () => {
  it('stops another runtime claiming a paused queue at once while other queues run, lets a running job finish, and resume runs the waiting jobs', async () => {
    const schema = freshSchema('pause');
    const clock = new SimulatedClock();
    const held = gate();
    const worker = testRuntime({
      schema,
      clock,
      tasks: { slow: () => held.opened, quick: () => undefined },
    });
    const operator = testRuntime({ schema, clock });
    await worker.start();
    await operator.start();
    try {
      const running = nextEvent<TransitionEvent>(worker.events, 'job:running');
      const first = await operator.enqueue('slow', undefined, { queue: 'q' });
      await running;
      const paused = await operator.queues.pause('q');
      assert.deepEqual(paused, { name: 'q', paused: true, pausedAt: clock.now() });
      const waiting = await operator.enqueue('quick', undefined, { queue: 'q' });
      // Notifications arrive in commit order: a job of another queue enqueued after the one of the
      // paused queue is claimed by a round that would have taken both.
      const other = await operator.enqueue('quick', undefined, { queue: 'other' });
      await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === other.id);
      assert.equal((await operator.getJob(waiting.id))?.state, 'not_started', 'the paused queue is skipped');
      const firstDone = nextEvent<TransitionEvent>(
        worker.events,
        'job:succeeded',
        (e) => e.job.id === first.id,
      );
      held.open();
      await firstDone;
      assert.equal(
        (await operator.getJob(waiting.id))?.state,
        'not_started',
        'still paused after a slot freed',
      );
      const resumedRun = nextEvent<TransitionEvent>(
        worker.events,
        'job:succeeded',
        (e) => e.job.id === waiting.id,
      );
      assert.deepEqual(await operator.queues.resume('q'), { name: 'q', paused: false, pausedAt: null });
      await resumedRun;
    } finally {
      held.open();
      await worker.stop();
      await operator.stop();
    }
  });

  it('keeps a queue paused for a runtime started after the pause, a queue with a concurrency limit too, and lists it', async () => {
    const schema = freshSchema('pause_restart');
    const clock = new SimulatedClock();
    const operator = testRuntime({ schema, clock, statsMaxAgeMs: 0 });
    await operator.start();
    // Paused before its first job: a queue name not yet known is accepted.
    await operator.queues.pause('limited');
    clock.advance(1000);
    await operator.queues.pause('limited');
    const waiting = await operator.enqueue('work', undefined, { queue: 'limited' });
    const other = await operator.enqueue('work');
    const worker = testRuntime({
      schema,
      clock,
      queues: { limited: { concurrency: 2 } },
      tasks: { work: () => undefined },
    });
    try {
      const otherDone = nextEvent<TransitionEvent>(
        worker.events,
        'job:succeeded',
        (e) => e.job.id === other.id,
      );
      await worker.start();
      await otherDone;
      assert.equal((await operator.getJob(waiting.id))?.state, 'not_started');
      const listed = await worker.queues.list();
      assert.deepEqual(
        listed.map((q) => [
          q.name,
          q.paused,
          q.pausedAt?.getTime() ?? null,
          q.concurrency,
          q.counts.not_started,
          q.counts.succeeded,
        ]),
        [
          ['default', false, null, null, 0, 1],
          ['limited', true, clock.now().getTime() - 1000, 2, 1, 0],
        ],
        'pausing a paused queue keeps when it was paused',
      );
      const done = nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === waiting.id);
      await operator.queues.resume('limited');
      await done;
    } finally {
      await worker.stop();
      await operator.stop();
    }
  });

  it('makes up for a lost notification at the next poll', async () => {
    const schema = freshSchema('pause_poll');
    const clock = new SimulatedClock();
    const operator = testRuntime({ schema, clock });
    const worker = testRuntime({
      schema,
      clock,
      listen: false,
      pollIntervalMs: 1000,
      tasks: { work: () => undefined },
    });
    await operator.start();
    // The first claim round, which start() asks for, is over before the pause (nothing else wakes it).
    const firstRound = nextEvent(worker.events, 'runtime:polled');
    await worker.start();
    await firstRound;
    try {
      await operator.queues.pause('q');
      const waiting = await operator.enqueue('work', undefined, { queue: 'q' });
      const other = await operator.enqueue('work');
      const otherDone = nextEvent<TransitionEvent>(
        worker.events,
        'job:succeeded',
        (e) => e.job.id === other.id,
      );
      clock.advance(1000);
      await otherDone;
      assert.equal(
        (await operator.getJob(waiting.id))?.state,
        'not_started',
        'the poll read the pause first',
      );
      await operator.queues.resume('q');
      const done = nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === waiting.id);
      clock.advance(1000);
      await done;
    } finally {
      await worker.stop();
      await operator.stop();
    }
  });

  it('refuses a bad queue name with a ValidationError and writes nothing', async () => {
    const schema = freshSchema('pause_bad');
    const runtime = testRuntime({ schema });
    await runtime.start();
    try {
      for (const name of ['', 'a b', 'x'.repeat(129), 42, null]) {
        await assert.rejects(runtime.queues.pause(name as string), ValidationError);
        await assert.rejects(runtime.queues.resume(name as string), ValidationError);
      }
      assert.deepEqual(await runtime.queues.list(), []);
      const rows = await withPool((pool) => pool.query(`SELECT count(*)::int AS n FROM "${schema}".queues`));
      assert.equal(rows.rows[0].n, 0);
    } finally {
      await runtime.stop();
    }
  });
});

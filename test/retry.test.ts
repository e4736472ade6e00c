import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CrashEvent, type PolicyInput, SimulatedClock, type TransitionEvent } from '../src/index.js';
import { freshSchema, nextEvent, testRuntime } from './support/helpers.js';

describe('retries and the onException policy', () => {
  it('retries with backoff on the simulated clock, then succeeds', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('retry');
    const attempts: number[] = [];
    const runtime = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: {
        flaky: {
          handler: async (_p, ctx) => {
            attempts.push(ctx.job.attempts);
            if (ctx.job.attempts < 3) throw new Error(`attempt ${ctx.job.attempts} failed`);
            return { ok: true };
          },
          maxAttempts: 5,
          backoff: { type: 'exponential', baseMs: 1000, maxMs: 60_000, jitter: 0 },
        },
      },
    });
    await runtime.start();
    const job = await runtime.enqueue('flaky', {});
    const isJob = (e: TransitionEvent) => e.job.id === job.id;

    const first = await nextEvent<TransitionEvent>(runtime.events, 'job:retry', isJob);
    assert.equal(first.job.runAt?.getTime(), clock.now().getTime() + 1000, 'first retry after 1 s');
    const secondRetry = nextEvent<TransitionEvent>(runtime.events, 'job:retry', isJob);
    clock.advance(999);
    assert.deepEqual(attempts, [1], 'not due yet after 999 ms');
    clock.advance(1);
    const second = await secondRetry;
    assert.equal(second.job.runAt?.getTime(), clock.now().getTime() + 2000, 'second retry after 2 s');
    const succeeded = nextEvent<TransitionEvent>(runtime.events, 'job:succeeded', isJob);
    clock.advance(2000);
    await succeeded;
    const stored = await runtime.getJob(job.id);
    await runtime.stop();
    assert.equal(stored?.state, 'succeeded');
    assert.equal(stored?.attempts, 3);
    assert.deepEqual(stored?.result, { ok: true });
    assert.deepEqual(attempts, [1, 2, 3]);
  });

  it('abandons after maxAttempts and keeps every attempt error', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('abandon');
    const runtime = testRuntime({
      schema,
      clock,
      pollIntervalMs: 100,
      tasks: {
        broken: {
          handler: async (_p, ctx) => {
            throw new Error(`boom ${ctx.job.attempts}`);
          },
          maxAttempts: 3,
          backoff: { type: 'fixed', delayMs: 500 },
        },
      },
    });
    await runtime.start();
    const job = await runtime.enqueue('broken', {});
    const failed = nextEvent<TransitionEvent>(runtime.events, 'job:failed', (e) => e.job.id === job.id);
    runtime.events.on('job:retry', () => clock.advance(500));
    const event = await failed;
    assert.equal(event.job.attempts, 3);
    const stored = await runtime.getJob(job.id);
    await runtime.stop();
    assert.equal(stored?.state, 'failed');
    assert.match(stored?.lastError ?? '', /boom 3/);
    assert.deepEqual(
      stored?.errors.map((e) => e.attempt),
      [1, 2, 3],
    );
    assert.ok(stored?.finishedAt);
  });

  it('runs a custom policy with the job, the error and the attempt', async () => {
    const schema = freshSchema('policy');
    const inputs: PolicyInput[] = [];
    const runtime = testRuntime({
      schema,
      tasks: {
        fatal: async () => {
          throw new TypeError('not worth retrying');
        },
      },
      onException: (input) => {
        inputs.push(input);
        return input.error instanceof TypeError ? { action: 'abandon' } : { action: 'retry', delayMs: 0 };
      },
    });
    await runtime.start();
    const job = await runtime.enqueue('fatal', { x: 1 });
    await nextEvent<TransitionEvent>(runtime.events, 'job:failed', (e) => e.job.id === job.id);
    await runtime.stop();
    assert.equal(inputs.length, 1);
    assert.equal(inputs[0]?.jobId, job.id);
    assert.equal(inputs[0]?.attempt, 1);
    assert.equal(inputs[0]?.maxAttempts, 25);
  });

  it('crash: stops claiming, gives back every held job without spending its attempt, and reports', async () => {
    const schema = freshSchema('crash');
    let releaseSlow: () => void = () => undefined;
    const slowStarted = new Promise<void>((started) => {
      releaseSlow = started;
    });
    const runtime = testRuntime({
      schema,
      maxRunningJobs: 4,
      tasks: {
        slow: async (_p, ctx) => {
          releaseSlow();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        },
        explode: async () => {
          await slowStarted;
          throw new Error('disk on fire');
        },
      },
      onException: () => ({ action: 'crash' }),
    });
    await runtime.start();
    const crashed = nextEvent<CrashEvent>(runtime.events, 'runtime:crashed');
    const slow = await runtime.enqueue('slow', {});
    const explode = await runtime.enqueue('explode', {});
    const report = await crashed;
    assert.equal(report.jobId, explode.id);
    assert.match(String(report.error), /disk on fire/);
    assert.equal(runtime.phase, 'crashed');
    const late = await runtime.enqueue('slow', {});
    const [slowRow, explodeRow, lateRow] = await Promise.all(
      [slow.id, explode.id, late.id].map((id) => runtime.getJob(id)),
    );
    await runtime.stop();
    assert.equal(slowRow?.state, 'not_started');
    assert.equal(slowRow?.attempts, 0, 'attempt refunded');
    assert.equal(slowRow?.lockedBy, null);
    assert.equal(explodeRow?.state, 'not_started');
    assert.match(explodeRow?.lastError ?? '', /disk on fire/, 'the crashing error is recorded');
    assert.equal(lateRow?.state, 'not_started', 'nothing is claimed after a crash');
  });
});

describe('awkward errors and results', () => {
  it('records a thrown NUL-laden string, fails a result jsonb cannot store, and blocks no other outcome', async () => {
    const schema = freshSchema('awkward');
    const runtime = testRuntime({
      schema,
      tasks: {
        throwsNul: {
          handler: async () => {
            throw 'bad\u0000thing';
          },
          maxAttempts: 1,
        },
        returnsNul: { handler: async () => ({ text: 'a\u0000b' }), maxAttempts: 1 },
        throwsCycle: {
          handler: async () => {
            const cycle: Record<string, unknown> = {};
            cycle.self = cycle;
            throw cycle;
          },
          maxAttempts: 1,
        },
        fine: async () => 'ok',
      },
    });
    await runtime.start();
    const jobs = await runtime.enqueueMany([
      { task: 'throwsNul' },
      { task: 'returnsNul' },
      { task: 'throwsCycle' },
      { task: 'fine' },
    ]);
    const ids = new Set(jobs.map((job) => job.id));
    let finished = 0;
    await new Promise<void>((resolve) =>
      runtime.events.on('job:transition', (e) => {
        if (ids.has(e.job.id) && (e.to === 'failed' || e.to === 'succeeded') && ++finished === 4) resolve();
      }),
    );
    const rows = await Promise.all(jobs.map((job) => runtime.getJob(job.id)));
    await runtime.stop();
    assert.deepEqual(
      rows.map((row) => row?.state),
      ['failed', 'failed', 'failed', 'succeeded'],
    );
    assert.equal(rows[0]?.lastError, 'badthing');
    assert.match(rows[1]?.lastError ?? '', /JSON-serializable|NUL/);
    assert.equal(rows[2]?.lastError, '[object Object]');
  });
});

describe('backoff strategies', () => {
  it('all wait as documented', async () => {
    const { backoffDelay } = await import('../src/index.js');
    assert.equal(backoffDelay({ type: 'fixed', delayMs: 300 }, 4, null, 0.5), 300);
    assert.equal(backoffDelay({ type: 'linear', stepMs: 100, maxMs: 250 }, 2, null, 0), 200);
    assert.equal(backoffDelay({ type: 'linear', stepMs: 100, maxMs: 250 }, 3, null, 0), 250);
    assert.equal(
      backoffDelay({ type: 'exponential', baseMs: 100, maxMs: 10_000, jitter: 0 }, 4, null, 0.9),
      800,
    );
    assert.equal(
      backoffDelay({ type: 'exponential', baseMs: 100, maxMs: 10_000, jitter: 0.5 }, 4, null, 1),
      400,
    );
    assert.equal(backoffDelay({ type: 'exponential', baseMs: 100, maxMs: 500, jitter: 0 }, 10, null, 0), 500);
    assert.equal(
      backoffDelay((attempt) => attempt * 7, 3, null, 0),
      21,
    );
  });

  it('rejects a bad backoff when the task is defined', async () => {
    const { defineTask, ValidationError } = await import('../src/index.js');
    const handler = async () => undefined;
    assert.throws(() => defineTask({ handler, backoff: { type: 'fixed', delayMs: -1 } }), ValidationError);
    assert.throws(
      () => defineTask({ handler, backoff: { type: 'exponential', jitter: 2 } }),
      ValidationError,
    );
    assert.throws(() => defineTask({ handler, maxAttempts: 0 }), ValidationError);
    assert.throws(() => defineTask({ handler, backoff: { type: 'nope' } as never }), ValidationError);
  });
});

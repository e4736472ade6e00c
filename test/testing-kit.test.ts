import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelay,
  cancel,
  DEFAULT_BACKOFF,
  defineTask,
  fail,
  InvalidResultError,
  PolicyError,
  RuntimeStateError,
  remove,
  rerunAfter,
  rerunAt,
  SystemClock,
  TimeoutError,
  type TransitionEvent,
  ValidationError,
} from '../src/index.js';
import { drainDueJobs, type RunResult, runTask, SimulatedClock } from '../src/testing/index.js';
import { freshSchema, nextEvent, testRuntime } from './support/helpers.js';

// kindOf narrows a result for the assertions that follow, failing with the whole result otherwise.
function kindOf<K extends RunResult['kind']>(result: RunResult, kind: K): Extract<RunResult, { kind: K }> {
  assert.equal(result.kind, kind, `expected ${kind}, got ${JSON.stringify(result)}`);
  return result as Extract<RunResult, { kind: K }>;
}

const failing = (message = 'boom') => {
  return () => {
    throw new Error(message);
  };
};

describe('runTask', () => {
  it('succeeds with the result as stored (JSON), through a real handler context', async () => {
    const clock = new SimulatedClock();
    const seen: { attempts: number; aborted: boolean; hasLogger: boolean; payload: unknown }[] = [];
    const result = await runTask(
      async (payload: { at: Date }, ctx) => {
        ctx.logger.info('the default logger is silent');
        seen.push({
          attempts: ctx.job.attempts,
          aborted: ctx.signal.aborted,
          hasLogger: typeof ctx.logger.child === 'function',
          payload,
        });
        return { at: new Date(0), n: 1 };
      },
      { at: new Date(0) },
      { clock, jobId: '42', taskName: 'stamp' },
    );
    const succeeded = kindOf(result, 'succeeded');
    assert.deepEqual(succeeded.result, { at: '1970-01-01T00:00:00.000Z', n: 1 });
    // The handler gets the payload as a claim reads it back from the jsonb column.
    assert.deepEqual(seen, [
      { attempts: 1, aborted: false, hasLogger: true, payload: { at: '1970-01-01T00:00:00.000Z' } },
    ]);
    assert.equal(result.job.id, '42');
    assert.equal(result.job.task, 'stamp');
    assert.equal(result.job.state, 'succeeded');
    assert.equal(clock.timerCount, 0, 'no timer left on the clock');
  });

  it('records every progress report with its clock time, and refuses bad ones as the runtime does', async () => {
    const clock = new SimulatedClock();
    const result = await runTask(
      (_payload, ctx) => {
        ctx.progress(0, 3);
        ctx.progress(2, 3);
        assert.throws(() => ctx.progress(4, 3), ValidationError);
        ctx.progress(3, 3);
        return 'done';
      },
      null,
      { clock },
    );
    assert.equal(result.kind, 'succeeded');
    assert.deepEqual(
      result.progress.map(({ completed, total }) => [completed, total]),
      [
        [0, 3],
        [2, 3],
        [3, 3],
      ],
    );
    assert.deepEqual(result.progress[0]?.at, clock.now());
    assert.deepEqual(result.job.progress, { completed: 3, total: 3 });
    assert.equal(clock.timerCount, 0, 'the progress write timer is cleared');
  });

  it('retries with the delay of the task’s own backoff, as the policy machine computes it', async () => {
    const clock = new SimulatedClock();
    const task = defineTask({
      handler: failing('flaky'),
      maxAttempts: 5,
      backoff: { type: 'linear', stepMs: 700, maxMs: 10_000 },
    });
    const retry = kindOf(await runTask(task, {}, { clock, attempt: 3 }), 'retry');
    assert.equal(retry.delayMs, 2100);
    assert.deepEqual(retry.runAt, new Date(clock.now().getTime() + 2100));
    assert.match(String(retry.error), /flaky/);
    assert.equal(retry.job.state, 'retry');
    assert.equal(retry.job.attempts, 3);
    assert.match(retry.job.lastError ?? '', /flaky/);
  });

  it('fixes the jitter draw with `random`, and uses the default backoff when the task names none', async () => {
    const withJitter = defineTask({
      handler: failing(),
      backoff: { type: 'exponential', baseMs: 1000, maxMs: 60_000, jitter: 0.5 },
    });
    const jittered = kindOf(await runTask(withJitter, {}, { attempt: 2, random: 0.5 }), 'retry');
    assert.equal(jittered.delayMs, 1500);
    const byDefault = kindOf(await runTask(failing(), {}, { attempt: 4, random: 0.25 }), 'retry');
    assert.equal(byDefault.delayMs, backoffDelay(DEFAULT_BACKOFF, 4, undefined, 0.25));
  });

  it('passes a backoff function the attempt and the error', async () => {
    const calls: [number, unknown][] = [];
    const task = defineTask({
      handler: failing('rate limited'),
      backoff: (attempt, error) => {
        calls.push([attempt, error]);
        return attempt * 60_000;
      },
    });
    const retry = kindOf(await runTask(task, {}, { attempt: 2 }), 'retry');
    assert.equal(retry.delayMs, 120_000);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.[0], 2);
    assert.equal(calls[0]?.[1], retry.error);
  });

  it('fails on the last attempt, whatever the backoff', async () => {
    const task = defineTask({ handler: failing('still broken'), maxAttempts: 3 });
    const failed = kindOf(await runTask(task, {}, { attempt: 3 }), 'failed');
    assert.match(String(failed.error), /still broken/);
    assert.equal(failed.job.state, 'failed');
    // The job's maxAttempts can be given as enqueue would give it.
    assert.equal((await runTask(task, {}, { attempt: 3, maxAttempts: 4 })).kind, 'retry');
  });

  it('fails when a custom policy abandons, and tells it what the runtime tells it', async () => {
    const inputs: { attempt: number; maxAttempts: number; task: string; jobId: string }[] = [];
    const failed = kindOf(
      await runTask(
        () => {
          throw new TypeError('bad input');
        },
        {},
        {
          jobId: '7',
          taskName: 'parse',
          attempt: 2,
          maxAttempts: 9,
          onException: ({ attempt, maxAttempts, task, jobId, error }) => {
            inputs.push({ attempt, maxAttempts, task, jobId });
            return error instanceof TypeError ? { action: 'abandon' } : { action: 'retry', delayMs: 0 };
          },
        },
      ),
      'failed',
    );
    assert.ok(failed.error instanceof TypeError);
    assert.deepEqual(inputs, [{ attempt: 2, maxAttempts: 9, task: 'parse', jobId: '7' }]);
  });

  it('fails at once on fail(), with its reason, attempts left or not', async () => {
    const failed = kindOf(await runTask(() => fail('corrupt export'), {}, { maxAttempts: 5 }), 'failed');
    assert.equal(failed.error, 'corrupt export');
    assert.equal(failed.job.lastError, 'corrupt export');
  });

  it('reruns at the asked time without spending the attempt (rerunAfter, rerunAt)', async () => {
    const clock = new SimulatedClock();
    const after = kindOf(await runTask(() => rerunAfter(30_000), {}, { clock }), 'rerun');
    assert.deepEqual(after.runAt, new Date(clock.now().getTime() + 30_000));
    assert.equal(after.job.state, 'not_started');
    assert.equal(after.job.attempts, 0, 'the attempt is refunded');
    const when = new Date('2031-06-01T00:00:00Z');
    const at = kindOf(await runTask(() => rerunAt(when), {}, { clock }), 'rerun');
    assert.deepEqual(at.runAt, when);
  });

  it('cancels with the handler’s reason, and removes', async () => {
    const cancelled = kindOf(await runTask(() => cancel('revoked'), {}), 'cancelled');
    assert.equal(cancelled.reason, 'revoked');
    assert.equal(cancelled.job.state, 'cancelled');
    const removed = kindOf(await runTask(async () => remove(), {}), 'removed');
    assert.equal(removed.job.state, 'removed');
  });

  it('crashes when the policy says so, or when the policy itself fails', async () => {
    const error = new Error('disk on fire');
    const crashed = kindOf(
      await runTask(
        () => {
          throw error;
        },
        {},
        { onException: () => ({ action: 'crash' }) },
      ),
      'crashed',
    );
    assert.equal(crashed.error, error);
    // A crash gives the job back, attempt refunded, for another runtime to finish.
    assert.equal(crashed.job.state, 'not_started');
    assert.equal(crashed.job.attempts, 0);
    const broken = kindOf(
      await runTask(failing(), {}, { onException: () => ({ action: 'retry', delayMs: -1 }) }),
      'crashed',
    );
    assert.ok(broken.error instanceof PolicyError);
  });

  it('sends a result that cannot be stored to the policy as an InvalidResultError', async () => {
    const retry = kindOf(await runTask(() => ({ big: 1n }), {}, { random: 0 }), 'retry');
    assert.ok(retry.error instanceof InvalidResultError);
    assert.equal(retry.delayMs, 1000);
  });

  it('times out on the simulated clock: the signal fires and the policy decides what follows', async () => {
    const clock = new SimulatedClock();
    let reason: unknown;
    const task = defineTask({
      handler: (_payload, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
        }),
      timeoutMs: 5000,
      maxAttempts: 2,
      backoff: { type: 'fixed', delayMs: 60_000 },
    });
    const first = kindOf(await runTask(task, {}, { clock, elapseMs: 5000 }), 'timed_out');
    assert.equal(first.timeoutMs, 5000);
    assert.ok(first.error instanceof TimeoutError);
    assert.equal(reason, first.error, 'the handler’s signal fired with the same error');
    assert.equal(first.next.kind, 'retry');
    assert.equal(first.next.kind === 'retry' && first.next.delayMs, 60_000);
    assert.equal(first.job.state, 'retry');
    assert.equal(clock.timerCount, 0);
    const last = kindOf(await runTask(task, {}, { clock, elapseMs: 5000, attempt: 2 }), 'timed_out');
    assert.equal(last.next.kind, 'failed');
    assert.equal(last.job.state, 'failed');
  });

  it('does not time out a handler that finishes within timeoutMs', async () => {
    const clock = new SimulatedClock();
    const start = clock.now().getTime();
    const task = defineTask({ handler: async () => 'in time', timeoutMs: 5000 });
    const done = kindOf(await runTask(task, {}, { clock, elapseMs: 4999 }), 'succeeded');
    assert.equal(done.result, 'in time');
    assert.equal(clock.now().getTime() - start, 4999, 'the clock moved by elapseMs');
    assert.equal(clock.timerCount, 0, 'the timeout timer is cleared');
  });

  it('refuses options and tasks the runtime would refuse', async () => {
    await assert.rejects(runTask(failing(), {}, { attempt: 3, maxAttempts: 2 }), ValidationError);
    await assert.rejects(runTask(defineTask({ handler: failing() }), {}, { attempt: 0 }), ValidationError);
    await assert.rejects(runTask({ handler: failing(), maxAttempts: 0 }, {}), ValidationError);
    await assert.rejects(runTask(failing(), { n: 1n }), ValidationError);
    await assert.rejects(runTask(failing(), {}, { random: 1 }), ValidationError);
    await assert.rejects(runTask(failing(), {}, { elapseMs: 10, clock: new SystemClock() }), ValidationError);
  });
});

describe('drainDueJobs', () => {
  it('gives the same retry delay as a real runtime, then drains retries, reruns and later jobs to the end', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('kit_drain');
    let flakyRuns = 0;
    let rerunRuns = 0;
    const flaky = defineTask({
      handler: () => {
        flakyRuns++;
        if (flakyRuns < 3) throw new Error(`flaky ${flakyRuns}`);
        return { ok: true };
      },
      maxAttempts: 5,
      backoff: { type: 'linear', stepMs: 90_000 },
    });
    const runtime = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: {
        flaky,
        broken: defineTask({
          handler: failing(),
          maxAttempts: 3,
          backoff: { type: 'fixed', delayMs: 600_000 },
        }),
        poll: () => (++rerunRuns < 2 ? rerunAfter(1_800_000) : 'ready'),
        later: () => 'later',
      },
    });
    await runtime.start();
    try {
      const predicted = kindOf(await runTask(flaky, {}, { attempt: 1 }), 'retry');
      flakyRuns = 0;
      const firstRetry = nextEvent<TransitionEvent>(runtime.events, 'job:retry');
      await runtime.enqueue('flaky', {});
      const event = await firstRetry;
      assert.equal(event.job.runAt?.getTime(), clock.now().getTime() + predicted.delayMs);

      await runtime.enqueue('broken', {});
      await runtime.enqueue('poll', {});
      await runtime.enqueue('later', {}, { runAt: new Date(clock.now().getTime() + 3_600_000) });
      const parked = await runtime.enqueue('later', {}, { runAt: null });
      const start = clock.now().getTime();

      const summary = await drainDueJobs(runtime, clock);
      assert.equal(summary.stoppedBy, 'drained');
      assert.deepEqual(summary.finished, { succeeded: 3, failed: 1, cancelled: 0, expired: 0, removed: 0 });
      assert.deepEqual(
        summary.left.map((job) => job.id),
        [parked.id],
      );
      assert.equal(flakyRuns, 3);
      assert.equal(rerunRuns, 2);
      // One step to each due time: flaky's retries (90 s, then 180 s later), broken's (10 min each),
      // poll's rerun (30 min), and the job due in an hour, the last one.
      assert.equal(summary.steps, 6);
      assert.equal(summary.advancedMs, 3_600_000);
      assert.equal(clock.now().getTime() - start, 3_600_000);
    } finally {
      await runtime.stop();
    }
  });

  it('stops at untilMs or maxSteps and leaves the later jobs waiting', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('kit_limit');
    const runtime = testRuntime({ schema, clock, pollIntervalMs: 60_000, tasks: { work: () => 'ok' } });
    await runtime.start();
    try {
      const soon = await runtime.enqueue('work', {}, { runAt: new Date(clock.now().getTime() + 60_000) });
      const late = await runtime.enqueue('work', {}, { runAt: new Date(clock.now().getTime() + 7_200_000) });
      const none = await drainDueJobs(runtime, clock, { maxSteps: 0 });
      assert.equal(none.stoppedBy, 'maxSteps');
      assert.equal(none.steps, 0);
      assert.equal(none.left.length, 2);

      const summary = await drainDueJobs(runtime, clock, { untilMs: 3_600_000 });
      assert.equal(summary.stoppedBy, 'untilMs');
      assert.equal(summary.finished.succeeded, 1);
      assert.deepEqual(
        summary.left.map((job) => job.id),
        [late.id],
      );
      assert.equal((await runtime.getJob(soon.id))?.state, 'succeeded');
      assert.equal((await runtime.getJob(late.id))?.state, 'not_started');
    } finally {
      await runtime.stop();
    }
  });

  it('looks only at the given tasks, so jobs another process works do not hold it up', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('kit_tasks');
    const runtime = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      externalTasks: ['elsewhere'],
      tasks: { work: () => 'ok' },
    });
    await runtime.start();
    try {
      await runtime.enqueue('elsewhere', {});
      await runtime.enqueue('work', {}, { runAt: new Date(clock.now().getTime() + 10_000) });
      const summary = await drainDueJobs(runtime, clock, { tasks: ['work'] });
      assert.equal(summary.stoppedBy, 'drained');
      assert.equal(summary.finished.succeeded, 1);
      assert.deepEqual(summary.left, []);
    } finally {
      await runtime.stop();
    }
  });

  it('stops when the policy crashes the runtime', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('kit_crash');
    const runtime = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: { doomed: failing('fatal') },
      onException: () => ({ action: 'crash' }),
    });
    await runtime.start();
    try {
      await runtime.enqueue('doomed', {});
      const summary = await drainDueJobs(runtime, clock);
      assert.equal(summary.stoppedBy, 'crashed');
      assert.match(String(summary.crash?.error), /fatal/);
    } finally {
      await runtime.stop();
    }
  });

  it('refuses a runtime that is not started', async () => {
    const runtime = testRuntime({ schema: freshSchema('kit_idle'), tasks: { work: () => 1 } });
    await assert.rejects(drainDueJobs(runtime, new SimulatedClock()), RuntimeStateError);
  });
});

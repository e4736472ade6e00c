import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cancel,
  fail,
  type Job,
  remove,
  rerunAfter,
  SimulatedClock,
  type TaskHandler,
  type TransitionEvent,
} from '../src/index.js';
import { countRows, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

// runOnce starts a worker with one task, enqueues one job and resolves with the event of the first
// finished-or-waiting state in `until`, then stops the worker.
async function runOnce(
  handler: TaskHandler,
  until: string,
  options: { maxAttempts?: number; clock?: SimulatedClock } = {},
): Promise<{ event: TransitionEvent; stored: Job | null; schema: string }> {
  const schema = freshSchema('outcome');
  const runtime = testRuntime({ schema, clock: options.clock, tasks: { work: handler } });
  await runtime.start();
  const reached = nextEvent<TransitionEvent>(runtime.events, until);
  await runtime.enqueue('work', { n: 1 }, { maxAttempts: options.maxAttempts ?? 3 });
  const event = await reached;
  const stored = await runtime.getJob(event.job.id);
  await runtime.stop();
  return { event, stored, schema };
}

describe('handler outcomes', () => {
  it('a returned value is stored as the result', async () => {
    const { stored } = await runOnce(() => ({ sent: 3 }), 'job:succeeded');
    assert.equal(stored?.state, 'succeeded');
    assert.deepEqual(stored?.result, { sent: 3 });
  });

  it('rerunAfter puts the job back without spending an attempt, and it runs again then', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('rerun');
    const runs: number[] = [];
    const runtime = testRuntime({
      schema,
      clock,
      tasks: {
        poll: (_payload, ctx) => {
          runs.push(ctx.job.attempts);
          return runs.length < 2 ? rerunAfter(5_000) : 'done';
        },
      },
    });
    await runtime.start();
    const rerun = nextEvent<TransitionEvent>(runtime.events, 'job:not_started', (e) => e.event === 'RERUN');
    const job = await runtime.enqueue('poll', {});
    const event = await rerun;
    assert.equal(event.job.attempts, 0, 'the attempt was refunded');
    assert.equal(event.job.runAt?.getTime(), clock.now().getTime() + 5_000);
    const succeeded = nextEvent<TransitionEvent>(runtime.events, 'job:succeeded');
    clock.advance(5_000);
    await succeeded;
    const stored = await runtime.getJob(job.id);
    await runtime.stop();
    assert.deepEqual(runs, [1, 1], 'each run is attempt 1');
    assert.equal(stored?.result, 'done');
  });

  it('remove deletes the row after success, announcing succeeded then removed', async () => {
    const schema = freshSchema('remove');
    const runtime = testRuntime({ schema, tasks: { once: () => remove() } });
    await runtime.start();
    const seen: string[] = [];
    runtime.events.on('job:transition', (e) => seen.push(`${e.from}->${e.to}`));
    const removed = nextEvent<TransitionEvent>(runtime.events, 'job:removed');
    const job = await runtime.enqueue('once', {});
    await removed;
    assert.equal(await runtime.getJob(job.id), null);
    await runtime.stop();
    assert.deepEqual(seen, [
      'null->not_started',
      'not_started->running',
      'running->succeeded',
      'succeeded->removed',
    ]);
    assert.equal(await countRows(schema), 0);
  });

  it('cancel ends the job cancelled with the reason', async () => {
    const { stored } = await runOnce(() => cancel('the order was withdrawn'), 'job:cancelled');
    assert.equal(stored?.state, 'cancelled');
    assert.equal(stored?.lastError, 'the order was withdrawn');
    assert.ok(stored?.finishedAt);
  });

  it('fail ends the job failed at once, whatever attempts are left', async () => {
    const { stored } = await runOnce(() => fail('card declined'), 'job:failed', { maxAttempts: 10 });
    assert.equal(stored?.state, 'failed');
    assert.equal(stored?.attempts, 1);
    assert.equal(stored?.lastError, 'card declined');
  });

  it('a result that is not JSON, or too large, fails the attempt with a clear error', async () => {
    const notJson = await runOnce(() => ({ big: 1n }), 'job:failed', { maxAttempts: 1 });
    assert.match(
      notJson.stored?.lastError ?? '',
      /InvalidResultError: job \d+: expected the handler to return a JSON-serializable result/,
    );
    const tooBig = await runOnce(() => 'x'.repeat(1_000_001), 'job:failed', { maxAttempts: 1 });
    assert.match(
      tooBig.stored?.lastError ?? '',
      /expected the handler to return a result of at most 1000000 bytes/,
    );
  });
});

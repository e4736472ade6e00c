import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimulatedClock, TimeoutError, type TransitionEvent } from '../src/index.js';
import { freshSchema, nextEvent, testRuntime } from './support/helpers.js';

describe('timeouts', () => {
  it('a handler that ignores its signal fails with TimeoutError, keeps its slot, and its late result is discarded', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('timeout');
    let finishStubborn: (value: string) => void = () => undefined;
    let sawAbort: unknown = null;
    let quickRuns = 0;
    const runtime = testRuntime({
      schema,
      clock,
      maxRunningJobs: 1,
      pollIntervalMs: 60_000,
      tasks: {
        stubborn: {
          handler: (_p, ctx) => {
            ctx.signal.addEventListener('abort', () => {
              sawAbort = ctx.signal.reason;
            });
            return new Promise<string>((resolve) => {
              finishStubborn = resolve;
            });
          },
          timeoutMs: 5_000,
          maxAttempts: 1,
        },
        quick: async () => {
          quickRuns++;
        },
      },
    });
    await runtime.start();
    const stubborn = await runtime.enqueue('stubborn', {});
    await nextEvent<TransitionEvent>(runtime.events, 'job:running', (e) => e.job.id === stubborn.id);
    const failed = nextEvent<TransitionEvent>(runtime.events, 'job:failed', (e) => e.job.id === stubborn.id);
    clock.advance(5_000);
    const event = await failed;
    assert.ok(sawAbort instanceof TimeoutError, 'the signal fired with a TimeoutError');
    assert.match(event.job.lastError ?? '', /TimeoutError/);

    // The stubborn handler still holds the only slot: a new job waits however often the runtime polls.
    const quick = await runtime.enqueue('quick', {});
    // With no free slot a wake-up ends before it queries, so the polls below cannot start anything.
    clock.advance(60_000);
    assert.equal((await runtime.getJob(quick.id))?.state, 'not_started');
    assert.equal(quickRuns, 0, 'maxRunningJobs is not exceeded');
    assert.equal(runtime.health().running, 1);

    const quickDone = nextEvent<TransitionEvent>(
      runtime.events,
      'job:succeeded',
      (e) => e.job.id === quick.id,
    );
    finishStubborn('too late');
    await quickDone;
    const row = await runtime.getJob(stubborn.id);
    await runtime.stop();
    assert.equal(row?.state, 'failed');
    assert.equal(row?.result, null, 'the late result was not written');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTO_PREFETCH_MAX, PrefetchSizer } from '../src/dispatch/prefetch.js';
import { type PolledEvent, SimulatedClock } from '../src/index.js';
import { countEvents, freshSchema, testRuntime } from './support/helpers.js';

describe('prefetch sizing', () => {
  it('uses a fixed prefetch as given', () => {
    assert.equal(new PrefetchSizer(0).size, 0);
    assert.equal(new PrefetchSizer(250).size, 250);
  });

  it("'auto' starts at nothing and grows to about 100 ms of work at the measured rate", () => {
    let now = 0;
    const sizer = new PrefetchSizer('auto', () => now);
    assert.equal(sizer.size, 0, 'no rate measured yet');
    // 2 jobs per millisecond for 300 ms.
    for (let i = 0; i < 600; i++) {
      now += 0.5;
      sizer.finished();
    }
    assert.equal(sizer.size, 200);
  });

  it("'auto' stays at nothing for slow jobs and is capped for very fast ones", () => {
    let now = 0;
    const slow = new PrefetchSizer('auto', () => now);
    for (let i = 0; i < 3; i++) {
      now += 1000;
      slow.finished();
    }
    assert.equal(slow.size, 0);
    now = 0;
    const fast = new PrefetchSizer('auto', () => now);
    for (let i = 0; i < 30_000; i++) {
      now += 0.01;
      fast.finished();
    }
    assert.equal(fast.size, AUTO_PREFETCH_MAX);
  });

  it("'auto' forgets the rate once the runtime has been idle", () => {
    let now = 0;
    const sizer = new PrefetchSizer('auto', () => now);
    for (let i = 0; i < 600; i++) {
      now += 0.5;
      sizer.finished();
    }
    assert.ok(sizer.size > 0);
    now += 5_000;
    assert.equal(sizer.size, 0);
  });
});

describe('a long local queue of quick jobs', () => {
  it('lets the event loop turn before it is empty, so claims and writes overlap with work', async () => {
    const schema = freshSchema('turns');
    const total = 600;
    let ran = 0;
    let ranWhenLoopTurned = -1;
    const runtime = testRuntime({
      schema,
      prefetch: 1000,
      tasks: {
        quick: () => {
          // The first handler asks for the next turn of the event loop; it must come mid-queue.
          if (ran++ === 0) setImmediate(() => (ranWhenLoopTurned = ran));
        },
      },
    });
    const producer = testRuntime({ schema });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: total }, () => ({ task: 'quick', payload: {} })));
    const done = countEvents(runtime.events, 'job:succeeded', total);
    const claims: number[] = [];
    runtime.events.on('runtime:polled', (polled: PolledEvent) => claims.push(polled.claimed));
    await runtime.start();
    await done;
    await Promise.all([runtime.stop(), producer.stop()]);
    assert.equal(claims[0], total, 'one claim took the whole backlog');
    assert.ok(
      ranWhenLoopTurned > 0 && ranWhenLoopTurned < total,
      `loop turned after ${ranWhenLoopTurned} jobs`,
    );
  });
});

describe('a handler that ends before its own claim round does', () => {
  it('still has the freed slot claimed again: without prefetch, every due job runs without a poll', async () => {
    const schema = freshSchema('fastslot');
    const clock = new SimulatedClock();
    // Synchronous, so the handler settles while the round that claimed its job is still under way.
    const runtime = testRuntime({
      schema,
      clock,
      maxRunningJobs: 1,
      prefetch: 0,
      tasks: {
        instant: () => {
          clock.advance(200);
        },
      },
    });
    await runtime.start();
    try {
      // The simulated clock never moves: only a claim after each freed slot can run the next job.
      const done = countEvents(runtime.events, 'job:succeeded', 3, () => true, 10_000);
      await runtime.enqueueMany(Array.from({ length: 3 }, () => ({ task: 'instant' })));
      await done;
    } finally {
      await runtime.stop();
    }
  });
});

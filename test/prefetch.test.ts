import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUTO_PREFETCH_MAX, PrefetchSizer } from '../src/prefetch.js';

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

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SimulatedClock, type TransitionEvent, UnknownOptionError, ValidationError } from '../src/index.js';
import { countEvents, freshSchema, nextEvent, testRuntime, withPool } from './support/helpers.js';

const ZERO = {
  not_started: 0,
  running: 0,
  retry: 0,
  interrupted: 0,
  succeeded: 0,
  failed: 0,
  cancelled: 0,
  expired: 0,
};

describe('runtime.stats()', () => {
  it('counts jobs per state, by queue and by task, across two runtimes', async () => {
    const schema = freshSchema('stats');
    const worker = testRuntime({
      schema,
      statsMaxAgeMs: 0,
      tasks: {
        ok: () => undefined,
        boom: () => {
          throw new Error('boom');
        },
      },
    });
    const producer = testRuntime({ schema, statsMaxAgeMs: 0 });
    await worker.start();
    await producer.start();
    try {
      const finished = countEvents<TransitionEvent>(worker.events, 'job:transition', 5, (e) =>
        ['succeeded', 'failed'].includes(e.to),
      );
      await producer.enqueueMany([
        { task: 'ok', queue: 'a' },
        { task: 'ok', queue: 'b' },
        { task: 'ok', queue: 'b' },
        { task: 'boom', queue: 'a', maxAttempts: 1 },
        { task: 'boom', queue: 'b', maxAttempts: 1 },
      ]);
      await worker.enqueueMany([
        { task: 'ok', queue: 'a', runAt: null },
        { task: 'boom', queue: 'b', runAt: null },
      ]);
      await finished;
      const all = await producer.stats();
      assert.deepEqual(all.counts, { ...ZERO, succeeded: 3, failed: 2, not_started: 2 });
      assert.equal(all.total, 7);
      assert.equal(all.queue, null);
      assert.equal(all.task, null);
      assert.deepEqual((await worker.stats({ queue: 'a' })).counts, {
        ...ZERO,
        succeeded: 1,
        failed: 1,
        not_started: 1,
      });
      assert.deepEqual((await producer.stats({ task: 'ok' })).counts, {
        ...ZERO,
        succeeded: 3,
        not_started: 1,
      });
      const bBoom = await producer.stats({ queue: 'b', task: 'boom' });
      assert.deepEqual(bBoom.counts, { ...ZERO, failed: 1, not_started: 1 });
      assert.deepEqual([bBoom.queue, bBoom.task, bBoom.total], ['b', 'boom', 2]);
      assert.deepEqual((await producer.stats({ queue: 'nowhere' })).counts, ZERO);
    } finally {
      await worker.stop();
      await producer.stop();
    }
  });

  it('reuses the snapshot within its max age, in every runtime, and counts again after it', async () => {
    const schema = freshSchema('stats_age');
    const clock = new SimulatedClock();
    const one = testRuntime({ schema, clock, statsMaxAgeMs: 5000 });
    const two = testRuntime({ schema, clock, statsMaxAgeMs: 5000 });
    await one.start();
    await two.start();
    try {
      await one.enqueueMany([{ task: 'x' }, { task: 'x' }]);
      const first = await one.stats();
      assert.equal(first.counts.not_started, 2);
      assert.deepEqual(first.countedAt, clock.now());
      await one.enqueue('x');
      clock.advance(5000);
      const reused = await two.stats();
      assert.equal(reused.counts.not_started, 2, 'the other runtime read the snapshot, 5 s old');
      assert.deepEqual(reused.countedAt, first.countedAt);
      clock.advance(1);
      const recounted = await two.stats();
      assert.equal(recounted.counts.not_started, 3);
      assert.deepEqual(recounted.countedAt, clock.now());
    } finally {
      await one.stop();
      await two.stop();
    }
  });

  it('reads the snapshot there is, without waiting, while another process recounts it', async () => {
    const schema = freshSchema('stats_lock');
    const clock = new SimulatedClock();
    const runtime = testRuntime({ schema, clock, statsMaxAgeMs: 1000 });
    await runtime.start();
    try {
      await runtime.enqueue('x');
      const first = await runtime.stats();
      await runtime.enqueue('x');
      clock.advance(2000);
      await withPool(async (pool) => {
        const other = await pool.connect();
        try {
          await other.query('BEGIN');
          await other.query(
            `SELECT pg_advisory_xact_lock(hashtextextended('jobchart.job_counts:' || $1, 0))`,
            [schema],
          );
          const stale = await runtime.stats();
          assert.equal(stale.counts.not_started, 1, 'the snapshot as it was');
          assert.deepEqual(stale.countedAt, first.countedAt);
          await other.query('ROLLBACK');
        } finally {
          other.release();
        }
      });
      assert.equal((await runtime.stats()).counts.not_started, 2, 'recounted once the lock was free');
    } finally {
      await runtime.stop();
    }
  });

  it('puts transitions in their minute once flushed, sums every runtime, and drops them after an hour', async () => {
    const schema = freshSchema('stats_minutes');
    const clock = new SimulatedClock(new Date('2030-01-01T10:00:30Z'));
    const worker = testRuntime({
      schema,
      clock,
      statsFlushIntervalMs: 1000,
      tasks: { work: () => undefined },
    });
    const reader = testRuntime({ schema, clock, statsFlushIntervalMs: 1000 });
    await worker.start();
    await reader.start();
    try {
      const done = countEvents(worker.events, 'job:succeeded', 3);
      await worker.enqueueMany([{ task: 'work', queue: 'q' }, { task: 'work' }, { task: 'work' }]);
      await done;
      const flushed = nextEvent<{ rows: number }>(worker.events, 'stats:flushed');
      clock.advance(1000);
      assert.equal((await flushed).rows, 6, 'enqueue, claim and success of two queues');
      const stats = await reader.stats();
      assert.equal(stats.transitionsPerMinute.length, 60);
      const last = stats.transitionsPerMinute[59];
      assert.deepEqual(last, {
        startsAt: new Date('2030-01-01T10:00:00Z'),
        total: 9,
        to: { not_started: 3, running: 3, succeeded: 3 },
      });
      assert.deepEqual(stats.transitionsPerMinute[0]?.startsAt, new Date('2030-01-01T09:01:00Z'));
      assert.equal(
        stats.transitionsPerMinute.slice(0, 59).reduce((sum, m) => sum + m.total, 0),
        0,
      );
      assert.equal((await reader.stats({ queue: 'q' })).transitionsPerMinute[59]?.total, 3);
      assert.equal((await reader.stats({ task: 'nothing' })).transitionsPerMinute[59]?.total, 0);
      // The reader's own transitions (an enqueue a minute later) are added at its stop.
      clock.advance(60_000);
      await reader.enqueue('other', undefined, { runAt: null });
      await reader.stop();
      const later = await worker.stats();
      assert.deepEqual(
        later.transitionsPerMinute.slice(57).map((m) => m.total),
        [0, 9, 1],
      );
      clock.advance(59 * 60_000);
      const hourLater = await worker.stats();
      assert.equal(hourLater.transitionsPerMinute[0]?.startsAt.toISOString(), '2030-01-01T10:01:00.000Z');
      assert.deepEqual(hourLater.transitionsPerMinute[0]?.total, 1);
      assert.equal(
        hourLater.transitionsPerMinute.reduce((sum, m) => sum + m.total, 0),
        1,
        '10:00 dropped out',
      );
    } finally {
      await worker.stop();
      await reader.stop();
    }
  });

  it('deletes the minutes older than two hours as it flushes', async () => {
    const schema = freshSchema('stats_prune');
    const clock = new SimulatedClock();
    const runtime = testRuntime({ schema, clock, statsFlushIntervalMs: 1000 });
    await runtime.start();
    try {
      const minutes = () =>
        withPool(async (pool) => {
          const result = await pool.query(`SELECT minute FROM "${schema}".transition_counts ORDER BY minute`);
          return result.rows.map((row: { minute: Date }) => row.minute.toISOString());
        });
      await runtime.enqueue('x', undefined, { runAt: null });
      let flushed = nextEvent(runtime.events, 'stats:flushed');
      clock.advance(1000);
      await flushed;
      assert.deepEqual(await minutes(), ['2030-01-01T00:00:00.000Z']);
      clock.advance(2 * 3_600_000);
      await runtime.enqueue('x', undefined, { runAt: null });
      flushed = nextEvent(runtime.events, 'stats:flushed');
      clock.advance(1000);
      await flushed;
      assert.deepEqual(await minutes(), ['2030-01-01T02:00:00.000Z']);
    } finally {
      await runtime.stop();
    }
  });

  it('refuses bad filters with a ValidationError', async () => {
    const schema = freshSchema('stats_bad');
    const runtime = testRuntime({ schema });
    await runtime.start();
    try {
      await assert.rejects(runtime.stats({ queue: 'a b' }), ValidationError);
      await assert.rejects(runtime.stats({ queue: '' }), ValidationError);
      await assert.rejects(runtime.stats({ task: 42 as unknown as string }), ValidationError);
      await assert.rejects(runtime.stats({ qeue: 'a' } as never), UnknownOptionError);
      await assert.rejects(runtime.stats(null as never), ValidationError);
      assert.throws(() => testRuntime({ schema, statsMaxAgeMs: -1 }), ValidationError);
      assert.throws(() => testRuntime({ schema, statsFlushIntervalMs: 0 }), ValidationError);
    } finally {
      await runtime.stop();
    }
  });
});

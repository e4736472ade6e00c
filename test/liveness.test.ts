import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Runtime,
  type RuntimeErrorEvent,
  RuntimeStateError,
  SimulatedClock,
  type SweptEvent,
  type TransitionEvent,
} from '../src/index.js';
import { type FaultyPool, faultyPool } from './support/faulty-pool.js';
import { freshSchema, gate, nextEvent, testRuntime, withPool } from './support/helpers.js';

const timing = {
  heartbeatIntervalMs: 1_000,
  consumerTimeoutMs: 3_000,
  pollIntervalMs: 1_000,
  listen: false,
};

// beat moves the shared clock one heartbeat and waits until every runtime's heartbeat has landed
// or failed.
async function beat(clock: SimulatedClock, runtimes: readonly Runtime[]): Promise<void> {
  const settled = runtimes.map((runtime) =>
    Promise.race([
      nextEvent(runtime.events, 'runtime:heartbeat'),
      nextEvent<RuntimeErrorEvent>(runtime.events, 'runtime:error', (e) => e.during === 'heartbeat'),
    ]),
  );
  clock.advance(timing.heartbeatIntervalMs);
  await Promise.all(settled);
}

describe('liveness across database outages', () => {
  it("an outage longer than consumerTimeoutMs does not make runtimes take each other's jobs", async () => {
    const schema = freshSchema('outagelive');
    const clock = new SimulatedClock();
    const pools: FaultyPool[] = [faultyPool(), faultyPool()];
    const slow = gate();
    const [first, second] = pools.map((pool, i) =>
      testRuntime({
        schema,
        clock,
        pool,
        name: `w${i}`,
        ...timing,
        // Only the second works the job; the first merely heartbeats and sweeps.
        tasks: i === 0 ? { other: () => undefined } : { work: () => slow.opened.then(() => 'done') },
      }),
    ) as [Runtime, Runtime];
    let swept = 0;
    first.events.on('runtime:swept', () => swept++);
    try {
      await first.start();
      await second.start();
      const running = nextEvent<TransitionEvent>(second.events, 'job:running');
      await second.enqueue('work', {});
      for (let i = 0; i < 4; i++) await beat(clock, [first, second]);
      await running;
      assert.equal(first.health().database, 'up');

      // The database goes away for both for 10 s, three times consumerTimeoutMs.
      for (const pool of pools) pool.down = true;
      for (let i = 0; i < 10; i++) await beat(clock, [first, second]);
      assert.equal(first.health().database, 'down');
      assert.match(first.health().lastError ?? '', /Connection terminated/);

      // The first comes back a beat before the second: the second's silence was the database's.
      (pools[0] as FaultyPool).down = false;
      await beat(clock, [first, second]);
      assert.equal(first.health().database, 'up');
      (pools[1] as FaultyPool).down = false;
      for (let i = 0; i < 5; i++) await beat(clock, [first, second]);
      assert.equal(swept, 0, 'nobody was swept');
      const held = await withPool((db) => db.query(`SELECT state, locked_by FROM "${schema}".jobs`));
      assert.deepEqual(held.rows, [{ state: 'running', locked_by: 'w1' }]);

      // A consumer that really goes silent while the database is reachable is still swept.
      const sweep = nextEvent<SweptEvent>(first.events, 'runtime:swept');
      (pools[1] as FaultyPool).down = true;
      for (let i = 0; i < 4; i++) await beat(clock, [first]);
      assert.deepEqual((await sweep).consumers, ['w1']);
    } finally {
      slow.open();
      for (const pool of pools) pool.down = false;
      await second.stop();
      await first.stop();
      for (const pool of pools) await pool.end();
    }
  });

  it('refuses every public call after stop(), whoever owns the pool', async () => {
    const schema = freshSchema('afterstop');
    const pool = faultyPool();
    const owned = testRuntime({ schema });
    const borrowing = testRuntime({ schema, pool });
    await owned.start();
    await borrowing.start();
    const job = await owned.enqueue('anything', {});
    await owned.stop();
    await borrowing.stop();
    try {
      for (const runtime of [owned, borrowing]) {
        await assert.rejects(runtime.enqueue('anything', {}), RuntimeStateError);
        await assert.rejects(runtime.enqueueMany([{ task: 'anything' }]), RuntimeStateError);
        await assert.rejects(runtime.getJob(job.id), RuntimeStateError);
        await assert.rejects(runtime.listJobs(), RuntimeStateError);
        await assert.rejects(runtime.cancel(job.id), RuntimeStateError);
        await assert.rejects(runtime.retry(job.id), RuntimeStateError);
        await assert.rejects(runtime.reschedule(job.id, null), RuntimeStateError);
        await assert.rejects(runtime.remove(job.id), RuntimeStateError);
        await assert.rejects(runtime.schedules.list(), RuntimeStateError);
        assert.throws(() => runtime.subscribe(), RuntimeStateError);
        assert.equal(runtime.health().phase, 'stopped');
      }
      const count = await withPool((db) =>
        db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".jobs`),
      );
      assert.equal(count.rows[0]?.n, 1, 'nothing was written after stop');
    } finally {
      await pool.end();
    }
  });
});

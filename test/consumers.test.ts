import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PresumedDeadError,
  type Runtime,
  ShutdownError,
  SimulatedClock,
  type SweptEvent,
  type TransitionEvent,
} from '../src/index.js';
import { freshSchema, gate, nextEvent, testRuntime, withPool } from './support/helpers.js';

const consumerIds = (schema: string) =>
  withPool(async (pool) =>
    (await pool.query<{ id: string }>(`SELECT id FROM "${schema}".consumers ORDER BY id`)).rows.map(
      (r) => r.id,
    ),
  );

const timing = { heartbeatIntervalMs: 1_000, consumerTimeoutMs: 3_000 };

// heartbeats moves `clock` through `count` heartbeats of `runtime`, each one done before the next.
async function heartbeats(runtime: Runtime, clock: SimulatedClock, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const beaten = nextEvent(runtime.events, 'runtime:heartbeat');
    clock.advance(timing.heartbeatIntervalMs);
    await beaten;
  }
}

describe('consumers and the sweep', () => {
  it("takes a silent consumer's running job back; another runtime finishes it; the zombie's late result is refused", async () => {
    const schema = freshSchema('sweep');
    const start = new Date('2026-01-01T00:00:00Z');
    // Each runtime keeps its own simulated clock: the zombie's stands still, so it never heartbeats,
    // and the rescuer's reads 3.5 s later, so at its first heartbeat the zombie has been silent too long.
    const zombieClock = new SimulatedClock(start);
    const rescuerClock = new SimulatedClock(new Date(start.getTime() + 3_500));
    const stuck = gate();
    let zombieSignal: AbortSignal | undefined;
    const zombie = testRuntime({
      schema,
      clock: zombieClock,
      name: 'zombie',
      // Busy with its one stuck job, the zombie cannot claim the job back for itself.
      maxRunningJobs: 1,
      prefetch: 0,
      ...timing,
      tasks: {
        work: async (_p, ctx) => {
          zombieSignal = ctx.signal;
          await stuck.opened;
          return 'from the zombie';
        },
      },
    });
    await zombie.start();
    const zombieRunning = nextEvent<TransitionEvent>(zombie.events, 'job:running');
    const job = await zombie.enqueue('work', {});
    await zombieRunning;

    const rescuer = testRuntime({
      schema,
      clock: rescuerClock,
      name: 'rescuer',
      ...timing,
      tasks: { work: () => 'from the rescuer' },
    });
    await rescuer.start();
    // A runtime judges others only after watching them for consumerTimeoutMs itself.
    await heartbeats(rescuer, rescuerClock, 2);
    const swept = nextEvent<SweptEvent>(rescuer.events, 'runtime:swept');
    const finished = nextEvent<TransitionEvent>(rescuer.events, 'job:succeeded');
    rescuerClock.advance(1_000);
    const sweep = await swept;
    assert.deepEqual(sweep.consumers, ['zombie']);
    assert.deepEqual(sweep.jobs, [{ id: job.id, state: 'interrupted' }]);
    const done = await finished;
    assert.equal(done.job.attempts, 1, 'the interrupted attempt was refunded');
    assert.equal(done.job.interruptions, 1, 'and counted as an interruption');

    // The zombie wakes up: its handler's result must not overwrite the newer attempt.
    stuck.open();
    const presumedDead = nextEvent(zombie.events, 'runtime:presumed-dead');
    zombieClock.advance(1_000);
    await presumedDead;
    assert.ok(zombieSignal?.aborted === false || zombieSignal?.reason instanceof PresumedDeadError);
    await zombie.stop();
    await rescuer.stop();
    const stored = await withPool(
      async (pool) =>
        (await pool.query(`SELECT state, result, attempts FROM "${schema}".jobs WHERE id = $1`, [job.id]))
          .rows[0],
    );
    assert.deepEqual(stored, { state: 'succeeded', result: 'from the rescuer', attempts: 1 });
    assert.deepEqual(await consumerIds(schema), [], 'both deregistered on stop');
  });

  // sweepOneHeldJob has a zombie claim one job (maxAttempts 1) and die, then a sweeper with
  // `maxInterruptions` take it back after watching for consumerTimeoutMs; returns the stored job.
  async function sweepOneHeldJob(prefix: string, maxInterruptions?: number) {
    const schema = freshSchema(prefix);
    const start = new Date('2026-01-01T00:00:00Z');
    const stuck = gate();
    const zombieClock = new SimulatedClock(start);
    const zombie = testRuntime({
      schema,
      clock: zombieClock,
      ...timing,
      // Deaf and frozen, as a dead process is: it must not claim the job back once it is taken.
      listen: false,
      pollIntervalMs: 500,
      tasks: { work: () => stuck.opened },
    });
    const clock = new SimulatedClock(new Date(start.getTime() + 3_500));
    const sweeper = testRuntime({
      schema,
      clock,
      ...timing,
      maxInterruptions,
      tasks: { other: () => undefined },
    });
    try {
      await zombie.start();
      const running = nextEvent<TransitionEvent>(zombie.events, 'job:running');
      const job = await zombie.enqueue('work', {}, { maxAttempts: 1 });
      zombieClock.advance(500);
      await running;
      await sweeper.start();
      await heartbeats(sweeper, clock, 2);
      const swept = nextEvent<SweptEvent>(sweeper.events, 'runtime:swept');
      clock.advance(1_000);
      const { jobs } = await swept;
      return { jobs, stored: await sweeper.getJob(job.id) };
    } finally {
      stuck.open();
      await sweeper.stop();
      await zombie.stop();
    }
  }

  it("takes back a dead consumer's job with its attempt refunded, even on the last attempt: the handler may never have run", async () => {
    const { jobs, stored } = await sweepOneHeldJob('sweepkeep');
    assert.deepEqual(jobs, [{ id: stored?.id, state: 'interrupted' }]);
    assert.equal(stored?.attempts, 0);
    assert.equal(stored?.interruptions, 1);
    assert.match(
      stored?.lastError ?? '',
      /stopped heartbeating while holding this job \(interruption 1 of at most 5\)/,
    );
  });

  it('fails a job at its maxInterruptions-th interruption: a job that kills its worker every time stops', async () => {
    const { jobs, stored } = await sweepOneHeldJob('sweepfail', 1);
    assert.deepEqual(jobs, [{ id: stored?.id, state: 'failed' }]);
    assert.equal(stored?.attempts, 1);
    assert.equal(stored?.interruptions, 1);
    assert.match(stored?.lastError ?? '', /stopped heartbeating/);
  });
});

describe('shutdown', () => {
  it('lets a running job finish within shutdownTimeoutMs', async () => {
    const schema = freshSchema('stopwait');
    const clock = new SimulatedClock();
    const slow = gate();
    const runtime = testRuntime({
      schema,
      clock,
      shutdownTimeoutMs: 10_000,
      tasks: { work: () => slow.opened.then(() => 'done') },
    });
    await runtime.start();
    const running = nextEvent<TransitionEvent>(runtime.events, 'job:running');
    const job = await runtime.enqueue('work', {});
    await running;
    const succeeded = nextEvent<TransitionEvent>(runtime.events, 'job:succeeded');
    const stopped = runtime.stop();
    clock.advance(5_000);
    slow.open();
    await succeeded;
    await stopped;
    const producer = testRuntime({ schema });
    assert.equal((await producer.getJob(job.id))?.state, 'succeeded');
    await producer.stop();
  });

  it('after shutdownTimeoutMs aborts what still runs and gives it back with its attempt refunded', async () => {
    const schema = freshSchema('stoptimeout');
    const clock = new SimulatedClock();
    let reason: unknown;
    const runtime = testRuntime({
      schema,
      clock,
      shutdownTimeoutMs: 10_000,
      tasks: {
        // ignores its signal entirely, as badly written handlers do
        stubborn: (_p, ctx) => {
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
          });
          return new Promise(() => undefined);
        },
      },
    });
    await runtime.start();
    const running = nextEvent<TransitionEvent>(runtime.events, 'job:running');
    const job = await runtime.enqueue('stubborn', {});
    await running;
    const released = nextEvent<TransitionEvent>(
      runtime.events,
      'job:not_started',
      (e) => e.event === 'RELEASE',
    );
    const stopped = runtime.stop();
    clock.advance(9_999);
    assert.equal(reason, undefined, 'still waiting');
    clock.advance(1);
    await released;
    await stopped;
    assert.ok((reason as unknown) instanceof ShutdownError);
    const producer = testRuntime({ schema });
    const stored = await producer.getJob(job.id);
    assert.equal(stored?.state, 'not_started');
    assert.equal(stored?.attempts, 0);
    await producer.stop();
  });

  it('a second stop() stops waiting at once', async () => {
    const schema = freshSchema('stopforce');
    const runtime = testRuntime({
      schema,
      shutdownTimeoutMs: 3_600_000,
      tasks: { stubborn: () => new Promise(() => undefined) },
    });
    await runtime.start();
    const running = nextEvent<TransitionEvent>(runtime.events, 'job:running');
    const job = await runtime.enqueue('stubborn', {});
    await running;
    const first = runtime.stop();
    const second = runtime.stop();
    await Promise.all([first, second]);
    const producer = testRuntime({ schema });
    assert.equal((await producer.getJob(job.id))?.state, 'not_started');
    await producer.stop();
  });
});

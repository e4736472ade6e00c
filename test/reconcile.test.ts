import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RuntimeErrorEvent, SimulatedClock, type TransitionEvent } from '../src/index.js';
import { faultyPool } from './support/faulty-pool.js';
import { countEvents, freshSchema, nextEvent, testRuntime, withPool } from './support/helpers.js';

const timing = { heartbeatIntervalMs: 1_000, consumerTimeoutMs: 3_000, pollIntervalMs: 500 };

// heldBy reads the jobs of `schema` as (state, attempts, holder).
const jobRows = (schema: string) =>
  withPool(
    async (pool) =>
      (
        await pool.query<{ state: string; attempts: number; locked_by: string | null }>(
          `SELECT state, attempts, locked_by FROM "${schema}".jobs ORDER BY id`,
        )
      ).rows,
  );

describe('reconciling what a runtime holds', () => {
  it('gives back and runs the jobs of a claim that committed but whose reply was lost', async () => {
    const schema = freshSchema('lostclaim');
    const clock = new SimulatedClock();
    const pool = faultyPool();
    const runtime = testRuntime({
      schema,
      clock,
      pool,
      listen: false,
      ...timing,
      tasks: { work: () => 'done' },
    });
    try {
      // The claim start() sends must be over before the jobs exist, or it may take them itself.
      const firstPoll = nextEvent(runtime.events, 'runtime:polled');
      await runtime.start();
      await firstPoll;
      await runtime.enqueueMany([{ task: 'work' }, { task: 'work' }, { task: 'work' }]);
      pool.loseReplyOf(/claim_jobs_json/);
      const lost = nextEvent<RuntimeErrorEvent>(runtime.events, 'runtime:error', (e) => e.during === 'claim');
      // The claim committed, so the jobs come back through RELEASE, from running, before they run.
      const released = countEvents<TransitionEvent>(
        runtime.events,
        'job:not_started',
        3,
        (e) => e.event === 'RELEASE' && e.from === 'running',
      );
      const succeeded = countEvents<TransitionEvent>(runtime.events, 'job:succeeded', 3);
      clock.advance(timing.pollIntervalMs);
      await lost;
      clock.advance(timing.pollIntervalMs);
      await released;
      const done = await succeeded;
      assert.deepEqual(
        done.map((e) => e.job.attempts),
        [1, 1, 1],
        'the lost claim spent no attempt: RELEASE refunded it',
      );
    } finally {
      await runtime.stop();
      await pool.end();
    }
  });

  it('checks what it holds on every heartbeat, whatever wakes it', async () => {
    const schema = freshSchema('beatcheck');
    const clock = new SimulatedClock();
    const runtime = testRuntime({ schema, clock, listen: false, ...timing, tasks: { work: () => 'done' } });
    try {
      await runtime.start();
      // A job the database says this runtime holds, which it never claimed (as a lost reply leaves it).
      const [job] = await runtime.enqueueMany([{ task: 'work', runAt: null }]);
      await withPool((pool) =>
        pool.query(
          `UPDATE "${schema}".jobs SET state = 'running', attempts = 1, locked_by = $2, locked_at = now() WHERE id = $1`,
          [job?.id, runtime.consumerId],
        ),
      );
      const released = nextEvent<TransitionEvent>(
        runtime.events,
        'job:not_started',
        (e) => e.event === 'RELEASE',
      );
      clock.advance(timing.heartbeatIntervalMs);
      const { job: given } = await released;
      assert.equal(given.id, job?.id);
      assert.deepEqual(await jobRows(schema), [{ state: 'not_started', attempts: 0, locked_by: null }]);
    } finally {
      await runtime.stop();
    }
  });

  it('stop() gives back every job the database says it holds, known or not, before it deregisters', async () => {
    const schema = freshSchema('stopheld');
    const clock = new SimulatedClock();
    const runtime = testRuntime({ schema, clock, listen: false, ...timing, tasks: { work: () => 'done' } });
    try {
      await runtime.start();
      // Held in the database, unknown to the runtime, and nothing wakes it before stop().
      const jobs = await runtime.enqueueMany([
        { task: 'work', runAt: null },
        { task: 'work', runAt: null },
      ]);
      await withPool((pool) =>
        pool.query(
          `UPDATE "${schema}".jobs SET state = 'running', attempts = 1, locked_by = $2, locked_at = now() WHERE id = ANY($1)`,
          [jobs.map((job) => job.id), runtime.consumerId],
        ),
      );
    } finally {
      await runtime.stop();
    }
    assert.deepEqual(
      await jobRows(schema),
      Array(2).fill({ state: 'not_started', attempts: 0, locked_by: null }),
    );
    const consumers = await withPool((db) => db.query(`SELECT id FROM "${schema}".consumers`));
    assert.equal(consumers.rowCount, 0);
  });

  it('a claim round under way when stop() is called claims nothing once it resumes', async () => {
    const schema = freshSchema('stopround');
    const clock = new SimulatedClock();
    const pool = faultyPool();
    const runtime = testRuntime({
      schema,
      clock,
      pool,
      listen: false,
      ...timing,
      maxRunningJobs: 1,
      prefetch: 0,
      // The handler runs until its signal fires: stop() aborts it, which frees its slot.
      tasks: {
        work: (_payload, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)),
      },
    });
    try {
      const firstPoll = nextEvent(runtime.events, 'runtime:polled');
      await runtime.start();
      await firstPoll;
      const started = nextEvent(runtime.events, 'job:running');
      await runtime.enqueue('work');
      clock.advance(timing.pollIntervalMs);
      await started;
      // A second job, due, waits for the slot the first one holds.
      await runtime.enqueue('work');
      // The heartbeat's check of what is held opens a claim round; its first statement is held here.
      const check = pool.holdNext(/id <> ALL/);
      clock.advance(timing.heartbeatIntervalMs);
      await check.held;
      const stopping = runtime.stop();
      void runtime.stop();
      const sentBefore = pool.statements.length;
      check.open();
      await check.done;
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        pool.statements.slice(sentBefore).filter((text) => /claim_jobs_json/.test(text)),
        [],
        'the round, resumed after stop() began, claimed nothing',
      );
      await stopping;
    } finally {
      await runtime.stop();
      await pool.end();
    }
    assert.deepEqual(
      (await jobRows(schema)).map((row) => [row.state, row.locked_by]),
      [
        ['not_started', null],
        ['not_started', null],
      ],
      'nothing is left held by the stopped runtime',
    );
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DuplicateJobError,
  InvalidTransitionError,
  type Runtime,
  SimulatedClock,
  type TransitionEvent,
  ValidationError,
} from '../src/index.js';
import { countRows, freshSchema, nextEvent, testRuntime, withPool } from './support/helpers.js';

describe('job keys and scheduling modes', () => {
  const schema = freshSchema('keys');
  let producer: Runtime;
  let other: Runtime;

  before(async () => {
    producer = testRuntime({ schema });
    other = testRuntime({ schema });
    await producer.start();
    await other.start();
  });
  after(async () => {
    await producer.stop();
    await other.stop();
  });

  const liveWithKey = (key: string) =>
    withPool(async (pool) => {
      const result = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".jobs WHERE key = $1 AND state IN ('not_started', 'running', 'retry', 'interrupted')`,
        [key],
      );
      return Number(result.rows[0]?.n);
    });
  const setState = (id: string, state: string, attempts: number) =>
    withPool((pool) =>
      pool.query(`UPDATE "${schema}".jobs SET state = $2, attempts = $3, locked_by = $4 WHERE id = $1`, [
        id,
        state,
        attempts,
        state === 'running' ? 'someone' : null,
      ]),
    );

  it("mode 'new' (the default with a key) refuses a key a live job holds, naming that job", async () => {
    const first = await producer.enqueue('remind', { n: 1 }, { key: 'new-1' });
    await assert.rejects(
      producer.enqueue('remind', { n: 2 }, { key: 'new-1' }),
      (error: unknown) =>
        error instanceof DuplicateJobError && error.key === 'new-1' && error.jobId === first.id,
    );
    await assert.rejects(
      producer.enqueueMany([
        { task: 'remind', key: 'new-1-other' },
        { task: 'remind', key: 'new-1' },
      ]),
      DuplicateJobError,
    );
    assert.equal(await liveWithKey('new-1'), 1);
    assert.equal(await liveWithKey('new-1-other'), 0, 'a failed batch writes nothing');
  });

  it("mode 'ignore_if_exists' returns the live job untouched", async () => {
    const first = await producer.enqueue('remind', { n: 1 }, { key: 'ignore-1', maxAttempts: 5 });
    await setState(first.id, 'retry', 2);
    const again = await producer.enqueue(
      'remind',
      { n: 2 },
      { key: 'ignore-1', mode: 'ignore_if_exists', maxAttempts: 9 },
    );
    assert.equal(again.id, first.id);
    assert.deepEqual(again.payload, { n: 1 });
    assert.equal(again.attempts, 2, 'attempts not reset');
    assert.equal(again.maxAttempts, 5, 'max attempts not reset');
  });

  it("mode 'reschedule' replaces a waiting job's specification and resets its attempts", async () => {
    const first = await producer.enqueue('remind', { n: 1 }, { key: 'resched-1', priority: 1 });
    await setState(first.id, 'retry', 3);
    const runAt = new Date(Date.now() + 60_000);
    const replaced = nextEvent<TransitionEvent>(
      producer.events,
      'job:not_started',
      (e) => e.job.id === first.id,
    );
    const again = await producer.enqueue(
      'remindLater',
      { n: 2 },
      { key: 'resched-1', mode: 'reschedule', runAt, priority: 5, maxAttempts: 3 },
    );
    assert.equal(again.id, first.id, 'the same job, replaced');
    assert.equal(again.task, 'remindLater');
    assert.deepEqual(again.payload, { n: 2 });
    assert.equal(again.state, 'not_started');
    assert.equal(again.attempts, 0);
    assert.equal(again.maxAttempts, 3);
    assert.equal(again.priority, 5);
    assert.equal(again.runAt?.getTime(), runAt.getTime());
    const event = await replaced;
    assert.equal(event.from, 'retry');
    assert.equal(event.event, 'REPLACE');
  });

  it("mode 'reschedule' of a running job is refused by the machine and changes nothing", async () => {
    const first = await producer.enqueue('remind', { n: 1 }, { key: 'resched-running' });
    await setState(first.id, 'running', 1);
    await assert.rejects(
      producer.enqueue('remind', { n: 2 }, { key: 'resched-running', mode: 'reschedule' }),
      (error: unknown) =>
        error instanceof InvalidTransitionError &&
        error.jobId === first.id &&
        error.state === 'running' &&
        error.event === 'REPLACE',
    );
    const stored = await producer.getJob(first.id);
    assert.deepEqual(stored?.payload, { n: 1 });
    assert.equal(stored?.attempts, 1);
  });

  it('a finished job keeps its key, and the key is free for a new job', async () => {
    const first = await producer.enqueue('remind', {}, { key: 'finished-1' });
    await setState(first.id, 'succeeded', 1);
    const second = await producer.enqueue('remind', {}, { key: 'finished-1' });
    assert.notEqual(second.id, first.id);
    assert.equal((await producer.getJob(first.id))?.key, 'finished-1');
  });

  for (const mode of ['new', 'ignore_if_exists', 'reschedule'] as const) {
    it(`20 racing enqueues of one key in mode '${mode}' from two runtimes leave exactly one live job`, async () => {
      const key = `race-${mode}`;
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? producer : other).enqueue('remind', { i }, { key, mode }),
        ),
      );
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r) => r.status === 'rejected');
      assert.equal(await liveWithKey(key), 1);
      if (mode === 'new') {
        assert.equal(fulfilled.length, 1);
        assert.ok(rejected.every((r) => r.reason instanceof DuplicateJobError));
      } else {
        assert.equal(rejected.length, 0, String(rejected[0]?.reason));
        const ids = new Set(fulfilled.map((r) => r.value.id));
        assert.equal(ids.size, 1, 'every caller got the one job');
      }
    });
  }

  it('rejects bad keys, modes and expiry with a typed error and writes nothing', async () => {
    const before = await countRows(schema);
    const bad: [Parameters<Runtime['enqueue']>[2], string][] = [
      [{ key: '' }, 'key'],
      [{ key: 'k'.repeat(513) }, 'key'],
      [{ key: 'k', mode: 'sometimes' as never }, 'mode'],
      [{ mode: 'reschedule' }, 'mode'],
      [{ expiresAt: new Date('nope') }, 'expiresAt'],
      [{ runAt: new Date(Date.now() + 10_000), expiresAt: new Date(Date.now() + 5_000) }, 'expiresAt'],
    ];
    for (const [options, field] of bad) {
      await assert.rejects(
        producer.enqueue('remind', {}, options),
        (error: unknown) => error instanceof ValidationError && error.field === field,
        JSON.stringify(options),
      );
    }
    await assert.rejects(
      producer.enqueueMany([
        { task: 'remind', key: 'twice' },
        { task: 'remind', key: 'twice' },
      ]),
      (error: unknown) => error instanceof ValidationError && error.field === 'jobs[1].key',
    );
    assert.equal(await countRows(schema), before);
  });
});

describe('expiry', () => {
  it('a job not started by its expiresAt never starts: the claim moves it to expired', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('expiry');
    const ran: string[] = [];
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const stale = await producer.enqueue(
      'remind',
      { which: 'stale' },
      {
        expiresAt: new Date(clock.now().getTime() + 1_000),
      },
    );
    const fresh = await producer.enqueue(
      'remind',
      { which: 'fresh' },
      {
        expiresAt: new Date(clock.now().getTime() + 60_000),
      },
    );
    clock.advance(2_000);
    const worker = testRuntime({
      schema,
      clock,
      tasks: { remind: (payload: { which: string }) => void ran.push(payload.which) },
    });
    const expired = nextEvent<TransitionEvent>(worker.events, 'job:expired');
    const succeeded = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
    await worker.start();
    const [expiredEvent, succeededEvent] = await Promise.all([expired, succeeded]);
    await worker.stop();
    await producer.stop();
    assert.equal(expiredEvent.job.id, stale.id);
    assert.equal(expiredEvent.event, 'EXPIRE');
    assert.equal(succeededEvent.job.id, fresh.id);
    assert.deepEqual(ran, ['fresh']);
    const stored = await producer.getJob(stale.id).catch(() => null);
    assert.ok(stored === null || stored.state === 'expired');
  });

  it('an expired job an operator retries runs: retry clears its deadline', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('reexpiry');
    const ran: string[] = [];
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const job = await producer.enqueue(
      'remind',
      { which: 'late' },
      { expiresAt: new Date(clock.now().getTime() + 1_000) },
    );
    await producer.stop();
    clock.advance(2_000);
    const worker = testRuntime({
      schema,
      clock,
      tasks: { remind: (payload: { which: string }) => void ran.push(payload.which) },
    });
    try {
      const expired = nextEvent<TransitionEvent>(worker.events, 'job:expired');
      await worker.start();
      await expired;
      const succeeded = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
      const retried = await worker.retry(job.id);
      assert.equal(retried.expiresAt, null);
      assert.equal((await succeeded).job.id, job.id);
    } finally {
      await worker.stop();
    }
    assert.deepEqual(ran, ['late']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobWaiter } from '../src/api/job-waiter.js';
import {
  FINISHED_STATES,
  type Job,
  JobNotFoundError,
  type JobState,
  RuntimeStateError,
  SimulatedClock,
  type TransitionEvent,
  ValidationError,
  WaitTimeoutError,
} from '../src/index.js';
import { freshSchema, nextEvent, quietLogger, testRuntime, withPool } from './support/helpers.js';

// The simulated clock never moves in these tests unless a test says so, so no poll can fire: a
// waitFor that resolves was woken by the finished-channel notification or by its first read.
function producerAndWorker(prefix: string) {
  const clock = new SimulatedClock();
  const schema = freshSchema(prefix);
  const worker = testRuntime({
    schema,
    clock,
    pollIntervalMs: 60_000,
    tasks: {
      ok: async (payload: { n: number }) => ({ doubled: payload.n * 2 }),
      broken: async () => {
        throw new Error('broken on purpose');
      },
    },
  });
  const producer = testRuntime({ schema, clock, pollIntervalMs: 60_000 });
  return { clock, schema, worker, producer };
}

describe('runtime.waitFor', () => {
  it('a producer without tasks waits for jobs another runtime works: succeeded and failed', async () => {
    const { worker, producer } = producerAndWorker('waitfor');
    await worker.start();
    await producer.start();
    const good = await producer.enqueue('ok', { n: 21 });
    // maxAttempts on the enqueue: a producer does not know the worker's task definitions.
    const bad = await producer.enqueue('broken', {}, { maxAttempts: 1 });
    const [succeeded, failed] = await Promise.all([producer.waitFor(good.id), producer.waitFor(bad.id)]);
    assert.equal(succeeded.id, good.id);
    assert.equal(succeeded.state, 'succeeded');
    assert.deepEqual(succeeded.result, { doubled: 42 });
    assert.equal(failed.state, 'failed');
    assert.match(failed.lastError ?? '', /broken on purpose/);
    await Promise.all([worker.stop(), producer.stop()]);
  });

  it('resolves at once for a job already finished, and every waiter of a job together', async () => {
    const { worker, producer } = producerAndWorker('waitdone');
    await worker.start();
    const job = await worker.enqueue('ok', { n: 1 });
    await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === job.id);
    const [a, b] = await Promise.all([producer.waitFor(job.id), producer.waitFor(Number(job.id))]);
    assert.equal(a.state, 'succeeded');
    assert.deepEqual(b, a);
    await Promise.all([worker.stop(), producer.stop()]);
  });

  it('opens one listener connection for all waits and rejects pending waits on stop', async () => {
    const { schema, worker, producer } = producerAndWorker('waitone');
    await worker.start();
    await producer.start();
    // A wait that resolves has read its job after listening: the listener is up from here on.
    const done = await producer.enqueue('ok', { n: 1 });
    await producer.waitFor(done.id);
    const [first, second] = await producer.enqueueMany([
      { task: 'nobody_works_this', payload: 1 },
      { task: 'nobody_works_this', payload: 2 },
    ]);
    const waits = [first, second].map((job) => producer.waitFor(job?.id ?? ''));
    const listeners = await withPool((pool) =>
      pool.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1', [
        `LISTEN "${schema}:finished"`,
      ]),
    );
    assert.equal(listeners.rows[0]?.n, 1, 'one LISTEN connection on the finished channel');
    const rejected = waits.map((wait) => assert.rejects(wait, RuntimeStateError));
    await producer.stop();
    await Promise.all(rejected);
    await assert.rejects(producer.waitFor(done.id), RuntimeStateError);
    await worker.stop();
  });

  it('rejects with a WaitTimeoutError after timeoutMs of the runtime clock', async () => {
    const { clock, producer } = producerAndWorker('waittime');
    await producer.start();
    const job = await producer.enqueue('nobody_works_this', {});
    let settled = false;
    const wait = producer.waitFor(job.id, { timeoutMs: 5_000 });
    wait
      .catch(() => undefined)
      .finally(() => {
        settled = true;
      });
    clock.advance(4_999);
    await producer.getJob(job.id);
    assert.equal(settled, false, 'still waiting 1 ms before the timeout');
    clock.advance(1);
    await assert.rejects(wait, (error: unknown) => {
      assert.ok(error instanceof WaitTimeoutError);
      assert.equal(error.code, 'WAIT_TIMEOUT');
      assert.equal(error.jobId, job.id);
      assert.equal(error.timeoutMs, 5_000);
      assert.deepEqual(error.expected, FINISHED_STATES);
      assert.ok(error.state === null || error.state === 'not_started', `state ${error.state}`);
      return true;
    });
    assert.equal(clock.timerCount, 0, 'no timer is left once nobody waits');
    await producer.stop();
  });

  it('rejects an unknown id with JobNotFoundError and a malformed one with ValidationError', async () => {
    const { producer } = producerAndWorker('waitnone');
    await producer.start();
    await assert.rejects(producer.waitFor('987654321'), (error: unknown) => {
      assert.ok(error instanceof JobNotFoundError);
      assert.equal(error.jobId, '987654321');
      assert.equal(error.removed, false);
      return true;
    });
    await assert.rejects(producer.waitFor('abc'), ValidationError);
    await assert.rejects(producer.waitFor('1', { timeoutMs: -1 }), ValidationError);
    await producer.stop();
  });

  it('rejects with JobNotFoundError when a waited job is deleted and announced', async () => {
    const { schema, producer } = producerAndWorker('waitgone');
    await producer.start();
    const job = await producer.enqueue('nobody_works_this', {});
    const gone = assert.rejects(producer.waitFor(job.id), JobNotFoundError);
    await withPool(async (pool) => {
      await pool.query(`DELETE FROM "${schema}".jobs WHERE id = $1`, [job.id]);
      await pool.query('SELECT pg_notify($1, $2)', [`${schema}:finished`, job.id]);
    });
    await gone;
    await producer.stop();
  });
});

// JobWaiter on its own, with a scripted read and no listener: the poll is all that wakes it.
describe('JobWaiter', () => {
  function scripted() {
    const clock = new SimulatedClock();
    let answer: Job | null | Error = null;
    let reads = 0;
    let onRead: () => void = () => undefined;
    const errors: unknown[] = [];
    const waiter = new JobWaiter({
      connectionConfig: {},
      channel: null,
      read: async () => {
        reads++;
        onRead();
        if (answer instanceof Error) throw answer;
        return answer;
      },
      clock,
      pollIntervalMs: 1_000,
      logger: quietLogger,
      onError: (error) => errors.push(error),
    });
    return {
      clock,
      waiter,
      errors,
      get reads() {
        return reads;
      },
      answer(value: Job | null | Error) {
        answer = value;
      },
      // nextRead resolves once the next read has returned its answer and the waiter has seen it.
      nextRead(): Promise<void> {
        return new Promise((resolve) => {
          onRead = () => {
            onRead = () => undefined;
            setImmediate(resolve);
          };
        });
      },
    };
  }

  const jobIn = (state: JobState): Job => ({ id: '7', state }) as Job;

  it('re-reads every pollIntervalMs while waited, then stops polling', async () => {
    const s = scripted();
    s.answer(jobIn('running'));
    const firstRead = s.nextRead();
    const wait = s.waiter.wait('7', null);
    await firstRead;
    assert.equal(s.reads, 1);
    s.answer(jobIn('succeeded'));
    s.clock.advance(1_000);
    assert.equal((await wait).state, 'succeeded');
    assert.equal(s.reads, 2);
    assert.equal(s.clock.timerCount, 0);
    assert.equal(s.waiter.size, 0);
  });

  it('a job seen and then gone rejects with removed: true; later read errors are reported, not thrown', async () => {
    const s = scripted();
    s.answer(jobIn('running'));
    const firstRead = s.nextRead();
    const gone = assert.rejects(
      s.waiter.wait('7', null),
      (error: unknown) => error instanceof JobNotFoundError && error.removed,
    );
    await firstRead;
    s.answer(new Error('connection reset'));
    const failedRead = s.nextRead();
    s.clock.advance(1_000);
    await failedRead;
    assert.equal(s.errors.length, 1);
    s.answer(null);
    s.clock.advance(1_000);
    await gone;
  });

  it('a first read that fails rejects with its error', async () => {
    const s = scripted();
    s.answer(new Error('schema missing'));
    await assert.rejects(s.waiter.wait('7', null), /schema missing/);
    assert.equal(s.waiter.size, 0);
  });
});

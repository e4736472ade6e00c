import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cancel,
  defineTask,
  fail,
  type Job,
  MAX_DELAY_MS,
  type Runtime,
  rerunAfter,
  rerunAt,
  SimulatedClock,
  TIMESTAMP_MAX_MS,
  TIMESTAMP_MIN_MS,
  type TransitionEvent,
  UnknownTaskError,
  ValidationError,
} from '../src/index.js';
import { countRows, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

// Invariant 6: bad input gets a typed error naming the field before anything is written, including
// what PostgreSQL itself would refuse; text that only reports a failure is made storable instead.

const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

// ended resolves with the transition that finishes a job of `task`; call it before enqueueing.
function ended(runtime: Runtime, task: string): Promise<TransitionEvent> {
  return nextEvent<TransitionEvent>(
    runtime.events,
    'job:transition',
    (e) => e.job.task === task && FINISHED.has(e.to),
  );
}

// refusal matches a ValidationError for `field`, optionally with a message matching `message`.
function refusal(field: string, message?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
    assert.equal(error.field, field);
    if (message) assert.match(error.message, message);
    return true;
  };
}

// withProducer runs `fn` with a started runtime that has no tasks (it claims nothing) on a fresh schema.
async function withProducer(prefix: string, fn: (runtime: Runtime, schema: string) => Promise<void>) {
  const schema = freshSchema(prefix);
  const runtime = testRuntime({ schema });
  try {
    await runtime.start();
    await fn(runtime, schema);
  } finally {
    await runtime.stop();
  }
}

describe('strings PostgreSQL cannot store', () => {
  it('refuses lone surrogates anywhere in a payload, keys included, and writes nothing', async () => {
    await withProducer('surrogate', async (producer, schema) => {
      const bad: [unknown, RegExp][] = [
        ['a\ud800b', /lone surrogate.*at the top level/],
        [{ nested: [{ s: 'x\udfff' }] }, /lone surrogate.*at "s"/],
        [{ 'key\udc00': 1 }, /lone surrogate.*in the key "key\\udc00"/],
        [{ ok: '\ud83d\ude00', bad: '\ude00\ud83d' }, /lone surrogate.*at "bad"/],
        [{ date: new Date(0), s: 'z\ud800' }, /lone surrogate/],
        [{ k: 'nul \u0000 inside' }, /NUL/],
        [{ 'nul\u0000key': true }, /NUL.*in the key/],
      ];
      for (const [payload, message] of bad) {
        await assert.rejects(producer.enqueue('t', payload), refusal('payload', message));
      }
      await assert.rejects(
        producer.enqueueMany([{ task: 't' }, { task: 't', payload: ['\ud800'] }]),
        refusal('jobs[1].payload', /lone surrogate/),
      );
      assert.equal(await countRows(schema), 0);
      // Paired surrogates are fine, and so is the text "\u0000" spelled with a backslash.
      const job = await producer.enqueue('t', { emoji: '\ud83d\ude00', code: 'printf("\\u0000")' });
      assert.deepEqual((await producer.getJob(job.id))?.payload, {
        emoji: '\ud83d\ude00',
        code: 'printf("\\u0000")',
      });
    });
  });

  it('refuses keys with NUL or lone surrogates', async () => {
    await withProducer('badkey', async (producer, schema) => {
      for (const key of ['a\u0000b', 'a\ud800', '\udfffz']) {
        await assert.rejects(producer.enqueue('t', {}, { key }), refusal('key'));
        await assert.rejects(producer.enqueueMany([{ task: 't', key }]), refusal('jobs[0].key'));
        await assert.rejects(producer.listJobs({ key }), refusal('key'));
      }
      assert.equal(await countRows(schema), 0);
    });
  });

  it('makes a result with a lone surrogate an InvalidResultError, and writes the other outcomes', async () => {
    const schema = freshSchema('badresult');
    const runtime = testRuntime({
      schema,
      tasks: {
        lone: { handler: () => ({ text: 'half \ud800' }), maxAttempts: 1 },
        fine: () => 'ok',
      },
    });
    try {
      await runtime.start();
      const loneEnded = ended(runtime, 'lone');
      const fineEnded = ended(runtime, 'fine');
      const [lone, fine] = await runtime.enqueueMany([{ task: 'lone' }, { task: 'fine' }]);
      await Promise.all([loneEnded, fineEnded]);
      const stored = await runtime.getJob((lone as Job).id);
      assert.equal(stored?.state, 'failed');
      assert.match(stored?.lastError ?? '', /^InvalidResultError: job \d+: expected the handler to return/);
      assert.equal(stored?.result, null);
      assert.equal((await runtime.getJob((fine as Job).id))?.state, 'succeeded');
    } finally {
      await runtime.stop();
    }
  });

  it('stores thrown errors and cancel/fail reasons with lone surrogates as U+FFFD and without NUL', async () => {
    const schema = freshSchema('errtext');
    const runtime = testRuntime({
      schema,
      tasks: {
        throws: {
          handler: () => {
            throw new Error('bad \ud800 and \u0000nul');
          },
          maxAttempts: 2,
          backoff: { type: 'fixed', delayMs: 0 },
        },
        cancels: () => cancel('why \udc00\u0000'),
        fails: () => fail(new Error('no \ud800')),
      },
    });
    try {
      await runtime.start();
      const all = Promise.all([ended(runtime, 'throws'), ended(runtime, 'cancels'), ended(runtime, 'fails')]);
      const jobs = await runtime.enqueueMany([{ task: 'throws' }, { task: 'cancels' }, { task: 'fails' }]);
      await all;
      const [thrown, cancelled, failed] = await Promise.all(jobs.map((job) => runtime.getJob(job.id)));
      assert.equal(thrown?.state, 'failed');
      assert.equal(thrown?.attempts, 2, 'retried normally, then failed');
      assert.deepEqual(
        thrown?.errors.map((e) => e.message.split('\n')[0]),
        ['Error: bad \ufffd and nul', 'Error: bad \ufffd and nul'],
      );
      assert.equal(cancelled?.state, 'cancelled');
      assert.equal(cancelled?.lastError, 'why \ufffd');
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.lastError, 'Error: no \ufffd', 'the name and first line, no stack');
      assert.match(failed?.errors[0]?.stack ?? '', /^Error: no \ufffd\n {4}at /);
    } finally {
      await runtime.stop();
    }
  });

  it("stores runtime.cancel's reason made storable, and refuses a reason that is not a string", async () => {
    await withProducer('cancelreason', async (producer) => {
      const parked = await producer.enqueue('t', {}, { runAt: null });
      await assert.rejects(producer.cancel(parked.id, 42 as unknown as string), refusal('reason'));
      const cancelled = await producer.cancel(parked.id, 'operator \u0000says \ud800');
      assert.equal(cancelled.state, 'cancelled');
      assert.equal((await producer.getJob(parked.id))?.lastError, 'operator says \ufffd');
    });
  });

  it('refuses a schedule description PostgreSQL cannot store', async () => {
    await withProducer('scheddesc', async (producer) => {
      for (const description of ['nul \u0000', 'lone \ud800']) {
        await assert.rejects(
          producer.schedules.upsert('s', { cron: '0 3 * * *', task: 't', description }),
          refusal('description'),
        );
      }
      assert.deepEqual(await producer.schedules.list(), []);
    });
  });

  it('fails a rate-limited job whose bucket key PostgreSQL cannot store with a ValidationError', async () => {
    const schema = freshSchema('badbucket');
    const runtime = testRuntime({
      schema,
      rateLimits: { smtp: { capacity: 5, refillPerSecond: 1 } },
      tasks: {
        limited: defineTask({
          handler: () => 'sent',
          // The payload is storable; the key made from it is not.
          rateLimit: (payload: { code: number }) => `smtp:${String.fromCharCode(payload.code)}`,
          maxAttempts: 1,
        }),
      },
    });
    try {
      await runtime.start();
      const done = ended(runtime, 'limited');
      const job = await runtime.enqueue('limited', { code: 0 });
      await done;
      const stored = await runtime.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.match(stored?.lastError ?? '', /^ValidationError: rateLimit: expected a bucket key without NUL/);
    } finally {
      await runtime.stop();
    }
  });
});

describe('values JSON would mangle', () => {
  it('refuses Map, Set, WeakMap and WeakSet in payloads; Dates and typed arrays keep working', async () => {
    await withProducer('mapset', async (producer, schema) => {
      const bad: [unknown, RegExp][] = [
        [new Map([['a', 1]]), /a Map at the top level/],
        [{ tags: new Set(['x']) }, /a Set at "tags"/],
        [{ deep: [{ cache: new WeakMap() }] }, /a WeakMap at "cache"/],
        [{ seen: new WeakSet() }, /a WeakSet at "seen"/],
      ];
      for (const [payload, message] of bad) {
        await assert.rejects(producer.enqueue('t', payload), refusal('payload', message));
      }
      assert.equal(await countRows(schema), 0);
      const job = await producer.enqueue('t', { at: new Date(0), bytes: new Uint8Array([1, 2]) });
      assert.deepEqual((await producer.getJob(job.id))?.payload, {
        at: '1970-01-01T00:00:00.000Z',
        bytes: { 0: 1, 1: 2 },
      });
    });
  });

  it('makes a Map returned as a result an InvalidResultError instead of storing {}', async () => {
    const schema = freshSchema('mapresult');
    const runtime = testRuntime({
      schema,
      tasks: { mapped: { handler: () => ({ counts: new Map([['a', 1]]) }), maxAttempts: 1 } },
    });
    try {
      await runtime.start();
      const done = ended(runtime, 'mapped');
      const job = await runtime.enqueue('mapped', {});
      await done;
      const stored = await runtime.getJob(job.id);
      assert.equal(stored?.state, 'failed');
      assert.match(stored?.lastError ?? '', /^InvalidResultError/);
      assert.equal(stored?.result, null);
    } finally {
      await runtime.stop();
    }
  });
});

describe('times outside timestamptz', () => {
  const tooEarly = new Date(-8.64e15);

  it('refuses runAt, expiresAt and reschedule times PostgreSQL cannot store, writing nothing', async () => {
    await withProducer('badtime', async (producer, schema) => {
      await assert.rejects(producer.enqueue('t', {}, { runAt: tooEarly }), refusal('runAt', /4714-11-25 BC/));
      await assert.rejects(
        producer.enqueue('t', {}, { runAt: new Date(TIMESTAMP_MIN_MS - 1) }),
        refusal('runAt'),
      );
      await assert.rejects(
        producer.enqueue('t', {}, { runAt: null, expiresAt: tooEarly }),
        refusal('expiresAt'),
      );
      await assert.rejects(producer.enqueueMany([{ task: 't', runAt: tooEarly }]), refusal('jobs[0].runAt'));
      assert.equal(await countRows(schema), 0);
      // The bounds themselves are stored.
      const earliest = await producer.enqueue('t', {}, { runAt: new Date(TIMESTAMP_MIN_MS) });
      assert.equal(earliest.state, 'not_started');
      const parked = await producer.enqueue('t', {}, { runAt: null });
      await assert.rejects(producer.reschedule(parked.id, tooEarly), refusal('runAt'));
      await producer.reschedule(parked.id, new Date(TIMESTAMP_MAX_MS));
      assert.equal((await producer.getJob(parked.id))?.runAt?.getTime(), TIMESTAMP_MAX_MS);
    });
  });

  it('rerunAt refuses a time out of range where the handler calls it', () => {
    assert.throws(() => rerunAt(tooEarly), refusal('rerunAt'));
    assert.throws(() => rerunAt(new Date(TIMESTAMP_MIN_MS - 1)), refusal('rerunAt'));
    assert.throws(() => rerunAt(new Date(Number.NaN)), refusal('rerunAt'));
    assert.doesNotThrow(() => rerunAt(new Date(TIMESTAMP_MIN_MS)));
    assert.doesNotThrow(() => rerunAt(new Date(TIMESTAMP_MAX_MS)));
  });

  it('stores a rerun at the last time a Date holds, and the millisecond before it, exactly', async () => {
    const schema = freshSchema('rerunmax');
    const runtime = testRuntime({
      schema,
      tasks: { later: (payload: { at: number }) => rerunAt(new Date(payload.at)) },
    });
    try {
      await runtime.start();
      const times = [TIMESTAMP_MAX_MS, TIMESTAMP_MAX_MS - 1, Date.UTC(20000, 0, 1, 0, 0, 0, 123)];
      const reruns = Promise.all(
        times.map((at) =>
          nextEvent<TransitionEvent>(
            runtime.events,
            'job:not_started',
            (e) => e.event === 'RERUN' && (e.job.payload as { at: number }).at === at,
          ),
        ),
      );
      const jobs = await runtime.enqueueMany(times.map((at) => ({ task: 'later', payload: { at } })));
      await reruns;
      const stored = await Promise.all(jobs.map((job) => runtime.getJob(job.id)));
      assert.deepEqual(
        stored.map((job) => [job?.state, job?.runAt?.getTime()]),
        times.map((at) => ['not_started', at]),
      );
    } finally {
      await runtime.stop();
    }
  });
});

describe('delays', () => {
  it(`rerunAfter and backoff options refuse delays over MAX_DELAY_MS (${MAX_DELAY_MS} ms)`, () => {
    assert.throws(() => rerunAfter(1e16), refusal('rerunAfter', /100 years/));
    assert.throws(() => rerunAfter(MAX_DELAY_MS + 1), refusal('rerunAfter'));
    assert.doesNotThrow(() => rerunAfter(MAX_DELAY_MS));
    const handler = () => undefined;
    const bad: [Parameters<typeof defineTask>[0], string][] = [
      [{ handler, backoff: { type: 'fixed', delayMs: 1e16 } }, 'task.backoff.delayMs'],
      [{ handler, backoff: { type: 'linear', stepMs: 1e16 } }, 'task.backoff.stepMs'],
      [{ handler, backoff: { type: 'linear', stepMs: 1, maxMs: 1e16 } }, 'task.backoff.maxMs'],
      [{ handler, backoff: { type: 'exponential', baseMs: 1e16 } }, 'task.backoff.baseMs'],
      [{ handler, backoff: { type: 'exponential', maxMs: Number.MAX_VALUE } }, 'task.backoff.maxMs'],
    ];
    for (const [definition, field] of bad) assert.throws(() => defineTask(definition), refusal(field));
    assert.doesNotThrow(() => defineTask({ handler, backoff: { type: 'fixed', delayMs: MAX_DELAY_MS } }));
  });

  it('refuses a schedule every more than MAX_DELAY_MS', async () => {
    await withProducer('schedevery', async (producer) => {
      await assert.rejects(
        producer.schedules.upsert('s', { everyMs: 1e16, task: 't' }),
        refusal('everyMs', /100 years/),
      );
      assert.deepEqual(await producer.schedules.list(), []);
    });
  });

  it('fails a job whose backoff function answers a delay past the range, instead of retrying it at once', async () => {
    const schema = freshSchema('backofffn');
    let runs = 0;
    const runtime = testRuntime({
      schema,
      tasks: {
        flaky: defineTask({
          handler: () => {
            runs++;
            throw new Error('boom');
          },
          maxAttempts: 5,
          backoff: () => 1e16,
        }),
      },
    });
    try {
      await runtime.start();
      const done = ended(runtime, 'flaky');
      const job = await runtime.enqueue('flaky', {});
      const event = await done;
      assert.equal(event.to, 'failed');
      const stored = await runtime.getJob(job.id);
      assert.equal(stored?.attempts, 1);
      assert.equal(runs, 1, 'not rerun');
      assert.match(
        stored?.lastError ?? '',
        new RegExp(
          `^ValidationError: backoff: expected a delay for job ${job.id} from 0 to ${MAX_DELAY_MS} ms`,
        ),
      );
      assert.match(
        stored?.lastError ?? '',
        /received 10000000000000000, after the attempt failed with Error: boom$/,
      );
    } finally {
      await runtime.stop();
    }
  });

  it('fails a job whose rerunAfter would land past the last storable time', async () => {
    const schema = freshSchema('rerunend');
    // A clock a second before the end of time: any rerunAfter of more than a second overshoots.
    const clock = new SimulatedClock(new Date(TIMESTAMP_MAX_MS - 1000));
    let runs = 0;
    const runtime = testRuntime({
      schema,
      clock,
      tasks: {
        poll: () => {
          runs++;
          return rerunAfter(60_000);
        },
      },
    });
    try {
      await runtime.start();
      const done = ended(runtime, 'poll');
      const job = await runtime.enqueue('poll', {});
      assert.equal((await done).to, 'failed');
      const stored = await runtime.getJob(job.id);
      assert.equal(runs, 1);
      assert.match(
        stored?.lastError ?? '',
        new RegExp(`^ValidationError: rerunAfter: expected a delay for job ${job.id}`),
      );
    } finally {
      await runtime.stop();
    }
  });
});

describe('task definitions', () => {
  it('bounds timeoutMs to what Node timers hold and maxAttempts to what enqueue accepts', () => {
    const handler = () => undefined;
    assert.throws(() => defineTask({ handler, timeoutMs: 2 ** 31 }), refusal('task.timeoutMs'));
    assert.throws(() => defineTask({ handler, maxAttempts: 1e12 }), refusal('task.maxAttempts'));
    assert.throws(() => defineTask({ handler, maxAttempts: 1_000_001 }), refusal('task.maxAttempts'));
    assert.doesNotThrow(() => defineTask({ handler, timeoutMs: 2 ** 31 - 1, maxAttempts: 1_000_000 }));
    assert.throws(
      () => testRuntime({ schema: freshSchema('unused'), tasks: { t: { handler, timeoutMs: 2 ** 31 } } }),
      refusal('tasks.t.timeoutMs'),
    );
  });
});

describe('names and shapes', () => {
  it('refuses a schema starting with pg_, which PostgreSQL reserves', () => {
    assert.throws(() => testRuntime({ schema: 'pg_x' }), refusal('schema', /PostgreSQL reserves/));
  });

  it('refuses an enqueueMany spec that is not an object, naming its index', async () => {
    await withProducer('notobject', async (producer, schema) => {
      await assert.rejects(producer.enqueueMany([null as never]), refusal('jobs[0]', /an object/));
      await assert.rejects(producer.enqueueMany([{ task: 't' }, 'job' as never]), refusal('jobs[1]'));
      assert.equal(await countRows(schema), 0);
    });
  });

  it('schedules.upsert on a runtime with tasks refuses a task it neither defines nor lists as external', async () => {
    const schema = freshSchema('schedtask');
    const worker = testRuntime({
      schema,
      clock: new SimulatedClock(),
      tasks: { known: () => 'ok' },
      externalTasks: ['elsewhere'],
    });
    const producer = testRuntime({ schema });
    try {
      await worker.start();
      await producer.start();
      const yearly = { cron: '0 0 1 1 *' };
      await assert.rejects(
        worker.schedules.upsert('typo', { ...yearly, task: 'knwon' }),
        (error: unknown) => error instanceof UnknownTaskError && error.task === 'knwon',
      );
      assert.equal(await worker.schedules.get('typo'), null);
      await worker.schedules.upsert('mine', { ...yearly, task: 'known' });
      await worker.schedules.upsert('theirs', { ...yearly, task: 'elsewhere' });
      // A runtime without tasks cannot know what the workers run, as for enqueue.
      await producer.schedules.upsert('any', { ...yearly, task: 'anything' });
      assert.deepEqual(
        (await producer.schedules.list()).map((s) => s.name),
        ['any', 'mine', 'theirs'],
      );
    } finally {
      await producer.stop();
      await worker.stop();
    }
  });
});

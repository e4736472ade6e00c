import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Runtime, UnknownTaskError, ValidationError } from '../src/index.js';
import { countRows, freshSchema, testRuntime, withPool } from './support/helpers.js';

describe('enqueue', () => {
  const schema = freshSchema('enqueue');
  let worker: Runtime;
  let producer: Runtime;

  before(async () => {
    // worker has a handler but never claims here: its poll interval is an hour and it does not listen.
    worker = testRuntime({
      schema,
      tasks: { known: async () => undefined },
      externalTasks: ['elsewhere'],
      pollIntervalMs: 3_600_000,
      listen: false,
      maxRunningJobs: 1,
    });
    await worker.start();
    await worker.stop();
    producer = testRuntime({ schema });
    await producer.start();
  });
  after(() => producer.stop());

  it('stores a job with its defaults and returns it', async () => {
    const job = await producer.enqueue('sendEmail', { to: 'a@b.c' });
    assert.equal(job.state, 'not_started');
    assert.deepEqual(job.payload, { to: 'a@b.c' });
    assert.equal(job.attempts, 0);
    assert.equal(job.maxAttempts, 25);
    assert.equal(job.queue, 'default');
    assert.equal(job.priority, 0);
    assert.deepEqual(await producer.getJob(job.id), job);
  });

  it('enqueueMany inserts every job in one statement, in order', async () => {
    const specs = Array.from({ length: 500 }, (_, i) => ({ task: 'bulk', payload: { i }, priority: i % 3 }));
    const jobs = await producer.enqueueMany(specs);
    assert.deepEqual(
      jobs.map((j) => (j.payload as { i: number }).i),
      specs.map((s) => s.payload.i),
    );
    assert.equal(new Set(jobs.map((j) => j.id)).size, 500);
  });

  it('enqueueMany stores each job as it returns it, whether the jobs differ in their payloads only or not', async () => {
    const at = new Date('2031-05-06T07:08:09.123Z');
    const alike = await producer.enqueueMany(
      Array.from({ length: 4 }, (_, i) => ({ task: 'alike', payload: { i }, runAt: at, priority: 2 })),
    );
    const mixed = await producer.enqueueMany([
      { task: 'mixed', payload: { n: 1 } },
      { task: 'other', queue: 'q2', payload: 'text', priority: -3, maxAttempts: 2 },
      { task: 'mixed', runAt: null },
      { task: 'mixed', runAt: at, expiresAt: new Date(at.getTime() + 60_000), payload: [1, 'x\n"y"'] },
    ]);
    for (const job of [...alike, ...mixed]) assert.deepEqual(await producer.getJob(job.id), job, job.id);
    assert.deepEqual(
      alike.map((j) => [j.runAt?.toISOString(), j.priority]),
      Array.from({ length: 4 }, () => [at.toISOString(), 2]),
    );
  });

  it('pairs ids with jobs when they are not one unbroken run, and past 2^53', async () => {
    const check = async () => {
      const jobs = await producer.enqueueMany(
        Array.from({ length: 5 }, (_, i) => ({ task: 'ids', payload: { i } })),
      );
      for (const [i, job] of jobs.entries()) {
        assert.deepEqual((await producer.getJob(job.id))?.payload, { i }, job.id);
      }
      return jobs.map((job) => BigInt(job.id));
    };
    await withPool((pool) => pool.query(`ALTER TABLE "${schema}".jobs ALTER COLUMN id SET INCREMENT BY 7`));
    const gapped = await check();
    assert.ok(
      gapped.every((id, i) => i === 0 || id - (gapped[i - 1] as bigint) === 7n),
      `${gapped}`,
    );
    await withPool((pool) =>
      pool.query(
        `ALTER TABLE "${schema}".jobs ALTER COLUMN id SET INCREMENT BY 1 RESTART WITH 9007199254740990`,
      ),
    );
    const large = await check();
    assert.deepEqual(large, [
      9007199254740990n,
      9007199254740991n,
      9007199254740992n,
      9007199254740993n,
      9007199254740994n,
    ]);
  });

  it('rejects bad input with a typed error and writes nothing', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const workerLike = testRuntime({
      schema,
      tasks: { known: async () => undefined },
      externalTasks: ['elsewhere'],
    });
    const before = await countRows(schema);
    const cases: Array<[() => Promise<unknown>, new (...args: never[]) => Error, string]> = [
      [() => workerLike.enqueue('typo', {}), UnknownTaskError, 'unknown task on a worker'],
      [() => producer.enqueue('bad name!', {}), ValidationError, 'malformed task'],
      [() => producer.enqueue('', {}), ValidationError, 'empty task'],
      [() => producer.enqueue('t', { n: 1n }), ValidationError, 'BigInt payload'],
      [() => producer.enqueue('t', cyclic), ValidationError, 'cyclic payload'],
      [() => producer.enqueue('t', { f: () => 1 }), ValidationError, 'function payload'],
      [() => producer.enqueue('t', { n: Number.NaN }), ValidationError, 'NaN payload'],
      [() => producer.enqueue('t', { s: 'a\u0000b' }), ValidationError, 'NUL in payload'],
      [() => producer.enqueue('t', {}, { runAt: new Date(Number.NaN) }), ValidationError, 'NaN runAt'],
      [
        () => producer.enqueue('t', {}, { runAt: '2030-01-01' as unknown as Date }),
        ValidationError,
        'string runAt',
      ],
      [() => producer.enqueue('t', {}, { maxAttempts: 0 }), ValidationError, 'maxAttempts 0'],
      [() => producer.enqueue('t', {}, { maxAttempts: 1.5 }), ValidationError, 'maxAttempts 1.5'],
      [() => producer.enqueue('t', {}, { priority: 0.5 }), ValidationError, 'fractional priority'],
      [() => producer.enqueue('t', {}, { queue: '' }), ValidationError, 'empty queue'],
      [
        () => producer.enqueueMany([{ task: 'ok' }, { task: 'ok', payload: 2n }]),
        ValidationError,
        'one bad job of many',
      ],
      [() => producer.getJob('abc'), ValidationError, 'bad id'],
    ];
    for (const [call, type, label] of cases) await assert.rejects(call(), type, label);
    assert.equal(await countRows(schema), before, 'nothing was written');
  });

  it('stores payloads as JSON would, and refuses what JSON would drop or mangle at any depth', async () => {
    class Money {
      constructor(readonly cents: number) {}
      toJSON() {
        return { amount: this.cents / 100 };
      }
    }
    const kept = [
      { nested: { list: [1, 'two', null, true, { deep: [2.5] }] }, gone: undefined },
      { at: new Date('2030-01-02T03:04:05.006Z'), money: new Money(1234) },
      Object.assign(Object.create(null), { bare: 1 }),
      [1, [2, [3]]],
      'text',
    ];
    for (const payload of kept) {
      const job = await producer.enqueue('json', payload);
      assert.deepEqual(job.payload, JSON.parse(JSON.stringify(payload)));
      assert.deepEqual((await producer.getJob(job.id))?.payload, job.payload);
    }
    const before = await countRows(schema);
    for (const payload of [
      { a: { b: [1, Number.NaN] } },
      { a: [{ f: () => 1 }] },
      { a: { s: Symbol('s') } },
      { a: [Number.POSITIVE_INFINITY] },
      { a: { n: 1n } },
    ]) {
      await assert.rejects(() => producer.enqueue('json', payload), ValidationError);
    }
    assert.equal(await countRows(schema), before);
  });

  it('names the field and what was expected', async () => {
    await assert.rejects(producer.enqueue('t', {}, { maxAttempts: 0 }), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.equal(error.field, 'maxAttempts');
      assert.match(error.message, /maxAttempts: expected an integer from 1/);
      return true;
    });
  });

  it('a worker accepts its own tasks and its externalTasks', async () => {
    const workerLike = testRuntime({
      schema,
      tasks: { known: async () => undefined },
      externalTasks: ['elsewhere'],
    });
    await workerLike.enqueue('known', {});
    await workerLike.enqueue('elsewhere', {});
    await workerLike.stop();
  });

  it('enqueues inside the caller transaction: nothing exists unless it commits', async () => {
    await withPool(async (pool) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const job = await producer.enqueue('tx', { n: 1 }, { client });
        await client.query('ROLLBACK');
        assert.equal(await producer.getJob(job.id), null);
        await client.query('BEGIN');
        const [kept] = await producer.enqueueMany([{ task: 'tx', payload: { n: 2 } }], { client });
        assert.equal(await producer.getJob(kept?.id as string), null, 'invisible before commit');
        await client.query('COMMIT');
        assert.equal((await producer.getJob(kept?.id as string))?.state, 'not_started');
      } finally {
        client.release();
      }
    });
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Job, type Runtime, SimulatedClock, ValidationError } from '../src/index.js';
import { countRows, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

describe('tags', () => {
  const schema = freshSchema('tags');
  let producer: Runtime;

  before(async () => {
    producer = testRuntime({ schema });
    await producer.start();
  });
  after(() => producer.stop());

  it('are stored in the order given without repeats, and read back by getJob', async () => {
    const job = await producer.enqueue('bill', {}, { tags: ['region:eu', 'customer/42', 'region:eu'] });
    assert.deepEqual(job.tags, ['region:eu', 'customer/42']);
    assert.deepEqual((await producer.getJob(job.id))?.tags, ['region:eu', 'customer/42']);
    const untagged = await producer.enqueue('bill', {});
    assert.deepEqual((await producer.getJob(untagged.id))?.tags, []);
  });

  it('enqueueMany stores each job with its own tags, alike or mixed', async () => {
    const alike = await producer.enqueueMany(
      Array.from({ length: 3 }, (_, i) => ({ task: 'alike', payload: { i }, tags: ['batch=7'] })),
    );
    const mixed = await producer.enqueueMany([
      { task: 'mixed', tags: ['a', 'b.c'] },
      { task: 'mixed' },
      { task: 'mixed', tags: ['über', 'v1.2', 'team@ops'] },
    ]);
    for (const job of [...alike, ...mixed]) assert.deepEqual(await producer.getJob(job.id), job, job.id);
    assert.deepEqual(
      mixed.map((job) => job.tags),
      [['a', 'b.c'], [], ['über', 'v1.2', 'team@ops']],
    );
  });

  it('reach the handler on ctx.job', async () => {
    const clock = new SimulatedClock();
    const seen: Job[] = [];
    const worker = testRuntime({
      schema,
      clock,
      listen: false,
      tasks: {
        tagged: (_payload, ctx) => {
          seen.push(ctx.job);
        },
      },
    });
    await worker.start();
    try {
      const done = nextEvent(worker.events, 'job:succeeded');
      await producer.enqueue('tagged', {}, { tags: ['x', 'y'] });
      clock.advance(1_000);
      await done;
      assert.deepEqual(seen[0]?.tags, ['x', 'y']);
    } finally {
      await worker.stop();
    }
  });

  it('are replaced with the rest of a job rescheduled by key', async () => {
    const first = await producer.enqueue('keyed', {}, { key: 'k1', tags: ['old'] });
    const second = await producer.enqueue('keyed', {}, { key: 'k1', mode: 'reschedule', tags: ['new'] });
    assert.equal(second.id, first.id);
    assert.deepEqual((await producer.getJob(first.id))?.tags, ['new']);
  });

  it('that are not valid are refused with the field named, and nothing is written', async () => {
    const before = await countRows(schema);
    const bad: unknown[] = [
      'region:eu',
      [''],
      ['has space'],
      ['-leading'],
      ['quote"d'],
      ['comma,'],
      ['x'.repeat(101)],
      [7],
      Array.from({ length: 33 }, (_, i) => `t${i}`),
    ];
    for (const tags of bad) {
      await assert.rejects(
        producer.enqueue('bill', {}, { tags: tags as string[] }),
        (error: unknown) => error instanceof ValidationError && /^tags/.test(error.field),
        JSON.stringify(tags),
      );
    }
    await assert.rejects(
      producer.enqueueMany([
        { task: 'a', tags: ['ok'] },
        { task: 'a', tags: ['not ok'] },
      ]),
      (error: unknown) => error instanceof ValidationError && error.field === 'jobs[1].tags[0]',
    );
    assert.equal(await countRows(schema), before);
  });
});

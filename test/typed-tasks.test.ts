import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createRuntime,
  defineTask,
  defineTasks,
  type RuntimeOptions,
  task,
  UnknownOptionError,
  UnknownTaskError,
  ValidationError,
} from '../src/index.js';
import { countRows, databaseUrl, freshSchema, quietLogger } from './support/helpers.js';
import { tinySchema } from './support/tiny-schema.js';

// The declarations a producer and a worker would both import.
const tasks = defineTasks({
  sendEmail: task<{ to: string; subject: string }, { messageId: string }>({
    maxAttempts: 5,
    queue: 'email',
    priority: 10,
  }),
  resize: task({ schema: tinySchema({ url: 'string', width: 'number' }), timeoutMs: 30_000 }),
  audit: task({ schema: tinySchema({ who: 'string' }, true) }),
});

// base are the options of every runtime here; createRuntime is called directly (not testRuntime) so
// that its types are inferred from the declarations.
function base(schema: string) {
  return {
    connectionString: databaseUrl(),
    logger: quietLogger,
    schema,
    pollIntervalMs: 3_600_000,
  } satisfies RuntimeOptions;
}

describe('typed tasks: a producer given declarations', () => {
  const schema = freshSchema('typed');
  const producer = createRuntime({ ...base(schema), tasks, externalTasks: ['billing'] });
  before(() => producer.start());
  after(() => producer.stop());

  it('applies the declared maxAttempts, queue and priority, and an enqueue’s own options win', async () => {
    const job = await producer.enqueue('sendEmail', { to: 'a@b.c', subject: 'hi' });
    assert.deepEqual([job.maxAttempts, job.queue, job.priority], [5, 'email', 10]);
    const own = await producer.enqueue(
      'sendEmail',
      { to: 'a@b.c', subject: 'hi' },
      { maxAttempts: 2, queue: 'urgent', priority: -1 },
    );
    assert.deepEqual([own.maxAttempts, own.queue, own.priority], [2, 'urgent', -1]);
    const [many] = await producer.enqueueMany([{ task: 'sendEmail', payload: { to: 'x', subject: 'y' } }]);
    assert.deepEqual([many?.maxAttempts, many?.queue, many?.priority], [5, 'email', 10]);
    const schedule = await producer.schedules.upsert('typed-daily', {
      cron: '0 9 * * *',
      task: 'sendEmail',
      payload: { to: 'a@b.c', subject: 'daily' },
    });
    assert.equal(schedule.task, 'sendEmail');
  });

  it('refuses a task it has not declared, writing nothing, but accepts its externalTasks', async () => {
    const before = await countRows(schema);
    // A JavaScript caller (or a cast) gets past the types; the runtime refuses as well.
    const untyped = producer as unknown as { enqueue(task: string, payload?: unknown): Promise<unknown> };
    await assert.rejects(untyped.enqueue('sendEmial', {}), UnknownTaskError);
    await assert.rejects(
      producer.enqueueMany([
        { task: 'sendEmail', payload: { to: 'a', subject: 'b' } },
        { task: 'resise', payload: {} } as never,
      ]),
      UnknownTaskError,
    );
    await assert.rejects(
      producer.schedules.upsert('typo', { everyMs: 60_000, task: 'sendMail' } as never),
      UnknownTaskError,
    );
    assert.equal(await countRows(schema), before);
    const external = await producer.enqueue('billing', { invoice: 1 });
    assert.equal(external.maxAttempts, 25);
  });

  it('validates a payload with the task’s schema and stores the value the schema returns', async () => {
    const job = await producer.enqueue('resize', { url: '  https://x/y.png ', width: 3 });
    assert.deepEqual(job.payload, { url: 'https://x/y.png', width: 3 });
    assert.deepEqual((await producer.getJob(job.id))?.payload, job.payload);
    const audited = await producer.enqueue('audit', { who: ' me ' });
    assert.deepEqual(audited.payload, { who: 'me' });
  });

  it('refuses a payload the schema refuses with a ValidationError at its path, writing nothing', async () => {
    const before = await countRows(schema);
    await assert.rejects(
      producer.enqueue('resize', { url: 'u', width: '3' } as never),
      (error: unknown) =>
        error instanceof ValidationError && error.field === 'payload.width' && /a number/.test(error.message),
    );
    await assert.rejects(
      producer.enqueue('audit', {} as never),
      (error: unknown) => error instanceof ValidationError && error.field === 'payload.who',
    );
    // enqueueMany: all or nothing, the failing job named by its index.
    await assert.rejects(
      producer.enqueueMany([
        { task: 'resize', payload: { url: 'a', width: 1 } },
        { task: 'audit', payload: { who: 'b' } },
        { task: 'resize', payload: { url: 7, width: 1 } as never },
      ]),
      (error: unknown) => error instanceof ValidationError && error.field === 'jobs[2].payload.url',
    );
    await assert.rejects(
      producer.schedules.upsert('bad-resize', {
        everyMs: 60_000,
        task: 'resize',
        payload: { url: 1 } as never,
      }),
      (error: unknown) => error instanceof ValidationError && error.field === 'payload.url',
    );
    assert.equal(await countRows(schema), before);
    assert.equal(await producer.schedules.get('bad-resize'), null);
  });

  it('refuses unknown keys in enqueue options and specs, naming the nearest known one', async () => {
    await assert.rejects(
      producer.enqueue('sendEmail', { to: 'a', subject: 'b' }, { prority: 1 } as never),
      (error: unknown) => error instanceof UnknownOptionError && error.suggestion === 'priority',
    );
    await assert.rejects(
      producer.enqueueMany([{ task: 'sendEmail', payload: { to: 'a', subject: 'b' }, runat: null } as never]),
      (error: unknown) => error instanceof UnknownOptionError && error.field === 'jobs[0].runat',
    );
  });
});

describe('typed tasks: a producer without tasks', () => {
  it('accepts any well-formed task name with the default settings', async () => {
    const producer = createRuntime(base(freshSchema('typed_free')));
    await producer.start();
    try {
      const job = await producer.enqueue('anything', { n: 1 });
      assert.deepEqual([job.maxAttempts, job.queue, job.priority], [25, 'default', 0]);
    } finally {
      await producer.stop();
    }
  });
});

describe('typed tasks: a worker with handlers', () => {
  it('runs the declared tasks with their handlers, and waitFor returns the typed job', async () => {
    const schema = freshSchema('typed_worker');
    const seen: string[] = [];
    const worker = createRuntime({
      ...base(schema),
      pollIntervalMs: 50,
      tasks,
      handlers: {
        sendEmail: async (payload, ctx) => {
          seen.push(`${ctx.job.payload.subject} to ${payload.to}`);
          return { messageId: `m-${payload.to}` };
        },
        resize: async (payload) => payload.width * 2,
        audit: async () => undefined,
      },
    });
    await worker.start();
    try {
      const job = await worker.enqueue('sendEmail', { to: 'a@b.c', subject: 'hi' });
      const done = await worker.waitFor(job, { timeoutMs: 15_000 });
      assert.equal(done.state, 'succeeded');
      assert.equal(done.result?.messageId, 'm-a@b.c');
      assert.deepEqual(seen, ['hi to a@b.c']);
      const resized = await worker.waitFor(await worker.enqueue('resize', { url: ' u ', width: 4 }));
      assert.equal(resized.result, 8);
    } finally {
      await worker.stop();
    }
  });

  it('refuses a missing, extra or misspelled handler, and misspelled settings, when created', () => {
    const options = base(freshSchema('typed_bad'));
    const handler = async () => undefined;
    assert.throws(
      () => createRuntime({ ...options, tasks, handlers: { sendEmail: handler, resize: handler } as never }),
      (error: unknown) => error instanceof ValidationError && error.field === 'handlers.audit',
    );
    assert.throws(
      () =>
        createRuntime({
          ...options,
          tasks,
          handlers: { sendEmail: handler, resize: handler, audit: handler, sendEmial: handler } as never,
        }),
      (error: unknown) => error instanceof UnknownOptionError && error.field === 'handlers.sendEmial',
    );
    assert.throws(
      () => task({ maxAttempt: 3 } as never),
      (error: unknown) => error instanceof UnknownOptionError && error.suggestion === 'maxAttempts',
    );
    assert.throws(
      () => defineTask({ handler, timeout: 5 } as never),
      (error: unknown) => error instanceof UnknownOptionError && error.field === 'task.timeout',
    );
    assert.throws(() => task({ queue: 'no spaces' }), ValidationError);
    assert.throws(() => task({ schema: {} as never }), ValidationError);
    assert.throws(() => defineTasks({ a: handler as never }), ValidationError);
  });
});

// Type tests: compiled by the build, never run. A line under `@ts-expect-error` must fail to compile
// (tsc reports an unused directive otherwise); every other line must compile.
import {
  createRuntime,
  defineTask,
  defineTasks,
  type HandlersFor,
  type Job,
  type Runtime,
  type StandardSchemaV1,
  task,
} from '../../src/index.js';
import { runTask } from '../../src/testing/index.js';
import { tinySchema } from '../support/tiny-schema.js';

type Email = { to: string; subject: string };

const tasks = defineTasks({
  sendEmail: task<Email, { messageId: string }>({ maxAttempts: 5, queue: 'email', priority: 10 }),
  resize: task({ schema: tinySchema({ url: 'string', width: 'number' }), timeoutMs: 30_000 }),
  ping: task(),
});

// equal is a compile-time check that two types are the same.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function assertType<_T extends true>(): void {}

export async function producer(): Promise<void> {
  const runtime = createRuntime({ tasks });
  const job = await runtime.enqueue('sendEmail', { to: 'a@b.c', subject: 'hi' }, { priority: 1 });
  assertType<Equal<typeof job, Job<Email, { messageId: string }>>>();
  const done = await runtime.waitFor(job);
  assertType<Equal<typeof done, Job<Email, { messageId: string }>>>();
  const messageId: string | undefined = done.result?.messageId;
  void messageId;
  // waitFor by id is untyped, as before.
  const byId = await runtime.waitFor(job.id);
  assertType<Equal<typeof byId, Job>>();

  // The schema's output is the payload type.
  const resized = await runtime.enqueue('resize', { url: 'x', width: 3 });
  assertType<Equal<typeof resized.payload, { url: string; width: number }>>();
  // @ts-expect-error width is a number
  await runtime.enqueue('resize', { url: 'x', width: '3' });
  assertType<Equal<typeof resized.result, unknown>>();
  // A task whose payload is unknown may be enqueued without one.
  const pinged = await runtime.enqueue('ping');
  assertType<Equal<typeof pinged, Job<unknown, unknown>>>();

  // @ts-expect-error unknown task name
  await runtime.enqueue('sendEmial', { to: 'a', subject: 'b' });
  // @ts-expect-error payload missing a field
  await runtime.enqueue('sendEmail', { to: 'a' });
  // @ts-expect-error payload required
  await runtime.enqueue('sendEmail');
  // @ts-expect-error unknown enqueue option
  await runtime.enqueue('sendEmail', { to: 'a', subject: 'b' }, { prority: 1 });

  const many = await runtime.enqueueMany([
    { task: 'sendEmail', payload: { to: 'a', subject: 'b' }, queue: 'urgent' },
    { task: 'resize', payload: { url: 'x', width: 1 } },
  ]);
  void many;
  // @ts-expect-error payload of sendEmail given to resize
  await runtime.enqueueMany([{ task: 'resize', payload: { to: 'a', subject: 'b' } }]);
  // @ts-expect-error unknown task name
  await runtime.enqueueMany([{ task: 'nope' }]);

  await runtime.schedules.upsert('daily', {
    cron: '0 9 * * *',
    task: 'sendEmail',
    payload: { to: 'a', subject: 'b' },
  });
  // @ts-expect-error unknown task name
  await runtime.schedules.upsert('daily', { cron: '0 9 * * *', task: 'sendMail', payload: {} });
  // @ts-expect-error wrong payload
  await runtime.schedules.upsert('daily', { cron: '0 9 * * *', task: 'sendEmail', payload: { to: 1 } });

  for await (const event of runtime.subscribe({ task: 'sendEmail', states: ['succeeded'] })) {
    assertType<Equal<typeof event.job.payload, Email>>();
    assertType<Equal<typeof event.job.result, { messageId: string } | null>>();
  }
  // @ts-expect-error unknown task name
  runtime.subscribe({ task: 'sendEmial' });
  // Without a task filter, events are untyped.
  for await (const event of runtime.subscribe({ states: ['failed'] })) {
    assertType<Equal<typeof event.job.payload, unknown>>();
  }
}

export function externalTasks(): void {
  const runtime = createRuntime({ tasks, externalTasks: ['billing'] });
  void runtime.enqueue('billing', { anything: true });
  // @ts-expect-error neither declared nor external
  void runtime.enqueue('invoicing');
}

export function worker(): void {
  createRuntime({
    tasks,
    handlers: {
      sendEmail: async (payload, ctx) => {
        assertType<Equal<typeof payload, Email>>();
        assertType<Equal<typeof ctx.job.payload, Email>>();
        return { messageId: `${payload.to}-1` };
      },
      resize: (payload) => {
        assertType<Equal<typeof payload, { url: string; width: number }>>();
      },
      ping: () => undefined,
    },
  });
  createRuntime({
    tasks,
    // @ts-expect-error missing handler for ping
    handlers: {
      sendEmail: async () => ({ messageId: '1' }),
      resize: () => undefined,
    },
  });
  createRuntime({
    tasks,
    handlers: {
      sendEmail: async () => ({ messageId: '1' }),
      resize: () => undefined,
      ping: () => undefined,
      // @ts-expect-error extra handler
      pong: () => undefined,
    },
  });
  createRuntime({
    tasks,
    handlers: {
      // @ts-expect-error wrong result type
      sendEmail: async () => ({ id: 1 }),
      resize: () => undefined,
      ping: () => undefined,
    },
  });
}

export async function untyped(): Promise<void> {
  // The form before declarations: any name, any payload, untyped jobs.
  const runtime = createRuntime({
    tasks: {
      a: async (payload: { n: number }) => payload.n,
      b: defineTask({ handler: async () => undefined, maxAttempts: 3 }),
    },
  });
  const job = await runtime.enqueue('a', { n: 1 });
  assertType<Equal<typeof job, Job>>();
  await runtime.enqueue('anything', 'at all');
  await runtime.enqueueMany([{ task: 'x' }, { task: 'y', payload: 1 }]);
  await runtime.schedules.upsert('s', { everyMs: 60_000, task: 'z' });
  const producer = createRuntime({});
  await producer.enqueue('whatever');
  // A typed runtime is still a Runtime.
  const typed: Runtime = createRuntime({ tasks });
  void typed;
}

export function declarations(schema: StandardSchemaV1<unknown, { id: string }>): void {
  // A schema and a result type together: both type arguments.
  const withResult = task<typeof schema, number>({ schema });
  void withResult;
  // @ts-expect-error a declaration's payload must match its schema's
  task<{ id: number }>({ schema });
  // @ts-expect-error unknown setting
  task({ maxAttempt: 3 });
  // @ts-expect-error defineTasks takes declarations only
  defineTasks({ a: async () => undefined });
}

export async function testingKit(): Promise<void> {
  const handlers: HandlersFor<typeof tasks> = {
    sendEmail: async (payload) => ({ messageId: payload.to }),
    resize: () => undefined,
    ping: () => undefined,
  };
  const outcome = await runTask(handlers.sendEmail, { to: 'a', subject: 'b' });
  void outcome;
  await runTask(defineTask({ ...tasks.sendEmail, handler: handlers.sendEmail }), { to: 'a', subject: 'b' });
}

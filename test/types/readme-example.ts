// The example of TYPED-TASKS.md (the README's "Typed tasks" section), compiled by the build so that
// it stays true. Never run.
import { createRuntime, defineTasks, type StandardSchemaV1, task } from '../../src/index.js';

declare const mailer: { send(to: string, subject: string): Promise<{ id: string }> };
declare const images: { resize(url: string, width: number): Promise<string> };
// Any Standard Schema v1 validator, e.g. `z.object({ url: z.string().url(), width: z.number().int() })`.
declare const resizeSchema: StandardSchemaV1<unknown, { url: string; width: number }>;

// tasks.ts: imported by the HTTP service and by the worker.
export const tasks = defineTasks({
  sendEmail: task<{ to: string; subject: string }, { messageId: string }>({
    maxAttempts: 5,
    queue: 'email',
    priority: 10,
  }),
  resize: task({ schema: resizeSchema, timeoutMs: 30_000 }),
});

// service.ts: a producer. It knows every task's settings and refuses any other task.
export async function service(): Promise<void> {
  const producer = createRuntime({ connectionString: process.env.DATABASE_URL, tasks });
  await producer.start();
  const job = await producer.enqueue('sendEmail', { to: 'a@b.c', subject: 'hi' });
  // job: Job<{ to: string; subject: string }, { messageId: string }>, maxAttempts 5, queue 'email'
  const done = await producer.waitFor(job, { timeoutMs: 60_000 });
  console.log(done.result?.messageId);
  await producer.enqueue('resize', { url: 'https://example.com/a.png', width: 640 }); // validated
  await producer.stop();
}

// worker.ts: the same declarations, with a handler for each.
export async function worker(): Promise<void> {
  const runtime = createRuntime({
    connectionString: process.env.DATABASE_URL,
    tasks,
    handlers: {
      sendEmail: async (payload, ctx) => {
        ctx.logger.info({ to: payload.to }, 'sending');
        const sent = await mailer.send(payload.to, payload.subject);
        return { messageId: sent.id };
      },
      resize: async ({ url, width }) => {
        await images.resize(url, width);
      },
    },
  });
  await runtime.start();
  for await (const { job } of runtime.subscribe({ task: 'sendEmail', states: ['succeeded'] })) {
    console.log(job.payload.to, job.result?.messageId);
  }
}

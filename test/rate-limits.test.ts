import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defineTask,
  type PolledEvent,
  type Runtime,
  SimulatedClock,
  type TransitionEvent,
  ValidationError,
} from '../src/index.js';
import { countEvents, freshSchema, nextEvent, testRuntime, withPool } from './support/helpers.js';

describe('token-bucket rate limits', () => {
  it('a bucket of 5 tokens refilling 1/s, 100 jobs, two runtimes: starts never exceed the allowance', async () => {
    const schema = freshSchema('bucket');
    const clock = new SimulatedClock(new Date('2026-05-01T00:00:00Z'));
    const starts: number[] = [];
    const options = {
      schema,
      clock,
      pollIntervalMs: 1_000,
      rateLimits: { smtp: { capacity: 5, refillPerSecond: 1 } },
      tasks: {
        send: defineTask({
          handler: () => {
            starts.push(clock.now().getTime());
          },
          rateLimit: 'smtp',
        }),
      },
    };
    const runtimes: Runtime[] = [
      testRuntime({ ...options, name: 'a' }),
      testRuntime({ ...options, name: 'b' }),
    ];
    let claimed = 0;
    let concluded = 0;
    for (const runtime of runtimes) {
      await runtime.start();
      runtime.events.on('runtime:polled', (e: PolledEvent) => {
        claimed += e.claimed;
      });
      runtime.events.on('job:succeeded', () => concluded++);
      runtime.events.on('job:not_started', (e: TransitionEvent) => {
        if (e.event === 'RERUN') concluded++;
      });
    }
    // quiet resolves once every claimed job has been run or put back, with nothing left to write.
    const quiet = async () => {
      for (let turn = 0; turn < 100_000; turn++) {
        const idle = runtimes.every((r) => r.health().running === 0 && r.health().pendingWrites === 0);
        if (claimed === concluded && idle) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error(`never quiet: ${claimed} claimed, ${concluded} concluded`);
    };
    await runtimes[0]?.enqueueMany(Array.from({ length: 100 }, () => ({ task: 'send' })));
    for (let second = 0; starts.length < 100 && second < 300; second++) {
      await quiet();
      const polls = runtimes.map((r) => nextEvent(r.events, 'runtime:polled'));
      clock.advance(1_000);
      await Promise.all(polls);
    }
    await quiet();
    for (const runtime of runtimes) await runtime.stop();
    assert.equal(starts.length, 100);
    starts.sort((x, y) => x - y);
    for (let j = 0; j < starts.length; j++) {
      for (let i = 0; i <= j; i++) {
        const windowMs = (starts[j] as number) - (starts[i] as number);
        assert.ok(j - i + 1 <= 5 + windowMs / 1_000 + 1e-9, `${j - i + 1} starts within ${windowMs} ms`);
      }
    }
    const span = ((starts.at(-1) as number) - (starts[0] as number)) / 1_000;
    assert.ok(span >= 94, `100 starts took ${span} s of the clock, at 5 + 1/s`);
  });

  it('a key function gives each customer a bucket of its own; an empty bucket defers without spending an attempt', async () => {
    const schema = freshSchema('bucketkey');
    const ran: string[] = [];
    const runtime = testRuntime({
      schema,
      rateLimits: { smtp: { capacity: 1, refillPerSecond: 0.001 } },
      tasks: {
        receipt: defineTask({
          handler: (payload: { customer: string }) => void ran.push(payload.customer),
          rateLimit: (payload: { customer: string }) => `smtp:${payload.customer}`,
        }),
      },
    });
    await runtime.start();
    const outcomes = countEvents<TransitionEvent>(
      runtime.events,
      'job:transition',
      3,
      (e) => e.to === 'succeeded' || e.event === 'RERUN',
    );
    await runtime.enqueueMany([
      { task: 'receipt', payload: { customer: 'ada' } },
      { task: 'receipt', payload: { customer: 'ada' } },
      { task: 'receipt', payload: { customer: 'bob' } },
    ]);
    const seen = await outcomes;
    await runtime.stop();
    assert.deepEqual(ran.sort(), ['ada', 'bob']);
    const deferred = seen.find((e) => e.event === 'RERUN');
    assert.equal(deferred?.job.attempts, 0, 'no attempt spent');
    assert.ok((deferred?.job.runAt?.getTime() ?? 0) > Date.now() + 900_000, 'due when the next token is');
  });

  it('rejects bad buckets and unknown bucket names where the runtime is built', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ rateLimits: { smtp: { capacity: 0, refillPerSecond: 1 } } }, 'rateLimits.smtp.capacity'],
      [{ rateLimits: { smtp: { capacity: 5, refillPerSecond: 0 } } }, 'rateLimits.smtp.refillPerSecond'],
      [
        {
          rateLimits: { smtp: { capacity: 5, refillPerSecond: 1 } },
          tasks: { send: { handler: () => 1, rateLimit: 'sms' } },
        },
        'tasks.send.rateLimit',
      ],
    ];
    for (const [options, field] of bad) {
      assert.throws(
        () => testRuntime({ schema: 'unused', ...options }),
        (error: unknown) => error instanceof ValidationError && error.field === field,
        field,
      );
    }
  });
});

/** PlanNode is the part of an EXPLAIN (FORMAT JSON) node the plan test reads. */
interface PlanNode {
  'Node Type': string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)];
}

// runSerially enqueues `count` jobs into the serial queue `queue` and has three runtimes work them;
// it checks that no two ran at once and that they ran in order of run_at, then id.
async function runSerially(queue: string, count: number): Promise<void> {
  const schema = freshSchema('serial');
  let running = 0;
  let most = 0;
  const order: string[] = [];
  const runtimes = [1, 2, 3].map((n) =>
    testRuntime({
      schema,
      name: `s${n}`,
      queues: { [queue]: { serial: true } },
      tasks: {
        post: async (_p, ctx) => {
          running++;
          most = Math.max(most, running);
          order.push(ctx.job.id);
          await new Promise((resolve) => setImmediate(resolve));
          running--;
        },
      },
    }),
  );
  for (const runtime of runtimes) await runtime.start();
  let succeeded = 0;
  const all = new Promise<void>((resolve) => {
    for (const runtime of runtimes) {
      runtime.events.on('job:succeeded', () => {
        if (++succeeded === count) resolve();
      });
    }
  });
  const jobs = await runtimes[0]?.enqueueMany(Array.from({ length: count }, () => ({ task: 'post', queue })));
  await all;
  for (const runtime of runtimes) await runtime.stop();
  assert.equal(most, 1, 'never two running at once');
  assert.deepEqual(
    order,
    jobs?.map((job) => job.id),
    'in order of run_at, then id',
  );
}

describe('serial queues', () => {
  it('200 jobs of a serial queue across three runtimes: never two at once, in order', () =>
    runSerially('ledger', 200));

  it('the default queue can be serial too', () => runSerially('default', 60));

  it('takes the highest priority first, then the earliest runAt, then the lowest id', async () => {
    const schema = freshSchema('serialorder');
    const clock = new SimulatedClock(new Date('2026-05-01T00:00:00Z'));
    const order: string[] = [];
    const runtime = testRuntime({
      schema,
      clock,
      queues: { ledger: { serial: true } },
      tasks: { post: (_p, ctx) => void order.push(ctx.job.id) },
    });
    const producer = testRuntime({ schema, clock });
    const ago = (seconds: number) => new Date(clock.now().getTime() - seconds * 1_000);
    // [priority, seconds before now]: ties on priority and runAt fall back to insertion order (id).
    const plan: [number, number][] = [
      [0, 1],
      [5, 1],
      [0, 3],
      [5, 2],
      [-2, 9],
      [5, 2],
      [0, 3],
    ];
    // Every job is in the table before the worker starts, so each claim chooses among all of them.
    await producer.start();
    const jobs = await producer.enqueueMany(
      plan.map(([priority, seconds]) => ({ task: 'post', queue: 'ledger', priority, runAt: ago(seconds) })),
    );
    await producer.stop();
    const expected = jobs
      .map((job, i) => ({ id: job.id, priority: plan[i]?.[0] ?? 0, runAt: job.runAt?.getTime() ?? 0, i }))
      .sort((a, b) => b.priority - a.priority || a.runAt - b.runAt || a.i - b.i)
      .map((job) => job.id);
    const done = countEvents(runtime.events, 'job:succeeded', jobs.length);
    await runtime.start();
    try {
      await done;
    } finally {
      await runtime.stop();
    }
    assert.deepEqual(order, expected);
  });

  it("claims a serial queue's next job as soon as its job ends, without waiting for a notification", async () => {
    // No listener and a clock that never moves: nothing but the end of a serial job can wake it.
    const schema = freshSchema('serialnext');
    const clock = new SimulatedClock(new Date('2026-05-01T00:00:00Z'));
    const producer = testRuntime({ schema, clock });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: 5 }, () => ({ task: 'post', queue: 'ledger' })));
    await producer.stop();
    const runtime = testRuntime({
      schema,
      clock,
      listen: false,
      queues: { ledger: { serial: true } },
      tasks: { post: () => undefined },
    });
    const done = countEvents(runtime.events, 'job:succeeded', 5, undefined, 10_000);
    await runtime.start();
    try {
      await done;
    } finally {
      await runtime.stop();
    }
  });

  it("claims a serial queue's next job by reading one index entry, not the whole backlog", async (t) => {
    const superuser = await withPool(async (pool) => {
      const { rows } = await pool.query<{ super: boolean }>(
        'SELECT rolsuper AS super FROM pg_roles WHERE rolname = current_user',
      );
      return rows[0]?.super === true;
    });
    // The plan is read through auto_explain, which only a superuser may load into a session.
    if (!superuser) return t.skip('loading auto_explain needs a superuser');
    const schema = freshSchema('serialplan');
    const runtime = testRuntime({ schema });
    await runtime.start();
    const backlog = 2_000;
    try {
      // Other tasks' jobs first: they sort before the wanted one but the claim must step over them.
      await runtime.enqueueMany(
        Array.from({ length: 3 }, () => ({ task: 'other', queue: 'ledger', priority: 9 })),
      );
      await runtime.enqueueMany(Array.from({ length: backlog }, () => ({ task: 'post', queue: 'ledger' })));
    } finally {
      await runtime.stop();
    }
    await withPool(async (pool) => {
      const client = await pool.connect();
      const plans: unknown[] = [];
      client.on('notice', (notice) => {
        const json = /plan:\s*([\s\S]*)$/.exec(notice.message ?? '')?.[1];
        if (json) plans.push(JSON.parse(json));
      });
      try {
        await client.query(`LOAD 'auto_explain'`);
        await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
                            SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json;
                            SET auto_explain.log_level = notice`);
        const claimed = await client.query(
          `SELECT c FROM "${schema}".claim_serial_job_json(now(), ARRAY['post'], 'probe', 'ledger') AS c`,
        );
        assert.equal(claimed.rowCount, 1, 'one group of claimed jobs');
      } finally {
        client.release();
      }
      const picks = plans.filter((plan) => JSON.stringify(plan).includes('array_agg(c.id)'));
      assert.equal(picks.length, 1, 'the pick of the next job was explained');
      const nodes = planNodes((picks[0] as { Plan: PlanNode }).Plan);
      assert.ok(!nodes.some((node) => node['Node Type'] === 'Sort'), 'no sort of the backlog');
      const scanned = nodes
        .filter((node) => /Scan/.test(node['Node Type']))
        .reduce((sum, node) => sum + (node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0), 0);
      assert.ok(scanned <= 5, `read ${scanned} rows of a ${backlog}-job backlog`);
    });
  });

  it('rejects a serial queue with a concurrency', () => {
    assert.throws(
      () => testRuntime({ schema: 'unused', queues: { ledger: { serial: true, concurrency: 3 } } }),
      (error: unknown) => error instanceof ValidationError && error.field === 'queues.ledger.concurrency',
    );
  });
});

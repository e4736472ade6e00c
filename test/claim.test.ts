import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolledEvent, TransitionEvent } from '../src/index.js';
import { countEvents, countRows, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

describe('claiming', () => {
  it('two runtimes (one prefetching) drain 2,000 jobs and every job runs exactly once', async () => {
    const schema = freshSchema('claim');
    const runsByJob = new Map<string, number>();
    const byRuntime = [0, 0];
    const make = (index: number) =>
      testRuntime({
        schema,
        maxRunningJobs: 10,
        prefetch: index === 0 ? 0 : 50,
        tasks: {
          work: async (_payload, ctx) => {
            runsByJob.set(ctx.job.id, (runsByJob.get(ctx.job.id) ?? 0) + 1);
            byRuntime[index] = (byRuntime[index] ?? 0) + 1;
          },
        },
      });
    const producer = testRuntime({ schema });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: 2000 }, (_, i) => ({ task: 'work', payload: { i } })));
    const [a, b] = [make(0), make(1)];
    const all = new Promise<void>((resolve) => {
      let seen = 0;
      const onDone = () => {
        if (++seen === 2000) resolve();
      };
      a.events.on('job:succeeded', onDone);
      b.events.on('job:succeeded', onDone);
    });
    await Promise.all([a.start(), b.start()]);
    await all;
    await Promise.all([a.stop(), b.stop(), producer.stop()]);
    assert.equal(runsByJob.size, 2000);
    assert.ok(
      [...runsByJob.values()].every((runs) => runs === 1),
      'no job ran twice',
    );
    assert.equal(await countRows(schema, 'succeeded'), 2000);
    assert.ok((byRuntime[0] ?? 0) > 0 && (byRuntime[1] ?? 0) > 0, `both runtimes worked: ${byRuntime}`);
  });

  it('never runs more than maxRunningJobs handlers at once', async () => {
    const schema = freshSchema('limit');
    let running = 0;
    let peak = 0;
    const runtime = testRuntime({
      schema,
      maxRunningJobs: 3,
      tasks: {
        slow: async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setImmediate(resolve));
          running--;
        },
      },
    });
    await runtime.start();
    const done = countEvents(runtime.events, 'job:succeeded', 60);
    await runtime.enqueueMany(Array.from({ length: 60 }, () => ({ task: 'slow' })));
    await done;
    await runtime.stop();
    assert.ok(peak <= 3, `peak ${peak}`);
    assert.equal(peak, 3);
  });

  it('takes higher priority first, then earlier run_at', async () => {
    const schema = freshSchema('priority');
    const order: string[] = [];
    const producer = testRuntime({ schema });
    await producer.start();
    const base = new Date(Date.now() - 60_000);
    await producer.enqueueMany([
      { task: 'p', payload: 'low-early', priority: 0, runAt: base },
      { task: 'p', payload: 'high-late', priority: 5, runAt: new Date(base.getTime() + 2000) },
      { task: 'p', payload: 'high-early', priority: 5, runAt: new Date(base.getTime() + 1000) },
      { task: 'p', payload: 'low-late', priority: 0, runAt: new Date(base.getTime() + 3000) },
    ]);
    const runtime = testRuntime({
      schema,
      maxRunningJobs: 1,
      tasks: { p: async (payload: string) => void order.push(payload) },
    });
    const done = countEvents(runtime.events, 'job:succeeded', 4);
    await runtime.start();
    await done;
    await Promise.all([runtime.stop(), producer.stop()]);
    assert.deepEqual(order, ['high-early', 'high-late', 'low-early', 'low-late']);
  });

  it('prefetch: stop gives back the claimed jobs no handler started, refunding their attempt', async () => {
    const schema = freshSchema('prefetch');
    let finishFirst: () => void = () => undefined;
    const runtime = testRuntime({
      schema,
      maxRunningJobs: 1,
      prefetch: 5,
      tasks: {
        hold: () =>
          new Promise<void>((resolve) => {
            finishFirst = resolve;
          }),
      },
    });
    await runtime.start();
    const claimedAll = nextEvent<PolledEvent>(runtime.events, 'runtime:polled', (e) => e.claimed === 6);
    const firstRunning = nextEvent<TransitionEvent>(runtime.events, 'job:running');
    const jobs = await runtime.enqueueMany(Array.from({ length: 6 }, () => ({ task: 'hold' })));
    await claimedAll;
    const first = (await firstRunning).job.id;
    const stopped = runtime.stop();
    finishFirst();
    await stopped;
    const producer = testRuntime({ schema });
    const rows = await Promise.all(jobs.map((job) => producer.getJob(job.id)));
    await producer.stop();
    for (const row of rows) {
      if (row?.id === first) {
        assert.equal(row.state, 'succeeded');
      } else {
        assert.equal(row?.state, 'not_started');
        assert.equal(row?.attempts, 0);
        assert.equal(row?.lockedBy, null);
      }
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Job,
  type ScheduleTickEvent,
  SimulatedClock,
  type TransitionEvent,
  ValidationError,
} from '../src/index.js';
import { freshSchema, gate, nextEvent, testRuntime, withPool } from './support/helpers.js';

const MINUTE = 60_000;

describe('schedules', () => {
  it('rejects bad schedules with a typed error naming the field, writing nothing', async () => {
    const schema = freshSchema('schedbad');
    const runtime = testRuntime({ schema });
    await runtime.start();
    const bad: [Record<string, unknown>, string][] = [
      [{ cron: 'every day', task: 't' }, 'cron'],
      [{ cron: '* * * * *', timezone: 'Mars/Olympus', task: 't' }, 'timezone'],
      [{ everyMs: 500, task: 't' }, 'everyMs'],
      [{ everyMs: 1500.5, task: 't' }, 'everyMs'],
      [{ cron: '* * * * *', everyMs: 5000, task: 't' }, 'cron'],
      [{ task: 't' }, 'cron'],
      [{ cron: '* * * * *', task: 't', overlap: 'sometimes' }, 'overlap'],
      [{ cron: '* * * * *', task: 't', catchUp: 'most' }, 'catchUp'],
      [{ cron: '* * * * *', task: '9lives' }, 'task'],
    ];
    for (const [options, field] of bad) {
      await assert.rejects(
        runtime.schedules.upsert('nightly', options as never),
        (error: unknown) => error instanceof ValidationError && error.field === field,
        JSON.stringify(options),
      );
    }
    assert.deepEqual(await runtime.schedules.list(), []);
    await runtime.stop();
  });

  it('three runtimes, a schedule every minute for a simulated day: exactly 1,440 jobs, one per tick', async () => {
    const schema = freshSchema('schedday');
    const clock = new SimulatedClock(new Date('2026-03-01T00:00:30Z'));
    const runtimes = [1, 2, 3].map((n) =>
      testRuntime({ schema, clock, name: `r${n}`, pollIntervalMs: MINUTE, tasks: { tick: () => 'ok' } }),
    );
    for (const runtime of runtimes) await runtime.start();
    try {
      await runtimes[0]?.schedules.upsert('everyMinute', {
        cron: '* * * * *',
        task: 'tick',
        timezone: 'Europe/Berlin',
      });
      // Count the tick jobs that succeeded, on whichever runtime ran them.
      let succeeded = 0;
      let reached: { count: number; resolve: () => void } | null = null;
      for (const runtime of runtimes) {
        runtime.events.on('job:succeeded', (e: TransitionEvent) => {
          if (!e.job.key?.startsWith('schedule:')) return;
          succeeded++;
          if (reached && succeeded >= reached.count) reached.resolve();
        });
      }
      const succeededCount = (count: number) =>
        new Promise<void>((resolve, reject) => {
          if (succeeded >= count) return resolve();
          const timer = setTimeout(() => reject(new Error(`${succeeded} of ${count} ticks ran`)), 15_000);
          reached = {
            count,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          };
        });
      for (let minute = 1; minute <= 1_440; minute++) {
        clock.advance(MINUTE);
        await succeededCount(minute);
      }
    } finally {
      for (const runtime of runtimes) await runtime.stop();
    }
    const counts = await withPool(async (pool) => {
      const result = await pool.query<{ jobs: string; keys: string; by: string }>(
        `SELECT count(*) AS jobs, count(DISTINCT key) AS keys, count(DISTINCT created_by) AS by
           FROM "${schema}".jobs WHERE key LIKE 'schedule:default:everyMinute:%'`,
      );
      return result.rows[0];
    });
    const reader = testRuntime({ schema });
    const last = await reader.schedules.lastRun('everyMinute');
    await reader.stop();
    assert.equal(Number(counts?.jobs), 1_440);
    assert.equal(Number(counts?.keys), 1_440);
    assert.equal(last?.tickAt.toISOString(), '2026-03-02T00:00:00.000Z');
    assert.equal(last?.job?.state, 'succeeded');
  });

  it('after downtime runs the latest missed tick, none, or all of them in turn, as catchUp says', async () => {
    const schema = freshSchema('schedcatch');
    const clock = new SimulatedClock(new Date('2026-03-01T00:00:30Z'));
    const producer = testRuntime({ schema, clock });
    await producer.start();
    for (const catchUp of ['latest', 'none', 'all'] as const) {
      await producer.schedules.upsert(`c-${catchUp}`, {
        cron: '* * * * *',
        task: 'tick',
        catchUp,
        payload: { catchUp },
      });
    }
    clock.advance(5 * MINUTE); // nobody works: five ticks pass
    const ticks: string[] = [];
    const worker = testRuntime({ schema, clock, pollIntervalMs: 1_000, tasks: { tick: () => 'ok' } });
    worker.events.on('schedule:tick', (e) =>
      ticks.push(`${e.schedule.name} ${e.tick.toISOString().slice(11, 16)}`),
    );
    const firstPass = nextEvent<ScheduleTickEvent>(worker.events, 'schedule:tick');
    await worker.start();
    await firstPass;
    // Let the runs end and the following passes take what catchUp 'all' still owes.
    for (let second = 0; second < 12; second++) {
      const pass = nextEvent(worker.events, 'runtime:polled');
      clock.advance(1_000);
      await pass;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await worker.stop();
    await producer.stop();
    assert.ok(ticks.includes('c-latest 00:05'), ticks.join(', '));
    assert.ok(!ticks.some((t) => t.startsWith('c-latest') && t !== 'c-latest 00:05'), ticks.join(', '));
    assert.ok(!ticks.some((t) => t.startsWith('c-none')), ticks.join(', '));
    assert.equal(ticks.filter((t) => t.startsWith('c-all'))[0], 'c-all 00:01');
  });

  it("a scheduled run is prepared like an enqueue of its task: the task's maxAttempts applies", async () => {
    const schema = freshSchema('schedtask');
    const clock = new SimulatedClock(new Date('2026-03-01T00:00:30Z'));
    // The handler holds the runs, so that the rows read back are the runs as enqueued.
    const held = gate();
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 30_000,
      tasks: { report: { handler: () => held.opened, maxAttempts: 3 } },
    });
    await worker.start();
    try {
      await worker.schedules.upsert('report', { cron: '* * * * *', task: 'report' });
      const tick = nextEvent<ScheduleTickEvent>(worker.events, 'schedule:tick');
      clock.advance(30_000);
      const scheduled = (await tick).job;
      const enqueued = await worker.enqueue('report');
      const options = (job: Job | null) => ({
        queue: job?.queue,
        priority: job?.priority,
        maxAttempts: job?.maxAttempts,
      });
      assert.deepEqual(options(scheduled), { queue: 'default', priority: 0, maxAttempts: 3 });
      assert.deepEqual(options(await worker.getJob(scheduled.id)), options(enqueued));
    } finally {
      held.open();
      await worker.stop();
    }
  });

  it('everyMs counts from the end of the last run', async () => {
    const schema = freshSchema('schedevery');
    const clock = new SimulatedClock(new Date('2026-03-01T00:00:00Z'));
    let release: () => void = () => undefined;
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 1_000,
      tasks: {
        slow: () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      },
    });
    await worker.start();
    const first = nextEvent<ScheduleTickEvent>(worker.events, 'schedule:tick');
    const running = nextEvent(worker.events, 'job:running');
    await worker.schedules.upsert('poller', { everyMs: 10_000, task: 'slow' });
    clock.advance(1_000);
    const firstTick = await first;
    await running;
    clock.advance(25_000); // the run takes 25 s: no tick meanwhile
    const ended = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
    release();
    const endedAt = (await ended).job.finishedAt as Date;
    const second = nextEvent<ScheduleTickEvent>(worker.events, 'schedule:tick');
    clock.advance(11_000);
    const secondTick = await second;
    await worker.stop();
    assert.equal(firstTick.tick.getTime(), new Date('2026-03-01T00:00:00Z').getTime());
    assert.equal(secondTick.tick.getTime(), endedAt.getTime() + 10_000, 'ten seconds after the run ended');
  });

  for (const overlap of ['skip', 'queue'] as const) {
    it(`overlap '${overlap}': ticks during an unfinished run are ${overlap === 'skip' ? 'dropped' : 'held for it'}`, async () => {
      const schema = freshSchema(`sched${overlap}`);
      const clock = new SimulatedClock(new Date('2026-03-01T00:00:30Z'));
      let release: () => void = () => undefined;
      let runs = 0;
      const worker = testRuntime({
        schema,
        clock,
        pollIntervalMs: 10_000,
        tasks: {
          report: () => {
            runs++;
            return runs === 1 ? new Promise<void>((resolve) => (release = resolve)) : undefined;
          },
        },
      });
      await worker.start();
      const ticks: string[] = [];
      worker.events.on('schedule:tick', (e) => ticks.push(e.tick.toISOString().slice(11, 16)));
      await worker.schedules.upsert('report', { cron: '* * * * *', task: 'report', overlap });
      const running = nextEvent(worker.events, 'job:running');
      clock.advance(MINUTE);
      await running;
      // advance moves the clock on and waits for a pass at the time reached: the first pass of an
      // advance runs at the first poll timer on the way, the pass after it at the time reached.
      const advance = (ms: number) => {
        const reached = clock.now().getTime() + ms;
        const passed = nextEvent<{ at: Date }>(
          worker.events,
          'schedule:pass',
          (e) => e.at.getTime() >= reached,
        );
        clock.advance(ms);
        return passed;
      };
      // Three more ticks pass while the first run is stuck, one pass after each.
      for (let minute = 2; minute <= 4; minute++) await advance(MINUTE);
      const schedule = await worker.schedules.get('report');
      assert.equal(schedule?.nextRunAt?.getUTCMinutes(), overlap === 'skip' ? 5 : 4);
      const finished = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
      release();
      await finished;
      // Ten seconds later (00:04:40), 'queue' runs the tick it held; 'skip' waits for the next tick.
      await advance(10_000);
      if (overlap === 'skip') {
        assert.deepEqual(ticks, ['00:01']);
        const next = nextEvent<ScheduleTickEvent>(worker.events, 'schedule:tick');
        clock.advance(20_000);
        await next;
      }
      await worker.stop();
      assert.deepEqual(ticks, overlap === 'skip' ? ['00:01', '00:05'] : ['00:01', '00:04']);
    });
  }
});

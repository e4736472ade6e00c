import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnknownTaskError } from '../src/core/errors.js';
import { LIVE_STATES, sourcesOf, targetOf } from '../src/core/transitions.js';
import { SimulatedClock } from '../src/index.js';
import { RuntimeEvents, type ScheduleTickEvent } from '../src/jobs/events.js';
import { Scheduler, type SchedulerCounts } from '../src/maintenance/scheduler.js';
import { Storage } from '../src/storage/storage.js';
import { freshSchema, testRuntime, withPool } from './support/helpers.js';

const at = (time: string) => new Date(`2026-03-01T${time}Z`);
const none: SchedulerCounts = { due: 0, enqueued: 0, existing: 0, overlapping: 0, missed: 0, resumed: 0 };

describe('the schedule pass', () => {
  it('runOnce(now) enqueues the due ticks and counts what it did with each due schedule', async () => {
    const schema = freshSchema('scheduler');
    const clock = new SimulatedClock(at('00:00:30'));
    // A producer migrates the schema and writes the schedules; it runs no pass of its own.
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const upsert = (name: string, options: Parameters<typeof producer.schedules.upsert>[1]) =>
      producer.schedules.upsert(name, options);
    await upsert('latest', { cron: '* * * * *', task: 'report' });
    await upsert('none', { cron: '* * * * *', task: 'report', catchUp: 'none' });
    await upsert('period', { everyMs: 60_000, task: 'report' });
    await upsert('elsewhere', { cron: '* * * * *', task: 'other' });
    await upsert('off', { cron: '* * * * *', task: 'report', enabled: false });
    await upsert('daily', { cron: '0 0 * * *', task: 'report' });
    try {
      await withPool(async (pool) => {
        const events = new RuntimeEvents();
        const ticks: string[] = [];
        events.on('schedule:tick', (e: ScheduleTickEvent) =>
          ticks.push(`${e.schedule.name} ${e.tick.toISOString().slice(11, 19)} ${e.job.maxAttempts}`),
        );
        const scheduler = new Scheduler({
          pool,
          schema,
          storage: new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') }),
          events,
          consumerId: 'scheduler-test',
          // As a worker's lookup: 'report' is defined here, 'other' is worked by another runtime.
          lookupTask: (task) => {
            if (task === 'report') return { handler: () => undefined, maxAttempts: 3 };
            throw new UnknownTaskError(task, ['report']);
          },
          liveStates: LIVE_STATES,
        });

        // Three ticks were missed: 'latest' runs the last, 'none' none; 'period' and 'elsewhere' run.
        assert.deepEqual(await scheduler.runOnce(at('00:03:10')), {
          ...none,
          due: 4,
          enqueued: 3,
          missed: 1,
        });
        assert.deepEqual(ticks.sort(), ['elsewhere 00:03:00 25', 'latest 00:03:00 3', 'period 00:00:30 3']);
        // Nothing is due again until the next minute; 'period' waits for its run to end.
        assert.deepEqual(await scheduler.runOnce(at('00:03:20')), none);

        // The period's run ends at 00:03:30: its next tick is a period later. The others' runs are
        // unfinished, so their ticks are dropped; 'none' has a single tick due and runs it.
        await pool.query(
          `UPDATE "${schema}".jobs SET state = 'succeeded', finished_at = $1 WHERE key LIKE 'schedule:default:period:%'`,
          [at('00:03:30')],
        );
        ticks.length = 0;
        assert.deepEqual(await scheduler.runOnce(at('00:04:40')), {
          ...none,
          due: 4,
          enqueued: 2,
          overlapping: 2,
          resumed: 1,
        });
        assert.deepEqual(ticks.sort(), ['none 00:04:00 3', 'period 00:04:30 3']);

        // The run of 'none' has ended, and a job already holds the key of its next tick: the pass
        // takes that job as the tick's and inserts none.
        await pool.query(
          `UPDATE "${schema}".jobs SET state = 'succeeded', finished_at = $1 WHERE key LIKE 'schedule:default:none:%'`,
          [at('00:04:50')],
        );
        const holder = await producer.enqueue('report', null, {
          key: 'schedule:default:none:2026-03-01T00:05:00.000Z',
        });
        ticks.length = 0;
        assert.deepEqual(await scheduler.runOnce(at('00:05:10')), {
          ...none,
          due: 3,
          existing: 1,
          overlapping: 2,
        });
        assert.deepEqual(ticks, [`none 00:05:00 ${holder.maxAttempts}`]);
        assert.equal((await producer.schedules.get('none'))?.lastJobId, holder.id);
      });
    } finally {
      await producer.stop();
    }
  });
});

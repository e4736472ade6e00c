import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type pg from 'pg';
import { DatabaseStatus } from '../src/core/database-status.js';
import {
  type CleanedEvent,
  DEFAULT_RETENTION,
  FINISHED_STATES,
  type Runtime,
  SimulatedClock,
  UnknownOptionError,
  ValidationError,
} from '../src/index.js';
import { Cleaner } from '../src/maintenance/cleaner.js';
import { CLEANABLE_STATES, resolveRetention } from '../src/maintenance/retention.js';
import { Storage } from '../src/storage/storage.js';
import { faultyPool } from './support/faulty-pool.js';
import { countRows, freshSchema, nextEvent, quietLogger, testRuntime, withPool } from './support/helpers.js';

const MINUTE = 60_000;

// started keeps every runtime a test starts, so that each is stopped even when the test fails.
const started: Runtime[] = [];
after(async () => {
  await Promise.all(started.map((runtime) => runtime.stop()));
});

async function startRuntime(options: Parameters<typeof testRuntime>[0]): Promise<Runtime> {
  const runtime = testRuntime(options);
  started.push(runtime);
  await runtime.start();
  return runtime;
}

interface Row {
  state: string;
  finishedAt: Date | null;
  lockedBy?: string;
}

// seed inserts rows straight into the jobs table, each in the state and with the finished_at given
// (a running row held by `lockedBy`), and returns their ids in order.
async function seed(pool: pg.Pool, schema: string, rows: readonly Row[], now: Date): Promise<string[]> {
  const result = await pool.query<{ id: string }>(
    `INSERT INTO "${schema}".jobs (task, state, run_at, created_at, updated_at, finished_at, locked_by, locked_at)
     SELECT 'old', r.state, $4::timestamptz, $4, $4, r.finished_at, r.locked_by, CASE WHEN r.locked_by IS NULL THEN NULL ELSE $4::timestamptz END
       FROM unnest($1::text[], $2::timestamptz[], $3::text[]) WITH ORDINALITY AS r(state, finished_at, locked_by, n)
      ORDER BY r.n
     RETURNING id::text`,
    [rows.map((r) => r.state), rows.map((r) => r.finishedAt), rows.map((r) => r.lockedBy ?? null), now],
  );
  return result.rows.map((row) => row.id);
}

async function remaining(pool: pg.Pool, schema: string): Promise<Set<string>> {
  const result = await pool.query<{ id: string }>(`SELECT id::text FROM "${schema}".jobs`);
  return new Set(result.rows.map((row) => row.id));
}

const ago = (clock: SimulatedClock, ms: number) => new Date(clock.now().getTime() - ms);

describe('retention: the cleaner', () => {
  it('cleans exactly the finished states the machine lets REMOVE delete', () => {
    const finished = FINISHED_STATES.filter((state) => state !== 'removed');
    assert.deepEqual([...CLEANABLE_STATES].sort(), [...finished].sort());
    assert.ok(!CLEANABLE_STATES.includes('running' as never));
  });

  it('deletes the finished jobs of each state past its retention, keeps the younger ones and every live one', async () => {
    const schema = freshSchema('retain');
    const clock = new SimulatedClock();
    const runtime = await startRuntime({ schema, clock });
    await withPool(async (pool) => {
      const old: Row[] = [];
      const young: Row[] = [];
      for (const state of CLEANABLE_STATES) {
        const keep = DEFAULT_RETENTION[state];
        old.push({ state, finishedAt: ago(clock, keep + MINUTE) });
        young.push({ state, finishedAt: ago(clock, keep - MINUTE) });
      }
      // Live rows, even with a finished_at far in the past (which the machine never leaves on a
      // live job), are never the cleaner's: its DELETE is guarded by state.
      const longAgo = ago(clock, 365 * 24 * 60 * MINUTE);
      const live: Row[] = [
        { state: 'not_started', finishedAt: null },
        { state: 'retry', finishedAt: longAgo },
        { state: 'interrupted', finishedAt: longAgo },
        { state: 'running', finishedAt: longAgo, lockedBy: runtime.consumerId },
      ];
      const oldIds = await seed(pool, schema, old, clock.now());
      const keptIds = await seed(pool, schema, [...young, ...live], clock.now());
      const cleaned = nextEvent<CleanedEvent>(runtime.events, 'maintenance:cleaned');
      const counts = await runtime.clean();
      for (const state of CLEANABLE_STATES) assert.equal(counts[state], 1, `one old ${state} job deleted`);
      assert.equal(counts.skipped, false);
      const left = await remaining(pool, schema);
      for (const id of oldIds) assert.ok(!left.has(id), `old job ${id} deleted`);
      for (const id of keptIds) assert.ok(left.has(id), `job ${id} kept`);
      const event = await cleaned;
      assert.deepEqual({ ...event, at: undefined }, { ...counts, at: undefined });
      assert.equal(event.at.getTime(), clock.now().getTime());
    });
  });

  it('keeps a state forever with Infinity, and every state with retention: false', async () => {
    const schema = freshSchema('retain_inf');
    const clock = new SimulatedClock();
    const forever = await startRuntime({ schema, clock, retention: { failed: Number.POSITIVE_INFINITY } });
    const nothing = await startRuntime({ schema, clock, retention: false });
    await withPool(async (pool) => {
      const century = 100 * 365 * 24 * 60 * MINUTE;
      const rows = CLEANABLE_STATES.map((state) => ({ state, finishedAt: ago(clock, century) }));
      await seed(pool, schema, rows, clock.now());
      const none = await nothing.clean();
      for (const state of CLEANABLE_STATES) assert.equal(none[state], 0, `retention: false keeps ${state}`);
      assert.equal(await countRows(schema), rows.length);
      const counts = await forever.clean();
      assert.equal(counts.failed, 0);
      assert.equal(await countRows(schema, 'failed'), 1, 'the failed job is kept');
      assert.equal(await countRows(schema), 1, 'every other old job is deleted');
    });
  });

  it('deletes in batches of batchSize, one statement each', async () => {
    const schema = freshSchema('retain_batch');
    const clock = new SimulatedClock();
    const runtime = await startRuntime({ schema, clock, retention: { batchSize: 3 } });
    await withPool(async (pool) => {
      const rows = Array.from({ length: 10 }, () => ({
        state: 'succeeded',
        finishedAt: ago(clock, DEFAULT_RETENTION.succeeded + MINUTE),
      }));
      await seed(pool, schema, rows, clock.now());
      const counts = await runtime.clean();
      assert.equal(counts.succeeded, 10);
      // succeeded: 3 + 3 + 3 + 1; every other state, the buckets and the consumers: one short batch each.
      assert.equal(counts.batches, 4 + (CLEANABLE_STATES.length - 1) + 2);
      assert.equal(await countRows(schema), 0);
    });
  });

  it('two runtimes cleaning at once delete each row once, asked for or periodic', async () => {
    const schema = freshSchema('retain_two');
    const clock = new SimulatedClock();
    const options = { schema, clock, retention: { batchSize: 50 } };
    const a = await startRuntime(options);
    const b = await startRuntime(options);
    await withPool(async (pool) => {
      const old = () =>
        Array.from({ length: 1_000 }, (_, i) => ({
          state: CLEANABLE_STATES[i % CLEANABLE_STATES.length] as string,
          finishedAt: ago(clock, 31 * 24 * 60 * MINUTE),
        }));
      await seed(pool, schema, old(), clock.now());
      const asked = await Promise.all([a.clean(), b.clean()]);
      const total = (counts: (typeof asked)[number]) => CLEANABLE_STATES.reduce((n, s) => n + counts[s], 0);
      assert.equal(total(asked[0]) + total(asked[1]), 1_000);
      assert.ok(
        asked.every((counts) => !counts.skipped),
        'a pass asked for waits rather than skip',
      );
      assert.equal(await countRows(schema), 0);

      // Periodic passes try the lock and skip when refused; together they still delete each row once.
      await seed(pool, schema, old(), clock.now());
      const config = resolveRetention({ batchSize: 50 });
      const cleaners = [0, 1].map(
        () =>
          new Cleaner(
            new Storage(pool, schema, { from: [], to: 'running' }),
            clock,
            config,
            new Map(),
            status(clock),
          ),
      );
      const periodic = await Promise.all(cleaners.map((cleaner) => cleaner.runOnce(clock.now())));
      const deleted =
        total(periodic[0] as (typeof asked)[number]) + total(periodic[1] as (typeof asked)[number]);
      const left = await countRows(schema);
      assert.equal(deleted + left, 1_000, 'no row counted twice');
      if (!periodic.some((counts) => counts.skipped)) assert.equal(left, 0);
    });
  });

  it('deletes token buckets idle past their refill horizon, and consumer rows long gone that hold no job', async () => {
    const schema = freshSchema('retain_misc');
    const clock = new SimulatedClock();
    // smtp refills from empty in 5 s: a bucket of it idle longer is full, as a missing one would be.
    const runtime = await startRuntime({
      schema,
      clock,
      rateLimits: { smtp: { capacity: 5, refillPerSecond: 1 } },
    });
    await withPool(async (pool) => {
      const day = 24 * 60 * MINUTE;
      await pool.query(
        `INSERT INTO "${schema}".token_buckets (ident, tokens, refilled_at)
         SELECT * FROM unnest($1::text[], $2::float8[], $3::timestamptz[])`,
        [
          ['smtp', 'smtp:42', 'smtp:7', 'elsewhere', 'forgotten'],
          [0, 0, 0, 0, 0],
          [
            ago(clock, 6_000),
            ago(clock, 4_000),
            ago(clock, 60_000),
            ago(clock, 6 * day),
            ago(clock, 8 * day),
          ],
        ],
      );
      await pool.query(
        `INSERT INTO "${schema}".consumers (id, name, host, pid, started_at, last_heartbeat)
         SELECT id, id, 'h', 1, $2, hb FROM unnest($1::text[], $3::timestamptz[]) AS c(id, hb)`,
        [
          ['gone', 'gone-holding', 'quiet'],
          ago(clock, 3 * day),
          [ago(clock, 2 * day), ago(clock, 2 * day), ago(clock, 2 * MINUTE)],
        ],
      );
      await seed(
        pool,
        schema,
        [{ state: 'running', finishedAt: null, lockedBy: 'gone-holding' }],
        clock.now(),
      );
      const counts = await runtime.clean();
      assert.equal(counts.tokenBuckets, 3);
      assert.equal(counts.consumers, 1);
      const buckets = await pool.query<{ ident: string }>(
        `SELECT ident FROM "${schema}".token_buckets ORDER BY ident`,
      );
      // smtp:42 still refills (4 s < 5 s); elsewhere is no bucket of this runtime's, idle under a week.
      assert.deepEqual(
        buckets.rows.map((row) => row.ident),
        ['elsewhere', 'smtp:42'],
      );
      const consumers = await pool.query<{ id: string }>(`SELECT id FROM "${schema}".consumers ORDER BY id`);
      // gone-holding is the sweep's to judge (it takes its job back); quiet is not long gone.
      assert.deepEqual(
        consumers.rows.map((row) => row.id).filter((id) => id !== runtime.consumerId),
        ['gone-holding', 'quiet'],
      );
    });
  });

  it('a worker cleans on its own every intervalMs, from its start, the jobs it finished once they are old enough', async () => {
    const schema = freshSchema('retain_worker');
    const clock = new SimulatedClock();
    const worker = testRuntime({
      schema,
      clock,
      tasks: { work: () => 'done' },
      retention: { succeeded: 9.5 * MINUTE, intervalMs: MINUTE },
    });
    started.push(worker);
    const first = nextEvent<CleanedEvent>(worker.events, 'maintenance:cleaned');
    await worker.start();
    assert.equal((await first).succeeded, 0, 'the first pass runs at start');
    const job = await worker.enqueue('work', {});
    const done = await worker.waitFor(job);
    assert.equal(done.state, 'succeeded');
    // A pass every minute keeps the job while it is younger than its retention (9.5 minutes)...
    for (let minute = 1; minute <= 9; minute++) {
      const pass = nextEvent<CleanedEvent>(worker.events, 'maintenance:cleaned');
      clock.advance(MINUTE);
      const counts = await pass;
      assert.equal(counts.at.getTime() - (done.finishedAt as Date).getTime(), minute * MINUTE);
      assert.equal(counts.succeeded, 0, `kept at minute ${minute}`);
    }
    assert.ok(await worker.getJob(job.id));
    // ...and the first pass after it deletes it.
    const old = nextEvent<CleanedEvent>(worker.events, 'maintenance:cleaned');
    clock.advance(MINUTE);
    assert.equal((await old).succeeded, 1);
    assert.equal(await worker.getJob(job.id), null);
    await worker.stop();
    await assert.rejects(worker.clean(), /clean: expected a runtime that is not stopped/);
  });

  it('stop() ends a pass after its batch under way, and waits for that batch', async () => {
    const schema = freshSchema('retain_stop');
    const clock = new SimulatedClock();
    const pool = faultyPool();
    try {
      const runtime = testRuntime({ schema, clock, pool, retention: { batchSize: 3 } });
      await runtime.start();
      const rows = Array.from({ length: 10 }, () => ({
        state: 'succeeded',
        finishedAt: ago(clock, DEFAULT_RETENTION.succeeded + MINUTE),
      }));
      await seed(pool, schema, rows, clock.now());
      const batch = pool.holdNext(/DELETE FROM \S+\.jobs AS j/);
      const cleaning = runtime.clean();
      await batch.held;
      let stopped = false;
      const stopping = runtime.stop().then(() => {
        stopped = true;
      });
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(stopped, false, 'stop() waits for the batch under way');
      batch.open();
      await stopping;
      const counts = await cleaning;
      assert.equal(counts.succeeded, 3, 'the pass ended after the batch under way');
      assert.equal(await countRows(schema), 7);
    } finally {
      await pool.end();
    }
  });

  it('refuses a bad retention option before anything is written', () => {
    const bad: [unknown, RegExp | typeof ValidationError][] = [
      [{ succeded: MINUTE }, /did you mean succeeded/],
      [{ failed: -1 }, /retention\.failed/],
      [{ failed: 1.5 }, /retention\.failed/],
      [{ cancelled: '7d' }, /retention\.cancelled/],
      [{ expired: Number.NaN }, /retention\.expired/],
      [{ intervalMs: 0 }, /retention\.intervalMs/],
      [{ batchSize: 0 }, /retention\.batchSize/],
      [true, /retention: expected false or an object/],
      [[], /retention: expected false or an object/],
    ];
    for (const [retention, message] of bad) {
      assert.throws(
        () => testRuntime({ schema: freshSchema('retain_bad'), retention: retention as never }),
        (error: unknown) => error instanceof ValidationError && (message as RegExp).test(String(error)),
        `retention ${JSON.stringify(retention)} refused`,
      );
    }
    assert.throws(
      () => testRuntime({ schema: freshSchema('retain_bad'), retention: { succeded: 1 } as never }),
      UnknownOptionError,
    );
    const merged = resolveRetention({ succeeded: MINUTE });
    assert.equal(merged.keepMs.succeeded, MINUTE);
    assert.equal(merged.keepMs.failed, DEFAULT_RETENTION.failed, 'a partial object keeps the other defaults');
    assert.equal(resolveRetention(false).periodic, false);
    const allForever = Object.fromEntries(CLEANABLE_STATES.map((s) => [s, Number.POSITIVE_INFINITY]));
    assert.equal(resolveRetention(allForever).periodic, false, 'every state kept forever: no periodic pass');
    assert.equal(resolveRetention({}).periodic, true);
  });
});

// status is a DatabaseStatus on `clock`, for a Cleaner built outside a runtime.
function status(clock: SimulatedClock): DatabaseStatus {
  return new DatabaseStatus(clock, quietLogger);
}

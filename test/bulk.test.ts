import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  type BulkFilter,
  type Job,
  type JobFilterOptions,
  type Runtime,
  SimulatedClock,
  UnknownOptionError,
  ValidationError,
} from '../src/index.js';
import { databaseUrl, freshSchema, gate, testRuntime, withPool } from './support/helpers.js';

// statesOf counts a schema's jobs by task and state, as 'task/state' → count.
async function statesOf(schema: string): Promise<Record<string, number>> {
  return withPool(async (pool) => {
    const result = await pool.query<{ task: string; state: string; n: string }>(
      `SELECT task, state, count(*) AS n FROM "${schema}".jobs GROUP BY task, state`,
    );
    return Object.fromEntries(result.rows.map((row) => [`${row.task}/${row.state}`, Number(row.n)]));
  });
}

// StatementLog records the statements a runtime sends through its pool, text and parameters.
interface Statement {
  text: string;
  values: unknown[];
}

// loggedPool is a pool whose query() also records each statement, so a test can count the bulk
// actions' statements and EXPLAIN the very text they ran.
// `before`, when set, runs before each statement is sent (and may run statements of its own).
function loggedPool(): {
  pool: pg.Pool;
  statements: Statement[];
  hooks: { before?: (statement: Statement) => Promise<void> };
} {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
  const statements: Statement[] = [];
  const hooks: { before?: (statement: Statement) => Promise<void> } = {};
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    if (typeof args[0] !== 'string') return query(...args);
    const statement = { text: args[0], values: (args[1] as unknown[]) ?? [] };
    statements.push(statement);
    const before = hooks.before;
    return before ? before(statement).then(() => query(...args)) : query(...args);
  };
  return { pool, statements, hooks };
}

describe('bulk actions on tens of thousands of jobs', () => {
  const schema = freshSchema('bulk');
  const { pool, statements, hooks } = loggedPool();
  let producer: Runtime;

  before(async () => {
    producer = testRuntime({ schema, pool });
    await producer.start();
    // 30,000 jobs in one statement each group: chargeCard failed (every 100th tagged rare, the
    // 7th of each 1,000 keyed), sendEmail failed, chargeCard succeeded and not_started, interleaved
    // by id so every batch holds every kind.
    await pool.query(
      `INSERT INTO "${schema}".jobs (task, state, attempts, max_attempts, run_at, created_at, updated_at,
                                     finished_at, tags, key, last_error)
       SELECT CASE WHEN g % 6 = 1 THEN 'sendEmail' ELSE 'chargeCard' END,
              CASE WHEN g % 6 IN (0, 1, 2, 3) THEN 'failed' WHEN g % 6 = 4 THEN 'succeeded' ELSE 'not_started' END,
              CASE WHEN g % 6 = 5 THEN 0 ELSE 3 END, 3, now(), now(), now(),
              CASE WHEN g % 6 = 5 THEN NULL ELSE now() END,
              CASE WHEN g % 100 = 0 THEN ARRAY['rare'] ELSE '{}' END,
              CASE WHEN g % 1000 = 7 THEN 'batch:' || g END,
              CASE WHEN g % 6 IN (0, 1, 2, 3) THEN 'Error: declined' END
         FROM generate_series(1, 30000) AS g`,
    );
    await pool.query(`ANALYZE "${schema}".jobs`);
  });
  after(async () => {
    await producer.stop();
    await pool.end();
  });

  it('retryMany retries exactly the failed chargeCard jobs, in batches, refusing the succeeded ones', async () => {
    const before = await statesOf(schema);
    assert.equal(before['chargeCard/failed'], 15_000);
    assert.equal(before['chargeCard/succeeded'], 5_000);
    statements.length = 0;
    let transitions = 0;
    const counted = (event: { from: string | null; event: string; to: string }) => {
      assert.deepEqual([event.from, event.event, event.to], ['failed', 'RESTART', 'not_started']);
      transitions++;
    };
    producer.events.on('job:transition', counted);
    const result = await producer.retryMany(
      { state: ['failed', 'succeeded'], task: 'chargeCard' },
      { batchSize: 4_000 },
    );
    producer.events.off('job:transition', counted);
    assert.deepEqual(result, {
      changed: 15_000,
      refused: 5_000,
      signalled: 0,
      byState: {
        failed: { changed: 15_000, refused: 0, signalled: 0 },
        succeeded: { changed: 0, refused: 5_000, signalled: 0 },
      },
    });
    assert.equal(transitions, 15_000, 'one job:transition per job changed');
    const after = await statesOf(schema);
    assert.equal(after['chargeCard/failed'], undefined);
    assert.equal(after['chargeCard/not_started'], 5_000 + 15_000);
    assert.equal(after['chargeCard/succeeded'], 5_000);
    assert.equal(after['sendEmail/failed'], before['sendEmail/failed'], 'other tasks untouched');
    // 20,000 matching jobs in pages of 4,000: five scans (the fifth short... or empty), each write
    // no bigger than a page.
    const scans = statements.filter((s) => /^SELECT id, state, attempts/.test(s.text));
    const writes = statements.filter((s) => /^UPDATE/.test(s.text.trim()));
    assert.equal(scans.length, 6, 'five full pages, then an empty one');
    assert.equal(writes.length, 5);
    for (const write of writes) assert.ok((write.values[0] as string[]).length <= 4_000);
    const retried = await producer.listJobs({ task: 'chargeCard', state: 'not_started', tags: ['rare'] });
    assert.ok(retried.jobs.length > 0);
    for (const job of retried.jobs) {
      assert.deepEqual([job.attempts, job.finishedAt, job.expiresAt], [0, null, null]);
    }
  });

  it('removeMany never removes a running job; cancelMany leaves finished jobs alone', async () => {
    // 300 of the retried jobs run, held by a consumer that is not this runtime.
    await pool.query(
      `UPDATE "${schema}".jobs SET state = 'running', attempts = 1, locked_by = 'elsewhere', locked_at = now()
        WHERE id IN (SELECT id FROM "${schema}".jobs WHERE task = 'chargeCard' AND state = 'not_started'
                     ORDER BY id LIMIT 300)`,
    );
    const removed = await producer.removeMany({ task: 'chargeCard', state: ['running', 'succeeded'] });
    assert.equal(removed.changed, 5_000);
    assert.deepEqual(removed.byState.running, { changed: 0, refused: 300, signalled: 0 });
    const states = await statesOf(schema);
    assert.equal(states['chargeCard/running'], 300);
    assert.equal(states['chargeCard/succeeded'], undefined);

    const cancelled = await producer.cancelMany({ task: 'sendEmail' }, 'not needed');
    assert.deepEqual(cancelled, {
      changed: 0,
      refused: 5_000,
      signalled: 0,
      byState: { failed: { changed: 0, refused: 5_000, signalled: 0 } },
    });
  });

  it('filters by tags (all of them) and key prefix through their indexes', async () => {
    const rare = await producer.listJobs({ tags: ['rare'], limit: 1000 });
    // 300 were tagged; the 100 of them that had succeeded were removed above.
    assert.equal(rare.jobs.length, 200);
    assert.ok(rare.jobs.every((job) => job.tags.includes('rare')));
    assert.equal((await producer.listJobs({ tags: ['rare', 'other'] })).jobs.length, 0, 'all of, not any of');
    const keyed = await producer.listJobs({ keyPrefix: 'batch:1', limit: 1000 });
    assert.deepEqual(
      keyed.jobs.map((job) => job.key),
      [19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1].map((n) => `batch:${n}007`),
    );
    // The bulk scans run the same conditions: PostgreSQL must answer them from the two indexes.
    statements.length = 0;
    const none = await producer.retryMany({ tags: ['rare'], keyPrefix: 'batch:' });
    assert.deepEqual([none.changed, none.refused], [0, 0], 'no job is both tagged rare and keyed');
    await producer.cancelMany({ tags: ['rare'], state: 'failed' });
    await producer.listJobs({ keyPrefix: 'batch:2' });
    const [tagsScan, cancelScan, listKeys] = statements.filter((s) => /^\s*SELECT .* FROM/.test(s.text));
    for (const [statement, index] of [
      [tagsScan, /jobs_(tags|key_prefix)_idx/],
      [cancelScan, /jobs_tags_idx/],
      [listKeys, /jobs_key_prefix_idx/],
    ] as const) {
      const plan = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN ${statement?.text}`,
        statement?.values,
      );
      const text = plan.rows.map((row) => row['QUERY PLAN']).join('\n');
      assert.match(text, index, `${statement?.text}\n${text}`);
    }
  });

  it('leaves a job that moved on between the read and the write alone, counted as refused', async () => {
    const inserted = await pool.query<{ id: string }>(
      `INSERT INTO "${schema}".jobs (task, state, attempts, run_at, created_at, updated_at, finished_at)
       SELECT 'raced', 'failed', 1, now(), now(), now(), now() FROM generate_series(1, 20) RETURNING id`,
    );
    const moved = inserted.rows[7]?.id as string;
    // Between the page read and its write, a worker-like writer finishes one of the planned jobs.
    hooks.before = async (statement) => {
      if (!/^\s*UPDATE/.test(statement.text)) return;
      hooks.before = undefined;
      await pool.query(`UPDATE "${schema}".jobs SET state = 'succeeded' WHERE id = $1`, [moved]);
    };
    const result = await producer.retryMany({ task: 'raced' });
    hooks.before = undefined;
    assert.deepEqual(result.byState, { failed: { changed: 19, refused: 1, signalled: 0 } });
    const job = await producer.getJob(moved);
    assert.deepEqual([job?.state, job?.attempts], ['succeeded', 1], 'the guarded write left it as it was');
    assert.equal((await statesOf(schema))['raced/not_started'], 19);
  });

  it('refuses bad or empty filters with a ValidationError and changes nothing', async () => {
    const before = await statesOf(schema);
    const bad: [string, () => Promise<unknown>][] = [
      ['filter', () => producer.removeMany({})],
      ['filter', () => producer.cancelMany({ all: false })],
      ['filter', () => producer.retryMany(null as unknown as BulkFilter)],
      ['removeMany.keyPrefx', () => producer.removeMany({ keyPrefx: 'a' } as BulkFilter)],
      ['retryMany.batch', () => producer.retryMany({ task: 'x' }, { batch: 5 } as object)],
      ['all', () => producer.removeMany({ all: 'yes' } as unknown as BulkFilter)],
      ['tags', () => producer.removeMany({ tags: [] })],
      ['tags[1]', () => producer.removeMany({ tags: ['ok', 'not ok'] })],
      ['tags', () => producer.removeMany({ tags: 'rare' } as unknown as BulkFilter)],
      ['keyPrefix', () => producer.removeMany({ keyPrefix: '' })],
      ['keyPrefix', () => producer.removeMany({ keyPrefix: 'a\u0000' })],
      ['state', () => producer.removeMany({ state: 'gone' as 'failed' })],
      ['createdBefore', () => producer.removeMany({ createdBefore: new Date(Number.NaN) })],
      ['finishedAfter', () => producer.removeMany({ finishedAfter: '2026-01-01' as unknown as Date })],
      ['batchSize', () => producer.retryMany({ task: 'chargeCard' }, { batchSize: 0 })],
      ['batchSize', () => producer.retryMany({ task: 'chargeCard' }, { batchSize: 10_001 })],
      ['runAt', () => producer.rescheduleMany({ task: 'chargeCard' }, new Date(9e15))],
      ['reason', () => producer.cancelMany({ task: 'chargeCard' }, 5 as unknown as string)],
      ['listJobs.tag', () => producer.listJobs({ tag: ['a'] } as JobFilterOptions)],
      ['finishedBefore', () => producer.listJobs({ finishedBefore: new Date(-9e15) })],
    ];
    for (const [field, call] of bad) {
      await assert.rejects(call, (error: unknown) => {
        assert.ok(error instanceof ValidationError, String(error));
        assert.equal(error.field, field);
        return true;
      });
    }
    await assert.rejects(producer.removeMany({ keyPrefx: 'a' } as BulkFilter), UnknownOptionError);
    assert.deepEqual(await statesOf(schema), before);
  });
});

describe('each filter criterion selects exactly its jobs', () => {
  const schema = freshSchema('bulkf');
  const clock = new SimulatedClock(new Date('2026-06-01T00:00:00Z'));
  let producer: Runtime;
  const jobs: Record<string, Job> = {};
  let t1: Date;
  let t2: Date;

  before(async () => {
    producer = testRuntime({ schema, clock });
    await producer.start();
    const enqueue = async (name: string, options: { key?: string; tags?: string[] } = {}) => {
      jobs[name] = await producer.enqueue('f', { name }, options);
    };
    await enqueue('pct1', { key: 'a%b:1', tags: ['x', 'y'] });
    await enqueue('pct2', { key: 'a%b:2', tags: ['x'] });
    clock.advance(60_000);
    t1 = clock.now();
    await enqueue('other', { key: 'axb:3', tags: ['y'] });
    await enqueue('under', { key: 'a_b:4' });
    clock.advance(60_000);
    t2 = clock.now();
    await enqueue('plain');
    // Finished at different times: pct1 at t2, other a minute later; the rest stay waiting.
    await producer.cancel(jobs.pct1?.id as string, 'early');
    clock.advance(60_000);
    await producer.cancel(jobs.other?.id as string, 'late');
  });
  after(() => producer.stop());

  const names = (list: readonly Job[]) =>
    list
      .map((job) => (job.payload as { name: string }).name)
      .sort()
      .join(',');

  it('in listJobs', async () => {
    const cases: [JobFilterOptions, string][] = [
      [{ keyPrefix: 'a%b' }, 'pct1,pct2'],
      [{ keyPrefix: 'a%' }, 'pct1,pct2'],
      [{ keyPrefix: 'a_' }, 'under'],
      [{ keyPrefix: 'a' }, 'other,pct1,pct2,under'],
      [{ tags: ['x'] }, 'pct1,pct2'],
      [{ tags: ['x', 'y'] }, 'pct1'],
      [{ tags: ['y'] }, 'other,pct1'],
      [{ createdBefore: t1 }, 'pct1,pct2'],
      [{ createdAfter: t1 }, 'other,plain,under'],
      [{ createdAfter: t1, createdBefore: t2 }, 'other,under'],
      [{ finishedBefore: new Date(t2.getTime() + 1) }, 'pct1'],
      [{ finishedAfter: new Date(t2.getTime() + 1) }, 'other'],
      [{ finishedAfter: t2 }, 'other,pct1'],
      [{ state: 'cancelled', keyPrefix: 'a%' }, 'pct1'],
      [{ key: 'a_b:4', keyPrefix: 'a_' }, 'under'],
    ];
    for (const [filter, expected] of cases) {
      assert.equal(names((await producer.listJobs(filter)).jobs), expected, JSON.stringify(filter));
    }
  });

  it('in the bulk actions', async () => {
    const parked = await producer.rescheduleMany({ keyPrefix: 'a%' }, null);
    // pct1 is cancelled: RESCHEDULE applies to waiting jobs only.
    assert.deepEqual([parked.changed, parked.refused], [1, 1]);
    assert.equal((await producer.getJob(jobs.pct2?.id as string))?.runAt, null);
    const retried = await producer.retryMany({ finishedAfter: t2, tags: ['y'] });
    assert.deepEqual([retried.changed, retried.refused], [2, 0]);
    const cancelled = await producer.cancelMany({ createdAfter: t1, createdBefore: t2 }, 'by filter');
    assert.deepEqual([cancelled.changed, cancelled.refused], [2, 0]);
    assert.equal(names((await producer.listJobs({ state: 'cancelled' })).jobs), 'other,under');
    const removed = await producer.removeMany({ all: true });
    assert.deepEqual([removed.changed, removed.refused], [5, 0]);
    assert.equal((await producer.listJobs()).jobs.length, 0);
  });
});

describe('cancelMany of running jobs', () => {
  it('signals each running handler, wherever it runs, and the jobs end cancelled', async () => {
    const schema = freshSchema('bulkc');
    const producer = testRuntime({ schema });
    await producer.start();
    const started: string[] = [];
    const allStarted = gate();
    const worker = testRuntime({
      schema,
      maxRunningJobs: 3,
      tasks: {
        hold: (_payload, ctx) =>
          new Promise<void>((_resolve, reject) => {
            started.push(ctx.job.id);
            if (started.length === 3) allStarted.open();
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          }),
      },
    });
    try {
      await worker.start();
      const held = await producer.enqueueMany([1, 2, 3].map((i) => ({ task: 'hold', payload: { i } })));
      const waiting = await producer.enqueue('hold', {}, { runAt: new Date(Date.now() + 3_600_000) });
      await allStarted.opened;
      const ended = held.map((job) => producer.waitFor(job, { timeoutMs: 15_000 }));
      const result = await producer.cancelMany({ task: 'hold' }, 'stop them all');
      assert.equal(result.signalled, 3);
      assert.equal(result.changed, 1, 'the waiting job is cancelled by the write');
      assert.deepEqual(result.byState.running, { changed: 0, refused: 0, signalled: 3 });
      for (const job of await Promise.all(ended)) assert.equal(job.state, 'cancelled');
      assert.equal((await producer.getJob(waiting.id))?.lastError, 'stop them all');
    } finally {
      await worker.stop();
      await producer.stop();
    }
  });
});

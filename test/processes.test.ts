import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { SweptEvent } from '../src/index.js';
import { databaseUrl, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

const WORKER = new URL('./fixtures/worker.js', import.meta.url).pathname;
const FAST_SWEEP = { heartbeatIntervalMs: 1_000, consumerTimeoutMs: 3_000 };

interface Setup {
  schema: string;
  db: pg.Pool;
}

// setup migrates a fresh schema, adds the side-effect table the workers write, and enqueues `count` jobs.
async function setup(prefix: string, count: number, url = databaseUrl()): Promise<Setup> {
  const schema = freshSchema(prefix);
  const producer = testRuntime({ schema, connectionString: url });
  await producer.start();
  for (let i = 0; i < count; i += 1_000) {
    await producer.enqueueMany(Array.from({ length: Math.min(1_000, count - i) }, () => ({ task: 'work' })));
  }
  await producer.stop();
  const db = new pg.Pool({ connectionString: url, max: 2 });
  db.on('error', () => undefined);
  await db.query(`CREATE TABLE "${schema}".effects (job_id bigint NOT NULL, worker text NOT NULL)`);
  return { schema, db };
}

function startWorker(schema: string, name: string, extra: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [WORKER], {
    env: { ...process.env, DATABASE_URL: databaseUrl(), SCHEMA: schema, NAME: name, ...extra },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return child;
}

// until waits for a condition another process brings about, by reading the database; the deadline
// only turns a hang into a failure.
async function until(
  what: string,
  check: () => Promise<boolean>,
  explain: () => Promise<unknown> = async () => '',
  deadlineMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what} ${JSON.stringify(await explain())}`);
    await delay(20);
  }
}

const statesOf = async (db: pg.Pool, schema: string) =>
  (
    await db.query(
      `SELECT state, locked_by, count(*)::int AS n FROM "${schema}".jobs GROUP BY state, locked_by ORDER BY 1, 2`,
    )
  ).rows;

const count = async (db: pg.Pool, sql: string, values: unknown[] = []) =>
  Number((await db.query<{ n: string }>(sql, values)).rows[0]?.n);

// checkEveryJobDone asserts that every job succeeded, and that only jobs running when a worker died
// ran more than once (at-least-once delivery); it returns how many ran twice.
async function checkEveryJobDone({ schema, db }: Setup, total: number, heldAtDeath: Set<string>) {
  assert.equal(
    await count(db, `SELECT count(*) AS n FROM "${schema}".jobs WHERE state = 'succeeded'`),
    total,
  );
  const runs = await db.query<{ job_id: string; n: string }>(
    `SELECT job_id, count(*) AS n FROM "${schema}".effects GROUP BY job_id`,
  );
  assert.equal(runs.rowCount, total, 'every job ran');
  const twice = runs.rows.filter((row) => Number(row.n) > 1).map((row) => row.job_id);
  for (const id of twice)
    assert.ok(heldAtDeath.has(id), `job ${id} ran twice but was not held by the dead worker`);
  return twice.length;
}

async function heldBy(db: pg.Pool, schema: string, name: string): Promise<Set<string>> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM "${schema}".jobs WHERE state = 'running' AND locked_by = $1`,
    [name],
  );
  return new Set(rows.rows.map((row) => row.id));
}

describe('worker processes that die or stop', () => {
  it('kill -9 of a worker: another runtime finishes its jobs within seconds', async (t) => {
    const total = 300;
    const setupDone = await setup('kill', total);
    const { schema, db } = setupDone;
    const victim = startWorker(schema, 'victim', { WORK_MS: '30', MAX_RUNNING: '10' });
    await until(
      'the victim to be busy',
      async () => (await count(db, `SELECT count(*) AS n FROM "${schema}".effects`)) >= 30,
    );
    victim.kill('SIGKILL');
    await once(victim, 'exit');
    const killedAt = Date.now();
    const held = await heldBy(db, schema, 'victim');
    assert.ok(held.size > 0, 'the victim died holding jobs');

    const rescuer = testRuntime({
      schema,
      name: 'rescuer',
      ...FAST_SWEEP,
      tasks: {
        work: async (_p, ctx) => {
          await db.query(`INSERT INTO "${schema}".effects (job_id, worker) VALUES ($1, 'rescuer')`, [
            ctx.job.id,
          ]);
        },
      },
    });
    const swept = nextEvent<SweptEvent>(rescuer.events, 'runtime:swept');
    await rescuer.start();
    const sweep = await swept;
    const recoveredMs = Date.now() - killedAt;
    assert.deepEqual(sweep.consumers, ['victim']);
    // A claim the victim sent just before dying may commit just after: the sweep sees it, a read
    // right after the kill may not.
    const taken = new Set(sweep.jobs.map((job) => job.id));
    for (const id of held) assert.ok(taken.has(id), `job ${id} held by the victim was taken back`);
    for (const id of taken) held.add(id);
    await until(
      'every job to succeed',
      async () =>
        (await count(db, `SELECT count(*) AS n FROM "${schema}".jobs WHERE state <> 'succeeded'`)) === 0,
    );
    const heldDone = Date.now() - killedAt;
    await rescuer.stop();
    const twice = await checkEveryJobDone(setupDone, total, held);
    t.diagnostic(
      `kill -9 with ${held.size} jobs held: swept after ${recoveredMs} ms, all done after ${heldDone} ms; ${twice} jobs ran twice (heartbeat 1 s, consumer timeout 3 s)`,
    );
    assert.ok(recoveredMs < 10_000, `recovered after ${recoveredMs} ms`);
    await db.end();
  });

  it('three workers drain 10,000 jobs while one is killed and one is stopped: nothing lost or stuck', async (t) => {
    const total = 10_000;
    const setupDone = await setup('three', total);
    const { schema, db } = setupDone;
    const workers = ['w1', 'w2', 'w3'].map((name) =>
      startWorker(schema, name, { WORK_MS: '0', MAX_RUNNING: '10' }),
    );
    await until(
      '2,000 jobs to run',
      async () => (await count(db, `SELECT count(*) AS n FROM "${schema}".effects`)) >= 2_000,
    );
    const [killed, stopped] = workers as [ChildProcess, ChildProcess, ChildProcess];
    killed.kill('SIGKILL');
    stopped.kill('SIGTERM');
    await once(killed, 'exit');
    const held = await heldBy(db, schema, 'w1');
    const [code] = (await once(stopped, 'exit')) as [number | null];
    assert.equal(code, 0, 'the stopped worker exited cleanly');
    assert.equal(
      (await heldBy(db, schema, 'w2')).size,
      0,
      'the stopped worker gave back or finished all it held',
    );
    await until(
      'every job to succeed',
      async () =>
        (await count(db, `SELECT count(*) AS n FROM "${schema}".jobs WHERE state <> 'succeeded'`)) === 0,
      () => statesOf(db, schema),
    );
    const survivor = workers[2] as ChildProcess;
    survivor.kill('SIGTERM');
    await once(survivor, 'exit');
    const twice = await checkEveryJobDone(setupDone, total, held);
    t.diagnostic(`w1 killed holding ${held.size} jobs; ${twice} of them ran twice`);
    await db.end();
  });
});

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { startEmbedded } from '../scripts/embedded-postgres.js';
import { defineTask, type RuntimeErrorEvent } from '../src/index.js';
import { freshSchema, testRuntime } from './support/helpers.js';

// readUntil retries a read through an outage until `check` holds; the deadline only turns a hang
// into a failure.
async function readUntil(what: string, check: () => Promise<boolean>, deadlineMs = 90_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

describe('database outages', () => {
  it('survives its PostgreSQL going away for 1.5 s while 5,000 jobs drain: every job succeeds, none is lost', async (t) => {
    // A server of this test's own: restarting the machine's shared one would disturb everything else.
    const server = await startEmbedded(resolve(tmpdir(), `jobchart-outage-${process.pid}-${Date.now()}`));
    const schema = freshSchema('outage');
    const db = new pg.Pool({ connectionString: server.url, max: 4 });
    db.on('error', () => undefined);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const total = 5_000;
    const worker = testRuntime({
      schema,
      connectionString: server.url,
      pollIntervalMs: 250,
      tasks: {
        work: defineTask({
          handler: async (_payload, ctx) => {
            await db.query(`INSERT INTO "${schema}".effects (job_id) VALUES ($1)`, [ctx.job.id]);
          },
          backoff: { type: 'fixed', delayMs: 100 },
        }),
      },
    });
    const errors: RuntimeErrorEvent[] = [];
    worker.events.on('runtime:error', (e) => errors.push(e));
    let crashed = false;
    worker.events.on('runtime:crashed', () => {
      crashed = true;
    });
    try {
      await worker.start();
      await db.query(`CREATE TABLE "${schema}".effects (job_id bigint NOT NULL)`);
      for (let i = 0; i < total; i += 1_000) {
        await worker.enqueueMany(Array.from({ length: 1_000 }, () => ({ task: 'work' })));
      }
      await readUntil('1,000 jobs to run', async () => {
        const result = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".effects`);
        return Number(result.rows[0]?.n) >= 1_000;
      });
      const restartedAt = Date.now();
      await server.restart(1_500);
      const downMs = Date.now() - restartedAt;
      await readUntil('every job to succeed', async () => {
        const result = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM "${schema}".jobs WHERE state <> 'succeeded'`,
        );
        return Number(result.rows[0]?.n) === 0;
      });
      const recoveredMs = Date.now() - restartedAt;
      const runs = await db.query<{ job_id: string; n: string; attempts: number }>(
        `SELECT e.job_id, count(*) AS n, max(j.attempts) AS attempts
           FROM "${schema}".effects AS e JOIN "${schema}".jobs AS j ON j.id = e.job_id GROUP BY e.job_id`,
      );
      assert.equal(runs.rowCount, total, 'every job left its side effect');
      const twice = runs.rows.filter((row) => Number(row.n) > 1);
      // A job runs twice only if its attempt failed in the outage (an insert may commit and still
      // report a broken connection): at-least-once, and then its attempts show it.
      for (const row of twice) assert.ok(row.attempts > 1, `job ${row.job_id} ran twice in one attempt`);
      assert.equal(crashed, false);
      assert.deepEqual(unhandled, []);
      assert.ok(errors.length > 0, 'the outage was noticed and reported');
      t.diagnostic(
        `restart took ${downMs} ms; all ${total} jobs succeeded ${recoveredMs} ms after it began; ${twice.length} ran twice; ${errors.length} runtime:error events (${[...new Set(errors.map((e) => e.during))].join(', ')})`,
      );
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await worker.stop();
      await db.end();
      await server.stop();
      await rm(server.dataDir, { recursive: true, force: true });
    }
  });

  it('keeps a CLI worker alive while its PostgreSQL is stopped, resumes when it returns, and exits 0 on SIGTERM', async () => {
    const server = await startEmbedded(resolve(tmpdir(), `jobchart-cli-outage-${process.pid}-${Date.now()}`));
    const schema = freshSchema('clioutage');
    const cli = new URL('../src/cli.js', import.meta.url).pathname;
    const tasks = new URL('./fixtures/tasks.js', import.meta.url).pathname;
    const worker = spawn(
      process.execPath,
      [cli, 'worker', tasks, '--schema', schema, '--poll-interval-ms', '100'],
      {
        env: { ...process.env, DATABASE_URL: server.url, JOBCHART_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    worker.stderr.on('data', (chunk) => {
      log += chunk;
    });
    const exited = once(worker, 'exit') as Promise<[number | null]>;
    try {
      await logged(worker, () => log, /runtime started/);
      await server.stop();
      // Claims fail every 100 ms while the server is gone: three of them prove the worker outlived
      // its sockets (without a handle of its own, Node exited about 0.3 s after they closed).
      await logged(worker, () => log, /(claim failed; will retry[\s\S]*){3}/);
      assert.match(log, /database unreachable/);
      await server.start();
      await logged(worker, () => log, /database reachable again/);
    } finally {
      worker.kill('SIGTERM');
      const [code] = await exited;
      await server.stop();
      await rm(server.dataDir, { recursive: true, force: true });
      assert.equal(code, 0, `a worker stopped by SIGTERM exits 0:\n${log.slice(-2000)}`);
    }
  });
});

// logged resolves once the worker's log so far matches `pattern`, and rejects if the worker exits first.
function logged(worker: ChildProcess, log: () => string, pattern: RegExp): Promise<void> {
  return new Promise((done, fail) => {
    const check = () => {
      if (!pattern.test(log())) return;
      worker.stderr?.off('data', check);
      worker.off('exit', exitedFirst);
      done();
    };
    const exitedFirst = (code: number | null) =>
      fail(new Error(`the worker exited (${code}) before logging ${pattern}:\n${log().slice(-2000)}`));
    worker.stderr?.on('data', check);
    worker.once('exit', exitedFirst);
    check();
  });
}

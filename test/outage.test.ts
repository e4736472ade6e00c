import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { startEmbedded } from '../examples/embedded-postgres.js';
import { defineTask, type RuntimeErrorEvent } from '../src/index.js';
import { freshSchema, testRuntime } from './helpers.js';

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
});

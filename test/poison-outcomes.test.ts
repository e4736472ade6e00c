import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseStatus } from '../src/core/database-status.js';
import { sourcesOf, targetOf } from '../src/core/transitions.js';
import { CompletionWriter } from '../src/dispatch/completions.js';
import { OutcomeRefusedError, SimulatedClock, type TransitionEvent } from '../src/index.js';
import type { Outcome } from '../src/storage/outcome-statements.js';
import { Storage } from '../src/storage/storage.js';
import { faultyPool } from './support/faulty-pool.js';
import { freshSchema, gate, nextEvent, quietLogger, testRuntime, withPool } from './support/helpers.js';

function succeed(jobId: string, resultJson: string): Outcome {
  return {
    jobId,
    attempt: 1,
    event: 'SUCCEED',
    from: 'running',
    to: 'succeeded',
    attemptDelta: 0,
    runAt: null,
    error: null,
    resultJson,
    finished: true,
    remove: false,
    progressJson: null,
  };
}

describe('outcomes the database refuses', () => {
  it('are found by splitting the batch and written as failures; the rest of the batch is written as it was', async () => {
    const schema = freshSchema('poison');
    const producer = testRuntime({ schema });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: 21 }, () => ({ task: 'work' })));
    await producer.stop();
    await withPool(async (pool) => {
      const storage = new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
      const clock = new SimulatedClock();
      const claimed = await storage.jobsClaim({
        consumerId: 'me',
        now: clock.now(),
        limit: 21,
        tasks: ['work'],
        skipQueues: [],
      });
      const errors: unknown[] = [];
      const sizesSeen: number[] = [];
      const writer = new CompletionWriter(
        storage,
        'me',
        () => clock.now(),
        quietLogger,
        new DatabaseStatus(clock, quietLogger),
        {
          onError: (error) => {
            errors.push(error);
            sizesSeen.push(writer.size);
          },
        },
      );
      const ids = claimed.map(({ job }) => job.id);
      const poisoned = ids[7] as string;
      // JSON text that slipped past validation: PostgreSQL refuses an escaped lone surrogate (22P02).
      const settled = await Promise.all(
        ids.map(
          (id) =>
            new Promise<{ id: string; written: boolean; outcome: Outcome }>((resolve) =>
              writer.submit(
                succeed(id, id === poisoned ? '{"s":"\\ud800"}' : '{"ok":true}'),
                (written, _at, outcome) => resolve({ id, written, outcome }),
              ),
            ),
        ),
      );
      assert.ok(
        settled.every((s) => s.written),
        'every outcome was written, one as a failure',
      );
      const failed = settled.filter((s) => s.outcome.to !== 'succeeded');
      assert.deepEqual(
        failed.map((s) => [s.id, s.outcome.to]),
        [[poisoned, 'failed']],
      );
      assert.ok(
        errors.some(
          (e) => e instanceof OutcomeRefusedError && e.jobId === poisoned && e.sqlState === '22P02',
        ),
      );
      // Seen while the refused outcome is singled out: those not yet written still count as pending.
      assert.ok((sizesSeen[0] ?? 0) > 0, 'pendingWrites counts the batch being written');
      assert.equal(writer.size, 0);
      const rows = await pool.query<{ id: string; state: string; last_error: string | null }>(
        `SELECT id, state, last_error FROM "${schema}".jobs ORDER BY id`,
      );
      for (const row of rows.rows) {
        if (row.id === poisoned) {
          assert.equal(row.state, 'failed');
          assert.match(
            row.last_error ?? '',
            /expected the database to store its SUCCEED outcome, it refused it \(22P02/,
          );
        } else assert.equal(row.state, 'succeeded');
      }
    });
  });

  it('stop() returns within shutdownTimeoutMs while the database refuses to answer, leaving the job held for the sweep', async () => {
    const schema = freshSchema('stopbound');
    const clock = new SimulatedClock();
    const pool = faultyPool();
    const handlerMayEnd = gate();
    const runtime = testRuntime({
      schema,
      clock,
      pool,
      listen: false,
      shutdownTimeoutMs: 5_000,
      tasks: { work: () => handlerMayEnd.opened.then(() => 'done') },
    });
    try {
      await runtime.start();
      const running = nextEvent<TransitionEvent>(runtime.events, 'job:running');
      const job = await runtime.enqueue('work', {});
      clock.advance(1_000);
      await running;
      pool.down = true;
      const writeFailed = nextEvent(
        runtime.events,
        'runtime:error',
        (e: { during: string }) => e.during === 'complete',
      );
      handlerMayEnd.open();
      await writeFailed;
      assert.equal(runtime.health().pendingWrites, 1, 'the outcome being retried is counted');
      let stopped = false;
      const stopping = runtime.stop().then(() => {
        stopped = true;
      });
      // The handler has ended, so the grace period ends at once; then the database gets 5 s of clock.
      for (let turn = 0; turn < 50 && !stopped; turn++) {
        clock.advance(1_000);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok(stopped, 'stop() returned although the database never answered');
      await stopping;
      pool.down = false;
      // Whatever stop() gave up on must not write once it has returned: a few turns let it try.
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      const givingBack = (text: string) =>
        /attempts = greatest\(attempts - 1, 0\), locked_by = NULL/.test(text);
      assert.deepEqual(
        [...pool.refused, ...pool.statements].filter(givingBack),
        [],
        'no give-back was tried after stop() gave up on the database',
      );
      const rows = await withPool((db) =>
        db.query(`SELECT state, locked_by FROM "${schema}".jobs WHERE id = $1`, [job.id]),
      );
      assert.deepEqual(rows.rows, [{ state: 'running', locked_by: runtime.consumerId }]);
      const consumers = await withPool((db) => db.query(`SELECT id FROM "${schema}".consumers`));
      assert.equal(consumers.rowCount, 1, 'its row stays, to expire: the sweep then takes the job back');
    } finally {
      pool.down = false;
      await pool.end();
    }
  });
});

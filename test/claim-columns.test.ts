import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourcesOf, targetOf } from '../src/core/transitions.js';
import { Storage } from '../src/storage/storage.js';
import { freshSchema, testRuntime, withPool } from './support/helpers.js';

describe('the claim as columns', () => {
  it('returns every job as stored, from whichever state it was taken, in claim order per state', async () => {
    const schema = freshSchema('columns');
    const producer = testRuntime({ schema });
    await producer.start();
    const past = new Date(Date.now() - 60_000);
    const jobs = await producer.enqueueMany([
      { task: 'work', payload: { n: 1, text: 'quote " and \\ and \n' }, priority: 0, runAt: past },
      { task: 'work', payload: [1, 2], priority: 5, runAt: past, key: 'key "with" quotes', maxAttempts: 3 },
      { task: 'work', payload: null, priority: 0, runAt: new Date(past.getTime() - 1000) },
      { task: 'work', payload: 'text', priority: 1, runAt: past, queue: 'other' },
      { task: 'work', payload: {}, priority: 0, runAt: past, expiresAt: new Date(Date.now() + 3_600_000) },
      { task: 'work', payload: {}, priority: 2, runAt: past },
    ]);
    await producer.stop();
    const [plain, keyed, earlier, otherQueue, expiring, retried] = jobs.map((job) => job.id) as string[];
    await withPool(async (pool) => {
      const jobsTable = `"${schema}".jobs`;
      // A retried job (with its error history), an interrupted one, and one whose expiry has passed.
      await pool.query(
        `UPDATE ${jobsTable} SET state = 'retry', attempts = 1, last_error = 'boom "1"',
                errors = '[{"attempt": 1, "at": "2026-01-01T00:00:00.000Z", "message": "boom \\"1\\""}]'
          WHERE id = $1`,
        [retried],
      );
      await pool.query(`UPDATE ${jobsTable} SET state = 'interrupted', attempts = 2 WHERE id = $1`, [
        earlier,
      ]);
      await pool.query(`UPDATE ${jobsTable} SET expires_at = $2 WHERE id = $1`, [
        expiring,
        new Date(Date.now() - 1000),
      ]);
      const storage = new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
      const now = new Date();
      const claimed = await storage.jobsClaim({
        consumerId: 'me',
        now,
        limit: 10,
        tasks: ['work'],
        skipQueues: [],
      });

      // Every job read back after the claim is what the claim returned.
      assert.equal(claimed.length, jobs.length);
      for (const { job } of claimed) assert.deepEqual(job, await storage.jobGet(job.id), `job ${job.id}`);

      const taken = (from: string) => claimed.filter((c) => c.from === from).map((c) => c.job.id);
      // Within the jobs taken from one state: higher priority first, then earlier run_at, then id.
      assert.deepEqual(taken('not_started'), [keyed, otherQueue, plain, expiring]);
      assert.deepEqual(taken('retry'), [retried]);
      assert.deepEqual(taken('interrupted'), [earlier]);
      const stateOf = (id: string | undefined) => claimed.find((c) => c.job.id === id)?.job.state;
      assert.equal(stateOf(expiring), 'expired');
      assert.equal(stateOf(retried), 'running');
      assert.equal(claimed.find((c) => c.job.id === retried)?.job.attempts, 2);
    });
  });
});

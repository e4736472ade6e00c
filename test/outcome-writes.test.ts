import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourcesOf, targetOf } from '../src/core/transitions.js';
import type { Outcome } from '../src/storage/outcome-statements.js';
import { Storage } from '../src/storage/storage.js';
import { freshSchema, testRuntime, withPool } from './support/helpers.js';

function succeed(jobId: string, attempt: number): Outcome {
  return {
    jobId,
    attempt,
    event: 'SUCCEED',
    from: 'running',
    to: 'succeeded',
    attemptDelta: 0,
    runAt: null,
    error: null,
    resultJson: null,
    finished: true,
    remove: false,
    progressJson: null,
  };
}

describe('outcome writes', () => {
  it('write the outcomes of the holding attempt and refuse the others, in one batch', async () => {
    const schema = freshSchema('writes');
    const producer = testRuntime({ schema });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: 4 }, () => ({ task: 'work', payload: {} })));
    await producer.stop();
    await withPool(async (pool) => {
      const storage = new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
      const now = new Date();
      const claimed = await storage.jobsClaim({
        consumerId: 'me',
        now,
        limit: 4,
        tasks: ['work'],
        skipQueues: [],
      });
      const [a, b, c, d] = claimed.map(({ job }) => job.id) as [string, string, string, string];
      const refused = await storage.jobsApplyOutcomes(
        [
          succeed(a, 1),
          succeed(b, 2), // not the attempt that holds it
          succeed(c, 1),
          { ...succeed(d, 1), resultJson: '{"n":1}' }, // a result takes the detailed statement
        ],
        'me',
        now,
      );
      assert.deepEqual([...refused], [b]);
      const rows = await pool.query<{ id: string; state: string; result: unknown }>(
        `SELECT id, state, result FROM "${schema}".jobs ORDER BY id`,
      );
      assert.deepEqual(
        rows.rows.map((row) => [row.id, row.state, row.result]),
        [
          [a, 'succeeded', null],
          [b, 'running', null],
          [c, 'succeeded', null],
          [d, 'succeeded', { n: 1 }],
        ],
      );
      // Another consumer's outcome for a job this one holds is refused too.
      assert.deepEqual([...(await storage.jobsApplyOutcomes([succeed(b, 1)], 'someone else', now))], [b]);
    });
  });

  it('write close ids through their span and scattered ids one by one, refusing the same', async () => {
    const schema = freshSchema('spans');
    const producer = testRuntime({ schema });
    await producer.start();
    await producer.enqueueMany(Array.from({ length: 40 }, () => ({ task: 'work', payload: {} })));
    await producer.stop();
    await withPool(async (pool) => {
      const storage = new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
      const now = new Date();
      const ids = (
        await storage.jobsClaim({ consumerId: 'me', now, limit: 40, tasks: ['work'], skipQueues: [] })
      ).map(({ job }) => job.id);
      // Another consumer took over the fifth and the last job: their outcomes must be refused.
      const taken = [ids[4], ids[39]] as string[];
      await pool.query(`UPDATE "${schema}".jobs SET locked_by = 'other' WHERE id = ANY ($1::bigint[])`, [
        taken,
      ]);
      const close = ids.slice(0, 8); // eight neighbours: written through their span
      const scattered = [ids[10], ids[39]] as string[]; // far apart for two ids: one by one
      for (const group of [close, scattered]) {
        const refused = await storage.jobsApplyOutcomes(
          group.map((id) => succeed(id, 1)),
          'me',
          now,
        );
        assert.deepEqual([...refused].sort(), group.filter((id) => taken.includes(id)).sort());
      }
      const rows = await pool.query<{ id: string; state: string }>(
        `SELECT id, state FROM "${schema}".jobs WHERE state = 'succeeded' ORDER BY id`,
      );
      const expected = [...close, ...scattered].filter((id) => !taken.includes(id));
      assert.deepEqual(
        rows.rows.map((row) => row.id),
        expected.sort((a, b) => Number(a) - Number(b)),
      );
    });
  });
});

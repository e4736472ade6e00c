import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withClient } from '../src/storage/pool-client.js';
import { withPool } from './support/helpers.js';

describe('checked-out clients', () => {
  it('survive their connection being terminated between statements, and are not pooled again', async () => {
    await withPool(async (pool) => {
      let failedWith: unknown;
      await withClient(
        () => pool.connect(),
        async (client) => {
          const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
          const ended = new Promise((resolve) => client.once('end', resolve));
          // Terminated from another connection while this one runs no statement: the error arrives
          // as an event on the client, which would be an uncaught exception without a listener.
          await pool.query('SELECT pg_terminate_backend($1)', [pid]);
          await ended;
          failedWith = await client.query('SELECT 1').catch((error: unknown) => error);
        },
      );
      assert.ok(failedWith instanceof Error, 'the next statement fails');
      assert.equal(pool.totalCount, 1, 'only the client that terminated it is left in the pool');
    });
  });
});

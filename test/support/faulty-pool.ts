import pg from 'pg';
import { databaseUrl } from './helpers.js';

/**
 * FaultyPool is a real pg.Pool on the test database with faults a test switches on: `down` makes
 * every statement and checkout fail as an unreachable database does, and `loseReplyOf` lets the next
 * statement whose text matches run and commit, then throws as if the connection had dropped before
 * its reply arrived. Nothing is simulated but the fault: every statement that runs, runs on PostgreSQL.
 */
export interface FaultyPool extends pg.Pool {
  /** down makes the database unreachable for this pool until set back to false. */
  down: boolean;
  /** loseReplyOf arms a lost reply for the next statement whose text matches `pattern`. */
  loseReplyOf(pattern: RegExp): void;
}

// connectionLost is the error pg raises when the server's socket closes under a statement.
function connectionLost(): Error {
  return new Error('Connection terminated unexpectedly');
}

/** faultyPool opens a FaultyPool; end it with `pool.end()`. */
export function faultyPool(): FaultyPool {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max: 6 }) as FaultyPool;
  pool.on('error', () => undefined);
  pool.down = false;
  let lose: RegExp | null = null;
  pool.loseReplyOf = (pattern) => {
    lose = pattern;
  };
  const query = pool.query.bind(pool) as (config: unknown, values?: unknown) => Promise<unknown>;
  const connect = pool.connect.bind(pool) as (
    callback?: (error: Error | undefined, ...rest: unknown[]) => void,
  ) => unknown;
  Object.assign(pool, {
    query: async (config: unknown, values?: unknown) => {
      if (pool.down) throw connectionLost();
      const text = typeof config === 'string' ? config : (config as { text: string }).text;
      if (lose?.test(text)) {
        lose = null;
        await query(config, values);
        throw connectionLost();
      }
      return query(config, values);
    },
    // pg's own pool.query checks a client out through connect with a callback; that path is kept.
    connect: (callback?: (error: Error | undefined, ...rest: unknown[]) => void) => {
      if (pool.down) {
        if (callback) return void callback(connectionLost());
        return Promise.reject(connectionLost());
      }
      return connect(callback);
    },
  });
  return pool;
}

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
  /** holdNext keeps the next statement whose text matches `pattern` from running until opened. */
  holdNext(pattern: RegExp): HeldStatement;
  /** statements lists the text of every statement sent through `pool.query`, in order. */
  statements: string[];
  /** refused lists the text of every statement `pool.query` refused while `down`, in order. */
  refused: string[];
}

/** HeldStatement is a statement FaultyPool keeps waiting, as a slow network or a lock would. */
export interface HeldStatement {
  /** held resolves once the statement was sent and is being held. */
  held: Promise<void>;
  /** open lets the statement run. */
  open(): void;
  /** done resolves once the statement ran (or failed). */
  done: Promise<void>;
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
  pool.statements = [];
  pool.refused = [];
  let hold: { pattern: RegExp; reached: () => void; opened: Promise<void>; ran: () => void } | null = null;
  pool.holdNext = (pattern) => {
    let reached!: () => void;
    let open!: () => void;
    let ran!: () => void;
    const held = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const done = new Promise<void>((resolve) => {
      ran = resolve;
    });
    hold = { pattern, reached, opened, ran };
    return { held, open, done };
  };
  const query = pool.query.bind(pool) as (config: unknown, values?: unknown) => Promise<unknown>;
  const connect = pool.connect.bind(pool) as (
    callback?: (error: Error | undefined, ...rest: unknown[]) => void,
  ) => unknown;
  Object.assign(pool, {
    query: async (config: unknown, values?: unknown) => {
      const text = typeof config === 'string' ? config : (config as { text: string }).text;
      if (pool.down) {
        pool.refused.push(text);
        throw connectionLost();
      }
      pool.statements.push(text);
      if (hold?.pattern.test(text)) {
        const { reached, opened, ran } = hold;
        hold = null;
        reached();
        await opened;
        try {
          return await query(config, values);
        } finally {
          ran();
        }
      }
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

import type pg from 'pg';

/**
 * ClientSource is where withClient checks a client out: best the pool itself, else a function that
 * returns a promise of a client (which leaves a gap, see withClient).
 */
export type ClientSource = Pick<pg.Pool, 'connect'> | (() => Promise<pg.PoolClient>);

/**
 * withClient checks a client out of a pool for work spanning several statements, and releases it
 * afterwards. While a client is out, a connection error that arrives between its statements (a
 * server restart, an administrator terminating the session) is emitted on the client, and with
 * nobody listening that is an uncaught exception that ends the process. So the client is listened
 * to while out, and one that failed is destroyed on release rather than returned to the pool; the
 * error itself reaches `work` through the statement it breaks.
 *
 * Given the pool, the listener is attached inside pool.connect's callback. The promise form of
 * pool.connect() is not enough: the pool takes its own listener off a new client when it hands it
 * out, in the very parser loop that read the connection's ReadyForQuery, and resolves the promise,
 * whose continuation runs only after that loop. A backend terminated right after its startup sends
 * its FATAL error in the same TCP read as the ReadyForQuery, so the error was emitted on a client
 * nobody listened to yet: `terminating connection due to administrator command` crashed workers of
 * the chaos harness's terminate scenario from the schedules' pass (test/terminate.test.ts). A
 * function returning a promise keeps that gap; it is accepted for callers that hold no pool.
 */
export async function withClient<T>(
  source: ClientSource,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure ??= error;
  };
  let client: pg.PoolClient;
  if (typeof source === 'function') {
    client = await source();
    client.on('error', onError);
  } else {
    client = await checkOut(source, onError);
  }
  try {
    return await work(client);
  } finally {
    client.removeListener('error', onError);
    client.release(failure);
  }
}

// checkOut takes a client through pool.connect's callback form, which runs in the same synchronous
// turn as the pool hands the client out: `onError` is on it before any further message is parsed.
function checkOut(pool: Pick<pg.Pool, 'connect'>, onError: (error: Error) => void): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((error, client) => {
      if (error || !client) {
        reject(error ?? new Error('pool.connect gave neither a client nor an error'));
        return;
      }
      client.on('error', onError);
      resolve(client);
    });
  });
}

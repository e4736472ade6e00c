import type pg from 'pg';

/**
 * withClient checks a client out of a pool for work spanning several statements, and releases it
 * afterwards. While a client is out, a connection error that arrives between its statements (a
 * server restart, an administrator terminating the session) is emitted on the client, and with
 * nobody listening that is an uncaught exception that ends the process. So the client is listened
 * to while out, and one that failed is destroyed on release rather than returned to the pool; the
 * error itself reaches `work` through the statement it breaks.
 */
export async function withClient<T>(
  connect: () => Promise<pg.PoolClient>,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await connect();
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure ??= error;
  };
  client.on('error', onError);
  try {
    return await work(client);
  } finally {
    client.removeListener('error', onError);
    client.release(failure);
  }
}

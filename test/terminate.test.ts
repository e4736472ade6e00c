import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadMigrations, migrate } from '../src/storage/migrator.js';
import { withClient } from '../src/storage/pool-client.js';
import { databaseUrl, freshSchema, nextEvent, withPool } from './support/helpers.js';

/**
 * StartupHoldingProxy forwards PostgreSQL connections to the test server, but holds back what the
 * server sends from the first ReadyForQuery of each connection on (emitting 'held'), until the
 * server closes the connection; then it delivers everything held in one write. A backend terminated
 * meanwhile thus reaches the client as ReadyForQuery and the FATAL error in one TCP read: what
 * happens now and then when pg_terminate_backend hits a backend that has just started, here on
 * purpose. `delivered` lists the message types of each such write.
 */
class StartupHoldingProxy extends EventEmitter {
  readonly delivered: string[][] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {
    super();
  }

  static async start(upstreamHost: string, upstreamPort: number): Promise<StartupHoldingProxy> {
    const server = createServer();
    const proxy = new StartupHoldingProxy(server);
    server.on('connection', (client) => proxy.relay(client, upstreamHost, upstreamPort));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    assert.ok(address && typeof address === 'object');
    return address.port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }

  private relay(client: Socket, host: string, port: number): void {
    const upstream = tcpConnect(port, host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    const held: Buffer[] = [];
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Server messages are a type byte and a length that counts itself (no SSL: none is asked for).
      while (pending.length >= 5) {
        const size = 1 + pending.readInt32BE(1);
        if (pending.length < size) break;
        const message = pending.subarray(0, size);
        pending = pending.subarray(size);
        if (held.length > 0 || message[0] === 0x5a /* Z: ReadyForQuery */) {
          held.push(message);
          if (held.length === 1) this.emit('held');
        } else client.write(message);
      }
    });
    upstream.on('end', () => {
      if (held.length === 0) {
        client.end();
        return;
      }
      this.delivered.push(held.map((message) => String.fromCharCode(message[0] ?? 0)));
      client.end(Buffer.concat(held));
    });
  }
}

// A connection string through the proxy with an application_name of this test's own, which is how
// the test terminates its own backends and nobody else's on the shared database.
function throughProxy(port: number, applicationName: string): string {
  const url = new URL(databaseUrl());
  url.hostname = '127.0.0.1';
  url.port = String(port);
  url.searchParams.set('application_name', applicationName);
  return url.toString();
}

// terminateOwn ends the backends whose application_name is this test's, and says how many.
async function terminateOwn(applicationName: string): Promise<number> {
  return withPool(async (admin) => {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
         FROM pg_stat_activity WHERE application_name = $1`,
      [applicationName],
    );
    return rows[0]?.n ?? 0;
  });
}

// usable says whether the proxy can read the server's messages: a plain TCP server, no TLS.
function usable(): string | null {
  const url = new URL(databaseUrl());
  if (!url.hostname || url.searchParams.has('host')) return 'the test database is not reached over TCP';
  if (url.searchParams.has('ssl') || url.searchParams.has('sslmode')) return 'the test database uses TLS';
  return null;
}

describe('a backend terminated right after its startup', () => {
  const skip = usable();
  const when = { skip: skip ?? false };
  let proxy: StartupHoldingProxy;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  before(async () => {
    if (skip) return;
    const url = new URL(databaseUrl());
    proxy = await StartupHoldingProxy.start(url.hostname, Number(url.port || 5432));
    process.on('uncaughtException', onUncaught);
  });

  after(async () => {
    if (skip) return;
    process.off('uncaughtException', onUncaught);
    await proxy.close();
  });

  // checkOutTerminated runs `use` with a pool whose first client's backend is terminated right after
  // its ReadyForQuery, the FATAL error arriving in the same read. Before the fix, the pool had taken
  // its own 'error' listener off the client and withClient had not yet added its own: the error was
  // emitted on a client nobody listened to, an uncaught exception (a crashed process in production).
  async function checkOutTerminated(use: (pool: pg.Pool) => Promise<unknown>): Promise<unknown> {
    const applicationName = `jc_term_${randomBytes(6).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: throughProxy(proxy.port, applicationName), max: 2 });
    const poolErrors: unknown[] = [];
    pool.on('error', (error) => poolErrors.push(error));
    const deliveredBefore = proxy.delivered.length;
    const uncaughtBefore = uncaught.length;
    try {
      const held = nextEvent(proxy, 'held');
      const outcome = use(pool).then(
        () => null,
        (error: unknown) => error,
      );
      await held;
      assert.equal(await terminateOwn(applicationName), 1, 'the held backend is terminated');
      const failure = await outcome;
      assert.deepEqual(
        proxy.delivered.slice(deliveredBefore),
        [['Z', 'E']],
        'ReadyForQuery and the FATAL error reached the client in one write',
      );
      assert.deepEqual(uncaught.slice(uncaughtBefore), [], 'no error went unheard');
      assert.equal(pool.totalCount, 0, 'the failed client is not pooled again');
      return failure;
    } finally {
      await pool.end();
    }
  }

  it('fails the migration with an error instead of crashing the process', when, async () => {
    const migrations = await loadMigrations();
    const failure = await checkOutTerminated((pool) => migrate(pool, freshSchema('term'), migrations));
    assert.ok(failure instanceof Error, 'migrate rejects');
  });

  it('gives withClient work the error through its first statement', when, async () => {
    let statementError: unknown = null;
    await checkOutTerminated((pool) =>
      withClient(pool, async (client) => {
        statementError = await client.query('SELECT 1').then(
          () => null,
          (error: unknown) => error,
        );
      }),
    );
    assert.ok(statementError instanceof Error, 'the first statement fails');
  });
});

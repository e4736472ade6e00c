/**
 * Database plumbing for the benchmark: a fresh database for every measured run (so no system sees
 * another's tables, indexes or bloat), the completion signal shared by every system (polling until
 * the database shows no unfinished job), and cleanup that drops every database this process made,
 * also when it is interrupted.
 */
import pg from 'pg';

const created = new Set<string>();
let counter = 0;

/** POLL_MS is the gap between two completion polls. */
const POLL_MS = 5;

/** RUN_TIMEOUT_MS bounds one measured run, so that a stuck system fails instead of hanging the bench. */
export const RUN_TIMEOUT_MS = 10 * 60_000;

/** withAdmin runs `fn` with a client connected to the base database (where databases are created). */
async function withAdmin<T>(baseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: baseUrl });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/**
 * withFreshDatabase creates an empty database, gives `fn` its URL and drops it afterwards (with
 * FORCE, so a connection a system failed to close cannot keep it alive).
 */
export async function withFreshDatabase<T>(baseUrl: string, fn: (url: string) => Promise<T>): Promise<T> {
  counter += 1;
  const name = `jcbench_${process.pid}_${counter}`;
  await withAdmin(baseUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  created.add(name);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await dropDatabases(baseUrl, [name]);
  }
}

/** dropDatabases drops the named databases this process created, ignoring ones already gone. */
async function dropDatabases(baseUrl: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await withAdmin(baseUrl, async (admin) => {
    for (const name of names) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      created.delete(name);
    }
  });
}

/** dropAllCreated drops every database this process created and has not dropped yet. */
export function dropAllCreated(baseUrl: string): Promise<void> {
  return dropDatabases(baseUrl, [...created]);
}

/**
 * untilDone polls `pendingSql` (a query returning one row whose `pending` says whether any job is
 * unfinished) until it says no: a job counts as done only once its final state is written, for
 * every system. Each system's check is an EXISTS, which stops at the first unfinished job, rather
 * than a count, which reads them all every few milliseconds and slows the drain it measures.
 */
export async function untilDone(url: string, pendingSql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  // The check runs every few milliseconds beside the drain it times. Without statistics (a fresh
  // table) or with stale ones, the planner may read the table from its start, through every row
  // already finished or deleted, and the observer would slow what it observes; with sequential
  // scans off it walks an index for every system.
  await client.query('SET enable_seqscan = off');
  const deadline = performance.now() + RUN_TIMEOUT_MS;
  try {
    for (;;) {
      const result = await client.query<{ pending: boolean }>(pendingSql);
      if (result.rows[0]?.pending === false) return;
      if (performance.now() > deadline) throw new Error(`jobs still unfinished after ${RUN_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await client.end();
  }
}

/** quietPool makes a pool whose idle-client errors (e.g. from the final DROP ... FORCE) are ignored. */
export function quietPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** execute runs statements one after another on a short-lived connection to `url`. */
export async function execute(url: string, ...statements: [string, unknown[]?][]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (const [sql, values] of statements) await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** serverVersion asks the server for its version (`SHOW server_version`). */
export function serverVersion(baseUrl: string): Promise<string> {
  return withAdmin(baseUrl, async (admin) => {
    const result = await admin.query<{ server_version: string }>('SHOW server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  });
}

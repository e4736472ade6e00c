import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { pino } from 'pino';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/index.js';

/** databaseUrl is the server the suite runs against; `npm test` sets it (embedded PostgreSQL if unset). */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

/** freshSchema names a schema no other test uses, so files run side by side and leftovers do not matter. */
export function freshSchema(prefix: string): string {
  return `t_${prefix}_${randomBytes(4).toString('hex')}`;
}

/** quietLogger keeps test output readable; set TEST_LOG_LEVEL=debug to see the runtime's log. */
export const quietLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** testRuntime builds a runtime on the test database with a quiet logger; options override. */
export function testRuntime(options: Partial<RuntimeOptions> & { schema: string }): Runtime {
  return createRuntime({ connectionString: databaseUrl(), logger: quietLogger, ...options });
}

/** withPool runs `fn` with a pool of its own and ends it afterwards. */
export async function withPool<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: databaseUrl(), max: 4 });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/**
 * nextEvent resolves with the first `name` event whose argument satisfies `match`. The deadline only
 * turns a hang into a failure with a message; tests never wait on it to pass.
 */
export function nextEvent<T>(
  emitter: EventEmitter,
  name: string,
  match: (arg: T) => boolean = () => true,
  deadlineMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`no "${name}" event matched within ${deadlineMs} ms`));
    }, deadlineMs);
    const listener = (arg: T) => {
      if (!match(arg)) return;
      clearTimeout(timer);
      emitter.off(name, listener);
      resolve(arg);
    };
    emitter.on(name, listener);
  });
}

/** countEvents resolves once `count` events named `name` (matching `match`) have been seen. */
export function countEvents<T>(
  emitter: EventEmitter,
  name: string,
  count: number,
  match: (arg: T) => boolean = () => true,
  deadlineMs = 60_000,
): Promise<T[]> {
  const seen: T[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`saw ${seen.length} of ${count} "${name}" events within ${deadlineMs} ms`));
    }, deadlineMs);
    const listener = (arg: T) => {
      if (!match(arg)) return;
      seen.push(arg);
      if (seen.length < count) return;
      clearTimeout(timer);
      emitter.off(name, listener);
      resolve(seen);
    };
    emitter.on(name, listener);
  });
}

/** countRows counts a schema's jobs, optionally in one state. */
export async function countRows(schema: string, state?: string): Promise<number> {
  return withPool(async (pool) => {
    const result = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${schema}".jobs ${state ? 'WHERE state = $1' : ''}`,
      state ? [state] : [],
    );
    return Number(result.rows[0]?.n);
  });
}

/** gate is a promise the test opens by hand (Promise.withResolvers needs Node 22). */
export function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

import { ValidationError } from './errors.js';

// SCHEMA_PATTERN keeps schema names to plain lower-case identifiers short enough that the notify
// channel built from them (`<schema>:jobs`) stays within PostgreSQL's 63-byte identifier limit.
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;

/**
 * validateSchemaName returns `schema` if it is a plain identifier PostgreSQL lets us create, else
 * throws a ValidationError.
 */
export function validateSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_PATTERN.test(schema)) {
    throw new ValidationError(
      'schema',
      'a lower-case identifier of at most 48 characters ([a-z_][a-z0-9_]*)',
      schema,
    );
  }
  // PostgreSQL reserves the pg_ prefix for system schemas: CREATE SCHEMA refuses it (42939), which
  // would otherwise surface only at start().
  if (schema.startsWith('pg_')) {
    throw new ValidationError(
      'schema',
      'a name not starting with "pg_", which PostgreSQL reserves for system schemas',
      schema,
    );
  }
  return schema;
}

/** quoteIdent double-quotes an identifier that validateSchemaName has accepted. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** notifyChannel is the channel on which inserts into `schema`'s jobs table are announced. */
export function notifyChannel(schema: string): string {
  return `${schema}:jobs`;
}

/**
 * finishedChannel is the channel on which ids of jobs that reached a finished state are announced,
 * comma-separated; an empty payload means "some jobs finished: re-read the ones you wait for".
 */
export function finishedChannel(schema: string): string {
  return `${schema}:finished`;
}

/** NOTIFY_PAYLOAD_MAX keeps a notification under PostgreSQL's 8000-byte payload limit. */
export const NOTIFY_PAYLOAD_MAX = 7900;

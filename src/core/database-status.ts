import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/**
 * DatabaseErrorKind sorts a failed statement by what to do about it: `unreachable` (no answer, or the
 * session was cut: try again once the database is back), `transient` (the database answered but may
 * accept the same statement later: a deadlock, a lock or statement timeout, too many connections), or
 * `refused` (the database refused this statement's data for good: retrying it cannot help).
 */
export type DatabaseErrorKind = 'unreachable' | 'transient' | 'refused';

// SQLSTATE classes whose errors are about the session, not the statement: 08 connection exception,
// 57P01-57P05 the server shutting down or restarting (57014, a cancelled statement, is transient).
const UNREACHABLE_CODES = /^(08|57P0)/;
// Classes worth retrying as they are: 40 rollbacks (deadlock, serialization), 53 resources, 55
// object state (lock not available), 57 operator intervention, 58 system errors.
const TRANSIENT_CLASSES = /^(40|53|55|57|58)/;

/** classifyDatabaseError tells what a failed statement's error means (see DatabaseErrorKind). */
export function classifyDatabaseError(error: unknown): DatabaseErrorKind {
  const code = sqlState(error);
  if (code === null || UNREACHABLE_CODES.test(code)) return 'unreachable';
  return TRANSIENT_CLASSES.test(code) ? 'transient' : 'refused';
}

// sqlState returns the SQLSTATE of an error the server sent, or null for every other error (a
// refused connection, a dropped socket, a client-side timeout). The test is by shape, not by class:
// a pool the caller passed may come from another copy of pg. Node's errors have codes too ('EPIPE'
// has five letters), but never a severity.
function sqlState(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && typeof severity === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/** DatabaseHealth is what a runtime knows of its database: reachable or not, since when, the last error. */
export interface DatabaseHealth {
  database: 'up' | 'down';
  /** since is the clock time the database was last seen to go down or come back (or the runtime was built). */
  since: Date;
  /** lastError is the message of the last error that made the database count as down, if any. */
  lastError: string | null;
}

/**
 * DatabaseStatus follows whether this runtime can reach its database, from the outcome of the
 * statements it runs anyway (heartbeats, claims, outcome writes, the listener's connection), so
 * that it costs no statement of its own. It logs each change once, so that an operator reading a
 * worker's log during an outage sees what the worker is doing rather than one warning per statement.
 */
export class DatabaseStatus {
  private up = true;
  private changedAt: Date;
  private lastError: string | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.changedAt = clock.now();
  }

  /** reached records a statement the database answered. */
  reached(): void {
    if (this.up) return;
    const now = this.clock.now();
    this.logger.info(
      { downMs: now.getTime() - this.changedAt.getTime() },
      'database reachable again: claiming, heartbeats and outcome writes resume',
    );
    this.up = true;
    this.changedAt = now;
  }

  /** failed records a failed statement; only errors that say the database is unreachable count. */
  failed(error: unknown): void {
    if (classifyDatabaseError(error) !== 'unreachable') return;
    this.lastError = error instanceof Error ? error.message : String(error);
    if (!this.up) return;
    this.up = false;
    this.changedAt = this.clock.now();
    this.logger.error(
      { err: error },
      'database unreachable: retrying; running handlers go on, their outcomes wait, nothing is claimed',
    );
  }

  /** upSince is the clock time since which the database has answered without a break, or null while it is down. */
  get upSince(): Date | null {
    return this.up ? this.changedAt : null;
  }

  /** health is the status as `runtime.health()` reports it. */
  get health(): DatabaseHealth {
    return { database: this.up ? 'up' : 'down', since: this.changedAt, lastError: this.lastError };
  }
}

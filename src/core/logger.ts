import { pino } from 'pino';

/** Logger is the pino logger jobchart writes to; pass your own to `createRuntime`. */
export type Logger = pino.Logger;

/** defaultLogger is used when the caller passes none: JSON to stdout at JOBCHART_LOG_LEVEL (default info). */
export function defaultLogger(): Logger {
  return pino({ name: 'jobchart', level: process.env.JOBCHART_LOG_LEVEL ?? 'info' });
}

/** redactConnectionString hides the password of a postgres:// URL so that it can be logged. */
export function redactConnectionString(connectionString: string | undefined): string | undefined {
  if (!connectionString) return connectionString;
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    url.searchParams.delete('password');
    return url.toString();
  } catch {
    return '(unparseable connection string)';
  }
}

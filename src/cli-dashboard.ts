import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from './api/runtime.js';
import { CliError } from './cli-filter.js';
import { createDashboard } from './dashboard/api.js';

/** DASHBOARD_FLAGS are the parseArgs options of `jobchart dashboard`. */
export const DASHBOARD_FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'read-only': { type: 'boolean' },
} as const;

/** DashboardFlags are the values of DASHBOARD_FLAGS as parseArgs returns them. */
export type DashboardFlags = { port?: string; host?: string; 'read-only'?: boolean };

/** DASHBOARD_DEFAULT_PORT is where `jobchart dashboard` listens unless told otherwise. */
export const DASHBOARD_DEFAULT_PORT = 4000;

/** checkDashboardFlags refuses the dashboard's flags on another command, and a port that is not one. */
export function checkDashboardFlags(command: string, values: DashboardFlags): void {
  const given = (['port', 'host', 'read-only'] as const).filter((flag) => values[flag] !== undefined);
  if (given.length > 0 && command !== 'dashboard')
    throw new CliError(`${command}: --${given[0]} applies to dashboard`);
  if ((values.port !== undefined && !/^[0-9]{1,5}$/.test(values.port)) || Number(values.port) > 65_535) {
    throw new CliError(`dashboard: --port expected a port number from 0 to 65535, received ${values.port}`);
  }
}

/**
 * serveDashboard serves the dashboard of a started runtime until SIGINT or SIGTERM, on 127.0.0.1 unless
 * `--host` says otherwise (the dashboard has no login of its own: exposing it is a choice), and says
 * where on stderr. It resolves with the exit code once the server is closed.
 */
export async function serveDashboard(runtime: Runtime, values: DashboardFlags): Promise<number> {
  const server = createServer(createDashboard({ runtime, readOnly: values['read-only'] === true }));
  const host = values.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(values.port === undefined ? DASHBOARD_DEFAULT_PORT : Number(values.port), host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  process.stderr.write(`dashboard on http://${host.includes(':') ? `[${host}]` : host}:${port}/\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}

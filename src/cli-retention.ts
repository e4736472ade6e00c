import { CliError } from './cli-filter.js';
import type { RetentionOptions } from './maintenance/retention.js';

/** RETENTION_FLAGS are the parseArgs options of `clean`: how long each finished state is kept. */
export const RETENTION_FLAGS = {
  'keep-succeeded': { type: 'string' },
  'keep-failed': { type: 'string' },
  'keep-cancelled': { type: 'string' },
  'keep-expired': { type: 'string' },
} as const;

/** RetentionFlags are the values of RETENTION_FLAGS as parseArgs returns them. */
export type RetentionFlags = { [K in keyof typeof RETENTION_FLAGS]?: string };

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

// A duration is a whole number and a unit (90s, 12h, 30d) or `forever`: a bare number would leave the
// unit to guess, and a wrong guess deletes jobs.
const DURATION = /^([0-9]{1,9})(ms|s|m|h|d)$/;

/**
 * retentionOfFlags reads the `--keep-<state>` flags into retention options (the states not given keep
 * the defaults), or throws a CliError for a flag given to another command or a malformed duration.
 */
export function retentionOfFlags(command: string, values: RetentionFlags): RetentionOptions | undefined {
  const given = Object.keys(RETENTION_FLAGS).filter(
    (flag) => values[flag as keyof RetentionFlags] !== undefined,
  );
  if (given.length === 0) return undefined;
  if (command !== 'clean') throw new CliError(`${command}: --${given[0]} applies to clean`);
  const retention: RetentionOptions = {};
  for (const flag of given as (keyof RetentionFlags)[]) {
    const text = values[flag] as string;
    const state = flag.slice('keep-'.length) as 'succeeded' | 'failed' | 'cancelled' | 'expired';
    if (text === 'forever') {
      retention[state] = Number.POSITIVE_INFINITY;
      continue;
    }
    const match = DURATION.exec(text);
    if (!match) {
      throw new CliError(
        `clean: --${flag} expected a duration such as 90s, 12h or 30d (units ms, s, m, h, d), or forever; received ${text}`,
      );
    }
    retention[state] = Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  return retention;
}

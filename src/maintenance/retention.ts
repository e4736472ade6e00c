import { ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { MAX_DELAY_MS } from '../core/time-range.js';
import { decide, LIVE_STATES, sourcesOf, targetOf } from '../core/transitions.js';
import type { FinishedJobState } from '../jobs/events.js';
import { validateInteger } from '../jobs/tasks.js';
import { periodicConfig } from './periodic.js';

/**
 * RetentionOptions say how long finished jobs are kept before the cleaner deletes them, per finished
 * state, in milliseconds after `finished_at` (`Infinity` keeps them forever), and how the cleaner
 * runs. A partial object is merged with DEFAULT_RETENTION.
 */
export interface RetentionOptions {
  /** succeeded jobs are kept this long (default 1 day): they are the bulk and rarely read again. */
  succeeded?: number;
  /** failed jobs are kept this long (default 30 days): someone has to look at each of them. */
  failed?: number;
  /** cancelled jobs are kept this long (default 7 days). */
  cancelled?: number;
  /** expired jobs are kept this long (default 7 days). */
  expired?: number;
  /** intervalMs is the time between two cleaning rounds of a worker (default 60 s). */
  intervalMs?: number;
  /** batchSize is how many rows one statement deletes at most (default 10,000). */
  batchSize?: number;
}

/** RetentionConfig is the `retention` option checked, with its defaults applied. */
export interface RetentionConfig {
  /** keepMs is how long each finished state is kept, in ms after finished_at (Infinity: forever). */
  keepMs: Readonly<Record<FinishedJobState, number>>;
  intervalMs: number;
  batchSize: number;
  /**
   * periodic says whether worker runtimes clean on their own: false with `retention: false`, or
   * when every state is kept forever. `runtime.clean()` works either way.
   */
  periodic: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * DEFAULT_RETENTION is the retention a runtime applies when the option is not given: succeeded jobs
 * for a day (the bulk of the table, rarely read once done), cancelled and expired ones for a week
 * (someone may still ask why a job never ran), failed ones for 30 days (each one is an incident
 * someone has to look at, possibly after a weekend or a holiday). The cleaner runs every 60 s: each
 * round deletes batch after batch until a batch comes back short, so the interval only bounds how
 * late a row goes past its retention, not how much a round can delete; an idle round costs a few
 * index probes. 10,000 rows a statement is Oban's pruner limit: large enough to keep up with a busy
 * queue, small enough that one statement holds its locks for a fraction of a second.
 */
export const DEFAULT_RETENTION: Readonly<Required<RetentionOptions>> = Object.freeze({
  succeeded: DAY_MS,
  failed: 30 * DAY_MS,
  cancelled: 7 * DAY_MS,
  expired: 7 * DAY_MS,
  intervalMs: 60_000,
  batchSize: 10_000,
});

// removedState is where the machine's REMOVE leads: the deleted job, announced, never stored.
const removedState = targetOf('REMOVE');

/**
 * CLEANABLE_STATES are the states the cleaner deletes jobs from, asked of the job machine: the
 * states REMOVE applies to (a running job is not one of them) that are finished (not LIVE_STATES),
 * each checked to lead to `removed` when asked.
 */
export const CLEANABLE_STATES: readonly FinishedJobState[] = sourcesOf('REMOVE').filter(
  (state): state is FinishedJobState =>
    !LIVE_STATES.includes(state) && decide(state, 'REMOVE', 1, 1)?.to === removedState,
);

// The option names are the cleanable states and the cadence; optionNames makes the list agree with
// RetentionOptions at compile time, and the check below with the machine when the module loads.
const RETENTION_OPTION_NAMES = optionNames<RetentionOptions>({
  succeeded: true,
  failed: true,
  cancelled: true,
  expired: true,
  intervalMs: true,
  batchSize: true,
});
for (const state of CLEANABLE_STATES) {
  if (!RETENTION_OPTION_NAMES.includes(state))
    throw new Error(`retention: the machine's finished state ${state} has no retention option`);
}

/**
 * resolveRetention checks the `retention` option: `false` keeps every finished job forever (and no
 * worker cleans on its own), an object overrides some of DEFAULT_RETENTION. A duration is a whole
 * number of milliseconds from 0 to MAX_DELAY_MS, or Infinity.
 */
export function resolveRetention(value: RetentionOptions | false | undefined): RetentionConfig {
  if (value === false) return configOf({ ...DEFAULT_RETENTION, ...foreverAll() }, false);
  if (value === undefined) return configOf(DEFAULT_RETENTION, true);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError(
      'retention',
      'false or an object of { [finished state]: ms | Infinity }',
      value,
    );
  assertKnownKeys(value, RETENTION_OPTION_NAMES, 'retention');
  const merged = { ...DEFAULT_RETENTION };
  for (const [key, given] of Object.entries(value)) {
    if (given !== undefined) (merged as Record<string, number>)[key] = given as number;
  }
  return configOf(merged, true);
}

function foreverAll(): Record<FinishedJobState, number> {
  return Object.fromEntries(CLEANABLE_STATES.map((state) => [state, Number.POSITIVE_INFINITY])) as Record<
    FinishedJobState,
    number
  >;
}

function configOf(options: Required<RetentionOptions>, enabled: boolean): RetentionConfig {
  const keepMs = {} as Record<FinishedJobState, number>;
  for (const state of CLEANABLE_STATES) keepMs[state] = validateKeep(options[state], `retention.${state}`);
  const { intervalMs } = periodicConfig(
    'retention',
    { intervalMs: options.intervalMs },
    {
      intervalMs: DEFAULT_RETENTION.intervalMs,
      runAtStart: true,
      whenBusy: 'skip',
    },
  );
  return {
    keepMs,
    intervalMs,
    batchSize: validateInteger(options.batchSize, 'retention.batchSize', 1, 100_000),
    periodic: enabled && CLEANABLE_STATES.some((state) => Number.isFinite(keepMs[state])),
  };
}

function validateKeep(value: unknown, field: string): number {
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_MS)
    throw new ValidationError(
      field,
      `a whole number of milliseconds from 0 to ${MAX_DELAY_MS}, or Infinity`,
      value,
    );
  return value;
}

import { Cron } from 'croner';
import { ValidationError } from '../core/errors.js';
import { isStorableText, toJsonText } from '../core/json.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { MAX_DELAY_MS } from '../core/time-range.js';
import type { CatchUp, NewSchedule, Overlap } from '../storage/schedule-statements.js';
import { validateTaskName } from './tasks.js';

// Overlap and CatchUp are the values of the schedules table's columns, declared with it.
export type { CatchUp, Overlap } from '../storage/schedule-statements.js';

/** ScheduleOptions define a recurring job: a cron expression or a period, and the job to enqueue. */
export interface ScheduleOptions {
  /** cron is a cron expression (5 or 6 fields, croner's syntax), read in `timezone`. */
  cron?: string;
  /** everyMs runs the job this long after the previous run ended (an integer from 1000 to MAX_DELAY_MS). */
  everyMs?: number;
  task: string;
  payload?: unknown;
  description?: string;
  /** timezone is an IANA zone name for `cron` (default 'UTC'); DST is handled by croner. */
  timezone?: string;
  /** enabled schedules enqueue; disabled ones keep their state (default true). */
  enabled?: boolean;
  /** overlap: 'skip' (default) drops a tick while the previous run is unfinished; 'queue' holds it until then. */
  overlap?: Overlap;
  /** catchUp: after downtime, run no missed tick, only the latest (default), or all of them. */
  catchUp?: CatchUp;
  /** namespace scopes the name, like a plugin id (default 'default'). */
  namespace?: string;
}

/** ScheduleSpec is a validated schedule, ready to store (what an upsert writes, but its first tick). */
export type ScheduleSpec = Omit<NewSchedule, 'nextRunAt'>;

const SCHEDULE_OPTION_NAMES = optionNames<ScheduleOptions>({
  cron: true,
  everyMs: true,
  task: true,
  payload: true,
  description: true,
  timezone: true,
  enabled: true,
  overlap: true,
  catchUp: true,
  namespace: true,
});
const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;
const OVERLAPS: readonly Overlap[] = ['skip', 'queue'];
const CATCH_UPS: readonly CatchUp[] = ['none', 'latest', 'all'];
/** MAX_CATCH_UP_TICKS bounds how many missed ticks one pass enqueues with catchUp 'all'. */
export const MAX_CATCH_UP_TICKS = 10_000;

/** validateSchedule checks a schedule's name and options and returns what to store, or throws a ValidationError. */
export function validateSchedule(name: unknown, options: ScheduleOptions): ScheduleSpec {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new ValidationError('name', `a schedule name matching ${NAME_PATTERN}`, name);
  }
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('options', 'an object of schedule options', options);
  }
  // Before the rest: a misspelled `cron` is better named as such than as "neither cron nor everyMs".
  assertKnownKeys(options, SCHEDULE_OPTION_NAMES, 'schedules.upsert');
  const namespace = options.namespace ?? 'default';
  if (typeof namespace !== 'string' || !NAME_PATTERN.test(namespace)) {
    throw new ValidationError('namespace', `a namespace matching ${NAME_PATTERN}`, namespace);
  }
  const timezone = options.timezone ?? 'UTC';
  if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
    throw new ValidationError('timezone', 'an IANA time zone such as "Europe/Berlin"', options.timezone);
  }
  const hasCron = options.cron !== undefined;
  const hasEvery = options.everyMs !== undefined;
  if (hasCron === hasEvery) {
    throw new ValidationError('cron', 'exactly one of cron and everyMs', hasCron ? 'both' : 'neither');
  }
  if (hasCron) cronOf(options.cron, timezone);
  // Bounded like every delay: past it, the next tick is a time PostgreSQL cannot store, and the
  // failing update would stop every schedule's pass, not just this one's.
  const everyMs = options.everyMs as number;
  if (hasEvery && (!Number.isInteger(everyMs) || everyMs < 1000 || everyMs > MAX_DELAY_MS)) {
    throw new ValidationError(
      'everyMs',
      `an integer number of milliseconds from 1000 to ${MAX_DELAY_MS} (100 years)`,
      options.everyMs,
    );
  }
  const overlap = options.overlap ?? 'skip';
  if (!OVERLAPS.includes(overlap))
    throw new ValidationError('overlap', `one of ${OVERLAPS.join(', ')}`, overlap);
  const catchUp = options.catchUp ?? 'latest';
  if (!CATCH_UPS.includes(catchUp))
    throw new ValidationError('catchUp', `one of ${CATCH_UPS.join(', ')}`, catchUp);
  if (options.enabled !== undefined && typeof options.enabled !== 'boolean') {
    throw new ValidationError('enabled', 'a boolean', options.enabled);
  }
  // A description is the caller's data, read back as written: refused rather than altered.
  if (
    options.description !== undefined &&
    (typeof options.description !== 'string' || !isStorableText(options.description))
  ) {
    throw new ValidationError(
      'description',
      'a string without NUL (\\u0000) or lone surrogates',
      options.description,
    );
  }
  return {
    namespace,
    name,
    cron: hasCron ? (options.cron as string) : null,
    everyMs: hasEvery ? (options.everyMs as number) : null,
    timezone,
    task: validateTaskName(options.task),
    payloadJson: toJsonText(options.payload, 'payload'),
    description: options.description ?? null,
    enabled: options.enabled ?? true,
    overlap,
    catchUp,
  };
}

/** cronOf parses a cron expression for `timezone`, or throws a ValidationError naming `cron`. */
export function cronOf(expression: unknown, timezone: string): Cron {
  if (typeof expression !== 'string') throw new ValidationError('cron', 'a cron expression', expression);
  try {
    return new Cron(expression, { paused: true, timezone });
  } catch (error) {
    throw new ValidationError('cron', `a valid cron expression (${(error as Error).message})`, expression);
  }
}

/** firstRunAt is when a new (or re-timed) schedule first falls due, seen at `now`. */
export function firstRunAt(spec: Pick<ScheduleSpec, 'cron' | 'timezone'>, now: Date): Date | null {
  return spec.cron === null ? now : cronOf(spec.cron, spec.timezone).nextRun(now);
}

/**
 * dueTicks lists the cron ticks from `from` (itself due) up to `now`, as catchUp allows: all of
 * them, only the latest, or, when more than one is due (the runtimes were down), none. It also
 * returns the first tick after `now`.
 */
export function dueTicks(
  cron: Cron,
  from: Date,
  now: Date,
  catchUp: CatchUp,
): { ticks: Date[]; next: Date | null } {
  const due: Date[] = [from];
  let next = cron.nextRun(from);
  while (next !== null && next.getTime() <= now.getTime() && due.length < MAX_CATCH_UP_TICKS) {
    due.push(next);
    next = cron.nextRun(next);
  }
  // Past the cap, the oldest missed ticks are dropped and the schedule resumes from now.
  if (next !== null && next.getTime() <= now.getTime()) next = cron.nextRun(now);
  const ticks = catchUp === 'all' ? due : catchUp === 'latest' ? due.slice(-1) : due.length === 1 ? due : [];
  return { ticks, next };
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

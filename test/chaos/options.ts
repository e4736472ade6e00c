/**
 * Command-line options of the chaos harness and the sizes of its two modes: the full run (20,000 jobs,
 * the crash scenario five times, a 40 s outage) and `--quick`, small enough to check in well under a
 * minute when the runtime behaves.
 */

/** SCENARIO_IDS names every scenario, in the order they run. */
export const SCENARIO_IDS = ['kill', 'crash', 'outage', 'terminate'] as const;

/** ScenarioId is one scenario's name. */
export type ScenarioId = (typeof SCENARIO_IDS)[number];

/** Sizes are the job counts, fault counts and waits of one mode. */
export interface Sizes {
  /** jobs is the backlog each scenario run drains. */
  jobs: number;
  /** kills is how many times the kill scenario SIGKILLs (and replaces) its victim. */
  kills: number;
  /** killIntervalMs spaces the kills (a kill also waits until its victim holds jobs). */
  killIntervalMs: number;
  /** crashes is how many immediate-mode crashes one crash run injects. */
  crashes: number;
  /** crashGapMs is how long the server stays up between two crashes, so both land mid-drain. */
  crashGapMs: number;
  /** crashRepetitions is how many times the whole crash scenario runs, each in a fresh schema. */
  crashRepetitions: number;
  /** outageMs is how long the server stays stopped in the outage scenario. */
  outageMs: number;
  /** terminateForMs is how long the terminate scenario keeps terminating backends. */
  terminateForMs: number;
  /** terminateEveryMs spaces the rounds of pg_terminate_backend. */
  terminateEveryMs: number;
  /** lostAfterMs is how long after the last fault a run waits for unfinished jobs before calling them lost. */
  lostAfterMs: number;
  /** runDeadlineMs turns a hung scenario run into a reported failure (the outage is added to it). */
  runDeadlineMs: number;
}

/** SIZES holds the sizes of each mode. */
export const SIZES: Record<'full' | 'quick', Sizes> = {
  full: {
    jobs: 20_000,
    kills: 5,
    killIntervalMs: 1_500,
    crashes: 2,
    crashGapMs: 3_000,
    crashRepetitions: 5,
    outageMs: 40_000,
    terminateForMs: 10_000,
    terminateEveryMs: 500,
    lostAfterMs: 90_000,
    runDeadlineMs: 240_000,
  },
  quick: {
    jobs: 5_000,
    kills: 2,
    killIntervalMs: 1_000,
    crashes: 2,
    crashGapMs: 1_000,
    crashRepetitions: 1,
    outageMs: 8_000,
    terminateForMs: 2_500,
    terminateEveryMs: 500,
    lostAfterMs: 30_000,
    runDeadlineMs: 120_000,
  },
};

/**
 * STUCK_AFTER_MS is when, after the last fault ended, a job that is not finished counts as stuck:
 * 30 s is five times the worst legitimate recovery (consumer timeout 5 s plus a heartbeat) plus the
 * time the rest of the backlog needs.
 */
export const STUCK_AFTER_MS = 30_000;

/** WORKER_SETTINGS are the runtime options every worker process runs with. */
export const WORKER_SETTINGS = {
  workers: 3,
  heartbeatIntervalMs: 1_000,
  consumerTimeoutMs: 5_000,
  maxRunningJobs: 10,
  /**
   * workMs is how long each handler takes. Three workers at 10 running drain 20,000 such jobs in
   * about 10–20 s on the 2-core machine this was tuned on, so faults spaced over seconds land mid-drain.
   */
  workMs: 12,
};

/**
 * FAULT_WINDOW_BEFORE_MS and FAULT_WINDOW_AFTER_MS widen each fault into the window in which a
 * handler that ended may legitimately run again (its outcome's write was hit): from 1 s before the
 * fault began (the write was in flight) to 5 s after it ended (writes retried with backoff).
 */
export const FAULT_WINDOW_BEFORE_MS = 1_000;
/** FAULT_WINDOW_AFTER_MS: see FAULT_WINDOW_BEFORE_MS. */
export const FAULT_WINDOW_AFTER_MS = 5_000;

/** ChaosOptions is a parsed command line. */
export interface ChaosOptions {
  mode: 'full' | 'quick';
  scenarios: ScenarioId[];
  sizes: Sizes;
  workMs: number;
  /** keepLogs keeps the run directory (worker logs and stderr) instead of deleting it. */
  keepLogs: boolean;
  /** strict makes the exit code 1 when any check failed, not only when the harness itself failed. */
  strict: boolean;
}

/** USAGE is printed on a bad command line. */
export const USAGE = `usage: npm run chaos -- [--quick] [--only=${SCENARIO_IDS.join(',')}] [--jobs=N] [--work-ms=N] [--keep-logs] [--strict]`;

/** parseOptions reads the command line; it throws with USAGE on anything it does not know. */
export function parseOptions(argv: readonly string[]): ChaosOptions {
  const quick = argv.includes('--quick');
  const sizes = { ...SIZES[quick ? 'quick' : 'full'] };
  let scenarios: ScenarioId[] = [...SCENARIO_IDS];
  let workMs = WORKER_SETTINGS.workMs;
  for (const arg of argv) {
    const [flag, value] = arg.split('=', 2) as [string, string | undefined];
    if (flag === '--quick' || flag === '--keep-logs' || flag === '--strict') continue;
    if (flag === '--only' && value) {
      const wanted = value.split(',').map((s) => s.trim());
      const unknown = wanted.filter((s) => !(SCENARIO_IDS as readonly string[]).includes(s));
      if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
      scenarios = SCENARIO_IDS.filter((id) => wanted.includes(id));
    } else if (flag === '--jobs' && value) {
      sizes.jobs = positiveInteger(flag, value);
    } else if (flag === '--work-ms' && value !== undefined) {
      workMs = positiveInteger(flag, value, 0);
    } else {
      throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return {
    mode: quick ? 'quick' : 'full',
    scenarios,
    sizes,
    workMs,
    keepLogs: argv.includes('--keep-logs'),
    strict: argv.includes('--strict'),
  };
}

function positiveInteger(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer ≥ ${min}\n${USAGE}`);
  return n;
}

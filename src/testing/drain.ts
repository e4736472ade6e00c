import type { JobState } from '../../machines/job.js';
import { FINISHED_STATES } from '../api/job-waiter.js';
import type { Runtime } from '../api/runtime.js';
import type { SimulatedClock } from '../core/clock.js';
import { JobchartError, RuntimeStateError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import { LIVE_STATES } from '../core/transitions.js';
import type { CrashEvent, RuntimeEventMap, TransitionEvent } from '../jobs/events.js';
import { validateInteger, validateTaskName } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';

/** DrainOptions bound what `drainDueJobs` looks at and how far it goes. */
export interface DrainOptions {
  /**
   * tasks limits the drain to jobs of these tasks (default: every job of the runtime's schema). Name
   * the runtime's own tasks when the schema also holds jobs that another process works: this
   * runtime never claims those, and the drain would wait for them until it stalls.
   */
  tasks?: readonly string[];
  /** maxSteps is how many times the clock may be advanced (default 1000); the drain stops there. */
  maxSteps?: number;
  /**
   * untilMs is how far, in simulated milliseconds from the clock's time when the drain starts, the
   * clock may be advanced (default: no bound). Jobs due later are left waiting.
   */
  untilMs?: number;
  /**
   * stallTimeoutMs is how many real milliseconds the drain waits for any event of the runtime while
   * jobs are running or due before it gives up with a DrainStalledError (default 30 000). It only
   * turns a hang into a failure that names the jobs; a drain never waits on it to pass.
   */
  stallTimeoutMs?: number;
}

const DRAIN_OPTION_NAMES = optionNames<DrainOptions>({
  tasks: true,
  maxSteps: true,
  untilMs: true,
  stallTimeoutMs: true,
});

/** FinishedCounts counts, by final state, the jobs that finished while the drain ran. */
export type FinishedCounts = Record<'succeeded' | 'failed' | 'cancelled' | 'expired' | 'removed', number>;

/** DrainSummary is how a drain ended and what it saw finish. */
export interface DrainSummary {
  /**
   * stoppedBy says why the drain returned: `drained` (no job running or waiting but parked ones),
   * `maxSteps` or `untilMs` (a limit; `left` holds the jobs still waiting), or `crashed` (the
   * onException policy crashed the runtime; see `crash`).
   */
  stoppedBy: 'drained' | 'maxSteps' | 'untilMs' | 'crashed';
  /** steps is how many times the clock was advanced. */
  steps: number;
  /** advancedMs is how far the clock was moved, in all. */
  advancedMs: number;
  /** finished counts the jobs that reached each final state during the drain (each job once, its last). */
  finished: FinishedCounts;
  /** left lists the live jobs the drain left: parked ones (runAt null), and those past a limit. */
  left: Job[];
  /** crash is the runtime's `runtime:crashed` event when stoppedBy is `crashed`. */
  crash?: CrashEvent;
}

/**
 * DrainStalledError is a drain that saw jobs running or due but no event of the runtime for
 * stallTimeoutMs: typically jobs of a task this runtime does not work, a handler waiting for the
 * clock (a timeout: advance it yourself), or a runtime created with `listen: false` whose next poll
 * is further away than the jobs' due time.
 */
export class DrainStalledError extends JobchartError {
  /** jobs are the live jobs the drain was waiting on. */
  readonly jobs: Job[];
  constructor(stallTimeoutMs: number, jobs: Job[]) {
    const listed = jobs
      .slice(0, 10)
      .map((job) => `${job.id} (${job.task}, ${job.state})`)
      .join(', ');
    super(
      'DRAIN_STALLED',
      `drainDueJobs: expected the runtime to move its running or due jobs on, but it reported nothing for ${stallTimeoutMs} ms; waiting on ${jobs.length} job(s): ${listed}`,
    );
    this.jobs = jobs;
  }
}

// WAKING_EVENTS are the runtime's events after which the jobs may look different: a transition, a
// claim round, a failure it recovers from, a crash.
const WAKING_EVENTS = ['job:transition', 'runtime:polled', 'runtime:error', 'runtime:crashed'] as const;

const finishedStates = new Set<JobState>([...FINISHED_STATES, 'removed']);

/**
 * drainDueJobs works a started runtime's jobs to the end on a simulated clock: while jobs run or are
 * due it waits for the runtime's events (never sleeping), and once every live job waits for a later
 * time it advances the clock to the earliest of those times, which wakes the runtime as real time
 * would. It returns when no job (of `options.tasks`) is running or waiting except parked ones, when a
 * limit is reached, or when the runtime crashes; `clock` must be the runtime's own clock.
 */
export async function drainDueJobs(
  runtime: Runtime,
  clock: SimulatedClock,
  options: DrainOptions = {},
): Promise<DrainSummary> {
  assertKnownKeys(options, DRAIN_OPTION_NAMES, 'drainDueJobs');
  const maxSteps = validateInteger(options.maxSteps ?? 1000, 'maxSteps', 0);
  const untilMs = options.untilMs === undefined ? null : validateInteger(options.untilMs, 'untilMs', 0);
  const stallTimeoutMs = validateInteger(options.stallTimeoutMs ?? 30_000, 'stallTimeoutMs', 1, 2 ** 31 - 1);
  const tasks = options.tasks?.map((task) => validateTaskName(task, 'tasks'));
  if (runtime.phase !== 'started') {
    throw new RuntimeStateError(`drainDueJobs: expected a started runtime, it is ${runtime.phase}`);
  }
  const startedAt = clock.now().getTime();
  const lastState = new Map<string, JobState>();
  let crash: CrashEvent | undefined;
  const onTransition = (event: TransitionEvent) => {
    if (tasks && !tasks.includes(event.job.task)) return;
    if (finishedStates.has(event.to)) lastState.set(event.job.id, event.to);
    // An operator may run a finished job again; it counts where it ends next.
    else lastState.delete(event.job.id);
  };
  const onCrash = (event: CrashEvent) => {
    crash = event;
  };
  runtime.events.on('job:transition', onTransition);
  runtime.events.on('runtime:crashed', onCrash);
  let steps = 0;
  const summary = (stoppedBy: DrainSummary['stoppedBy'], left: Job[]): DrainSummary => ({
    stoppedBy,
    steps,
    advancedMs: clock.now().getTime() - startedAt,
    finished: countFinished(lastState),
    left,
    ...(crash ? { crash } : {}),
  });
  try {
    for (;;) {
      // Listening starts before the read: whatever happens while it runs wakes the wait below.
      const woken = nextWake(runtime, stallTimeoutMs);
      const live = await liveJobs(runtime, tasks);
      if (crash) {
        woken.cancel();
        return summary('crashed', live);
      }
      const now = clock.now().getTime();
      const waiting = live.filter((job) => job.state !== 'running' && job.runAt !== null);
      // A job's last write can be durable, so the read no longer lists it, before the runtime emits
      // its transition: while the runtime still runs a handler or writes an outcome, its events are due.
      const { running, pendingWrites } = runtime.health();
      const busy =
        running > 0 ||
        pendingWrites > 0 ||
        live.some((job) => job.state === 'running') ||
        waiting.some((job) => (job.runAt as Date).getTime() <= now);
      if (busy) {
        await woken.wait(live);
        continue;
      }
      woken.cancel();
      if (waiting.length === 0) return summary('drained', live);
      const dueAt = Math.min(...waiting.map((job) => (job.runAt as Date).getTime()));
      if (steps >= maxSteps) return summary('maxSteps', live);
      if (untilMs !== null && dueAt - startedAt > untilMs) return summary('untilMs', live);
      steps++;
      clock.advance(dueAt - now);
    }
  } finally {
    runtime.events.off('job:transition', onTransition);
    runtime.events.off('runtime:crashed', onCrash);
  }
}

// liveJobs reads every running or waiting job (of `tasks`) through the admin API, page by page.
async function liveJobs(runtime: Runtime, tasks: readonly string[] | undefined): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const task of tasks ?? [undefined]) {
    let cursor: string | null = null;
    do {
      const page = await runtime.listJobs({ state: LIVE_STATES, task, limit: 1000, cursor });
      jobs.push(...page.jobs);
      cursor = page.nextCursor;
    } while (cursor !== null);
  }
  return jobs;
}

interface Wake {
  /** wait resolves at the first waking event since nextWake, or rejects after the stall timeout. */
  wait(live: Job[]): Promise<void>;
  /** cancel stops listening without waiting. */
  cancel(): void;
}

// nextWake listens for the runtime's next waking event. The stall timer is real time on purpose:
// it measures the runtime doing nothing, which no simulated clock would notice.
function nextWake(runtime: Runtime, stallTimeoutMs: number): Wake {
  let woken = false;
  let onWake: () => void = () => undefined;
  const listener = () => {
    woken = true;
    onWake();
  };
  const events = runtime.events;
  const on = (name: keyof RuntimeEventMap) => events.on(name, listener);
  const off = (name: keyof RuntimeEventMap) => events.off(name, listener);
  for (const name of WAKING_EVENTS) on(name);
  const cancel = () => {
    for (const name of WAKING_EVENTS) off(name);
  };
  return {
    cancel,
    wait: (live) =>
      new Promise<void>((resolve, reject) => {
        if (woken) {
          cancel();
          resolve();
          return;
        }
        const timer = setTimeout(() => {
          cancel();
          reject(new DrainStalledError(stallTimeoutMs, live));
        }, stallTimeoutMs);
        onWake = () => {
          clearTimeout(timer);
          cancel();
          resolve();
        };
      }),
  };
}

function countFinished(lastState: ReadonlyMap<string, JobState>): FinishedCounts {
  const counts: FinishedCounts = { succeeded: 0, failed: 0, cancelled: 0, expired: 0, removed: 0 };
  for (const state of lastState.values()) {
    if (state in counts) counts[state as keyof FinishedCounts]++;
  }
  return counts;
}

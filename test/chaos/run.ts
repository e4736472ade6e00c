/**
 * One scenario run, the same skeleton for every scenario: a fresh schema with the backlog enqueued,
 * three worker processes draining it, the scenario's faults once the drain is under way, then the
 * wait for every job to finish (noting what is stuck 30 s after the last fault and what is lost at
 * the end), and the measurements. A deadline turns a hang into a reported failure, and whatever
 * happens the workers are stopped and the schema dropped.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { createRuntime } from '../../src/index.js';
import type { Admin, JobFacts, StateGroup } from './admin.js';
import {
  analyzeKills,
  analyzeReruns,
  type Fault,
  type Kill,
  type KillRecovery,
  type RerunAnalysis,
} from './analysis.js';
import { Fleet, type WorkerRecord } from './fleet.js';
import { RUN_DIR_PREFIX } from './leftovers.js';
import { type ChaosOptions, type ScenarioId, STUCK_AFTER_MS, WORKER_SETTINGS } from './options.js';
import type { ChaosServer } from './server.js';
import { readWorkLogs } from './worklog.js';

/** POLL_MS is how often the harness reads the database while it waits for a condition. */
const POLL_MS = 100;
/** ENQUEUE_BATCH is how many jobs one enqueueMany inserts. */
const ENQUEUE_BATCH = 1_000;

/** RunContext is what a scenario's fault script works with. */
export interface RunContext {
  server: ChaosServer;
  admin: Admin;
  fleet: Fleet;
  schema: string;
  options: ChaosOptions;
  /** signal fires at the run's deadline; every wait of a script must honour it. */
  signal: AbortSignal;
  /** fault runs `inject` as one recorded fault, from its start to its end; inject may return a detail. */
  fault(kind: Fault['kind'], inject: () => Promise<string | undefined>): Promise<void>;
  /**
   * kill waits until the worker in `slot` holds jobs, SIGKILLs it, replaces it, and follows how its
   * jobs are taken back.
   */
  kill(slot: number): Promise<void>;
  /** pause spaces faults in time (the one place a script sleeps), cut short by the deadline. */
  pause(ms: number): Promise<void>;
}

/** Scenario is one scenario's fault script and how to run it. */
export interface Scenario {
  id: ScenarioId;
  /** describe says in a line what the scenario does, with the sizes it runs with. */
  describe(options: ChaosOptions): string;
  /** startAt is the share of the backlog finished before the first fault, so it lands mid-drain. */
  startAt: number;
  /** repetitions is how many times it runs, each in a fresh schema. */
  repetitions(options: ChaosOptions): number;
  /** extraDeadlineMs is added to the run's deadline (an outage's own length). */
  extraDeadlineMs(options: ChaosOptions): number;
  /** inject runs the faults. */
  inject(ctx: RunContext): Promise<void>;
}

/** RunResult is everything measured in one scenario run. */
export interface RunResult {
  scenario: ScenarioId;
  repetition: number;
  description: string;
  schema: string;
  jobs: number;
  startedAt: number;
  /** drainStartedAt is when the workers were started on the full backlog. */
  drainStartedAt: number | null;
  faults: Fault[];
  lastFaultEndedAt: number | null;
  /** unfinishedAfterFaults is how many jobs were not finished when the faults were over: the rest of the drain. */
  unfinishedAfterFaults: number | null;
  /** finishedAt is when every job was seen finished; null if that never happened before the deadline. */
  finishedAt: number | null;
  /** recoveryMs is from the end of the last fault to every job finished. */
  recoveryMs: number | null;
  /** stuck groups the jobs not finished STUCK_AFTER_MS after the last fault (empty if none). */
  stuck: StateGroup[];
  stuckJobs: number;
  /** lost is how many jobs had not succeeded when the run gave up waiting (or all finished); null if cut short. */
  lost: number | null;
  /** notSucceeded is how many jobs had not succeeded at the end, even in a run cut short. */
  notSucceeded: number | null;
  facts: Omit<JobFacts, 'attemptsById' | 'interruptionsById' | 'stateById'> | null;
  reruns: RerunAnalysis | null;
  kills: KillRecovery[];
  workers: WorkerRecord[];
  unexpectedExits: number;
  uncleanStops: number;
  runtimeErrors: Record<string, number>;
  /** error says why the run failed as a harness run (its deadline, a setup failure), if it did. */
  error: string | null;
  /** runDir keeps the worker logs when --keep-logs was given. */
  runDir: string | null;
}

// runDirs holds the work-log directories of runs in progress, for the harness's exit handler.
const runDirs = new Set<string>();

/** removeRunDirsNow deletes the directories of runs in progress; for exit handlers (synchronous). */
export function removeRunDirsNow(): void {
  for (const dir of runDirs) rmSync(dir, { recursive: true, force: true });
}

/** KILL_TARGET_MS is the promise for a killed worker's jobs: consumer timeout plus one heartbeat. */
export const KILL_TARGET_MS = WORKER_SETTINGS.consumerTimeoutMs + WORKER_SETTINGS.heartbeatIntervalMs;

/** runScenario runs one repetition of a scenario and measures it; it reports failures, it does not throw them. */
export async function runScenario(
  scenario: Scenario,
  repetition: number,
  env: {
    server: ChaosServer;
    admin: Admin;
    options: ChaosOptions;
    signal: AbortSignal;
    say: (s: string) => void;
  },
): Promise<RunResult> {
  const { server, admin, options, say } = env;
  const jobs = options.sizes.jobs;
  const schema = `chaos_${scenario.id}_${repetition}_${randomBytes(3).toString('hex')}`;
  // The harness's pid in the name lets a later harness delete what this one leaves if it is killed;
  // kept logs are named apart so that nothing deletes them.
  const runDir = mkdtempSync(
    join(
      tmpdir(),
      options.keepLogs
        ? `jobchart-chaos-logs-${scenario.id}-`
        : `${RUN_DIR_PREFIX}${process.pid}-${scenario.id}-`,
    ),
  );
  if (!options.keepLogs) runDirs.add(runDir);
  const deadlineMs = options.sizes.runDeadlineMs + scenario.extraDeadlineMs(options);
  // ending fires at the deadline, on Ctrl-C, or when the run is over (it stops the followers of
  // killed workers). One controller with a timer of its own, because AbortSignal.any holds its
  // sources weakly in Node 20 and an AbortSignal.timeout nobody else holds can be collected unfired.
  const ending = new AbortController();
  let deadlinePassed = false;
  const deadline = setTimeout(() => {
    deadlinePassed = true;
    ending.abort(new Error('deadline'));
  }, deadlineMs);
  const onInterrupt = () => ending.abort(new Error('interrupted'));
  env.signal.addEventListener('abort', onInterrupt, { once: true });
  if (env.signal.aborted) onInterrupt();
  const signal = ending.signal;
  const result: RunResult = {
    scenario: scenario.id,
    repetition,
    description: scenario.describe(options),
    schema,
    jobs,
    startedAt: Date.now(),
    drainStartedAt: null,
    faults: [],
    lastFaultEndedAt: null,
    unfinishedAfterFaults: null,
    finishedAt: null,
    recoveryMs: null,
    stuck: [],
    stuckJobs: 0,
    lost: null,
    notSucceeded: null,
    facts: null,
    reruns: null,
    kills: [],
    workers: [],
    unexpectedExits: 0,
    uncleanStops: 0,
    runtimeErrors: {},
    error: null,
    runDir: options.keepLogs ? runDir : null,
  };
  const fleet = new Fleet({
    url: server.url,
    schema,
    runDir,
    workMs: options.workMs,
    heartbeatIntervalMs: WORKER_SETTINGS.heartbeatIntervalMs,
    consumerTimeoutMs: WORKER_SETTINGS.consumerTimeoutMs,
    maxRunningJobs: WORKER_SETTINGS.maxRunningJobs,
    admin,
    signal,
  });
  const kills: Kill[] = [];
  const followers: Promise<void>[] = [];
  let phase = 'setting up';
  try {
    await enqueueBacklog(server.url, schema, jobs);
    fleet.startAll(WORKER_SETTINGS.workers);
    result.drainStartedAt = Date.now();
    phase = `the drain to reach ${Math.round(scenario.startAt * 100)} % before the first fault`;
    await until(signal, async () => (await admin.progress(schema)).finished >= jobs * scenario.startAt);
    phase = 'the faults';
    say(`${scenario.id} #${repetition}: injecting faults`);
    const ctx: RunContext = {
      server,
      admin,
      fleet,
      schema,
      options,
      signal,
      fault: async (kind, inject) => {
        const doneBefore = await admin.progress(schema).then(
          (p) => p.finished / p.total,
          () => null,
        );
        const startedAt = Date.now();
        const detail = (await inject()) ?? '';
        result.faults.push({ kind, startedAt, endedAt: Date.now(), detail, doneBefore });
      },
      kill: async (slot) => {
        // A replacement takes about a second to boot on a busy machine; killed before it claims, it
        // would hold nothing and the kill would measure nothing. So the kill waits until the victim
        // holds jobs (a few seconds at most: a victim that never claims is killed all the same).
        const victim = fleet.nameOf(slot);
        await until(signal, async () => (await admin.heldBy(schema, victim)) > 0, Date.now() + 5_000);
        await ctx.fault('kill', async () => {
          const killed = await fleet.kill(slot);
          if (!killed) return `slot ${slot} had already exited: no kill`;
          const kill: Kill = { ...killed, heldInDb: null, takenBackMs: null };
          kills.push(kill);
          followers.push(followKill(admin, schema, kill, signal));
          return `${killed.victim} → ${killed.replacement}`;
        });
      },
      pause: (ms) => delay(ms, undefined, { signal }),
    };
    await scenario.inject(ctx);
    const lastFaultEndedAt =
      result.faults.length > 0 ? Math.max(...result.faults.map((f) => f.endedAt)) : Date.now();
    result.lastFaultEndedAt = lastFaultEndedAt;
    const left = await admin.retrying(() => admin.progress(schema), signal);
    result.unfinishedAfterFaults = left.total - left.finished;
    say(`${scenario.id} #${repetition}: faults over; waiting for every job to finish`);
    phase = 'every job to finish';
    const allFinished = async () => {
      const p = await admin.progress(schema);
      return p.finished === p.total;
    };
    if (await until(signal, allFinished, lastFaultEndedAt + STUCK_AFTER_MS)) result.finishedAt = Date.now();
    else {
      result.stuck = await admin.retrying(() => admin.unfinished(schema), signal);
      result.stuckJobs = result.stuck.reduce((n, g) => n + g.jobs, 0);
      say(
        `${scenario.id} #${repetition}: ${result.stuckJobs} jobs stuck ${STUCK_AFTER_MS / 1000} s after the last fault; waiting up to ${options.sizes.lostAfterMs / 1000} s`,
      );
      if (await until(signal, allFinished, lastFaultEndedAt + options.sizes.lostAfterMs))
        result.finishedAt = Date.now();
    }
    if (result.finishedAt !== null) result.recoveryMs = result.finishedAt - lastFaultEndedAt;
  } catch (error) {
    result.error = signal.aborted
      ? `${deadlinePassed ? `deadline of ${deadlineMs / 1000} s passed` : 'interrupted'} while waiting for ${phase}`
      : `failed during ${phase}: ${error instanceof Error ? error.message : String(error)}`;
    say(`${scenario.id} #${repetition}: ${result.error}`);
  } finally {
    // A run cut short mid-outage left the server down: workers stop cleanly (their outcomes written)
    // and the final state can be read only with it up.
    await server.up().catch((error: unknown) => say(`could not start the server again: ${String(error)}`));
    await fleet.stopAll();
    clearTimeout(deadline);
    env.signal.removeEventListener('abort', onInterrupt);
    ending.abort(new Error('run over'));
    await Promise.allSettled(followers);
  }
  await measure(result, { admin, fleet, kills, runDir, schema });
  if (!options.keepLogs) rmSync(runDir, { recursive: true, force: true });
  runDirs.delete(runDir);
  return result;
}

// measure fills in what the database and the work logs say once the workers are gone. The database
// may be unreachable if the run failed mid-outage: then it is given a few seconds and skipped.
async function measure(
  result: RunResult,
  {
    admin,
    fleet,
    kills,
    runDir,
    schema,
  }: { admin: Admin; fleet: Fleet; kills: Kill[]; runDir: string; schema: string },
): Promise<void> {
  result.workers = fleet.records;
  result.unexpectedExits = fleet.unexpectedExits.length;
  result.uncleanStops = fleet.uncleanStops.length;
  result.runtimeErrors = fleet.errorTotals();
  const { runs, malformed } = readWorkLogs(runDir);
  result.kills = analyzeKills(runs, kills, KILL_TARGET_MS);
  try {
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(new Error('the database did not answer')), 15_000);
    const facts = await admin
      .retrying(() => admin.facts(schema), giveUp.signal)
      .finally(() => clearTimeout(timer));
    const { attemptsById: _ids, interruptionsById: _interrupted, stateById: _states, ...shown } = facts;
    result.facts = shown;
    result.notSucceeded = result.jobs - (facts.states.succeeded ?? 0);
    // A run cut short (deadline, Ctrl-C) stopped waiting early: its unfinished jobs are not lost.
    if (result.error === null) result.lost = result.notSucceeded;
    const exitedAt = new Map(fleet.records.map((r) => [r.name, r.exitedAt ?? Number.POSITIVE_INFINITY]));
    result.reruns = analyzeReruns(runs, malformed, facts, result.faults, exitedAt);
    await admin.dropSchema(schema);
  } catch (error) {
    result.error ??= `could not read the final state: ${error instanceof Error ? error.message : String(error)}`;
  }
}

// enqueueBacklog migrates the fresh schema with a producer runtime (no tasks: it works nothing) and
// enqueues the backlog in batches, before any worker starts, so every run drains the same backlog.
async function enqueueBacklog(url: string, schema: string, jobs: number): Promise<void> {
  const producer = createRuntime({ connectionString: url, schema, logger: pino({ level: 'silent' }) });
  await producer.start();
  try {
    for (let i = 0; i < jobs; i += ENQUEUE_BATCH) {
      const size = Math.min(ENQUEUE_BATCH, jobs - i);
      await producer.enqueueMany(Array.from({ length: size }, () => ({ task: 'work' })));
    }
  } finally {
    await producer.stop();
  }
}

// followKill reads how many jobs the database had running for a killed worker, then polls until
// none are left (the sweep took them back). Reads that fail (another fault) are retried.
async function followKill(admin: Admin, schema: string, kill: Kill, signal: AbortSignal): Promise<void> {
  try {
    kill.heldInDb = await admin.retrying(() => admin.heldBy(schema, kill.victim), signal);
    await until(signal, async () => (await admin.heldBy(schema, kill.victim)) === 0);
    kill.takenBackMs = Date.now() - kill.at;
  } catch {
    // The run ended (or hit its deadline) before the victim's jobs were taken back: left null.
  }
}

/**
 * until polls `check` every POLL_MS until it holds (true) or the wall time passes `giveUpAt` (false).
 * A failed check (the database is down) counts as not yet. The signal aborts it with an error.
 */
async function until(
  signal: AbortSignal,
  check: () => Promise<boolean>,
  giveUpAt = Number.POSITIVE_INFINITY,
): Promise<boolean> {
  for (;;) {
    signal.throwIfAborted();
    if (await check().catch(() => false)) return true;
    if (Date.now() >= giveUpAt) return false;
    await delay(POLL_MS, undefined, { signal });
  }
}

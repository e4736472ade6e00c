/**
 * What the work logs say about a run, set against its faults and the database's final word: which
 * jobs ran more than once and why, whether two runs of a job overlapped, whether every run spent an
 * attempt or had it refunded by an interruption, and, for each kill, how long the victim's
 * interrupted jobs waited for another worker.
 */
import type { JobFacts } from './admin.js';
import { FAULT_WINDOW_AFTER_MS, FAULT_WINDOW_BEFORE_MS } from './options.js';
import type { Run, RunsByJob } from './worklog.js';

/** Fault is one injected fault, from when it began to when it was over (the server back, the process gone). */
export interface Fault {
  kind: 'kill' | 'crash' | 'outage' | 'terminate';
  startedAt: number;
  endedAt: number;
  /** detail says what was done (victim, backends terminated...). */
  detail: string;
  /** doneBefore is the share of jobs finished when it began, to show it landed mid-drain (null if unread). */
  doneBefore: number | null;
}

/** Kill is one SIGKILL of the kill scenario, with what the database said about the victim. */
export interface Kill {
  victim: string;
  replacement: string;
  at: number;
  /** heldInDb is how many jobs were running for the victim once it was gone (prefetched ones included). */
  heldInDb: number | null;
  /** takenBackMs is when, after the kill, no job was running for the victim any more (null: never seen). */
  takenBackMs: number | null;
}

/** RerunExample shows one suspicious re-run in the report. */
export interface RerunExample {
  jobId: string;
  first: string;
  next: string;
}

/** RerunAnalysis classifies every run of a job that was followed by another run of it. */
export interface RerunAnalysis {
  jobsStarted: number;
  jobsNeverStarted: number;
  jobsRunMoreThanOnce: number;
  extraRuns: number;
  /**
   * interrupted: the earlier run never ended (its process died, or the runtime aborted it): expected.
   * byInterruption counts those whose re-run had the attempt refunded by an interruption.
   */
  interrupted: {
    runs: number;
    processDied: number;
    aborted: number;
    abortReasons: Record<string, number>;
    byInterruption: number;
  };
  /**
   * outcomeLost: the earlier run ended normally and the job ran again anyway. Legitimate only when a
   * fault hit between the handler's end and its outcome's write, so it is split by whether the end
   * fell in a fault's window; far from every fault it is a duplicate the runtime caused by itself.
   * byInterruption counts those whose re-run had the attempt refunded by an interruption (the
   * process died before writing the outcome, and the sweep took the job back).
   */
  outcomeLost: {
    runs: number;
    nearFault: number;
    farFromFault: number;
    byInterruption: number;
    examples: RerunExample[];
  };
  /** concurrent: a run started while an earlier run of the same job was still going (two holders at once). */
  concurrent: { runs: number; examples: RerunExample[] };
  /**
   * attemptNotSpent: a re-run whose attempt number was not above the earlier run's: its attempt was
   * refunded. byInterruption counts those the job's interruptions account for (each refunds one
   * attempt); the examples show only the others, refunds nothing in the database explains.
   */
  attemptNotSpent: { runs: number; byInterruption: number; examples: RerunExample[] };
  /**
   * runsBeyondAttempts: jobs whose logged runs outnumber their final attempts plus interruptions
   * counters. An interruption refunds the attempt of a job taken back from a dead consumer, so that
   * job may run again with the same attempt number; a RELEASE refunds one too, but of a job whose
   * handler never started, so it adds no run.
   */
  runsBeyondAttempts: number;
  /** interruptions sums up the jobs' interruptions counters. */
  interruptions: {
    /** jobs is how many jobs were interrupted at least once; total sums their counters. */
    jobs: number;
    total: number;
    max: number;
    /** rerunsExplained is how many re-runs an interruption accounts for (the sum of the byInterruption counts). */
    rerunsExplained: number;
  };
  /** succeededWithoutEnd: jobs succeeded in the database though no run of theirs ended in the logs. */
  succeededWithoutEnd: number;
  malformedLines: number;
}

/** KillRecovery is how one kill's interrupted jobs were picked up again. */
export interface KillRecovery extends Kill {
  /** interruptedRuns is how many jobs the victim had STARTed and not ENDed. */
  interruptedRuns: number;
  restarted: number;
  neverRestarted: number;
  /** maxRestartMs is the time from the kill to the last of them starting in another process. */
  maxRestartMs: number | null;
  medianRestartMs: number | null;
  overTarget: number;
}

/** Windows turns faults into the windows in which a lost outcome is legitimate. */
function windowsOf(faults: readonly Fault[]): [number, number][] {
  return faults.map((f) => [f.startedAt - FAULT_WINDOW_BEFORE_MS, f.endedAt + FAULT_WINDOW_AFTER_MS]);
}

const MAX_EXAMPLES = 5;

/**
 * analyzeReruns walks each job's runs in start order. `exitedAt` maps a worker to when its process
 * ended, which is when a run that never logged an end stopped going.
 */
export function analyzeReruns(
  runs: RunsByJob,
  malformedLines: number,
  facts: JobFacts,
  faults: readonly Fault[],
  exitedAt: ReadonlyMap<string, number>,
): RerunAnalysis {
  const windows = windowsOf(faults);
  const nearFault = (at: number) => windows.some(([from, to]) => at >= from && at <= to);
  const show = (run: Run) =>
    `${run.worker}#${run.attempt} ${iso(run.startedAt)}→${run.endedAt ? `end ${iso(run.endedAt)}` : run.abortedAt ? `abort ${iso(run.abortedAt)}` : 'no end'}`;
  const a: RerunAnalysis = {
    jobsStarted: runs.size,
    jobsNeverStarted: 0,
    jobsRunMoreThanOnce: 0,
    extraRuns: 0,
    interrupted: { runs: 0, processDied: 0, aborted: 0, abortReasons: {}, byInterruption: 0 },
    outcomeLost: { runs: 0, nearFault: 0, farFromFault: 0, byInterruption: 0, examples: [] },
    concurrent: { runs: 0, examples: [] },
    attemptNotSpent: { runs: 0, byInterruption: 0, examples: [] },
    runsBeyondAttempts: 0,
    interruptions: { jobs: 0, total: 0, max: 0, rerunsExplained: 0 },
    succeededWithoutEnd: 0,
    malformedLines,
  };
  const interruptionsOf = (id: string) => facts.interruptionsById.get(id) ?? 0;
  for (const [id, state] of facts.stateById) {
    const list = runs.get(id);
    const interruptions = interruptionsOf(id);
    if (!list) a.jobsNeverStarted++;
    if (state === 'succeeded' && !list?.some((r) => r.endedAt !== undefined)) a.succeededWithoutEnd++;
    if (list && list.length > (facts.attemptsById.get(id) ?? 0) + interruptions) a.runsBeyondAttempts++;
    if (interruptions > 0) a.interruptions.jobs++;
    a.interruptions.total += interruptions;
    a.interruptions.max = Math.max(a.interruptions.max, interruptions);
  }
  for (const [jobId, list] of runs) {
    if (list.length < 2) continue;
    a.jobsRunMoreThanOnce++;
    a.extraRuns += list.length - 1;
    // refunds left: each interruption refunded one attempt, so it accounts for one re-run that
    // kept the earlier run's attempt number (one taken back before its handler started, none).
    let refunds = interruptionsOf(jobId);
    for (let i = 0; i + 1 < list.length; i++) {
      const prev = list[i] as Run;
      const next = list[i + 1] as Run;
      const example = { jobId, first: show(prev), next: show(next) };
      let byInterruption = false;
      if (next.attempt <= prev.attempt) {
        a.attemptNotSpent.runs++;
        if (refunds > 0) {
          refunds--;
          byInterruption = true;
          a.attemptNotSpent.byInterruption++;
          a.interruptions.rerunsExplained++;
        } else if (a.attemptNotSpent.examples.length < MAX_EXAMPLES) a.attemptNotSpent.examples.push(example);
      }
      if (prev.endedAt === undefined) {
        a.interrupted.runs++;
        if (byInterruption) a.interrupted.byInterruption++;
        if (prev.abortedAt === undefined) a.interrupted.processDied++;
        else {
          a.interrupted.aborted++;
          const reason = prev.abortReason ?? 'unknown';
          a.interrupted.abortReasons[reason] = (a.interrupted.abortReasons[reason] ?? 0) + 1;
        }
      } else {
        a.outcomeLost.runs++;
        if (byInterruption) a.outcomeLost.byInterruption++;
        if (nearFault(prev.endedAt)) a.outcomeLost.nearFault++;
        else {
          a.outcomeLost.farFromFault++;
          if (a.outcomeLost.examples.length < MAX_EXAMPLES) a.outcomeLost.examples.push(example);
        }
      }
      const prevUntil =
        prev.endedAt ?? prev.abortedAt ?? exitedAt.get(prev.worker) ?? Number.POSITIVE_INFINITY;
      if (next.startedAt < prevUntil) {
        a.concurrent.runs++;
        if (a.concurrent.examples.length < MAX_EXAMPLES) a.concurrent.examples.push(example);
      }
    }
  }
  return a;
}

/**
 * analyzeKills finds, for each kill, the runs the victim STARTed and never ENDed, and when each job
 * started next in another process; `targetMs` is the promise (consumer timeout plus a heartbeat).
 */
export function analyzeKills(runs: RunsByJob, kills: readonly Kill[], targetMs: number): KillRecovery[] {
  const byWorker = new Map<string, Run[]>();
  for (const list of runs.values())
    for (const run of list) {
      const own = byWorker.get(run.worker);
      if (own) own.push(run);
      else byWorker.set(run.worker, [run]);
    }
  return kills.map((kill) => {
    const cut = (byWorker.get(kill.victim) ?? []).filter(
      (r) => r.endedAt === undefined && r.abortedAt === undefined,
    );
    const delays: number[] = [];
    for (const run of cut) {
      const next = runs.get(run.jobId)?.find((r) => r.worker !== kill.victim && r.startedAt > run.startedAt);
      if (next) delays.push(Math.max(0, next.startedAt - kill.at));
    }
    delays.sort((x, y) => x - y);
    return {
      ...kill,
      interruptedRuns: cut.length,
      restarted: delays.length,
      neverRestarted: cut.length - delays.length,
      maxRestartMs: delays.length > 0 ? (delays[delays.length - 1] as number) : null,
      medianRestartMs: delays.length > 0 ? (delays[Math.floor(delays.length / 2)] as number) : null,
      overTarget: delays.filter((d) => d > targetMs).length,
    };
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

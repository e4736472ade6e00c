/**
 * The chaos report: a verdict per run (what jobchart promised and did not keep), a summary table, and
 * each run's details, as markdown (printed and written to bench/results/chaos.md) and as JSON with
 * every measurement (bench/results/chaos.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type ChaosOptions, STUCK_AFTER_MS, type WORKER_SETTINGS } from './options.js';
import { KILL_TARGET_MS, type RunResult } from './run.js';

/** Machine describes where a report was measured. */
export interface Machine {
  node: string;
  postgres: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
}

/** ChaosReport is the whole result of one harness invocation. */
export interface ChaosReport {
  startedAt: string;
  durationMs: number;
  mode: ChaosOptions['mode'];
  options: Omit<ChaosOptions, 'mode'>;
  workerSettings: typeof WORKER_SETTINGS & { prefetch: 'auto' };
  machine: Machine;
  runs: RunResult[];
  /** error is a failure of the harness outside any run (its server would not start...). */
  error: string | null;
}

/**
 * problemsOf lists what a run shows jobchart got wrong, each as a short phrase; an empty list is a
 * pass. Interrupted re-runs and lost outcomes inside a fault's window are at-least-once delivery,
 * not problems.
 */
export function problemsOf(run: RunResult): string[] {
  const problems: string[] = [];
  if (run.error) problems.push(`harness: ${run.error}`);
  if (run.lost) problems.push(`${run.lost} lost`);
  if (run.stuckJobs > 0) problems.push(`${run.stuckJobs} stuck after ${STUCK_AFTER_MS / 1000} s`);
  const r = run.reruns;
  if (r?.outcomeLost.farFromFault)
    problems.push(`${r.outcomeLost.farFromFault} duplicate runs far from any fault`);
  if (r?.concurrent.runs) problems.push(`${r.concurrent.runs} runs overlapping an earlier run of the job`);
  if (r?.runsBeyondAttempts)
    problems.push(`${r.runsBeyondAttempts} jobs ran more times than their attempts and interruptions say`);
  const failed = run.facts?.states.failed ?? 0;
  if (failed > 0) problems.push(`${failed} jobs failed`);
  if (r?.jobsNeverStarted && !run.lost) problems.push(`${r.jobsNeverStarted} jobs finished without running`);
  if (r?.succeededWithoutEnd)
    problems.push(`${r.succeededWithoutEnd} jobs succeeded though no run of theirs ended`);
  if (run.unexpectedExits > 0) problems.push(`${run.unexpectedExits} unexpected worker exits`);
  if (run.uncleanStops > 0) problems.push(`${run.uncleanStops} workers did not stop cleanly`);
  const slow = run.kills.reduce((n, k) => n + k.overTarget + k.neverRestarted, 0);
  if (slow > 0) problems.push(`${slow} killed-worker jobs not restarted within ${KILL_TARGET_MS / 1000} s`);
  return problems;
}

/** renderMarkdown renders a report for people. */
export function renderMarkdown(report: ChaosReport): string {
  const m = report.machine;
  const w = report.workerSettings;
  const out: string[] = [
    '# jobchart chaos report',
    '',
    `${report.mode === 'quick' ? 'Quick run (`--quick`)' : 'Full run'}, ${report.startedAt}, ${s(report.durationMs)} in all. ` +
      `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, embedded PostgreSQL ${m.postgres}.`,
    `Each run: ${w.workers} worker processes, maxRunningJobs ${w.maxRunningJobs}, prefetch ${w.prefetch}, heartbeat ${s(w.heartbeatIntervalMs)}, ` +
      `consumer timeout ${s(w.consumerTimeoutMs)}, handler ${report.options.workMs} ms; a fresh schema on a private server.`,
    `A re-run is *interrupted* when the earlier run never ended (expected), *outcome lost* when it ended and the job ran again: ` +
      `allowed only when the end fell in a fault's window (1 s before it to 5 s after it), a bug far from any fault. ` +
      `A job taken back from a dead consumer is *interrupted*: its attempt is refunded and its interruptions counter raised, so it may run again with the same attempt number; ` +
      `*by interruption* counts the re-runs that interruptions account for, and a job may run at most attempts + interruptions times. ` +
      `*Stuck*: not finished ${s(STUCK_AFTER_MS)} after the last fault. *Lost*: not succeeded when the run stopped waiting.`,
    '',
  ];
  if (report.error) out.push(`**Harness failure:** ${report.error}`, '');
  out.push(
    '| run | jobs | lost | stuck | re-runs interrupted | outcome lost (in window / far) | re-runs by interruption | overlapping | recovery | unexpected exits | runtime:error | max attempts | max interruptions | failed | verdict |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const run of report.runs) {
    const r = run.reruns;
    const problems = problemsOf(run);
    out.push(
      `| ${run.scenario} #${run.repetition} | ${run.jobs} | ${na(run.lost)} | ${run.stuckJobs} | ${na(r?.interrupted.runs)} | ` +
        `${r ? `${r.outcomeLost.nearFault} / ${r.outcomeLost.farFromFault}` : '–'} | ${r ? `${r.interruptions.rerunsExplained} of ${r.extraRuns}` : '–'} | ` +
        `${na(r?.concurrent.runs)} | ${run.recoveryMs === null ? 'never' : s(run.recoveryMs)} | ${run.unexpectedExits} | ${sum(run.runtimeErrors)} | ` +
        `${na(run.facts?.maxAttempts)} | ${na(run.facts?.maxInterruptions)} | ${run.facts?.states.failed ?? 0} | ` +
        `${problems.length === 0 ? 'pass' : `**${problems.join('; ')}**`} |`,
    );
  }
  for (const run of report.runs) out.push('', ...renderRun(run));
  return `${out.join('\n')}\n`;
}

function renderRun(run: RunResult): string[] {
  const t0 = run.drainStartedAt ?? run.startedAt;
  const out = [
    `## ${run.scenario} #${run.repetition}`,
    '',
    `${run.description} (schema \`${run.schema}\`).`,
    '',
  ];
  if (run.error) out.push(`**Run failed:** ${run.error}`, '');
  out.push('| fault | at | lasted | drain done before | detail |', '| --- | ---: | ---: | ---: | --- |');
  for (const f of run.faults)
    out.push(
      `| ${f.kind} | +${s(f.startedAt - t0)} | ${s(f.endedAt - f.startedAt)} | ${f.doneBefore === null ? '?' : `${Math.round(f.doneBefore * 100)} %`} | ${f.detail} |`,
    );
  out.push('');
  const finished =
    run.finishedAt === null
      ? 'Not every job finished before the run stopped waiting.'
      : `Every job finished ${s(run.finishedAt - t0)} after the drain began, ${s(run.recoveryMs ?? 0)} after the last fault ended` +
        (run.unfinishedAfterFaults === null
          ? '.'
          : ` (${run.unfinishedAfterFaults} jobs were unfinished then).`);
  out.push(
    `- ${finished} Lost: ${run.error ? `cut short with ${na(run.notSucceeded)} not succeeded` : na(run.lost)}. Final states: ${run.facts ? counts(run.facts.states) : 'unread'}.`,
  );
  if (run.stuck.length > 0)
    out.push(
      `- Stuck ${s(STUCK_AFTER_MS)} after the last fault: ${run.stuckJobs} jobs — ` +
        run.stuck
          .map(
            (g) =>
              `${g.jobs} ${g.state}${g.lockedBy ? ` held by ${g.lockedBy} (${g.holderAlive ? 'a live consumer' : 'no consumer row'})` : ''}, max attempts ${g.maxAttempts}`,
          )
          .join('; '),
    );
  const r = run.reruns;
  if (r) {
    out.push(
      `- Runs: ${r.jobsStarted} jobs started, ${r.jobsRunMoreThanOnce} ran more than once (${r.extraRuns} extra runs); ${r.jobsNeverStarted} never started.`,
      `- Re-runs after an interrupted run: ${r.interrupted.runs} (${r.interrupted.processDied} whose process died mid-run, ${r.interrupted.aborted} aborted by the runtime${r.interrupted.aborted ? `: ${counts(r.interrupted.abortReasons)}` : ''}); ${r.interrupted.byInterruption} of them with the attempt an interruption refunded.`,
      `- Re-runs after a run that finished (outcome lost): ${r.outcomeLost.runs}, ${r.outcomeLost.nearFault} ended within a fault's window, ${r.outcomeLost.farFromFault} far from any fault; ${r.outcomeLost.byInterruption} of them with the attempt an interruption refunded.`,
      `- Interruptions: ${r.interruptions.total} in ${r.interruptions.jobs} jobs (max ${r.interruptions.max} for one job); they account for ${r.interruptions.rerunsExplained} of the ${r.extraRuns} re-runs.`,
      `- Runs that began while an earlier run of the same job was still going: ${r.concurrent.runs}.`,
      `- Re-runs that did not spend an attempt: ${r.attemptNotSpent.runs} (${r.attemptNotSpent.byInterruption} refunded by an interruption, ${r.attemptNotSpent.runs - r.attemptNotSpent.byInterruption} unexplained); ` +
        `jobs that ran more times than their attempts and interruptions counters: ${r.runsBeyondAttempts}; succeeded without a logged end: ${r.succeededWithoutEnd}.`,
    );
    for (const [label, examples] of [
      ['far-from-fault duplicate', r.outcomeLost.examples],
      ['overlapping run', r.concurrent.examples],
      ['attempt not spent, no interruption', r.attemptNotSpent.examples],
    ] as const)
      for (const e of examples) out.push(`  - ${label}: job ${e.jobId}: ${e.first}, then ${e.next}`);
    if (r.malformedLines) out.push(`- ${r.malformedLines} unreadable work-log lines.`);
  }
  if (run.facts) {
    out.push(
      `- Attempts: max ${run.facts.maxAttempts}; jobs by attempts ${counts(run.facts.attemptsHistogram)}. ` +
        `Interruptions: max ${run.facts.maxInterruptions}; jobs by interruptions ${counts(run.facts.interruptionsHistogram)}. Failed: ${run.facts.states.failed ?? 0}.`,
    );
    for (const e of run.facts.failedErrors) out.push(`  - failed (${e.jobs}): ${oneLine(e.lastError)}`);
  }
  const listener = listenerLine(run);
  if (listener) out.push(listener);
  out.push(
    `- runtime:error events: ${sum(run.runtimeErrors) === 0 ? 'none' : counts(run.runtimeErrors)}.`,
    `- Worker processes: ${run.workers.length} (${run.workers.map((w) => `${w.name}${w.reason ? ` ${w.reason}` : ''}`).join(', ')}).`,
  );
  if (run.kills.length > 0) {
    out.push(
      '',
      `| kill | victim | running in db | started, not ended | restarted elsewhere | median / max to restart | over ${s(KILL_TARGET_MS)} | all taken back |`,
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const k of run.kills)
      out.push(
        `| +${s(k.at - t0)} | ${k.victim} | ${na(k.heldInDb)} | ${k.interruptedRuns} | ${k.restarted}${k.neverRestarted ? ` (**${k.neverRestarted} never**)` : ''} | ` +
          `${k.medianRestartMs === null ? '–' : s(k.medianRestartMs)} / ${k.maxRestartMs === null ? '–' : s(k.maxRestartMs)} | ${k.overTarget} | ` +
          `${k.takenBackMs === null ? 'not seen' : s(k.takenBackMs)} |`,
      );
  }
  const bad = run.workers.filter(
    (w) => w.reason === 'unexpected' || (w.reason === 'stopped' && w.code !== 0),
  );
  for (const w of bad) {
    out.push(
      '',
      `**${w.name} ${w.reason === 'unexpected' ? 'exited unexpectedly' : 'did not stop cleanly'}** at +${s((w.exitedAt ?? t0) - t0)} ` +
        `(code ${w.code}, signal ${w.signal}); stderr ends:`,
      '',
      '```',
      ...(w.stderrTail ?? []),
      '```',
    );
  }
  return out;
}

// listenerLine says whether the workers that lived to the end got their LISTEN connection back
// after losing it: without it they wake only on the poll timer, which the drain figures hide.
function listenerLine(run: RunResult): string | null {
  const survivors = run.workers.filter((w) => w.reason === 'stopped' && w.stats?.lastDisconnectedAt);
  if (survivors.length === 0) return null;
  const down = survivors.filter((w) => (w.stats?.lastConnectedAt ?? 0) < (w.stats?.lastDisconnectedAt ?? 0));
  const faultEnd = run.lastFaultEndedAt ?? Number.POSITIVE_INFINITY;
  const backAfterFault = survivors
    .map((w) => w.stats?.lastConnectedAt ?? 0)
    .filter((at) => at >= faultEnd)
    .map((at) => at - faultEnd);
  const last =
    backAfterFault.length > 0
      ? ` (the last ${s(Math.max(...backAfterFault))} after the last fault ended)`
      : '';
  return (
    `- LISTEN connection lost by ${survivors.length} workers that lived to the end: back in ${survivors.length - down.length}${last}` +
    (down.length > 0 ? `; **still down when stopped: ${down.map((w) => w.name).join(', ')}**.` : '.')
  );
}

/** writeReport writes the JSON and the markdown next to each other. */
export function writeReport(report: ChaosReport, jsonPath: string, markdownPath: string): void {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(markdownPath, renderMarkdown(report));
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function na(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : String(value);
}

function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

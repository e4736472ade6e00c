/**
 * `npm run chaos`: measures how jobchart behaves under faults. It starts a private PostgreSQL (never
 * DATABASE_URL: it crashes and stops the server), runs each chosen scenario against worker processes
 * draining a backlog, prints the report and writes it to bench/results/chaos.{json,md}.
 *
 * Usage: npm run chaos -- [--quick] [--only=kill,crash,outage,terminate] [--jobs=N] [--work-ms=N]
 *   [--keep-logs] [--strict]
 *
 * Exit code: 1 if the harness itself failed (a run's deadline, Ctrl-C, a server that would not
 * start), or with --strict if any run showed a problem; else 0, whatever the runtime did.
 */
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { Admin } from './admin.js';
import { killAllWorkersNow } from './fleet.js';
import { removeLeftovers } from './leftovers.js';
import { type ChaosOptions, parseOptions, WORKER_SETTINGS } from './options.js';
import { type ChaosReport, problemsOf, renderMarkdown, writeReport } from './report.js';
import { type RunResult, removeRunDirsNow, runScenario } from './run.js';
import { SCENARIOS } from './scenarios.js';
import { ChaosServer } from './server.js';

// RESULTS is bench/results in the checkout: this file runs as dist/test/chaos/main.js.
const RESULTS = resolve(new URL('../../../bench/results', import.meta.url).pathname);

// say writes a progress line to stderr, so that stdout holds the report alone.
function say(text: string): void {
  process.stderr.write(`chaos ${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

async function main(options: ChaosOptions, interrupted: AbortSignal): Promise<ChaosReport> {
  const started = Date.now();
  const report: ChaosReport = {
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    mode: options.mode,
    options: {
      scenarios: options.scenarios,
      sizes: options.sizes,
      workMs: options.workMs,
      keepLogs: options.keepLogs,
      strict: options.strict,
    },
    workerSettings: { ...WORKER_SETTINGS, prefetch: 'auto' },
    machine: {
      node: process.versions.node,
      postgres: '?',
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '?',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    },
    runs: [],
    error: null,
  };
  removeLeftovers();
  say('starting a private PostgreSQL');
  const server = await ChaosServer.start();
  activeServer = server;
  const admin = new Admin(server.url);
  try {
    report.machine.postgres =
      (await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '?';
    for (const id of options.scenarios) {
      const scenario = SCENARIOS[id];
      for (let rep = 1; rep <= scenario.repetitions(options); rep++) {
        if (interrupted.aborted) break;
        say(`${id} #${rep}: ${scenario.describe(options)}`);
        const run: RunResult = await runScenario(scenario, rep, {
          server,
          admin,
          options,
          signal: interrupted,
          say,
        });
        report.runs.push(run);
        const problems = problemsOf(run);
        say(`${id} #${rep}: ${problems.length === 0 ? 'pass' : problems.join('; ')}`);
      }
    }
  } catch (error) {
    report.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
  } finally {
    await admin.end();
    await server.stop();
    activeServer = null;
  }
  if (interrupted.aborted) report.error ??= 'interrupted (SIGINT/SIGTERM)';
  report.durationMs = Date.now() - started;
  return report;
}

// activeServer is the server to quit from the exit handler if the harness dies before stopping it.
let activeServer: ChaosServer | null = null;

// Whatever way the process ends, no worker and no server outlives it: the exit handler can only do
// synchronous things, so it SIGKILLs the workers, SIGQUITs the server by its pid and deletes the
// directories it made.
process.on('exit', () => {
  killAllWorkersNow();
  activeServer?.stopNow();
  removeRunDirsNow();
});

const interrupt = new AbortController();
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    signals++;
    if (signals === 1) {
      say(`${signal}: stopping the current run, then cleaning up (again to quit at once)`);
      interrupt.abort(new Error(signal));
    } else process.exit(130);
  });

let options: ChaosOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}

main(options, interrupt.signal).then(
  (report) => {
    process.stdout.write(renderMarkdown(report));
    writeReport(report, resolve(RESULTS, 'chaos.json'), resolve(RESULTS, 'chaos.md'));
    say(`report written to ${resolve(RESULTS, 'chaos.md')} and chaos.json`);
    const harnessFailed = report.error !== null || report.runs.some((r) => r.error !== null);
    const problems = report.runs.some((r) => problemsOf(r).length > 0);
    process.exit(harnessFailed || (options.strict && problems) ? 1 : 0);
  },
  (error: unknown) => {
    process.stderr.write(`chaos harness failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

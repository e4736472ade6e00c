/**
 * `npm run bench:profile`: where a drain's time goes, for the target the benchmark cannot meet
 * (jobchart at 70 % of the raw-SQL loop on a minimal table). Three drains of the same backlog, each
 * in a fresh database, run every statement under auto_explain: the raw loop on the minimal table,
 * the same loop on jobchart's jobs table, and jobchart itself. Per statement it reports server
 * time, buffers and WAL per job, and the plan of a typical execution. A fourth drain, of jobchart
 * without auto_explain (after an unprofiled one to warm the code up), runs under the CPU profiler
 * and reports the worker's time by package and by function. Writes bench/results/profile.md (or
 * profile-partial.md for another backlog size) and prints it.
 *
 * Usage: DATABASE_URL=... node dist/bench/profile.js [--jobs=N]  (auto_explain needs a superuser)
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type pg from 'pg';
import { type CpuProfile, CpuProfiler } from './cpu-profile.js';
import { dropAllCreated, withFreshDatabase } from './database.js';
import { formatCount } from './format.js';
import { machineInfo } from './machine.js';
import { PlanCollector, renderPlan, type StatementProfile } from './plan-profile.js';
import { machineLine, RESULTS_DIR } from './report.js';
import { locateServer } from './server-cpu.js';
import { drainBacklog, enqueueNoops } from './systems/jobchart.js';
import { drainJobsTable, drainMinimalTable, fillMinimalTable, LOOPS } from './systems/raw-sql.js';
import type { DrainFigures } from './systems/system.js';

const USAGE = 'Usage: node dist/bench/profile.js [--jobs=N]';

/** DEFAULT_JOBS is the drain workload's backlog; other sizes write profile-partial.md instead. */
const DEFAULT_JOBS = 20_000;

/** MAX_RUNNING_JOBS is the concurrency the drain targets name. */
const MAX_RUNNING_JOBS = 10;

/** RUNTIME_CONNECTIONS is the size of the pool jobchart's runtime would make for itself. */
const RUNTIME_CONNECTIONS = 8;

/** PLANS_SHOWN is how many of a drain's costliest statements get their typical plan printed. */
const PLANS_SHOWN = 3;

/** TOP_FUNCTIONS is how many of the worker's functions the CPU profile lists. */
const TOP_FUNCTIONS = 15;

/** ExplainedDrain is one drain run under auto_explain. */
interface ExplainedDrain {
  title: string;
  figures: DrainFigures;
  statements: StatementProfile[];
}

function parseJobs(argv: readonly string[]): number {
  let jobs = DEFAULT_JOBS;
  for (const arg of argv) {
    const match = /^--jobs=([1-9][0-9]*)$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    jobs = Number(match[1]);
  }
  return jobs;
}

/**
 * explainDrain fills a fresh database with `fill`, then drains it with `drain` on a pool whose
 * statements are explained, keeping only the drain's statements.
 */
async function explainDrain(
  baseUrl: string,
  title: string,
  connections: number,
  fill: (url: string, pool: pg.Pool) => Promise<void>,
  drain: (url: string, pool: pg.Pool) => Promise<DrainFigures>,
): Promise<ExplainedDrain> {
  return withFreshDatabase(baseUrl, async (url) => {
    const collector = new PlanCollector();
    const pool = collector.explainingPool(url, connections);
    try {
      await fill(url, pool);
      collector.forget();
      const figures = await drain(url, pool);
      return { title, figures, statements: collector.statements() };
    } finally {
      await pool.end();
    }
  });
}

/** profileWorker drains once to warm the code up, then profiles a second drain of jobchart. */
async function profileWorker(
  baseUrl: string,
  jobs: number,
): Promise<{ figures: DrainFigures; cpu: CpuProfile }> {
  await withFreshDatabase(baseUrl, async (url) => {
    await enqueueNoops(url, jobs);
    await drainBacklog(url, jobs, MAX_RUNNING_JOBS);
  });
  return withFreshDatabase(baseUrl, async (url) => {
    await enqueueNoops(url, jobs);
    const profiler = new CpuProfiler();
    await profiler.start();
    const figures = await drainBacklog(url, jobs, MAX_RUNNING_JOBS);
    return { figures, cpu: await profiler.stop() };
  });
}

function perJob(total: number, jobs: number, digits = 1): string {
  return (total / jobs).toFixed(digits);
}

function renderExplained(drain: ExplainedDrain, jobs: number): string[] {
  const { figures, statements } = drain;
  const serverMs = statements.reduce((sum, s) => sum + s.durationMs, 0);
  const lines = [
    `### ${drain.title}`,
    '',
    `${formatCount(Math.round(figures.jobsPerSecond))} jobs/s under auto_explain; WAL ${figures.walBytes === null ? 'n/a' : perJob(figures.walBytes, jobs, 0)} bytes/job over the drain; server CPU ${figures.serverCpuMicros === null ? 'n/a' : perJob(figures.serverCpuMicros, jobs)} µs/job.`,
    '',
    '| statement | calls | ms per job ×1000 (µs) | buffers hit/job | dirtied/job | WAL records/job | WAL bytes/job | full pages |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...statements.map(
      (s) =>
        `| \`${abbreviate(s.text)}\` | ${formatCount(s.calls)} | ${perJob(s.durationMs * 1000, jobs)} | ${perJob(s.sharedHit, jobs)} | ${perJob(s.sharedDirtied, jobs, 2)} | ${perJob(s.walRecords, jobs, 2)} | ${perJob(s.walBytes, jobs, 0)} | ${formatCount(s.walFullPages)} |`,
    ),
    '',
    `Statement time summed: ${perJob(serverMs * 1000, jobs)} µs/job (a function's row includes the statements it runs, which have rows of their own).`,
    '',
  ];
  for (const s of statements.slice(0, PLANS_SHOWN)) {
    lines.push(
      `Typical plan of \`${abbreviate(s.text)}\` (${s.typicalDurationMs.toFixed(3)} ms):`,
      '',
      '```',
      ...renderPlan(s.typicalPlan),
      '```',
      '',
    );
  }
  return lines;
}

function abbreviate(text: string): string {
  const flat = text.replaceAll('|', '\\|').replaceAll('`', "'");
  return flat.length > 110 ? `${flat.slice(0, 107)}...` : flat;
}

function renderCpu(figures: DrainFigures, cpu: CpuProfile, jobs: number): string[] {
  const share = (micros: number) => `${((micros / cpu.totalMicros) * 100).toFixed(1)} %`;
  return [
    `### jobchart's worker under the CPU profiler (maxRunningJobs ${MAX_RUNNING_JOBS})`,
    '',
    `${formatCount(Math.round(figures.jobsPerSecond))} jobs/s; process CPU ${perJob(figures.workerCpuMicros, jobs)} µs/job (every thread); the main thread's samples (wall time while not idle) ${perJob(cpu.totalMicros, jobs)} µs/job.`,
    '',
    '| package | µs/job | share |',
    '| --- | ---: | ---: |',
    ...cpu.byPackage.map((p) => `| ${p.name} | ${perJob(p.micros, jobs, 2)} | ${share(p.micros)} |`),
    '',
    '| function (self time) | µs/job | share |',
    '| --- | ---: | ---: |',
    ...cpu.byFunction
      .slice(0, TOP_FUNCTIONS)
      .map((f) => `| \`${abbreviate(f.name)}\` | ${perJob(f.micros, jobs, 2)} | ${share(f.micros)} |`),
    '',
  ];
}

async function main(): Promise<void> {
  const jobs = parseJobs(process.argv.slice(2));
  const baseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test';
  const machine = await machineInfo(baseUrl);
  await locateServer(baseUrl);
  try {
    const explained = [
      await explainDrain(
        baseUrl,
        `Raw SQL loop on a minimal table (${LOOPS} loops)`,
        LOOPS,
        (_url, pool) => fillMinimalTable(pool, jobs),
        (url, pool) => drainMinimalTable(url, pool, jobs),
      ),
      await explainDrain(
        baseUrl,
        `Raw SQL loop on jobchart's jobs table (${LOOPS} loops)`,
        LOOPS,
        (url) => enqueueNoops(url, jobs).then(() => undefined),
        (url, pool) => drainJobsTable(url, pool, jobs),
      ),
      await explainDrain(
        baseUrl,
        `jobchart (maxRunningJobs ${MAX_RUNNING_JOBS})`,
        RUNTIME_CONNECTIONS,
        (url) => enqueueNoops(url, jobs).then(() => undefined),
        (url, pool) => drainBacklog(url, jobs, MAX_RUNNING_JOBS, pool),
      ),
    ];
    const worker = await profileWorker(baseUrl, jobs);
    const document = [
      `## Where a drain's time goes: ${formatCount(jobs)} no-op jobs`,
      '',
      machineLine(machine),
      '',
      'Every statement of the first three drains ran under auto_explain (EXPLAIN ANALYZE with BUFFERS and WAL, nested statements included), which slows them: compare their figures with each other, not with `npm run bench`. Produced by `npm run bench:profile`.',
      '',
      ...explained.flatMap((drain) => renderExplained(drain, jobs)),
      ...renderCpu(worker.figures, worker.cpu, jobs),
    ].join('\n');
    console.log(document);
    const path = resolve(RESULTS_DIR, jobs === DEFAULT_JOBS ? 'profile.md' : 'profile-partial.md');
    await writeFile(path, `${document}\n`);
    process.stderr.write(`wrote ${path}\n`);
  } finally {
    await dropAllCreated(baseUrl);
  }
}

await main();

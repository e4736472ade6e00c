/**
 * The benchmark's entry point: compares jobchart with graphile-worker, pg-boss, BullMQ on its
 * PostgreSQL backend and a raw-SQL ceiling on five workloads (drain, start latency, bulk enqueue,
 * drain over a large history, worker memory), prints a markdown table per workload and writes the
 * JSON results and an SVG chart to bench/results. Every database it creates is dropped, also on
 * Ctrl-C.
 *
 * Usage: DATABASE_URL=... node dist/bench/main.js [--quick | --tiny] [--rounds=N] [--only=drain,...]
 *   `npm run bench` builds and runs it (with an embedded PostgreSQL when DATABASE_URL is unset);
 *   `npm run bench -- --quick` for a run of under a minute written to bench/results/quick.*.
 */
import { renderChart } from './chart.js';
import { dropAllCreated } from './database.js';
import { machineInfo } from './machine.js';
import { parseOptions } from './options.js';
import { type ResultsDocument, renderMarkdown, writeResults } from './report.js';
import { locateServer } from './server-cpu.js';
import { allSystems } from './systems/index.js';
import { packageVersion } from './systems/system.js';
import { runWorkloads } from './workloads.js';

/** PACKAGES are the packages whose installed versions the results record. */
const PACKAGES = ['graphile-worker', 'pg-boss', 'bullmq', 'pg', 'xstate'];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * dropOnAbort drops this run's databases before the process dies: on Ctrl-C or SIGTERM, and on an
 * error a peer library raises outside any awaited call (which would otherwise end the process
 * without the `finally` below running).
 */
function dropOnAbort(databaseUrl: string): void {
  let stopping = false;
  const abort = (reason: string, code: number) => {
    if (stopping) process.exit(code);
    stopping = true;
    log(`${reason}: dropping this run's databases`);
    dropAllCreated(databaseUrl).then(
      () => process.exit(code),
      (error) => {
        log(`could not drop every database: ${messageOf(error)}`);
        process.exit(code);
      },
    );
  };
  process.on('SIGINT', () => abort('SIGINT', 130));
  process.on('SIGTERM', () => abort('SIGTERM', 143));
  const crash = (error: unknown) => {
    log(`unhandled error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    abort('crashed', 1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), process.env);
  dropOnAbort(options.databaseUrl);
  const machine = await machineInfo(options.databaseUrl);
  await locateServer(options.databaseUrl);
  const versions = Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)]));
  log(
    `jobchart bench, ${options.mode} mode: ${options.workloads.join(', ')}; ${options.sizes.rounds} round(s)`,
  );
  try {
    const workloads = await runWorkloads(options, allSystems(), log);
    const document: ResultsDocument = {
      mode: options.mode,
      sizes: options.sizes,
      machine,
      versions,
      workloads,
    };
    console.log(renderMarkdown(document));
    const written = await writeResults(options.outputName, document, renderChart(document));
    log(`wrote ${written.join(' and ')}`);
    if (workloads.some((workload) => workload.runs.some((run) => run.error))) {
      log('some runs failed (see the tables)');
      process.exitCode = 1;
    }
  } finally {
    await dropAllCreated(options.databaseUrl);
  }
}

await main();

/**
 * The six workloads (drain, latency, enqueue, history, cleaning, memory) and the loop that runs them. Rounds
 * are the outer loop and systems the inner one, in an order rotated each round, so every round holds
 * one run of every system under the same conditions and ratios can be taken within a round. Every
 * measured run gets its own fresh database. A run that fails is recorded with its error and the
 * bench goes on.
 */
import { drainWhileCleaning } from './cleaning.js';
import { withFreshDatabase } from './database.js';
import { formatCount, formatValue, type Unit } from './format.js';
import { drainOnHistory } from './history.js';
import { measureWorkerMemory } from './memory.js';
import type { BenchOptions, WorkloadId } from './options.js';
import { mean, median, percentile } from './stats.js';
import type { System } from './systems/system.js';

/** Metric is one figure a workload reports for each of its entries. */
export interface Metric {
  /** key names the figure in a run's `values`. */
  key: string;
  /** label heads the figure's column. */
  label: string;
  unit: Unit;
  better: 'higher' | 'lower';
  /** legend names the figure in the chart's legend, where it is one series of several. */
  legend?: string;
  /** detail marks a figure that explains the others: it is tabled, but neither charted nor compared. */
  detail?: boolean;
}

/** Entry is one row of a workload's table: a system, or a setup of one. */
export interface Entry {
  id: string;
  label: string;
  config: string;
}

/** Run is one entry's figures in one round; `error` is set when (part of) it failed. */
export interface Run {
  round: number;
  entry: string;
  values: Record<string, number>;
  error?: string;
  note?: string;
}

/**
 * RatioSpec says which ratio a workload shows: `reference ÷ entry` when `referenceOnTop`, else
 * `entry ÷ reference`, taken within each round and then the median over rounds.
 */
export interface RatioSpec {
  label: string;
  reference: string;
  referenceOnTop: boolean;
}

/** WorkloadResult is a workload's description, every run and the summaries over rounds. */
export interface WorkloadResult {
  id: WorkloadId;
  title: string;
  description: string;
  metrics: Metric[];
  entries: Entry[];
  ratio: RatioSpec | null;
  notes: string[];
  runs: Run[];
  /** medians per entry id, then per metric key (null when no run produced the figure). */
  medians: Record<string, Record<string, number | null>>;
  /** ratios per entry id, then per metric key: the median of the per-round ratios. */
  ratios: Record<string, Record<string, number | null>>;
}

/** Workload is a WorkloadResult before it has runs, plus how to run one round of it. */
interface Workload extends Omit<WorkloadResult, 'runs' | 'medians' | 'ratios'> {
  runRound(round: number): Promise<Run[]>;
  /** ownProcess marks a workload measured in a child process, which no warm-up here would warm. */
  ownProcess?: boolean;
}

/** Log receives one progress line. */
export type Log = (line: string) => void;

interface Context {
  options: BenchOptions;
  log: Log;
}

/** runWorkloads runs every selected workload for every round and summarises the runs. */
export async function runWorkloads(
  options: BenchOptions,
  systems: System[],
  log: Log,
): Promise<WorkloadResult[]> {
  const context: Context = { options, log };
  const builders: Record<WorkloadId, () => Workload> = {
    drain: () => drainWorkload(context, systems),
    latency: () => latencyWorkload(context, systems),
    enqueue: () => enqueueWorkload(context, systems),
    history: () => historyWorkload(context),
    cleaning: () => cleaningWorkload(context),
    memory: () => memoryWorkload(context),
  };
  const workloads = options.workloads.map((id) => builders[id]());
  const runs = new Map<WorkloadId, Run[]>(workloads.map((workload) => [workload.id, []]));
  // Warm-up rounds run every in-process system once, unrecorded: otherwise whichever system runs
  // first in this process pays for compiling its code (and the driver's) inside its figure.
  for (let round = 0; round < options.sizes.warmUpRounds; round++) {
    for (const workload of workloads.filter((w) => !w.ownProcess)) {
      log(`warm-up ${round + 1}/${options.sizes.warmUpRounds} (not recorded): ${workload.title}`);
      await workload.runRound(round);
    }
  }
  for (let round = 0; round < options.sizes.rounds; round++) {
    for (const workload of workloads) {
      log(`round ${round + 1}/${options.sizes.rounds}: ${workload.title}`);
      runs.get(workload.id)?.push(...(await workload.runRound(round)));
    }
  }
  return workloads.map(({ runRound: _, ownProcess: __, ...workload }) =>
    summarise(workload, runs.get(workload.id) ?? []),
  );
}

/** summarise computes the medians and ratios of a workload's runs. */
function summarise(workload: Omit<Workload, 'runRound'>, runs: Run[]): WorkloadResult {
  const medians: WorkloadResult['medians'] = {};
  const ratios: WorkloadResult['ratios'] = {};
  for (const entry of workload.entries) {
    const mine = runs.filter((run) => run.entry === entry.id);
    medians[entry.id] = {};
    ratios[entry.id] = {};
    for (const { key } of workload.metrics) {
      const values = mine.flatMap((run) => (key in run.values ? [run.values[key] as number] : []));
      medians[entry.id][key] = values.length > 0 ? median(values) : null;
      const spec = workload.ratio;
      if (!spec || workload.metrics.find((metric) => metric.key === key)?.detail) continue;
      const perRound = mine.flatMap((run) => {
        const reference = runs.find((other) => other.entry === spec.reference && other.round === run.round);
        const value = run.values[key];
        const referenceValue = reference?.values[key];
        if (value === undefined || referenceValue === undefined) return [];
        return [spec.referenceOnTop ? referenceValue / value : value / referenceValue];
      });
      ratios[entry.id][key] = perRound.length > 0 ? median(perRound) : null;
    }
  }
  return { ...workload, runs, medians, ratios };
}

/** rotate starts the list at a different element each round, so no system always runs first. */
function rotate<T>(items: readonly T[], round: number): T[] {
  const at = items.length === 0 ? 0 : round % items.length;
  return [...items.slice(at), ...items.slice(0, at)];
}

/** entryOf describes a system as a table row. */
function entryOf(system: System): Entry {
  return { id: system.id, label: system.label, config: system.config };
}

/**
 * attempt measures one thing in a fresh database and adds its figures to `run`, or the error if it
 * fails; either way it logs a progress line.
 */
async function attempt(
  context: Context,
  run: Run,
  what: string,
  measure: (url: string) => Promise<Record<string, number>>,
  show: (values: Record<string, number>) => string,
): Promise<void> {
  try {
    const values = await withFreshDatabase(context.options.databaseUrl, measure);
    Object.assign(run.values, values);
    context.log(`  ${what}: ${show(values)}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    run.error = run.error ? `${run.error}; ${what}: ${message}` : `${what}: ${message}`;
    context.log(`  ${what}: FAILED ${message}`);
  }
}

function newRun(round: number, entry: string): Run {
  return { round, entry, values: {} };
}

function drainWorkload(context: Context, systems: System[]): Workload {
  const { drainJobs, concurrencies } = context.options.sizes;
  const drainers = systems.filter((system) => system.drain);
  const key = (concurrency: number) => `c${concurrency}`;
  // CPU is reported at the first level only (the one the targets name), to keep the table readable.
  const [cpuLevel] = concurrencies;
  return {
    id: 'drain',
    title: `Drain: ${formatCount(drainJobs)} no-op jobs enqueued in bulk, then a worker`,
    description:
      'Jobs per second from starting the worker until the database shows every job finished, at each concurrency level (maxRunningJobs / concurrency).',
    metrics: [
      ...concurrencies.map(
        (c): Metric => ({
          key: key(c),
          label: `jobs/s at ${c}`,
          unit: 'jobs/s',
          better: 'higher',
          legend: `${c} running at once`,
        }),
      ),
      {
        key: 'workerCpu',
        label: `worker CPU µs/job at ${cpuLevel}`,
        unit: 'µs',
        better: 'lower',
        detail: true,
      },
      {
        key: 'serverCpu',
        label: `server CPU µs/job at ${cpuLevel}`,
        unit: 'µs',
        better: 'lower',
        detail: true,
      },
      {
        key: 'walBytes',
        label: `WAL bytes/job at ${cpuLevel}`,
        unit: 'bytes',
        better: 'lower',
        detail: true,
      },
    ],
    entries: drainers.map(entryOf),
    ratio: { label: 'jobchart ÷ system', reference: 'jobchart', referenceOnTop: true },
    notes: [
      'pg-boss and the raw-SQL loops have no per-job concurrency setting: they are drained once per round and that figure stands in every column.',
      "CPU per job over the timed drain: the worker's is this process's (every thread, the completion poll included), the server's is the PostgreSQL server's processes' from /proc (n/a when the server is not on this machine). On a machine with few cores the two share them, so their sum bounds the drain rate.",
      'WAL bytes per job: what the server wrote to its write-ahead log over the timed drain, divided by the jobs (row versions and index entries of the claim and the finish, and anything else the server wrote meanwhile).',
    ],
    async runRound(round) {
      const runs = new Map(drainers.map((system) => [system.id, newRun(round, system.id)]));
      for (const [level, concurrency] of concurrencies.entries()) {
        for (const system of rotate(drainers, round)) {
          const run = runs.get(system.id) as Run;
          const first = run.values[key(concurrencies[0] as number)];
          if (!system.drainTakesConcurrency && level > 0) {
            if (first !== undefined) run.values[key(concurrency)] = first;
            run.note = 'no concurrency setting: one drain per round';
            continue;
          }
          await attempt(
            context,
            run,
            `${system.label} at ${concurrency}`,
            async (url) => {
              const figures = await system.drain?.(url, drainJobs, concurrency);
              if (!figures) return {};
              const values: Record<string, number> = { [key(concurrency)]: figures.jobsPerSecond };
              if (concurrency !== cpuLevel) return values;
              values.workerCpu = figures.workerCpuMicros / drainJobs;
              if (figures.serverCpuMicros !== null) values.serverCpu = figures.serverCpuMicros / drainJobs;
              if (figures.walBytes !== null) values.walBytes = figures.walBytes / drainJobs;
              return values;
            },
            (values) => formatValue(values[key(concurrency)], 'jobs/s'),
          );
        }
      }
      return [...runs.values()];
    },
  };
}

function latencyWorkload(context: Context, systems: System[]): Workload {
  const samples = context.options.sizes.latencySamples;
  const probed = systems.filter((system) => system.latency);
  return {
    id: 'latency',
    title: `Latency: ${formatCount(samples)} jobs enqueued one at a time into an idle worker`,
    description:
      "Milliseconds from just before the enqueue call to the first line of the job's handler; producer and worker in one process, worker concurrency 10.",
    metrics: [
      { key: 'p50', label: 'p50 ms', unit: 'ms', better: 'lower', legend: 'p50' },
      { key: 'p99', label: 'p99 ms', unit: 'ms', better: 'lower', legend: 'p99' },
    ],
    entries: probed.map(entryOf),
    ratio: { label: 'jobchart ÷ system', reference: 'jobchart', referenceOnTop: true },
    notes: [
      'Lower is better here, so a ratio under 1× means jobchart starts jobs sooner.',
      'pg-boss is left out: it finds new jobs only by polling, so its figure would be its polling interval.',
    ],
    async runRound(round) {
      const runs: Run[] = [];
      for (const system of rotate(probed, round)) {
        const run = newRun(round, system.id);
        await attempt(
          context,
          run,
          system.label,
          async (url) => {
            const waits = (await system.latency?.(url, samples)) ?? [];
            return {
              p50: percentile(waits, 0.5),
              p90: percentile(waits, 0.9),
              p99: percentile(waits, 0.99),
              max: percentile(waits, 1),
              mean: mean(waits),
            };
          },
          (values) => `p50 ${formatValue(values.p50, 'ms')} ms, p99 ${formatValue(values.p99, 'ms')} ms`,
        );
        runs.push(run);
      }
      return runs;
    },
  };
}

function enqueueWorkload(context: Context, systems: System[]): Workload {
  const jobs = context.options.sizes.enqueueJobs;
  const producers = systems.filter((system) => system.enqueue);
  return {
    id: 'enqueue',
    title: `Enqueue: ${formatCount(jobs)} jobs through each system's bulk API`,
    description: 'Jobs per second inserted, in batches of 1,000 jobs per call, into a fresh database.',
    metrics: [{ key: 'jobsPerSecond', label: 'jobs/s', unit: 'jobs/s', better: 'higher' }],
    entries: producers.map(entryOf),
    ratio: { label: 'jobchart ÷ system', reference: 'jobchart', referenceOnTop: true },
    notes: [
      'jobchart: enqueueMany; graphile-worker: addJobs (the batched setup enqueues the same way, so it is measured once); pg-boss: insert; BullMQ: addBulk; raw SQL: INSERT ... SELECT FROM unnest.',
    ],
    async runRound(round) {
      const runs: Run[] = [];
      for (const system of rotate(producers, round)) {
        const run = newRun(round, system.id);
        await attempt(
          context,
          run,
          system.label,
          async (url) => ({ jobsPerSecond: (await system.enqueue?.(url, jobs)) ?? NaN }),
          (values) => formatValue(values.jobsPerSecond, 'jobs/s'),
        );
        runs.push(run);
      }
      return runs;
    },
  };
}

function historyWorkload(context: Context): Workload {
  const { historyRows, historyDrainJobs } = context.options.sizes;
  const entries: (Entry & { rows: number })[] = [
    { id: 'empty', label: 'jobchart, empty table', config: 'no finished rows', rows: 0 },
    {
      id: 'history',
      label: `jobchart, ${formatCount(historyRows)} finished rows`,
      config: `${historyRows} succeeded rows inserted with INSERT ... SELECT generate_series before the backlog`,
      rows: historyRows,
    },
  ];
  return {
    id: 'history',
    title: `History: drain of ${formatCount(historyDrainJobs)} jobs over ${formatCount(historyRows)} finished jobs`,
    description:
      'jobchart with defaults drains the same backlog on an empty table and on one already holding finished jobs; the table is vacuumed, analyzed and checkpointed before each drain.',
    metrics: [{ key: 'jobsPerSecond', label: 'jobs/s', unit: 'jobs/s', better: 'higher' }],
    entries: entries.map(({ rows: _, ...entry }) => entry),
    ratio: { label: 'this ÷ empty table', reference: 'empty', referenceOnTop: false },
    notes: [],
    async runRound(round) {
      const runs: Run[] = [];
      for (const entry of rotate(entries, round)) {
        const run = newRun(round, entry.id);
        await attempt(
          context,
          run,
          entry.label,
          async (url) => ({ ...(await drainOnHistory(url, historyDrainJobs, entry.rows)) }),
          (values) =>
            `${formatValue(values.jobsPerSecond, 'jobs/s')} jobs/s` +
            (entry.rows > 0 ? ` (seeding took ${values.seedSeconds?.toFixed(1)} s)` : ''),
        );
        runs.push(run);
      }
      return runs;
    },
  };
}

function cleaningWorkload(context: Context): Workload {
  const { cleaningRows: rows, cleaningDrainJobs: jobs } = context.options.sizes;
  const old = `${formatCount(rows)} old finished rows`;
  const entries: (Entry & { rows: number; clean: boolean })[] = [
    { id: 'empty', label: 'jobchart, empty table', config: 'defaults, no old rows', rows: 0, clean: true },
    { id: 'cleaning', label: `jobchart, cleaner deleting ${old}`, config: 'defaults', rows, clean: true },
    { id: 'kept', label: `jobchart, ${old} kept`, config: 'retention: false', rows, clean: false },
  ];
  return {
    id: 'cleaning',
    title: `Cleaning: drain of ${formatCount(jobs)} jobs while the cleaner deletes ${old}`,
    description:
      'A default worker drains the same backlog on an empty table and over succeeded jobs finished 2 to 3 days ago, which its cleaner (default retention: 1 day) starts deleting, 10,000 a statement, as the worker starts; with retention: false the rows stay. Vacuumed, analyzed and checkpointed before each drain. Target: the drain while cleaning no more than 10 % slower than on the empty table.',
    metrics: [
      { key: 'jobsPerSecond', label: 'jobs/s', unit: 'jobs/s', better: 'higher' },
      {
        key: 'deleted',
        label: 'old rows deleted during the drain',
        unit: 'rows',
        better: 'higher',
        detail: true,
      },
      { key: 'cleanSeconds', label: 'first pass s', unit: 's', better: 'lower', detail: true },
    ],
    entries: entries.map(({ rows: _, clean: __, ...entry }) => entry),
    ratio: { label: 'this ÷ empty table', reference: 'empty', referenceOnTop: false },
    notes: [],
    async runRound(round) {
      const runs: Run[] = [];
      for (const entry of rotate(entries, round)) {
        const run = newRun(round, entry.id);
        await attempt(
          context,
          run,
          entry.label,
          async (url) => {
            const figures = await drainWhileCleaning(url, jobs, entry.rows, entry.clean);
            const values: Record<string, number> = {
              jobsPerSecond: figures.jobsPerSecond,
              deleted: figures.deletedDuringDrain,
            };
            if (!Number.isNaN(figures.cleanSeconds)) values.cleanSeconds = figures.cleanSeconds;
            return values;
          },
          (values) =>
            `${formatValue(values.jobsPerSecond, 'jobs/s')} jobs/s, ${values.deleted} old rows deleted during the drain` +
            (values.cleanSeconds === undefined ? '' : `, first pass ${values.cleanSeconds.toFixed(1)} s`),
        );
        runs.push(run);
      }
      return runs;
    },
  };
}

function memoryWorkload(context: Context): Workload {
  const jobs = context.options.sizes.memoryJobs;
  return {
    ownProcess: true,
    id: 'memory',
    title: `Memory: a jobchart worker process draining ${formatCount(jobs)} jobs`,
    description:
      'Peak resident set (getrusage maxRSS) of a child process running only a default jobchart worker, and its resident set once its modules were loaded, before the runtime was created.',
    metrics: [
      {
        key: 'peakRssMiB',
        label: 'peak RSS MiB',
        unit: 'MiB',
        better: 'lower',
        legend: 'peak while draining',
      },
      {
        key: 'startRssMiB',
        label: 'RSS at start MiB',
        unit: 'MiB',
        better: 'lower',
        legend: 'at start (modules loaded)',
      },
      { key: 'jobsPerSecond', label: 'jobs/s', unit: 'jobs/s', better: 'higher' },
    ],
    entries: [{ id: 'jobchart', label: 'jobchart (defaults)', config: 'node dist/bench/memory-worker.js' }],
    ratio: null,
    notes: [],
    async runRound(round) {
      const run = newRun(round, 'jobchart');
      await attempt(
        context,
        run,
        'jobchart worker process',
        async (url) => {
          const { vmHwmMiB, ...figures } = await measureWorkerMemory(url, jobs);
          return vmHwmMiB === null ? figures : { ...figures, vmHwmMiB };
        },
        (values) =>
          `peak ${formatValue(values.peakRssMiB, 'MiB')} MiB, ${formatValue(values.jobsPerSecond, 'jobs/s')} jobs/s`,
      );
      return [run];
    },
  };
}

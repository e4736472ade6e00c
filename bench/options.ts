/**
 * Command-line options of the benchmark and the sizes of each mode: the full run (the published
 * figures), `--quick` (a smaller run in under a minute, written to separate result files) and
 * `--tiny` (a few seconds, for a CI smoke test of the harness itself).
 */

/** WORKLOAD_IDS names every workload, in the order they run within a round. */
export const WORKLOAD_IDS = ['drain', 'latency', 'enqueue', 'history', 'cleaning', 'memory'] as const;

/** WorkloadId is one workload's name. */
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** Mode is how big a run is. */
export type Mode = 'full' | 'quick' | 'tiny';

/** Sizes are the job counts and repetitions of one mode. */
export interface Sizes {
  /** drainJobs is the backlog each drain works off. */
  drainJobs: number;
  /** concurrencies are the worker concurrency levels of the drain workload. */
  concurrencies: number[];
  /** latencySamples is how many jobs the latency workload enqueues one at a time. */
  latencySamples: number;
  /** enqueueJobs is how many jobs the enqueue workload inserts in bulk. */
  enqueueJobs: number;
  /** historyRows is how many finished rows the history workload puts in the table first. */
  historyRows: number;
  /** historyDrainJobs is the backlog drained on top of the history (and on the empty table). */
  historyDrainJobs: number;
  /** cleaningRows is how many old finished rows the cleaning workload's cleaner deletes during its drain. */
  cleaningRows: number;
  /** cleaningDrainJobs is the backlog the cleaning workload drains meanwhile (and on the empty table). */
  cleaningDrainJobs: number;
  /** memoryJobs is the backlog the memory workload's worker process drains. */
  memoryJobs: number;
  /** rounds is how many times every measurement is repeated; figures are medians over rounds. */
  rounds: number;
  /** warmUpRounds run before the measured rounds and are not recorded (see runWorkloads). */
  warmUpRounds: number;
}

/** SIZES holds the sizes of each mode. */
export const SIZES: Record<Mode, Sizes> = {
  full: {
    drainJobs: 20_000,
    concurrencies: [10, 100],
    latencySamples: 500,
    enqueueJobs: 100_000,
    historyRows: 1_000_000,
    historyDrainJobs: 20_000,
    cleaningRows: 1_000_000,
    cleaningDrainJobs: 50_000,
    memoryJobs: 100_000,
    rounds: 5,
    warmUpRounds: 1,
  },
  quick: {
    drainJobs: 2_000,
    concurrencies: [10, 100],
    latencySamples: 50,
    enqueueJobs: 10_000,
    historyRows: 100_000,
    historyDrainJobs: 2_000,
    cleaningRows: 100_000,
    cleaningDrainJobs: 5_000,
    memoryJobs: 10_000,
    rounds: 1,
    warmUpRounds: 0,
  },
  tiny: {
    drainJobs: 200,
    concurrencies: [10, 100],
    latencySamples: 10,
    enqueueJobs: 1_000,
    historyRows: 2_000,
    historyDrainJobs: 200,
    cleaningRows: 2_000,
    cleaningDrainJobs: 200,
    memoryJobs: 500,
    rounds: 1,
    warmUpRounds: 0,
  },
};

/** BenchOptions are the parsed command line. */
export interface BenchOptions {
  mode: Mode;
  sizes: Sizes;
  /** workloads to run, in running order. */
  workloads: WorkloadId[];
  /** databaseUrl is the server's base database; every run gets a fresh database beside it. */
  databaseUrl: string;
  /** outputName is the file name (without extension) under bench/results. */
  outputName: string;
}

/** USAGE is printed for --help and after a bad argument. */
export const USAGE = `Usage: node dist/bench/main.js [--quick | --tiny] [--rounds=N] [--only=${WORKLOAD_IDS.join(',')}]
  (npm run bench -- --quick)   DATABASE_URL names the server (default postgres://postgres@127.0.0.1/test).
  --quick   smaller sizes, 1 round, written to bench/results/quick.{json,svg}
  --tiny    a smoke test of the harness in seconds, written to bench/results/tiny.{json,svg}
  --rounds  repeat every measurement N times (figures are medians)
  --only    run only these workloads (results get a -partial suffix)`;

/** parseOptions reads the command line and the environment; it throws on an unknown argument. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions {
  let mode: Mode = 'full';
  let rounds: number | undefined;
  let only: WorkloadId[] | undefined;
  for (const arg of argv) {
    const [flag, value] = arg.split('=', 2) as [string, string | undefined];
    if (flag === '--quick' && value === undefined) mode = mode === 'tiny' ? 'tiny' : 'quick';
    else if (flag === '--tiny' && value === undefined) mode = 'tiny';
    else if (flag === '--rounds' && value !== undefined && /^[1-9][0-9]*$/.test(value))
      rounds = Number(value);
    else if (flag === '--only' && value !== undefined) only = value.split(',').map(workloadId);
    else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  const sizes = { ...SIZES[mode], ...(rounds === undefined ? {} : { rounds }) };
  const base = mode === 'full' ? 'latest' : mode;
  return {
    mode,
    sizes,
    workloads: only ? WORKLOAD_IDS.filter((id) => only.includes(id)) : [...WORKLOAD_IDS],
    databaseUrl: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
    outputName: only ? `${base}-partial` : base,
  };
}

function workloadId(name: string): WorkloadId {
  const found = WORKLOAD_IDS.find((id) => id === name);
  if (!found) throw new Error(`unknown workload ${JSON.stringify(name)}\n${USAGE}`);
  return found;
}

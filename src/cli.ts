#!/usr/bin/env node
/**
 * The jobchart command line: run a worker for a module of tasks, migrate a schema, and look after
 * jobs. It is the one place that installs signal handlers: SIGINT or SIGTERM stops the worker
 * gracefully (running jobs finish, for up to shutdownTimeoutMs), and a second one stops it at once,
 * giving running jobs back. Run `jobchart help` for usage.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { STORED_STATES } from '../machines/job.js';
import { validateJobId } from './api/admin.js';
import type { BulkResult } from './api/bulk.js';
import { createRuntime, type Runtime } from './api/runtime.js';
import { checkDashboardFlags, DASHBOARD_FLAGS, serveDashboard } from './cli-dashboard.js';
import {
  BULK_FLAGS,
  type BulkFlags,
  bulkRequestOfFlags,
  CliError,
  FILTER_FLAGS,
  type FilterFlags,
  filterFlagsGiven,
  filterOfFlags,
  runAtOfFlags,
} from './cli-filter.js';
import { RETENTION_FLAGS, retentionOfFlags } from './cli-retention.js';
import { JobchartError, JobNotFoundError, SchemaNotMigratedError } from './core/errors.js';
import { QUEUE_NAME_PATTERN } from './jobs/tasks.js';
import type { Job } from './storage/job-row.js';

const USAGE = `usage: jobchart <command> [options]

commands:
  worker <module>       work the tasks a module exports (its default export or \`tasks\`:
                        { name: handler | defineTask(...) | task(...) }, with \`handlers\`
                        for its task() declarations) until SIGINT/SIGTERM
  migrate               apply pending migrations to the schema
  jobs [filter]         list jobs matching the filter, newest first (--limit)
  get <id> [--stack]    print one job as JSON (--stack: with each failed attempt's stack)
  retry <id>            run a failed, cancelled or expired job again
  cancel <id>           cancel a job that has not finished (--reason <text>)
  remove <id>           delete a job that is not running
  reschedule <id>       move a waiting job to --run-at <ISO time|now>, or --park it
  retry|cancel|remove|reschedule <filter | --all> [--batch-size <n>]
                        the same for every job the filter selects, in batches; prints
                        the counts as JSON: changed, refused (the machine refuses the
                        event in their state), signalled (running jobs asked to cancel)
  queues                list the queues: paused or not, and their jobs per state
  pause <queue>         stop every worker claiming jobs of a queue (running jobs finish)
  resume <queue>        let workers claim jobs of a paused queue again
  clean                 run one retention pass now and print what it deleted; each finished
                        state is kept as by default (succeeded 1d, cancelled and expired 7d,
                        failed 30d) unless --keep-succeeded, --keep-failed, --keep-cancelled
                        or --keep-expired <90s|12h|30d|forever> says otherwise
  dashboard             serve the dashboard's JSON API (and /metrics) until SIGINT/SIGTERM, on
                        --host (default 127.0.0.1) and --port (default 4000); --read-only
                        refuses every action

filter (all given must match):
  --state <s> (repeatable), --task <name>, --queue <name>, --key <key>, --key-prefix <p>,
  --tag <t> (repeatable: jobs with every tag), --created-before <ISO>, --created-after <ISO>,
  --finished-before <ISO>, --finished-after <ISO> (…-after includes its instant, …-before not)

options:
  --database-url <url>  PostgreSQL to use (default: $DATABASE_URL)
  --schema <name>       schema of jobchart's tables (default: jobchart)
  --max-running-jobs <n>, --name <id>, --poll-interval-ms <n>, --shutdown-timeout-ms <n>   (worker)

The log (pino JSON) goes to stderr at $JOBCHART_LOG_LEVEL (default: info for worker, warn otherwise).
Exit codes: 0 done, 1 refused or failed (a missing job, a refused change, an unmigrated schema,
an unreachable database; one line on stderr says why), 2 a usage mistake.
`;

const ADMIN_COMMANDS = [
  'migrate',
  'jobs',
  'get',
  'retry',
  'cancel',
  'remove',
  'reschedule',
  'queues',
  'pause',
  'resume',
  'clean',
  'dashboard',
];

/** CliFailure is a request that could not be done: its message alone is printed and the exit code is 1. */
class CliFailure extends Error {}

// JOB_COMMANDS take exactly one job id, except the BULK_COMMANDS, which take filter flags instead.
const JOB_COMMANDS = ['get', 'retry', 'cancel', 'remove', 'reschedule'];
const BULK_COMMANDS = ['retry', 'cancel', 'remove', 'reschedule'];

// QUEUE_COMMANDS take exactly one queue name.
const QUEUE_COMMANDS = ['pause', 'resume'];

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    strict: true,
    args: argv,
    allowPositionals: true,
    options: {
      'database-url': { type: 'string' },
      schema: { type: 'string' },
      'max-running-jobs': { type: 'string' },
      name: { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'shutdown-timeout-ms': { type: 'string' },
      state: { type: 'string', multiple: true },
      task: { type: 'string' },
      queue: { type: 'string' },
      key: { type: 'string' },
      limit: { type: 'string' },
      ...FILTER_FLAGS,
      ...BULK_FLAGS,
      ...RETENTION_FLAGS,
      ...DASHBOARD_FLAGS,
      stack: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, argument, ...extra] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  checkUsage(command, argument, extra, values.stack === true);
  checkFlags(command, argument, values);
  const retention = retentionOfFlags(command, values);
  checkDashboardFlags(command, values);
  // The log goes to stderr, so that stdout carries only what a command prints.
  const logger = pino(
    { level: process.env.JOBCHART_LOG_LEVEL ?? (command === 'worker' ? 'info' : 'warn') },
    pino.destination(2),
  );
  const base = {
    connectionString: values['database-url'] ?? process.env.DATABASE_URL,
    schema: values.schema,
    logger,
  };
  if (!base.connectionString) {
    throw new CliFailure('no database: set DATABASE_URL or pass --database-url postgres://…');
  }
  const schema = values.schema ?? 'jobchart';
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  if (command === 'worker') {
    if (!argument) throw new CliError('worker: expected the path of a module of tasks');
    const module = (await import(pathToFileURL(resolve(argument)).href).catch((error: unknown) => {
      // A wrong path is a usage mistake; a module that fails to load tells its own story (stack).
      if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      throw new CliError(`worker: cannot find the module ${argument} (${(error as Error).message})`);
    })) as { default?: unknown; tasks?: unknown; handlers?: unknown };
    const tasks = module.tasks ?? module.default;
    if (typeof tasks !== 'object' || tasks === null) {
      throw new CliError(`worker: expected ${argument} to export its tasks (default or \`tasks\`)`);
    }
    const runtime = createRuntime({
      ...base,
      tasks: tasks as Record<string, never>,
      // A module of declarations exports their handlers beside them (see `task`).
      handlers: module.handlers as never,
      maxRunningJobs: number(values['max-running-jobs']),
      name: values.name,
      pollIntervalMs: number(values['poll-interval-ms']),
      shutdownTimeoutMs: number(values['shutdown-timeout-ms']),
    });
    return work(runtime).catch((error: unknown) => {
      throw explained(error, schema);
    });
  }
  const runtime = createRuntime(retention ? { ...base, retention } : base);
  try {
    await runtime.start({ migrate: command === 'migrate' });
    if (command === 'dashboard') return await serveDashboard(runtime, values);
    if (command !== 'migrate') await administer(runtime, command, argument, values);
    return 0;
  } catch (error) {
    throw explained(error, schema);
  } finally {
    await runtime.stop();
  }
}

// checkUsage refuses a command line that cannot mean anything before anything is started: no
// command (a script that lost its arguments must not pass), an unknown one, a missing, malformed or
// extra argument, an option for another command.
function checkUsage(
  command: string | undefined,
  argument: string | undefined,
  extra: readonly string[],
  stack: boolean,
): asserts command is string {
  if (command === undefined) throw new CliError('expected a command');
  if (command !== 'worker' && !ADMIN_COMMANDS.includes(command)) {
    throw new CliError(`unknown command ${command}`);
  }
  const takesArgument =
    command === 'worker' || JOB_COMMANDS.includes(command) || QUEUE_COMMANDS.includes(command);
  const unexpected = takesArgument ? extra[0] : (argument ?? extra[0]);
  if (unexpected !== undefined) throw new CliError(`${command}: unexpected argument ${unexpected}`);
  // A bulk command without an id acts on a filter instead (see checkFlags).
  const onFilter = argument === undefined && BULK_COMMANDS.includes(command);
  if (JOB_COMMANDS.includes(command) && !onFilter) {
    if (argument === undefined) throw new CliError(`${command}: expected a job id`);
    if (!/^[1-9][0-9]{0,18}$/.test(argument)) {
      throw new CliError(`${command}: expected a job id (a positive integer), received ${argument}`);
    }
  }
  if (QUEUE_COMMANDS.includes(command) && (argument === undefined || !QUEUE_NAME_PATTERN.test(argument))) {
    throw new CliError(
      `${command}: expected a queue name matching ${QUEUE_NAME_PATTERN}, received ${argument ?? 'none'}`,
    );
  }
  if (stack && (!JOB_COMMANDS.includes(command) || onFilter)) {
    throw new CliError(`${command}: --stack applies to the commands that print a job`);
  }
}

// checkFlags refuses the filter and bulk flags where they mean nothing: on a command that takes no
// filter, or beside a job id (a bulk command acts on one job or on a filter, never both).
function checkFlags(command: string, id: string | undefined, values: FilterFlags & BulkFlags): void {
  const filters = filterFlagsGiven(values);
  const bulk = BULK_COMMANDS.includes(command) && id === undefined;
  if (filters.length > 0 && command !== 'jobs' && !bulk) {
    throw new CliError(
      BULK_COMMANDS.includes(command)
        ? `${command}: ${filters[0]} filters jobs; give it without a job id to act on every job it selects`
        : `${command}: ${filters[0]} applies to jobs, retry, cancel, remove and reschedule`,
    );
  }
  if ((values.all || values['batch-size'] !== undefined) && !bulk) {
    throw new CliError(
      `${command}: --all and --batch-size apply to retry, cancel, remove and reschedule without a job id`,
    );
  }
  if ((values['run-at'] !== undefined || values.park) && command !== 'reschedule') {
    throw new CliError(`${command}: --run-at and --park apply to reschedule`);
  }
  if (values.reason !== undefined && command !== 'cancel')
    throw new CliError(`${command}: --reason applies to cancel`);
  if (command === 'reschedule') runAtOfFlags(values);
  if (bulk) bulkRequestOfFlags(command, values);
  if (command === 'jobs') filterOfFlags(command, values);
}

// explained turns an error with a known fix into a one-line CliFailure naming that fix, with the
// CLI's words (`jobchart migrate`, not runtime.start()); anything else is passed on as it is.
function explained(error: unknown, schema: string): unknown {
  const inSchema = schema === 'jobchart' ? '' : ` --schema ${schema}`;
  if (error instanceof SchemaNotMigratedError) {
    return new CliFailure(
      `schema "${error.schema}" is at migration ${error.version}, expected ${error.expected}: run \`jobchart migrate${inSchema}\``,
    );
  }
  if (error instanceof JobNotFoundError) {
    return new CliFailure(
      `job ${error.jobId} does not exist in schema "${schema}" (\`jobchart jobs${inSchema}\` lists the jobs there are)`,
    );
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof JobchartError) && typeof code === 'string' && /^(E[A-Z]+$|08|28|3D)/.test(code)) {
    // Connection refused, no such host, authentication or database: the URL is what to check.
    return new CliFailure(
      `cannot reach PostgreSQL (${code}: ${(error as Error).message}): check DATABASE_URL or --database-url`,
    );
  }
  return error;
}

// work runs a worker until a signal: the first stops it gracefully, a second stops waiting. It
// exits 0 only after a stop a signal asked for, and 1 after a crash; a worker whose event loop ran
// dry without either (which a started runtime prevents) is a failure too, not a silent success.
async function work(runtime: Runtime): Promise<number> {
  let stopping = false;
  let crashed = false;
  process.once('beforeExit', () => {
    if (stopping) return;
    process.stderr.write('the worker ended without being stopped: expected it to run until a signal\n');
    process.exit(1);
  });
  const stopped = new Promise<void>((done) => {
    const stop = (why: string) => {
      process.stderr.write(stopping ? `${why} again: giving running jobs back\n` : `${why}: stopping\n`);
      const first = !stopping;
      stopping = true;
      const finished = runtime.stop();
      if (first) void finished.then(done);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    runtime.events.on('runtime:crashed', ({ error }) => {
      crashed = true;
      stop(`the onException policy crashed the worker (${String(error)})`);
    });
  });
  await runtime.start();
  process.stderr.write(`worker ${runtime.health().consumerId} started\n`);
  await stopped;
  return crashed ? 1 : 0;
}

async function administer(
  runtime: Runtime,
  command: string,
  id: string | undefined,
  values: FilterFlags & BulkFlags & { limit?: string; stack?: boolean },
): Promise<void> {
  const print = (job: Job) => {
    process.stdout.write(`${JSON.stringify(values.stack ? job : withoutStacks(job), null, 2)}\n`);
  };
  const printCounts = (result: BulkResult) => {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  };
  const reason = values.reason ?? 'cancelled from the command line';
  if (id === undefined && BULK_COMMANDS.includes(command)) {
    // The flags were checked before the runtime started; the runtime checks the filter once more.
    const { filter, options } = bulkRequestOfFlags(command, values);
    if (command === 'retry') return printCounts(await runtime.retryMany(filter, options));
    if (command === 'cancel') return printCounts(await runtime.cancelMany(filter, reason, options));
    if (command === 'remove') return printCounts(await runtime.removeMany(filter, options));
    return printCounts(await runtime.rescheduleMany(filter, runAtOfFlags(values), options));
  }
  // The id was checked before the runtime started, with the runtime's own rule to be sure.
  const needId = () => validateJobId(id);
  switch (command) {
    case 'jobs': {
      const page = await runtime.listJobs({
        ...filterOfFlags(command, values),
        limit: values.limit === undefined ? undefined : Number(values.limit),
      });
      for (const job of page.jobs) {
        process.stdout.write(
          `${job.id}\t${job.state}\t${job.task}\t${job.queue}\tattempts ${job.attempts}/${job.maxAttempts}\t${job.runAt?.toISOString() ?? 'parked'}\n`,
        );
      }
      if (page.nextCursor) process.stdout.write(`… more before job ${page.nextCursor}\n`);
      return;
    }
    case 'get': {
      const job = await runtime.getJob(needId());
      if (!job) throw new JobNotFoundError(needId());
      return print(job);
    }
    case 'retry':
      return print(await runtime.retry(needId()));
    case 'cancel':
      return print(await runtime.cancel(needId(), reason));
    case 'remove':
      return print(await runtime.remove(needId()));
    case 'reschedule':
      return print(await runtime.reschedule(needId(), runAtOfFlags(values)));
    case 'queues':
      return printQueues(runtime);
    case 'pause': {
      const queue = await runtime.queues.pause(id as string);
      process.stdout.write(`queue ${queue.name} paused since ${queue.pausedAt?.toISOString()}\n`);
      return;
    }
    case 'resume':
      await runtime.queues.resume(id as string);
      process.stdout.write(`queue ${id} resumed\n`);
      return;
    case 'clean': {
      // One line per count, name then number, tab-separated, for people and scripts alike.
      const counts = await runtime.clean();
      for (const [name, value] of Object.entries(counts)) process.stdout.write(`${name}\t${value}\n`);
      return;
    }
    default:
      throw new CliError(`unknown command ${command}`);
  }
}

// printQueues prints one line per known queue, tab-separated under a header: its name, whether it
// is paused (and since when), and its jobs per stored state (counted at most a few seconds ago).
async function printQueues(runtime: Runtime): Promise<void> {
  const queues = await runtime.queues.list();
  process.stdout.write(`queue\tpaused\t${STORED_STATES.join('\t')}\n`);
  for (const queue of queues) {
    const paused = queue.pausedAt ? `since ${queue.pausedAt.toISOString()}` : 'no';
    const counts = STORED_STATES.map((state) => queue.counts[state as keyof typeof queue.counts]);
    process.stdout.write(`${queue.name}\t${paused}\t${counts.join('\t')}\n`);
  }
}

// withoutStacks is the job as `get` prints it by default: each errors entry without its stack,
// which is mostly frames with absolute paths (`--stack` prints them).
function withoutStacks(job: Job): Job {
  return { ...job, errors: job.errors.map(({ stack: _stack, ...entry }) => entry) };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const code = (error as { code?: unknown } | null)?.code;
    if (error instanceof CliError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) {
      process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    // A refusal or a known failure is one line; anything else is a bug, told with its stack.
    const known = error instanceof CliFailure || error instanceof JobchartError;
    process.stderr.write(`${known ? (error as Error).message : String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);

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
import { type JobState, STORED_STATES } from '../machines/job.js';
import { validateJobId } from './api/admin.js';
import { createRuntime, type Runtime } from './api/runtime.js';
import { JobchartError, JobNotFoundError, SchemaNotMigratedError } from './core/errors.js';
import type { Job } from './storage/job-row.js';

const USAGE = `usage: jobchart <command> [options]

commands:
  worker <module>       work the tasks a module exports (its default export or \`tasks\`:
                        { name: handler | defineTask(...) | task(...) }, with \`handlers\`
                        for its task() declarations) until SIGINT/SIGTERM
  migrate               apply pending migrations to the schema
  jobs                  list jobs, newest first (--state, --task, --queue, --key, --limit)
  get <id> [--stack]    print one job as JSON (--stack: with each failed attempt's stack)
  retry <id>            run a failed, cancelled or expired job again
  cancel <id>           cancel a job that has not finished
  remove <id>           delete a job that is not running
  clean                 run one retention pass now with the default retention (succeeded 1 day,
                        cancelled and expired 7 days, failed 30 days) and print what it deleted

options:
  --database-url <url>  PostgreSQL to use (default: $DATABASE_URL)
  --schema <name>       schema of jobchart's tables (default: jobchart)
  --max-running-jobs <n>, --name <id>, --poll-interval-ms <n>, --shutdown-timeout-ms <n>   (worker)

The log (pino JSON) goes to stderr at $JOBCHART_LOG_LEVEL (default: info for worker, warn otherwise).
Exit codes: 0 done, 1 refused or failed (a missing job, a refused change, an unmigrated schema,
an unreachable database; one line on stderr says why), 2 a usage mistake.
`;

const ADMIN_COMMANDS = ['migrate', 'jobs', 'get', 'retry', 'cancel', 'remove', 'clean'];

/** CliError is a usage mistake: its message is printed with the usage and the exit code is 2. */
class CliError extends Error {}

/** CliFailure is a request that could not be done: its message alone is printed and the exit code is 1. */
class CliFailure extends Error {}

// JOB_COMMANDS take exactly one job id.
const JOB_COMMANDS = ['get', 'retry', 'cancel', 'remove'];

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
  const runtime = createRuntime(base);
  try {
    await runtime.start({ migrate: command === 'migrate' });
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
  const takesArgument = command === 'worker' || JOB_COMMANDS.includes(command);
  const unexpected = takesArgument ? extra[0] : (argument ?? extra[0]);
  if (unexpected !== undefined) throw new CliError(`${command}: unexpected argument ${unexpected}`);
  if (JOB_COMMANDS.includes(command)) {
    if (argument === undefined) throw new CliError(`${command}: expected a job id`);
    if (!/^[1-9][0-9]{0,18}$/.test(argument)) {
      throw new CliError(`${command}: expected a job id (a positive integer), received ${argument}`);
    }
  }
  if (stack && !JOB_COMMANDS.includes(command)) {
    throw new CliError(`${command}: --stack applies to the commands that print a job`);
  }
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
  values: { state?: string[]; task?: string; queue?: string; key?: string; limit?: string; stack?: boolean },
): Promise<void> {
  const print = (job: Job) => {
    process.stdout.write(`${JSON.stringify(values.stack ? job : withoutStacks(job), null, 2)}\n`);
  };
  // The id was checked before the runtime started, with the runtime's own rule to be sure.
  const needId = () => validateJobId(id);
  switch (command) {
    case 'jobs': {
      const states = values.state?.map((state) => {
        if (!STORED_STATES.includes(state as JobState)) {
          throw new CliError(`jobs: unknown state ${state} (expected one of ${STORED_STATES.join(', ')})`);
        }
        return state as JobState;
      });
      const page = await runtime.listJobs({
        state: states,
        task: values.task,
        queue: values.queue,
        key: values.key,
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
      return print(await runtime.cancel(needId(), 'cancelled from the command line'));
    case 'remove':
      return print(await runtime.remove(needId()));
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

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
import { JOB_STATES, type JobState } from '../machines/job.js';
import { createRuntime, type Runtime } from './api/runtime.js';
import { JobchartError } from './core/errors.js';
import type { Job } from './storage/job-row.js';

const USAGE = `usage: jobchart <command> [options]

commands:
  worker <module>       work the tasks a module exports (its default export or \`tasks\`:
                        { name: handler | defineTask(...) | task(...) }, with \`handlers\`
                        for its task() declarations) until SIGINT/SIGTERM
  migrate               apply pending migrations to the schema
  jobs                  list jobs, newest first (--state, --task, --queue, --key, --limit)
  get <id>              print one job as JSON
  retry <id>            run a failed, cancelled or expired job again
  cancel <id>           cancel a job that has not finished
  remove <id>           delete a job that is not running

options:
  --database-url <url>  PostgreSQL to use (default: $DATABASE_URL)
  --schema <name>       schema of jobchart's tables (default: jobchart)
  --max-running-jobs <n>, --name <id>, --poll-interval-ms <n>, --shutdown-timeout-ms <n>   (worker)

The log (pino JSON) goes to stderr at $JOBCHART_LOG_LEVEL (default: info for worker, warn otherwise).
`;

const ADMIN_COMMANDS = ['migrate', 'jobs', 'get', 'retry', 'cancel', 'remove'];

/** CliError is a usage mistake: its message is printed with the usage and the exit code is 2. */
class CliError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, argument] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
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
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  if (command === 'worker') {
    if (!argument) throw new CliError('worker: expected the path of a module of tasks');
    const module = (await import(pathToFileURL(resolve(argument)).href)) as {
      default?: unknown;
      tasks?: unknown;
      handlers?: unknown;
    };
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
    return work(runtime);
  }
  if (!ADMIN_COMMANDS.includes(command)) throw new CliError(`unknown command ${command}`);
  const runtime = createRuntime(base);
  try {
    await runtime.start({ migrate: command === 'migrate' });
    if (command !== 'migrate') await administer(runtime, command, argument, values);
    return 0;
  } finally {
    await runtime.stop();
  }
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
  values: { state?: string[]; task?: string; queue?: string; key?: string; limit?: string },
): Promise<void> {
  const print = (job: Job | null) => {
    process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
  };
  const needId = () => {
    if (!id) throw new CliError(`${command}: expected a job id`);
    return id;
  };
  switch (command) {
    case 'jobs': {
      const states = values.state?.map((state) => {
        if (!JOB_STATES.includes(state as JobState)) throw new CliError(`jobs: unknown state ${state}`);
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
    case 'get':
      return print(await runtime.getJob(needId()));
    case 'retry':
      return print(await runtime.retry(needId()));
    case 'cancel':
      return print(await runtime.cancel(needId(), 'cancelled from the command line'));
    case 'remove':
      return print(await runtime.remove(needId()));
    default:
      throw new CliError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CliError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(
      `${error instanceof JobchartError ? error.message : String((error as Error)?.stack ?? error)}\n`,
    );
    process.exit(1);
  },
);

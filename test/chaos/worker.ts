/**
 * A jobchart worker in a process of its own, for the chaos harness. It works task `work`, whose
 * handler writes a START line to its work log, takes WORK_MS, and writes an END line (or ABORT when
 * the runtime's signal cut it short). Nothing here touches the database besides the runtime itself:
 * the harness breaks the database, and the log must survive that.
 *
 * It adds nothing that keeps the process alive (its timers are unref'd, it opens no IPC channel), so
 * a runtime that lets its process exit when the database dies shows up as an unexpected exit.
 *
 * stdout carries JSON lines for the harness (`started`, `stats` once a second and at exit,
 * `stopped`); stderr carries a readable account of what happened to the runtime.
 *
 * Environment: DATABASE_URL, SCHEMA, NAME, WORK_LOG (the log file), WORK_MS, HEARTBEAT_MS,
 * CONSUMER_TIMEOUT_MS, MAX_RUNNING, RUNTIME_LOG (a file for the runtime's own pino log, else stderr)
 * and LOG_LEVEL (its level, default warn).
 */
import { writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import { createRuntime, type JobContext, type RuntimeErrorEvent } from '../../src/index.js';
import { WorkLog } from './worklog.js';

const env = process.env;
const name = env.NAME ?? `chaos-${process.pid}`;
const workMs = Number(env.WORK_MS ?? 0);
const log = new WorkLog(env.WORK_LOG ?? `${name}.worklog`, name);
const parentPid = process.ppid;

/** WorkerStats are the counts a worker reports to the harness. */
export interface WorkerStats {
  /** errors counts runtime:error events by their `during`. */
  errors: Record<string, number>;
  disconnected: number;
  /** lastDisconnectedAt and lastConnectedAt tell whether the listener came back after the last loss. */
  lastDisconnectedAt: number | null;
  lastConnectedAt: number | null;
  presumedDead: number;
  swept: number;
  crashed: number;
  started: number;
  ended: number;
  aborted: number;
}

const stats: WorkerStats = {
  errors: {},
  disconnected: 0,
  lastDisconnectedAt: null,
  lastConnectedAt: null,
  presumedDead: 0,
  swept: 0,
  crashed: 0,
  started: 0,
  ended: 0,
  aborted: 0,
};

// say writes one JSON line for the harness. writeSync, because it also runs in the exit handler.
function say(event: string, extra: object = {}): void {
  writeSync(1, `${JSON.stringify({ event, name, ...extra })}\n`);
}

// tell writes one human line to stderr, stamped with the wall time to line it up with the faults.
function tell(text: string): void {
  writeSync(2, `${new Date().toISOString()} ${name}: ${text}\n`);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${code ? ` ${code}` : ''}: ${error.message}`;
  }
  return String(error);
}

const runtime = createRuntime({
  connectionString: env.DATABASE_URL,
  schema: env.SCHEMA ?? 'jobchart',
  name,
  // The runtime's own log (JSON with stacks, many lines per outage) goes to a file of its own, so
  // that stderr, whose end an unexpected exit reports, reads as a short account.
  logger: pino(
    { level: env.LOG_LEVEL ?? 'warn' },
    env.RUNTIME_LOG ? pino.destination({ dest: env.RUNTIME_LOG, sync: true }) : pino.destination(2),
  ),
  maxRunningJobs: Number(env.MAX_RUNNING ?? 10),
  heartbeatIntervalMs: Number(env.HEARTBEAT_MS ?? 1_000),
  consumerTimeoutMs: Number(env.CONSUMER_TIMEOUT_MS ?? 5_000),
  shutdownTimeoutMs: 10_000,
  tasks: {
    work: async (_payload: unknown, ctx: JobContext) => {
      const attempt = ctx.job.attempts;
      log.write('START', ctx.job.id, attempt);
      stats.started++;
      try {
        if (workMs > 0) await delay(workMs, undefined, { signal: ctx.signal });
      } catch (error) {
        const reason = ctx.signal.reason as { name?: string } | undefined;
        log.write('ABORT', ctx.job.id, attempt, reason?.name ?? describe(error));
        stats.aborted++;
        throw error;
      }
      log.write('END', ctx.job.id, attempt);
      stats.ended++;
    },
  },
});

// runtime:error comes in bursts while the database is away (every claim, beat and write retry), so
// each kind is told once a second with the count of those not told.
const lastTold = new Map<string, { at: number; untold: number }>();
runtime.events.on('runtime:error', (e: RuntimeErrorEvent) => {
  stats.errors[e.during] = (stats.errors[e.during] ?? 0) + 1;
  const seen = lastTold.get(e.during) ?? { at: 0, untold: 0 };
  if (Date.now() - seen.at < 1_000) {
    seen.untold++;
    lastTold.set(e.during, seen);
    return;
  }
  const more = seen.untold > 0 ? ` (+${seen.untold} more since)` : '';
  lastTold.set(e.during, { at: Date.now(), untold: 0 });
  tell(`runtime:error during ${e.during}: ${describe(e.error)}${more}`);
});
runtime.events.on('runtime:disconnected', (e) => {
  stats.disconnected++;
  stats.lastDisconnectedAt = Date.now();
  tell(`runtime:disconnected ${e.error ? describe(e.error) : ''}`);
});
runtime.events.on('runtime:connected', () => {
  stats.lastConnectedAt = Date.now();
  tell('runtime:connected');
});
runtime.events.on('runtime:presumed-dead', () => {
  stats.presumedDead++;
  tell('runtime:presumed-dead: other runtimes swept this one');
});
runtime.events.on('runtime:swept', (e) => {
  stats.swept++;
  tell(`runtime:swept consumers ${e.consumers.join(',')} and took back ${e.jobs.length} jobs`);
});
runtime.events.on('runtime:crashed', (e) => {
  stats.crashed++;
  tell(`runtime:crashed (job ${e.jobId}): ${describe(e.error)}; exiting 3`);
  process.exit(3);
});

process.on('uncaughtException', (error) => {
  tell(`uncaught exception: ${error instanceof Error ? (error.stack ?? describe(error)) : String(error)}`);
  process.exit(1);
});
process.on('unhandledRejection', (reason) => {
  tell(
    `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? describe(reason)) : String(reason)}`,
  );
  process.exit(1);
});
// beforeExit fires only when nothing is left to keep the process alive: with a started runtime that
// is a runtime bug (its process would die with the database), so it is said loudly.
process.on('beforeExit', () => {
  tell(`event loop empty: nothing keeps the process alive (runtime phase ${runtime.phase})`);
});
process.on('exit', (code) => {
  say('stats', { stats, final: true });
  tell(`exiting with code ${code}`);
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  tell('SIGTERM: stopping');
  runtime.stop().then(
    () => {
      say('stopped');
      process.exit(0);
    },
    (error: unknown) => {
      tell(`stop failed: ${describe(error)}`);
      process.exit(4);
    },
  );
});

// The ticker reports stats once a second (so even a SIGKILLed worker's counts are at most a second
// old) and exits if the harness died: the worker must never outlive it. Unref'd, to keep nothing alive.
setInterval(() => {
  say('stats', { stats });
  if (process.ppid !== parentPid) {
    tell('the harness is gone; exiting');
    process.exit(5);
  }
}, 1_000).unref();

try {
  await runtime.start();
} catch (error) {
  tell(`start failed: ${describe(error)}; exiting 2`);
  process.exit(2);
}
say('started');
tell('started');

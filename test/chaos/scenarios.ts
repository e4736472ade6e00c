/**
 * The four fault scripts. Each says only what it breaks and when; the run around it (run.ts) sets up
 * the backlog and the workers, waits, and measures.
 */
import type { RunContext, Scenario } from './run.js';

const seconds = (ms: number) => `${ms / 1000} s`;

/** kill SIGKILLs one worker mid-drain and replaces it with a new process, several times over. */
export const kill: Scenario = {
  id: 'kill',
  describe: (o) =>
    `3 workers drain ${o.sizes.jobs} jobs; worker slot 0 is SIGKILLed and replaced ${o.sizes.kills} times, every ${seconds(o.sizes.killIntervalMs)} (once the new process holds jobs)`,
  startAt: 0.05,
  repetitions: () => 1,
  extraDeadlineMs: () => 0,
  async inject(ctx: RunContext) {
    for (let i = 0; i < ctx.options.sizes.kills; i++) {
      if (i > 0) await ctx.pause(ctx.options.sizes.killIntervalMs);
      await ctx.kill(0);
    }
  },
};

/** crash quits PostgreSQL in immediate mode (a crash: the restart runs recovery) twice mid-drain. */
export const crash: Scenario = {
  id: 'crash',
  describe: (o) =>
    `3 workers drain ${o.sizes.jobs} jobs; PostgreSQL crash-restarted (immediate mode) ${o.sizes.crashes} times, ${seconds(o.sizes.crashGapMs)} apart`,
  startAt: 0.15,
  repetitions: (o) => o.sizes.crashRepetitions,
  extraDeadlineMs: () => 0,
  async inject(ctx: RunContext) {
    for (let i = 0; i < ctx.options.sizes.crashes; i++) {
      if (i > 0) await ctx.pause(ctx.options.sizes.crashGapMs);
      await ctx.fault('crash', async () => {
        await ctx.server.crash();
        return 'SIGQUIT, then started again (crash recovery)';
      });
    }
  },
};

/** outage stops PostgreSQL mid-drain for longer than the consumer timeout, then starts it again. */
export const outage: Scenario = {
  id: 'outage',
  describe: (o) =>
    `3 workers drain ${o.sizes.jobs} jobs; PostgreSQL stopped for ${seconds(o.sizes.outageMs)} mid-drain`,
  startAt: 0.15,
  repetitions: () => 1,
  extraDeadlineMs: (o) => o.sizes.outageMs,
  async inject(ctx: RunContext) {
    await ctx.fault('outage', async () => {
      await ctx.server.down();
      await ctx.pause(ctx.options.sizes.outageMs);
      await ctx.server.up();
      return `stopped (fast mode) for ${seconds(ctx.options.sizes.outageMs)}`;
    });
  },
};

/** terminate ends every backend of the database but the harness's own, over and over. */
export const terminate: Scenario = {
  id: 'terminate',
  describe: (o) =>
    `3 workers drain ${o.sizes.jobs} jobs; every ${seconds(o.sizes.terminateEveryMs)} for ${seconds(o.sizes.terminateForMs)}, pg_terminate_backend on every other backend`,
  startAt: 0.1,
  repetitions: () => 1,
  extraDeadlineMs: () => 0,
  async inject(ctx: RunContext) {
    const until = Date.now() + ctx.options.sizes.terminateForMs;
    for (let first = true; Date.now() < until; first = false) {
      if (!first) await ctx.pause(ctx.options.sizes.terminateEveryMs);
      await ctx.fault('terminate', async () => {
        const ended = await ctx.admin.retrying(() => ctx.admin.terminateOthers(), ctx.signal);
        return `${ended} backends terminated`;
      });
    }
  },
};

/** SCENARIOS maps each scenario's id to its script. */
export const SCENARIOS = { kill, crash, outage, terminate } as const;

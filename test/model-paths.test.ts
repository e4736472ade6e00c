import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import type { SnapshotFrom } from 'xstate';
import {
  type AdjacencyMap,
  getAdjacencyMap,
  getShortestPaths,
  getSimplePaths,
  type StatePath,
  type TraversalOptions,
} from 'xstate/graph';
import { type JobEvent, type JobEventType, type JobMachineInput, jobMachine } from '../machines/job.js';
import {
  cancel,
  fail,
  type JobContext,
  type Runtime,
  rerunAfter,
  SimulatedClock,
  type SweptEvent,
  type TransitionEvent,
} from '../src/index.js';
import { databaseUrl, freshSchema, nextEvent, testRuntime } from './support/helpers.js';

// Model-based tests: the job machine's paths, generated from the machine itself when this file loads,
// are replayed against real runtimes and a real database. Every step causes the machine event the
// way production causes it (a claim, a handler outcome, a dead consumer, an operator's call...) and
// the job's row must then be in the machine's state, with the machine's attempts and interruptions.
// Change the machine and the paths change with it.

type Snapshot = SnapshotFrom<typeof jobMachine>;
type Path = StatePath<Snapshot, JobEvent>;

// adjacency is the machine's reachable graph: every state (with its context) and the events it takes.
const adjacency = (options: TraversalOptions<Snapshot, JobEvent, JobMachineInput>) =>
  getAdjacencyMap(jobMachine, options) as AdjacencyMap<Snapshot, JobEvent>;

/** MODEL bounds the machine's context so that its state graph, and so the path set, is finite and small. */
const MODEL = { jobId: 'model', maxAttempts: 2, maxInterruptions: 2 } as const satisfies JobMachineInput;

/** GRAPH_LIMIT turns a machine whose counts no longer stay bounded into a failure, not an endless walk. */
const GRAPH_LIMIT = 20_000;

// vertex names a machine state with the context the machine decides on.
const vertex = (s: Snapshot) => JSON.stringify([s.value, s.context.attempts, s.context.interruptions]);

// accepted keeps the events the machine takes in a state (a guard's refusal is not a transition; a
// self-transition, such as RESCHEDULE of a job that has not started, is).
const accepted = (s: Snapshot, e: JobEvent) => s.can(e);

/**
 * transitionPaths returns, for every transition the machine can take from a reachable state and
 * context, one shortest path ending with it (so every transition is replayed at least once), less
 * the paths that are prefixes of longer ones. Each graph vertex is a transition (target, event,
 * source), which is what makes getShortestPaths cover edges rather than states.
 */
function transitionPaths(input: JobMachineInput): Path[] {
  const paths = getShortestPaths(jobMachine, {
    input,
    limit: GRAPH_LIMIT,
    filterEvents: accepted,
    serializeState: (s, e, prev) =>
      JSON.stringify([vertex(s), e?.type ?? null, prev === undefined ? null : vertex(prev)]),
  });
  const events = (p: Path) => p.steps.slice(1).map((step) => step.event.type);
  const longestFirst = [...paths].sort((a, b) => b.steps.length - a.steps.length);
  const kept: Path[] = [];
  for (const path of longestFirst) {
    const mine = events(path);
    if (!kept.some((longer) => mine.every((e, i) => events(longer)[i] === e))) kept.push(path);
  }
  return kept.sort((a, b) => describePath(a).localeCompare(describePath(b)));
}

function describePath(path: Path): string {
  const events = path.steps.slice(1).map((step) => step.event.type);
  const { attempts, interruptions } = path.state.context;
  return `enqueue → ${events.join(' → ')} ⇒ ${String(path.state.value)} (attempts ${attempts}, interruptions ${interruptions})`;
}

/** machineEvents lists every event type some state of the machine takes. */
function machineEvents(): JobEventType[] {
  const types = new Set<string>();
  for (const node of Object.values(jobMachine.states))
    for (const type of node.transitions.keys()) types.add(type);
  return [...types].sort() as JobEventType[];
}

// Generated once, at load: a machine that makes the walk fail shows as one failing test.
let generated: { paths: Path[] } | { error: unknown };
try {
  generated = { paths: transitionPaths(MODEL) };
} catch (error) {
  generated = { error };
}

// ---------------------------------------------------------------------------------------------------
// Replaying a path

const TIMING = { heartbeatIntervalMs: 1_000, consumerTimeoutMs: 3_000 } as const;
const BACKOFF_MS = 1_000;
const RERUN_MS = 1_000;
const RESCHEDULE_MS = 5_000;
/** EXPIRES_MS is how long after an enqueue (or a replace) the job expires: far beyond any other step. */
const EXPIRES_MS = 600_000;
const KEY = 'model-job';
const TASK = 'work';

// sharedPool serves every runtime of this file: connections are reused, not opened per runtime.
let pool: pg.Pool | null = null;
function sharedPool(): pg.Pool {
  if (!pool) {
    pool = new pg.Pool({ connectionString: databaseUrl(), max: 12 });
    pool.on('error', () => undefined);
  }
  return pool;
}
after(() => pool?.end());

/** HandlerAction is what the test tells the running handler to do. */
type HandlerAction = 'return' | 'throw' | 'rerunAfter' | 'cancel' | 'fail';

/**
 * failCause says how a running job in `running` reaches FAIL in reality, from what the machine
 * refuses there: a throw on the last attempt (the machine refuses RETRY, the policy abandons), or
 * else a handler returning fail(). (A dead consumer on the last interruption allowed is the
 * machine's INTERRUPT leading to failed, not a FAIL.)
 */
function failCause(running: Snapshot): 'throw' | 'fail()' {
  if (!running.can({ type: 'RETRY' })) return 'throw';
  return 'fail()';
}

/** cancelCause alternates the two ways a running job is cancelled: an operator's call, or its handler. */
function cancelCause(running: Snapshot): 'admin' | 'cancel()' {
  return running.context.attempts % 2 === 1 ? 'admin' : 'cancel()';
}

interface Worker {
  runtime: Runtime;
  clock: SimulatedClock;
  /** doomed is set on a worker that is to die holding the job: its clock stops once it has claimed. */
  doomed: boolean;
}

/**
 * Replay drives one job through one path. `admin` is a long-lived runtime with no task of the job's
 * (it enqueues, runs the operator's calls and sweeps dead consumers, on the world's clock); a worker
 * runtime with the job's task is started for each claim, on a clock of its own, and stopped once the
 * job leaves `running`, so that nothing claims the job unless the path says CLAIM.
 */
class Replay {
  readonly schema = freshSchema('model');
  readonly clock = new SimulatedClock(new Date('2030-01-01T00:00:00Z'));
  readonly admin: Runtime;
  /** bus carries every job transition any runtime of this replay emits. */
  readonly bus = new EventEmitter();
  readonly transitions: TransitionEvent[] = [];
  readonly sweeps: SweptEvent[] = [];
  worker: Worker | null = null;
  /** workersStarted numbers the workers: each is a consumer of its own. */
  private workersStarted = 0;
  jobId = '';
  private decide: ((action: HandlerAction) => void) | null = null;
  private onHandlerStart: (() => void) | null = null;

  constructor() {
    this.admin = testRuntime({
      schema: this.schema,
      pool: sharedPool(),
      clock: this.clock,
      name: `${this.schema}:admin`,
      listen: false,
      pollIntervalMs: 60_000,
      maxInterruptions: MODEL.maxInterruptions,
      externalTasks: [TASK],
      tasks: { other: () => undefined },
      ...TIMING,
    });
    this.watch(this.admin);
    this.admin.events.on('runtime:swept', (e) => this.sweeps.push(e));
  }

  private watch(runtime: Runtime): void {
    runtime.events.on('job:transition', (e) => {
      if (e.job.id !== this.jobId) return;
      this.transitions.push(e);
      this.bus.emit('transition', e);
    });
  }

  private transition(event: JobEventType): Promise<TransitionEvent> {
    return nextEvent<TransitionEvent>(this.bus, 'transition', (e) => e.event === event);
  }

  // handler runs the job's attempts: it waits for the test's word (or its signal) and does as told.
  private readonly handler = async (_payload: unknown, ctx: JobContext) => {
    const action = await new Promise<HandlerAction>((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      this.decide = resolve;
      this.onHandlerStart?.();
    });
    this.decide = null;
    switch (action) {
      case 'return':
        return { ok: true };
      case 'throw':
        throw new Error(`attempt ${ctx.job.attempts} failed`);
      case 'rerunAfter':
        return rerunAfter(RERUN_MS);
      case 'cancel':
        return cancel('the handler cancelled');
      case 'fail':
        return fail('the handler failed');
    }
  };

  private tell(action: HandlerAction): void {
    assert.ok(this.decide, `the handler is not waiting (to ${action})`);
    this.decide(action);
  }

  async start(): Promise<void> {
    await this.admin.start();
  }

  // advance moves the world's clock and the live worker's (a doomed worker's clock stays where it died).
  private advance(ms: number): void {
    if (ms <= 0) return;
    this.clock.advance(ms);
    if (this.worker && !this.worker.doomed) this.worker.clock.advance(ms);
  }

  // startWorker starts a worker on a clock of its own that reads the world's time. It listens only
  // to hear an operator cancel the job it runs: claims come from its start, its polls and due timers.
  // (A worker that will die must not listen anyway: it would claim the job back once the sweep freed it.)
  private async startWorker(listen: boolean): Promise<Worker> {
    assert.equal(this.worker, null, 'one worker at a time');
    const clock = new SimulatedClock(this.clock.now());
    const runtime = testRuntime({
      schema: this.schema,
      pool: sharedPool(),
      clock,
      name: `${this.schema}:worker${++this.workersStarted}`,
      listen,
      pollIntervalMs: 1_000,
      maxRunningJobs: 1,
      prefetch: 0,
      maxInterruptions: MODEL.maxInterruptions,
      tasks: {
        [TASK]: {
          handler: this.handler,
          maxAttempts: MODEL.maxAttempts,
          backoff: { type: 'fixed', delayMs: BACKOFF_MS },
        },
      },
      ...TIMING,
    });
    this.watch(runtime);
    this.worker = { runtime, clock, doomed: false };
    await runtime.start({ migrate: false });
    return this.worker;
  }

  // stopWorker stops the worker gracefully once the job has left it.
  private async stopWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.runtime.stop();
  }

  // killWorker stops the worker at once, running handler and all (a second stop() waits for nothing).
  private async killWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const stopping = worker.runtime.stop();
    void worker.runtime.stop();
    await stopping;
  }

  // sweepUntil moves the world's clock a heartbeat at a time until the admin runtime's sweep has
  // taken the job back from its dead worker, then disposes of the dead worker.
  private async sweepUntil(state: 'interrupted' | 'failed'): Promise<void> {
    this.sweeps.length = 0;
    const taken = () => this.sweeps.flatMap((s) => s.jobs).find((job) => job.id === this.jobId);
    for (let beat = 0; beat < 20 && !taken(); beat++) {
      const beaten = nextEvent(this.admin.events, 'runtime:heartbeat');
      this.clock.advance(TIMING.heartbeatIntervalMs);
      await beaten;
    }
    assert.deepEqual(taken(), { id: this.jobId, state }, 'the sweep took the job back');
    await this.killWorker();
  }

  private async row(): Promise<{ state: string; attempts: number; interruptions: number } | null> {
    const job = await this.admin.getJob(this.jobId);
    return job && { state: job.state, attempts: job.attempts, interruptions: job.interruptions };
  }

  /** enqueue is the machine's start. */
  async enqueue(): Promise<void> {
    const now = this.clock.now();
    const job = await this.admin.enqueue(
      TASK,
      {},
      {
        key: KEY,
        maxAttempts: MODEL.maxAttempts,
        expiresAt: new Date(now.getTime() + EXPIRES_MS),
      },
    );
    this.jobId = job.id;
    this.transitions.push({ job, from: null, to: job.state, event: 'ENQUEUE', at: now });
  }

  /** cause makes `event` happen to the job, in `from`, the way it happens in production. */
  async cause(from: Snapshot, event: JobEventType, to: Snapshot, next: JobEventType | undefined) {
    const world = () => this.clock.now().getTime();
    switch (event) {
      case 'CLAIM': {
        // A worker that is to die holding the job has its clock stopped once it has claimed it.
        const dies = next === 'INTERRUPT';
        const started = new Promise<void>((resolve) => {
          this.onHandlerStart = resolve;
        });
        const claimed = this.transition('CLAIM');
        const worker = await this.startWorker(next === 'CANCEL' && cancelCause(to) === 'admin');
        // A job due later is claimed when the worker's clock reaches it (its poll or due timer).
        const job = await this.admin.getJob(this.jobId);
        const dueAt = job?.runAt?.getTime() ?? world();
        this.advance(dueAt - world());
        await claimed;
        await started;
        this.onHandlerStart = null;
        worker.doomed = dies;
        return;
      }
      case 'SUCCEED': {
        const done = this.transition('SUCCEED');
        this.tell('return');
        await done;
        return this.stopWorker();
      }
      case 'RETRY': {
        const done = this.transition('RETRY');
        this.tell('throw');
        await done;
        return this.stopWorker();
      }
      case 'RERUN': {
        const done = this.transition('RERUN');
        this.tell('rerunAfter');
        await done;
        return this.stopWorker();
      }
      case 'FAIL': {
        const cause = failCause(from);
        const done = this.transition('FAIL');
        this.tell(cause === 'throw' ? 'throw' : 'fail');
        await done;
        return this.stopWorker();
      }
      case 'INTERRUPT':
        // The machine says what the sweep must make of it: interrupted, or failed on the last.
        return this.sweepUntil(to.value as 'interrupted' | 'failed');
      case 'RELEASE': {
        const released = this.transition('RELEASE');
        await this.killWorker();
        await released;
        return;
      }
      case 'CANCEL': {
        if (from.value !== 'running') {
          await this.admin.cancel(this.jobId, 'an operator cancelled');
          return;
        }
        const done = this.transition('CANCEL');
        // The operator's call reaches the worker through NOTIFY and fires the handler's signal.
        if (cancelCause(from) === 'admin') await this.admin.cancel(this.jobId, 'an operator cancelled');
        else this.tell('cancel');
        await done;
        return this.stopWorker();
      }
      case 'EXPIRE': {
        // The expiry passes before any worker looks; the next claim finds the job expired.
        const job = await this.admin.getJob(this.jobId);
        assert.ok(job?.expiresAt, 'the job has an expiry');
        this.advance(job.expiresAt.getTime() + 1 - world());
        const expired = this.transition('EXPIRE');
        await this.startWorker(false);
        await expired;
        return this.stopWorker();
      }
      case 'RESCHEDULE':
        await this.admin.reschedule(this.jobId, new Date(world() + RESCHEDULE_MS));
        return;
      case 'REPLACE':
        await this.admin.enqueue(
          TASK,
          { replaced: true },
          {
            key: KEY,
            mode: 'reschedule',
            runAt: new Date(world() + RESCHEDULE_MS),
            maxAttempts: MODEL.maxAttempts,
            expiresAt: new Date(world() + EXPIRES_MS),
          },
        );
        return;
      case 'REMOVE':
        await this.admin.remove(this.jobId);
        return;
      case 'RESTART':
        await this.admin.retry(this.jobId);
        return;
      default:
        // A new machine event fails here until this test knows what causes it in production.
        throw new Error(`no known cause in the runtime for the machine event ${String(event)}`);
    }
  }

  /** check asserts that the job's row is in `expected`, and that the runtimes reported `reported`. */
  async check(expected: Snapshot, reported: Pick<TransitionEvent, 'from' | 'event' | 'to'>[], where: string) {
    const row = await this.row();
    if (expected.value === 'removed') assert.equal(row, null, `${where}: the row is deleted`);
    else {
      assert.deepEqual(
        row,
        {
          state: expected.value,
          attempts: expected.context.attempts,
          interruptions: expected.context.interruptions,
        },
        `${where}: the row matches the machine`,
      );
    }
    const seen = this.transitions.splice(0).map(({ from, event, to }) => ({ from, event, to }));
    assert.deepEqual(seen, reported, `${where}: the transitions the runtimes reported`);
  }

  async close(): Promise<void> {
    await this.killWorker().catch(() => undefined);
    await this.admin.stop().catch(() => undefined);
    await sharedPool()
      .query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`)
      .catch(() => undefined);
  }
}

async function replay(path: Path): Promise<void> {
  const world = new Replay();
  try {
    await world.start();
    await world.enqueue();
    const [first, ...steps] = path.steps as [Path['steps'][number], ...Path['steps']];
    await world.check(first.state, [{ from: null, event: 'ENQUEUE', to: 'not_started' }], 'after enqueue');
    let from = first.state;
    for (const [i, step] of steps.entries()) {
      const event = step.event.type;
      const how =
        event === 'FAIL' && from.value === 'running'
          ? `, by ${failCause(from)}`
          : event === 'CANCEL' && from.value === 'running'
            ? `, by ${cancelCause(from)}`
            : '';
      const where = `step ${i + 1} (${event} from ${String(from.value)}${how})`;
      await world.cause(from, event, step.state, steps[i + 1]?.event.type);
      // A sweep reports what it took back as runtime:swept, not as a job transition.
      const bySweep = event === 'INTERRUPT';
      await world.check(
        step.state,
        bySweep ? [] : [{ from: from.value, event, to: step.state.value }],
        where,
      );
      from = step.state;
    }
  } finally {
    await world.close();
  }
}

describe('the job machine, replayed path by path against the runtime and the database', () => {
  if ('error' in generated) {
    const { error } = generated;
    it('generates the paths from the machine', () => {
      throw error;
    });
    return;
  }
  const { paths } = generated;

  it('covers every transition of the machine (bounded context) and every event it takes', () => {
    // Every transition reachable in the bounded model is the last step of some shortest path, and
    // every such path is a prefix of a replayed one.
    const graph = adjacency({ input: MODEL, limit: GRAPH_LIMIT, filterEvents: accepted });
    const replayed = new Set<string>();
    for (const path of paths) {
      for (let i = 1; i < path.steps.length; i++) {
        const [before, after] = [path.steps[i - 1], path.steps[i]] as [
          Path['steps'][number],
          Path['steps'][number],
        ];
        replayed.add(`${vertex(before.state)} ${after.event.type}`);
      }
    }
    const transitions = Object.values(graph).flatMap(({ state, transitions }) =>
      (Object.values(transitions) as { event: JobEvent }[]).map(
        ({ event }) => `${vertex(state)} ${event.type}`,
      ),
    );
    assert.ok(transitions.length > 0);
    assert.deepEqual(
      transitions.filter((t) => !replayed.has(t)),
      [],
      'every transition of the bounded model is replayed',
    );
    const events = new Set(paths.flatMap((path) => path.steps.slice(1).map((step) => step.event.type)));
    assert.deepEqual(
      machineEvents().filter((event) => !events.has(event)),
      [],
      'every event the machine takes is caused by some replayed path',
    );
  });

  describe(`${paths.length} paths`, { concurrency: 6 }, () => {
    for (const path of paths) it(describePath(path), () => replay(path));
  });
});

describe('the machine is the authority on attempts', () => {
  // Whatever happens along a path, the counts stay within their bounds: checked on every step of
  // every simple path for small bounds, and on every reachable state (every state on any path) for
  // larger ones. A machine whose counts grew without bound would exceed GRAPH_LIMIT and fail too.
  const within = (s: Snapshot) =>
    s.context.attempts >= 0 &&
    s.context.attempts <= s.context.maxAttempts &&
    s.context.interruptions >= 0 &&
    s.context.interruptions <= s.context.maxInterruptions;
  const show = (s: Snapshot) => `${String(s.value)} ${JSON.stringify(s.context)}`;

  for (const maxAttempts of [1, 2]) {
    for (const maxInterruptions of [1, 2]) {
      it(`every step of every simple path (maxAttempts ${maxAttempts}, maxInterruptions ${maxInterruptions})`, () => {
        const paths = getSimplePaths(jobMachine, {
          input: { jobId: 'bounds', maxAttempts, maxInterruptions },
          limit: GRAPH_LIMIT,
          // A state out of bounds ends its paths, so the walk stays finite and the path shows how.
          stopWhen: (s) => !within(s),
        });
        assert.ok(paths.length > 0);
        for (const path of paths) {
          for (const step of path.steps) {
            assert.ok(
              within(step.state),
              `${show(step.state)} after ${path.steps.map((s) => s.event.type).join(' → ')}`,
            );
          }
        }
      });
    }
  }

  it('every reachable state, for maxAttempts and maxInterruptions from 1 to 6', () => {
    for (let maxAttempts = 1; maxAttempts <= 6; maxAttempts++) {
      for (let maxInterruptions = 1; maxInterruptions <= 6; maxInterruptions++) {
        const input = { jobId: 'bounds', maxAttempts, maxInterruptions };
        // stopWhen keeps the walk finite if the bounds are broken, and the shortest path to the first
        // state out of bounds is the counterexample.
        const outside = getShortestPaths(jobMachine, {
          input,
          limit: GRAPH_LIMIT,
          stopWhen: (s) => !within(s),
          toState: (s) => !within(s),
        });
        assert.deepEqual(
          outside.map((p) => `${show(p.state)} after ${p.steps.map((s) => s.event.type).join(' → ')}`),
          [],
        );
        const states = Object.values(adjacency({ input, limit: GRAPH_LIMIT }));
        assert.ok(states.length > 1 && states.every(({ state }) => within(state)));
      }
    }
  });
});

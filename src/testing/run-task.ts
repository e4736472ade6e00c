import { pino } from 'pino';
import { createActor, fromPromise, toPromise } from 'xstate';
import { DEFAULT_MAX_INTERRUPTIONS } from '../../machines/job.js';
import type { PolicyDecision, PolicyInput } from '../../machines/policy.js';
import { validateJobId } from '../api/admin.js';
import { type Clock, SimulatedClock } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { toJsonText } from '../core/json.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import type { Logger } from '../core/logger.js';
import { targetOf } from '../core/transitions.js';
import type { CompletionWriter } from '../dispatch/completions.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { type OnExceptionPolicy, toPolicyLogic } from '../dispatch/exceptions.js';
import { ProgressWriter } from '../dispatch/progress.js';
import { RuntimeEvents } from '../jobs/events.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  type JobContext,
  MAX_ATTEMPTS_LIMIT,
  type TaskDefinition,
  type TaskHandler,
  validateInteger,
  validateTaskDefinition,
  validateTaskName,
} from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { Outcome } from '../storage/outcome-statements.js';
import type { ClaimedJob, Storage } from '../storage/storage.js';
import { describeAttempt, type PolicyCall, type ProgressReport, type RunResult } from './run-result.js';

/** RunTaskOptions describe the one attempt `runTask` runs; every field has the runtime's default. */
export interface RunTaskOptions {
  /**
   * clock is the time the attempt sees (default a fresh SimulatedClock at 2030-01-01): every runAt in
   * the result, the timeout and rerunAfter are measured on it, as the runtime measures them on its own.
   */
  clock?: Clock;
  /** attempt is the attempt being run, counting it (default 1): ctx.job.attempts, and what the policy is told. */
  attempt?: number;
  /** maxAttempts of the job (default the task's maxAttempts, else 25, as enqueue would give it). */
  maxAttempts?: number;
  /** jobId of the job (default "1"): ctx.job.id and the id the policy is told. */
  jobId?: string;
  /** taskName is the job's task (default "task"): ctx.job.task and PolicyInput.task. */
  taskName?: string;
  /** logger is the runtime's logger; ctx.logger is its child (default silent, so tests stay quiet). */
  logger?: Logger;
  /**
   * onException is the runtime's policy (default the policy machine, as createRuntime's). It is not
   * checked here: something that is not a policy crashes the attempt with a PolicyError.
   */
  onException?: OnExceptionPolicy;
  /**
   * random is the number in [0, 1) the policy gets for jitter. The runtime draws Math.random(), which
   * is also the default; fix it to assert an exact delay of a backoff with jitter.
   */
  random?: number;
  /**
   * elapseMs is how long, in simulated time, the handler's asynchronous work takes: once the handler
   * has returned a promise, the clock (which must then be a SimulatedClock) is advanced by this much
   * before the promise's outcome is looked at. With elapseMs >= the task's timeoutMs the attempt
   * times out, exactly as it would in a runtime whose clock moved on while the handler ran. A
   * handler that returns a plain value takes no time.
   */
  elapseMs?: number;
}

const RUN_TASK_OPTION_NAMES = optionNames<RunTaskOptions>({
  clock: true,
  attempt: true,
  maxAttempts: true,
  jobId: true,
  taskName: true,
  logger: true,
  onException: true,
  random: true,
  elapseMs: true,
});

// CONSUMER_ID is the holder written on the job: the kit plays a runtime of that name.
const CONSUMER_ID = 'jobchart/testing';

// silentLogger is the default: a test's output is its assertions.
const silentLogger = pino({ level: 'silent' });

// The dispatcher's database seams, typed from the real classes so that a changed signature fails
// the build here. The one-job "database" behind them claims the job once and keeps nothing.
type StorageSeam = Pick<Storage, 'jobsClaim' | 'jobsNextRunAt' | 'jobsReleaseHeld' | 'jobsWriteProgress'>;
type CompletionSeam = Pick<CompletionWriter, 'submit' | 'pendingIds'>;

/**
 * runTask runs one attempt of a task's handler the way a runtime runs a claimed job, with no
 * database, and resolves with what the runtime would do. The attempt goes through the runtime's own
 * Dispatcher (the same HandlerContext, AbortSignal, timeout, handler outcomes, result checks, job
 * machine and onException policy): only the storage under it is replaced by one that hands over
 * this job and records its outcome. Rate limits always find a token. An invalid task definition,
 * payload or option is a ValidationError, as createRuntime and enqueue would throw.
 */
export async function runTask<Payload>(
  task: TaskDefinition<Payload> | TaskHandler<Payload>,
  payload: Payload,
  options: RunTaskOptions = {},
): Promise<RunResult> {
  const definition = validateTaskDefinition(task, 'task');
  assertKnownKeys(options, RUN_TASK_OPTION_NAMES, 'runTask');
  const clock = options.clock ?? new SimulatedClock();
  const maxAttempts = validateInteger(
    options.maxAttempts ?? definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    'maxAttempts',
    1,
    MAX_ATTEMPTS_LIMIT,
  );
  const attempt = validateInteger(options.attempt ?? 1, 'attempt', 1, maxAttempts);
  const taskName = validateTaskName(options.taskName ?? 'task', 'taskName');
  const jobId = validateJobId(options.jobId ?? '1', 'jobId');
  const random = options.random;
  if (random !== undefined && !(typeof random === 'number' && random >= 0 && random < 1)) {
    throw new ValidationError('random', 'a number in [0, 1)', random);
  }
  const elapseMs = options.elapseMs;
  if (elapseMs !== undefined) {
    validateInteger(elapseMs, 'elapseMs', 0);
    if (!(clock instanceof SimulatedClock)) {
      throw new ValidationError('clock', 'a SimulatedClock when elapseMs is given', clock);
    }
  }
  // The handler gets the payload as a claim reads it back: JSON, as enqueue stores it.
  const payloadJson = toJsonText(payload, 'payload');

  const now = clock.now();
  const job: Job = {
    id: jobId,
    task: taskName,
    queue: 'default',
    payload: JSON.parse(payloadJson),
    priority: 0,
    state: targetOf('CLAIM'),
    runAt: now,
    attempts: attempt,
    maxAttempts,
    interruptions: 0,
    lastError: null,
    errors: [],
    key: null,
    expiresAt: null,
    progress: null,
    result: null,
    createdAt: now,
    createdBy: CONSUMER_ID,
    lockedBy: CONSUMER_ID,
    lockedAt: now,
    finishedAt: null,
    updatedAt: now,
    tags: [],
    traceContext: null,
  };
  // A first attempt is claimed from not_started, a later one from retry.
  let unclaimed: ClaimedJob | null = { job, from: attempt === 1 ? 'not_started' : 'retry' };

  const events = new RuntimeEvents();
  const progress: ProgressReport[] = [];
  events.on('job:progress', ({ completed, total, at }) => progress.push({ completed, total, at }));

  // What the kit observes, without changing it: the handler's ctx, and the policy's input and answer.
  let context: JobContext | null = null;
  let told: PolicyCall | null = null;
  let crash: { error: unknown } | null = null;

  const handler: TaskHandler = (value, ctx) => {
    context = ctx;
    const returned = definition.handler(value, ctx);
    if (elapseMs !== undefined && isThenable(returned)) {
      // Queued before the dispatcher looks at the promise, after it set the timeout's timer.
      queueMicrotask(() => (clock as SimulatedClock).advance(elapseMs));
    }
    return returned;
  };
  const policy = toPolicyLogic(options.onException);
  const observedPolicy = fromPromise<PolicyDecision, PolicyInput>(async ({ input }) => {
    const call: PolicyCall = {
      input: random === undefined ? input : { ...input, random },
    };
    told = call;
    // Whatever the policy answers goes back unchanged: the dispatcher checks it, as it always does.
    const decision = (await toPromise(createActor(policy, { input: call.input }).start())) as PolicyDecision;
    call.decision = decision;
    return decision;
  });

  return new Promise<RunResult>((resolve, reject) => {
    const storage: StorageSeam = {
      jobsClaim: async () => {
        const claimed = unclaimed;
        unclaimed = null;
        return claimed ? [claimed] : [];
      },
      jobsNextRunAt: async () => null,
      jobsReleaseHeld: async () => [],
      jobsWriteProgress: async () => undefined,
    };
    const progressWriter = new ProgressWriter(
      storage as unknown as Storage,
      CONSUMER_ID,
      clock,
      events,
      () => undefined,
    );
    const finish = (outcome: Outcome) => {
      void dispatcher.stopClaiming();
      void progressWriter.stop();
      try {
        const witness = { job, context, told, crash, timeoutMs: definition.timeoutMs };
        resolve({ ...describeAttempt(outcome, witness), progress, job });
      } catch (error) {
        reject(error);
      }
    };
    const completions: CompletionSeam = {
      // The write is "durable" a turn later, as a real one is never synchronous.
      submit: (outcome, settle) =>
        queueMicrotask(() => {
          settle(true, clock.now(), outcome);
          finish(outcome);
        }),
      pendingIds: () => [],
    };
    const dispatcher: Dispatcher = new Dispatcher({
      storage: storage as unknown as Storage,
      completions: completions as unknown as CompletionWriter,
      progress: progressWriter,
      clock,
      events,
      logger: options.logger ?? silentLogger,
      tasks: new Map([[taskName, { ...definition, handler }]]),
      maxRunningJobs: 1,
      prefetch: 0,
      queueLimits: new Map(),
      serialQueues: new Set(),
      expiredState: targetOf('EXPIRE'),
      takeToken: async () => null,
      onSerialDone: () => undefined,
      onExpired: () => undefined,
      consumerId: CONSUMER_ID,
      policy: observedPolicy,
      inspect: undefined,
      armAt: () => undefined,
      onCrash: (error) => {
        crash = { error };
      },
      onClaimed: () => undefined,
      onClaimError: reject,
      onReleased: () => undefined,
      maxInterruptions: DEFAULT_MAX_INTERRUPTIONS,
    });
    dispatcher.wake();
  });
}

// isThenable is what the dispatcher treats as a handler still at work: a promise or a thenable.
function isThenable(value: unknown): boolean {
  return value instanceof Promise || (typeof value === 'object' && value !== null && 'then' in value);
}

import { assign, setup } from 'xstate';

/**
 * JobMachineContext is what the machine needs to decide a change: who the job is, how many attempts
 * its handlers have spent, and how many times a dead consumer was holding it.
 */
export interface JobMachineContext {
  jobId: string;
  attempts: number;
  maxAttempts: number;
  /** interruptions counts the times the job was taken back from a consumer that stopped heartbeating. */
  interruptions: number;
  /** maxInterruptions is the interruption that fails the job instead (a job that kills its worker). */
  maxInterruptions: number;
}

/** JobMachineInput is what a fresh job starts from. */
export interface JobMachineInput {
  jobId: string;
  maxAttempts: number;
  /** maxInterruptions defaults to DEFAULT_MAX_INTERRUPTIONS. */
  maxInterruptions?: number;
}

/**
 * DEFAULT_MAX_INTERRUPTIONS is how many times a job may be taken back from dead consumers before it
 * fails: enough that a job merely held (prefetched) by workers that were killed survives a few
 * kills, few enough that a job that kills its worker every time stops after as many dead workers.
 */
export const DEFAULT_MAX_INTERRUPTIONS = 5;

/**
 * JobEvent lists every event that may move a job. Each one is written to the database by exactly one
 * guarded statement, so adding an event here means adding its write in the storage module.
 */
export type JobEvent =
  /** A consumer took the job to run it (spends an attempt). */
  | { type: 'CLAIM' }
  /** The handler finished without error. */
  | { type: 'SUCCEED' }
  /** The onException policy asked for another attempt later. */
  | { type: 'RETRY' }
  /** The job failed for good: attempts used up, the policy abandoned it, or the handler said so. */
  | { type: 'FAIL' }
  /**
   * The consumer holding the job stopped heartbeating; the job will be claimed again. Its attempt is
   * refunded (a handler may never have started: the job may have waited in the dead consumer's local
   * queue) and the interruption is counted instead. On the last interruption allowed the job fails.
   */
  | { type: 'INTERRUPT' }
  /** The consumer gave the job back unfinished (shutdown, crash), refunding the attempt. */
  | { type: 'RELEASE' }
  /** The handler asked to run again later without spending an attempt. */
  | { type: 'RERUN' }
  /** Someone cancelled the job before it finished. */
  | { type: 'CANCEL' }
  /** The job was not started before its expiry time. */
  | { type: 'EXPIRE' }
  /** An operator moved a waiting job to a new time. */
  | { type: 'RESCHEDULE' }
  /** An enqueue with the job's key and mode 'reschedule' replaced its specification, attempts reset. */
  | { type: 'REPLACE' }
  /** An operator deleted the job; a running job cannot be removed. */
  | { type: 'REMOVE' }
  /** An operator asked a finished, unsuccessful job to run again with fresh attempts. */
  | { type: 'RESTART' };

/** JobEventType is the name of a job event. */
export type JobEventType = JobEvent['type'];

/** JobState is the name of a job's lifecycle state, as stored in the `state` column. */
export type JobState =
  | 'not_started'
  | 'running'
  | 'retry'
  | 'interrupted'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'expired'
  /** removed is where a deleted job ends: it is announced, never stored (the row is gone). */
  | 'removed';

/** JOB_STATES lists every lifecycle state, in the order a job usually meets them. */
export const JOB_STATES: readonly JobState[] = [
  'not_started',
  'running',
  'retry',
  'interrupted',
  'succeeded',
  'failed',
  'cancelled',
  'expired',
  'removed',
];

/** STORED_STATES are the states a row of the jobs table can be in: every state but `removed`. */
export const STORED_STATES: readonly JobState[] = JOB_STATES.filter((state) => state !== 'removed');

// waitingTransitions are shared by the three states a consumer may claim a job from.
const waitingTransitions = {
  CLAIM: { target: 'running', actions: 'spendAttempt' },
  EXPIRE: { target: 'expired' },
  CANCEL: { target: 'cancelled' },
  RESCHEDULE: { target: 'not_started' },
  REPLACE: { target: 'not_started', actions: 'resetCounts' },
  REMOVE: { target: 'removed' },
} as const;

// finishedTransitions: finished states are tagged `finished` rather than typed `final`, because an
// operator may still restart a failed, cancelled or expired job, and XState final states take no events.
const finishedTransitions = {
  RESTART: { target: 'not_started', actions: 'resetCounts' },
  REMOVE: { target: 'removed' },
} as const;

/**
 * jobMachine is the lifecycle of one job and the only authority on its state changes. It is pure (no
 * I/O, no timers): due times such as retry and expiry live in columns, because XState `after` timers
 * are not persisted.
 */
export const jobMachine = setup({
  types: {
    context: {} as JobMachineContext,
    events: {} as JobEvent,
    input: {} as JobMachineInput,
  },
  actions: {
    spendAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    refundAttempt: assign({ attempts: ({ context }) => Math.max(0, context.attempts - 1) }),
    // A restarted or replaced job starts afresh: attempts and interruptions alike.
    resetCounts: assign({ attempts: 0, interruptions: 0 }),
    countInterruption: assign({ interruptions: ({ context }) => context.interruptions + 1 }),
  },
  guards: {
    hasAttemptsLeft: ({ context }) => context.attempts < context.maxAttempts,
    hasInterruptionsLeft: ({ context }) => context.interruptions + 1 < context.maxInterruptions,
  },
}).createMachine({
  id: 'job',
  initial: 'not_started',
  context: ({ input }) => ({
    jobId: input.jobId,
    attempts: 0,
    maxAttempts: input.maxAttempts,
    interruptions: 0,
    maxInterruptions: input.maxInterruptions ?? DEFAULT_MAX_INTERRUPTIONS,
  }),
  states: {
    not_started: { tags: ['claimable'], on: waitingTransitions },
    running: {
      on: {
        SUCCEED: { target: 'succeeded' },
        RETRY: { target: 'retry', guard: 'hasAttemptsLeft' },
        FAIL: { target: 'failed' },
        // The consumer died holding the job: claimable again while interruptions are left, else
        // failed (a job that kills its worker every time must stop); either way it is counted.
        INTERRUPT: [
          {
            target: 'interrupted',
            guard: 'hasInterruptionsLeft',
            actions: ['refundAttempt', 'countInterruption'],
          },
          { target: 'failed', actions: 'countInterruption' },
        ],
        RELEASE: { target: 'not_started', actions: 'refundAttempt' },
        RERUN: { target: 'not_started', actions: 'refundAttempt' },
        CANCEL: { target: 'cancelled' },
      },
    },
    retry: { tags: ['claimable'], on: waitingTransitions },
    interrupted: { tags: ['claimable'], on: waitingTransitions },
    succeeded: { tags: ['finished'], on: { REMOVE: { target: 'removed' } } },
    failed: { tags: ['finished'], on: finishedTransitions },
    cancelled: { tags: ['finished'], on: finishedTransitions },
    expired: { tags: ['finished'], on: finishedTransitions },
    removed: { tags: ['finished'] },
  },
});

/** JobMachine is the type of the job lifecycle machine. */
export type JobMachine = typeof jobMachine;

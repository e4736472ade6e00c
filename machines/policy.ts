import { assign, setup } from 'xstate';
import { type Backoff, backoffDelay } from './backoff.js';

/** PolicyInput is what an onException policy is told about a failed attempt. */
export interface PolicyInput {
  jobId: string;
  task: string;
  /** The attempt that just failed, starting at 1. */
  attempt: number;
  maxAttempts: number;
  error: unknown;
  backoff: Backoff;
  /** A number in [0, 1) for jitter, given so the policy stays pure. */
  random: number;
}

/**
 * PolicyDecision is what happens to a job whose handler threw: `retry` after `delayMs`, `abandon`
 * (the job fails for good), or `crash` (the runtime stops claiming, releases its jobs and reports).
 */
export type PolicyDecision =
  | { action: 'retry'; delayMs: number }
  | { action: 'abandon' }
  | { action: 'crash' };

interface PolicyContext {
  input: PolicyInput;
  decision: PolicyDecision;
}

/**
 * policyMachine is the default onException policy: retry with the task's backoff while attempts
 * remain, then abandon. It never crashes; a custom policy may.
 */
export const policyMachine = setup({
  types: {
    context: {} as PolicyContext,
    input: {} as PolicyInput,
    output: {} as PolicyDecision,
  },
  guards: {
    hasAttemptsLeft: ({ context }) => context.input.attempt < context.input.maxAttempts,
  },
  actions: {
    decideRetry: assign({
      decision: ({ context: { input } }) => ({
        action: 'retry' as const,
        delayMs: backoffDelay(input.backoff, input.attempt, input.error, input.random),
      }),
    }),
    decideAbandon: assign({ decision: { action: 'abandon' as const } }),
  },
}).createMachine({
  id: 'onException',
  initial: 'deciding',
  context: ({ input }) => ({ input, decision: { action: 'abandon' } }),
  output: ({ context }) => context.decision,
  states: {
    deciding: {
      always: [
        { guard: 'hasAttemptsLeft', target: 'retrying', actions: 'decideRetry' },
        { target: 'abandoning', actions: 'decideAbandon' },
      ],
    },
    retrying: { type: 'final' },
    abandoning: { type: 'final' },
  },
});

/** PolicyMachine is the type of the default onException policy machine. */
export type PolicyMachine = typeof policyMachine;

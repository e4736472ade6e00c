import { type AnyActorLogic, createActor, fromPromise, toPromise } from 'xstate';
import { type PolicyDecision, type PolicyInput, policyMachine } from '../../machines/policy.js';
import { PolicyError } from '../core/errors.js';

/** PolicyFunction is an onException policy written as a plain (possibly async) function. */
export type PolicyFunction = (input: PolicyInput) => PolicyDecision | Promise<PolicyDecision>;

/** OnExceptionPolicy is a policy function or any XState actor logic taking PolicyInput and outputting a PolicyDecision. */
export type OnExceptionPolicy = PolicyFunction | AnyActorLogic;

/** toPolicyLogic turns a policy option into actor logic; the default is the policy machine. */
export function toPolicyLogic(policy: OnExceptionPolicy | undefined): AnyActorLogic {
  if (policy === undefined) return policyMachine;
  if (typeof policy === 'function')
    return fromPromise<PolicyDecision, PolicyInput>(async ({ input }) => policy(input));
  return policy;
}

/**
 * askPolicy runs the policy as an actor for one failed attempt and returns its checked decision. A
 * policy that throws or answers nonsense raises a PolicyError.
 */
export async function askPolicy(logic: AnyActorLogic, input: PolicyInput): Promise<PolicyDecision> {
  let output: unknown;
  try {
    output = await toPromise(createActor(logic, { input }).start());
  } catch (error) {
    throw new PolicyError(input.jobId, 'it threw', error);
  }
  return checkDecision(input.jobId, output);
}

function checkDecision(jobId: string, output: unknown): PolicyDecision {
  const decision = output as PolicyDecision | undefined;
  switch (decision?.action) {
    case 'abandon':
    case 'crash':
      return decision;
    case 'retry':
      if (Number.isFinite(decision.delayMs) && decision.delayMs >= 0) return decision;
      throw new PolicyError(jobId, `retry with delayMs ${String(decision.delayMs)}`);
    default:
      throw new PolicyError(jobId, `got ${JSON.stringify(output)}`);
  }
}

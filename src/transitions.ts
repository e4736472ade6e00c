import { type Actor, createActor } from 'xstate';
import {
  JOB_STATES,
  type JobEvent,
  type JobEventType,
  type JobMachineContext,
  type JobState,
  jobMachine,
} from '../machines/job.js';
import { InvalidTransitionError } from './errors.js';

/** PlannedTransition is a change the machine allows: from, to, and the attempts count after it. */
export interface PlannedTransition {
  event: JobEventType;
  from: JobState;
  to: JobState;
  attempts: number;
}

/** JobFacts are the parts of a job the machine decides on. */
export interface JobFacts {
  id: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
}

/** JobActor is a running job as a live XState actor, visible to an inspector. */
export type JobActor = Actor<typeof jobMachine>;

// inputOf satisfies createActor's typing; a restored snapshot takes precedence over input.
function inputOf(job: JobFacts) {
  return { jobId: job.id, maxAttempts: job.maxAttempts };
}

function snapshotOf(job: JobFacts) {
  const context: JobMachineContext = { jobId: job.id, attempts: job.attempts, maxAttempts: job.maxAttempts };
  return jobMachine.resolveState({ value: job.state, context });
}

/**
 * planTransition asks the machine what `event` does to `job` and returns the change, or throws an
 * InvalidTransitionError naming the job, its state and the event.
 */
export function planTransition(job: JobFacts, event: JobEvent): PlannedTransition {
  const actor = createActor(jobMachine, { snapshot: snapshotOf(job), input: inputOf(job) }).start();
  try {
    return sendPlanned(actor, job, event);
  } finally {
    actor.stop();
  }
}

/** sendPlanned sends `event` to a job's actor and returns the change, or throws if the machine refused it. */
export function sendPlanned(actor: JobActor, job: JobFacts, event: JobEvent): PlannedTransition {
  const before = actor.getSnapshot();
  actor.send(event);
  const after = actor.getSnapshot();
  // An unchanged snapshot means a refused event or a self-transition; only then is can() worth asking.
  if (after === before && !before.can(event)) throw new InvalidTransitionError(job.id, job.state, event.type);
  return {
    event: event.type,
    from: job.state,
    to: after.value as JobState,
    attempts: after.context.attempts,
  };
}

/**
 * sourcesOf lists the states from which the machine accepts `event`, ignoring guards. The claim
 * function's and claim index's literal state lists are checked against it by the test suite.
 */
export function sourcesOf(event: JobEventType): JobState[] {
  return JOB_STATES.filter((state) => state in jobMachine.states && eventsOf(state).includes(event));
}

/** targetOf returns the one state `event` leads to, wherever it is accepted. */
export function targetOf(event: JobEventType): JobState {
  const targets = new Set(
    sourcesOf(event).flatMap((state) =>
      (jobMachine.states[state]?.transitions.get(event) ?? []).flatMap((t) =>
        (t.target ?? []).map((n) => n.key),
      ),
    ),
  );
  if (targets.size !== 1)
    throw new Error(`job machine: ${event} should lead to one state, found ${[...targets]}`);
  return [...targets][0] as JobState;
}

function eventsOf(state: JobState): string[] {
  return [...(jobMachine.states[state]?.transitions.keys() ?? [])];
}

/** LIVE_STATES are the stored states of unfinished jobs: those the machine does not tag `finished`. */
export const LIVE_STATES: readonly JobState[] = JOB_STATES.filter(
  (state) => state !== 'removed' && !jobMachine.states[state]?.tags.includes('finished'),
);

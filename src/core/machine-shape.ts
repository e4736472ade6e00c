import { JOB_STATES, type JobEventType, type JobState, jobMachine } from '../../machines/job.js';

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

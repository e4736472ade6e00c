import { transition } from 'xstate';
import {
  DEFAULT_MAX_INTERRUPTIONS,
  type JobEvent,
  type JobEventType,
  type JobMachineContext,
  type JobState,
  jobMachine,
} from '../../machines/job.js';
import { InvalidTransitionError } from './errors.js';

// The machine's shape (which states take which event) lives in machine-shape.ts, so that errors.ts
// can explain a refusal without importing this module, which imports it.
export { LIVE_STATES, sourcesOf, targetOf } from './machine-shape.js';

/** PlannedTransition is a change the machine allows: from, to, and the attempts count after it. */
export interface PlannedTransition {
  event: JobEventType;
  from: JobState;
  to: JobState;
  attempts: number;
  /** finished is whether `to` is tagged `finished` in the machine (the job's lifecycle is over). */
  finished: boolean;
  /** resetsInterruptions is whether the machine sets the job's interruptions back to 0. */
  resetsInterruptions: boolean;
}

/** JobFacts are the parts of a job the machine decides on. */
export interface JobFacts {
  id: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
}

/** Decision is what the machine did with one event in one situation: refused it (null), or where it led. */
export type Decision = {
  readonly to: JobState;
  readonly attempts: number;
  readonly finished: boolean;
  readonly resetsInterruptions: boolean;
} | null;

// DECISIONS_MAX bounds the remembered decisions. The situations a machine meets are few (states ×
// events × attempt counts), so the bound is only a guard against unusual maxAttempts values.
const DECISIONS_MAX = 10_000;

// COUNT_LIMIT bounds the attempt counts that fit the numeric key below (maxAttempts is at most
// 1,000,000 when enqueued); a count beyond it is decided afresh every time.
const COUNT_LIMIT = 2 ** 20;

/**
 * decisions remembers the machine's answers, by state, then event, then attempt counts. The job
 * machine is pure and decides on the state, the event and the attempt counts only (jobId is in its
 * context for the inspector, not for decisions), so an answer computed once holds for every job in
 * the same situation. Asking the machine costs about 4 µs; remembering the answer makes the hot
 * path's decisions nearly free, and the machine remains the only author of every answer (the test
 * suite compares them with a fresh machine).
 */
const decisions = new Map<JobState, Map<JobEventType, Map<number, Decision>>>();
let remembered = 0;

/**
 * decide returns the machine's remembered decision for `event` in `job`'s situation. The object is
 * shared by every job in that situation: read it, never change it.
 */
export function decide(
  state: JobState,
  event: JobEventType,
  attempts: number,
  maxAttempts: number,
): Decision {
  if (attempts >= COUNT_LIMIT || maxAttempts >= COUNT_LIMIT || attempts < 0) {
    return askMachine(state, event, attempts, maxAttempts);
  }
  if (remembered >= DECISIONS_MAX) {
    decisions.clear();
    remembered = 0;
  }
  let byEvent = decisions.get(state);
  if (!byEvent) {
    byEvent = new Map();
    decisions.set(state, byEvent);
  }
  let byCounts = byEvent.get(event);
  if (!byCounts) {
    byCounts = new Map();
    byEvent.set(event, byCounts);
  }
  const counts = attempts * COUNT_LIMIT + maxAttempts;
  let decision = byCounts.get(counts);
  if (decision === undefined) {
    decision = askMachine(state, event, attempts, maxAttempts);
    byCounts.set(counts, decision);
    remembered++;
  }
  return decision;
}

// askMachine runs the machine's pure transition function. An unchanged snapshot means a refused
// event or a self-transition; only then is can() worth asking.
function askMachine(state: JobState, type: JobEventType, attempts: number, maxAttempts: number): Decision {
  // jobId is left empty: decisions do not depend on it (see decisions). Nor do the interruption
  // counts: only INTERRUPT reads them, and the sweep asks the machine itself (see planTakeBack).
  // One interruption is set so that an event resetting them shows.
  const context: JobMachineContext = {
    jobId: '',
    attempts,
    maxAttempts,
    interruptions: 1,
    maxInterruptions: DEFAULT_MAX_INTERRUPTIONS,
  };
  const event = { type } as JobEvent;
  const before = jobMachine.resolveState({ value: state, context });
  const [after] = transition(jobMachine, before, event);
  if (after === before && !before.can(event)) return null;
  return {
    to: after.value as JobState,
    attempts: after.context.attempts,
    finished: after.hasTag('finished'),
    resetsInterruptions: after.context.interruptions === 0,
  };
}

/**
 * planTransition asks the machine what `event` does to `job` and returns the change, or throws an
 * InvalidTransitionError naming the job, its state and the event.
 */
export function planTransition(job: JobFacts, event: JobEvent): PlannedTransition {
  const planned = tryTransition(job, event.type);
  if (planned === null) throw new InvalidTransitionError(job.id, job.state, event.type);
  return planned;
}

/** tryTransition is planTransition returning null, rather than throwing, for an event the machine refuses. */
export function tryTransition(job: JobFacts, event: JobEventType): PlannedTransition | null {
  const decision = decide(job.state, event, job.attempts, job.maxAttempts);
  if (decision === null) return null;
  return {
    event,
    from: job.state,
    to: decision.to,
    attempts: decision.attempts,
    finished: decision.finished,
    resetsInterruptions: decision.resetsInterruptions,
  };
}

/** HeldJobFacts are the parts of a job held by a dead consumer that the machine decides its fate on. */
export interface HeldJobFacts extends JobFacts {
  interruptions: number;
  maxInterruptions: number;
}

/** TakeBack is what the machine makes of a job taken back from a dead consumer (its INTERRUPT). */
export interface TakeBack {
  to: JobState;
  attempts: number;
  interruptions: number;
  finished: boolean;
}

/**
 * planTakeBack asks the machine what INTERRUPT does to a job whose consumer died holding it. The
 * machine is asked afresh with the job's own interruption counts: this is the one decision they
 * matter to, so it bypasses the remembered decisions.
 */
export function planTakeBack(job: HeldJobFacts): TakeBack {
  const before = jobMachine.resolveState({
    value: job.state,
    context: {
      jobId: job.id,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      interruptions: job.interruptions,
      maxInterruptions: job.maxInterruptions,
    },
  });
  if (!before.can({ type: 'INTERRUPT' })) throw new InvalidTransitionError(job.id, job.state, 'INTERRUPT');
  const [after] = transition(jobMachine, before, { type: 'INTERRUPT' });
  return {
    to: after.value as JobState,
    attempts: after.context.attempts,
    interruptions: after.context.interruptions,
    finished: after.hasTag('finished'),
  };
}

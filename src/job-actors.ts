import {
  type Actor,
  type ActorLogic,
  type AnyActorScope,
  createActor,
  type EventObject,
  type InspectionEvent,
  type Snapshot,
} from 'xstate';
import type { JobEvent, JobMachineContext, JobState } from '../machines/job.js';
import { decide, type JobFacts } from './transitions.js';

/** JobActorSnapshot is what a job actor holds: the job's lifecycle state and the machine's context. */
export type JobActorSnapshot = Snapshot<undefined> & { value: JobState; context: JobMachineContext };

/**
 * jobActorLogic is the logic of a running job's actor. Each event goes to the job machine's
 * decisions (planTransition's remembered answers of the machine), so the actor moves exactly as a
 * job machine actor would, and an event the machine refuses leaves it where it is. It is not the
 * machine itself because restoring a machine snapshot and running a machine step cost about 10 µs
 * of CPU per job, most of the hot path's budget at tens of thousands of jobs a second.
 */
export const jobActorLogic: ActorLogic<JobActorSnapshot, JobEvent, JobFacts> = {
  transition(snapshot, event) {
    const { context } = snapshot;
    const decision = decide(snapshot.value, event.type, context.attempts, context.maxAttempts);
    if (decision === null) return snapshot;
    return {
      status: 'active',
      output: undefined,
      error: undefined,
      value: decision.to,
      context: { jobId: context.jobId, attempts: decision.attempts, maxAttempts: context.maxAttempts },
    };
  },
  getInitialSnapshot(_scope, job) {
    return {
      status: 'active',
      output: undefined,
      error: undefined,
      value: job.state,
      context: { jobId: job.id, attempts: job.attempts, maxAttempts: job.maxAttempts },
    };
  },
  getPersistedSnapshot: (snapshot) => snapshot,
};

/** JobActor is a running job as a live XState actor, visible to an inspector. */
export type JobActor = Actor<typeof jobActorLogic>;

type SupervisorSnapshot = Snapshot<undefined>;

/**
 * JobActors starts and stops the live actors of one runtime's running jobs. Every job actor is a
 * child of one supervisor actor, so all of them share one XState system: an inspector attached once
 * sees each job actor appear, change and stop, and a job actor costs no system of its own (which
 * matters at tens of thousands of jobs a second).
 */
export class JobActors {
  private readonly scope: AnyActorScope;

  constructor(inspect?: (event: InspectionEvent) => void) {
    let captured: AnyActorScope | undefined;
    // The supervisor holds no state and takes no events; it exists to parent the job actors, and
    // its scope is the public means of stopping a child.
    const supervisor: ActorLogic<SupervisorSnapshot, EventObject> = {
      transition: (snapshot) => snapshot,
      getInitialSnapshot: (scope) => {
        captured = scope;
        return { status: 'active', output: undefined, error: undefined };
      },
      getPersistedSnapshot: (snapshot) => snapshot,
    };
    createActor(supervisor, { id: 'jobchart', inspect }).start();
    if (!captured) throw new Error('job actor supervisor did not start');
    this.scope = captured;
  }

  /** start creates a job's actor in the job's current state and starts it. */
  start(job: JobFacts): JobActor {
    return createActor(jobActorLogic, { input: job, parent: this.scope.self, id: `job:${job.id}` }).start();
  }

  /** stop ends a job actor once its job is no longer this runtime's to run. */
  stop(actor: JobActor): void {
    this.scope.stopChild(actor);
  }
}

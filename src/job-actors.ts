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

// followDecisions moves a job actor as the job machine would: each event goes to the machine's
// decisions (planTransition's remembered answers of the machine), and an event the machine refuses
// leaves the actor where it is. Restoring a machine snapshot and running a machine step instead cost
// about 10 µs of CPU per job, most of the hot path's budget at tens of thousands of jobs a second.
function followDecisions(snapshot: JobActorSnapshot, event: JobEvent): JobActorSnapshot {
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
}

function persisted(snapshot: JobActorSnapshot): JobActorSnapshot {
  return snapshot;
}

/**
 * jobActorLogic is the logic of one running job's actor, starting from the job's current state.
 * The job travels in the logic rather than as the actor's `input`: in Node 20, each option beyond
 * `createActor`'s defaults costs about a microsecond to merge, a tenth of what a job's actor costs.
 */
export function jobActorLogic(job: JobFacts): ActorLogic<JobActorSnapshot, JobEvent> {
  return {
    transition: followDecisions,
    getInitialSnapshot: () => ({
      status: 'active',
      output: undefined,
      error: undefined,
      value: job.state,
      context: { jobId: job.id, attempts: job.attempts, maxAttempts: job.maxAttempts },
    }),
    getPersistedSnapshot: persisted,
  };
}

/** JobActor is a running job as a live XState actor, visible to an inspector. */
export type JobActor = Actor<ActorLogic<JobActorSnapshot, JobEvent>>;

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
    return createActor(jobActorLogic(job), { parent: this.scope.self, id: `job:${job.id}` }).start();
  }

  /** stop ends a job actor once its job is no longer this runtime's to run. */
  stop(actor: JobActor): void {
    this.scope.stopChild(actor);
  }
}

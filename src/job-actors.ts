import {
  type ActorLogic,
  type AnyActorScope,
  createActor,
  type EventObject,
  type InspectionEvent,
  type Snapshot,
} from 'xstate';
import { jobMachine } from '../machines/job.js';
import type { JobActor, JobFacts } from './transitions.js';

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
    const snapshot = {
      status: 'active',
      value: job.state,
      context: { jobId: job.id, attempts: job.attempts, maxAttempts: job.maxAttempts },
      children: {},
      historyValue: {},
    } as unknown as Snapshot<unknown>;
    // input only satisfies the typing: a restored snapshot takes precedence over it.
    const input = { jobId: job.id, maxAttempts: job.maxAttempts };
    return createActor(jobMachine, { snapshot, input, parent: this.scope.self, id: `job:${job.id}` }).start();
  }

  /** stop ends a job actor once its job is no longer this runtime's to run. */
  stop(actor: JobActor): void {
    this.scope.stopChild(actor);
  }
}

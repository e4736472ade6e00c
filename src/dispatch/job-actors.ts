import {
  type Actor,
  type ActorLogic,
  type AnyActorScope,
  createActor,
  type EventObject,
  type InspectionEvent,
  type Observer,
  type Snapshot,
} from 'xstate';
import {
  type JobEvent,
  type JobMachine,
  type JobMachineContext,
  type JobState,
  jobMachine,
} from '../../machines/job.js';
import { decide, type JobFacts } from '../core/transitions.js';

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
    context: {
      jobId: context.jobId,
      attempts: decision.attempts,
      maxAttempts: context.maxAttempts,
      interruptions: context.interruptions,
      maxInterruptions: context.maxInterruptions,
    },
  };
}

// persisted returns the snapshot as it is: it is plain data already.
function persisted(snapshot: JobActorSnapshot): JobActorSnapshot {
  return snapshot;
}

/**
 * jobActorLogic is the logic of one running job's actor, starting from the job's current state.
 * The job travels in the logic rather than as the actor's `input`: in Node 20, each option beyond
 * `createActor`'s defaults costs about a microsecond to merge, and a job's whole actor, from start to
 * stop, costs about two.
 */
export function jobActorLogic(
  job: JobFacts & { interruptions: number },
  maxInterruptions: number,
): ActorLogic<JobActorSnapshot, JobEvent> {
  return {
    transition: followDecisions,
    getInitialSnapshot: () => ({
      status: 'active',
      output: undefined,
      error: undefined,
      value: job.state,
      context: {
        jobId: job.id,
        attempts: job.attempts,
        maxAttempts: job.maxAttempts,
        interruptions: job.interruptions,
        maxInterruptions,
      },
    }),
    getPersistedSnapshot: persisted,
  };
}

/** Inspector is what XState's own `inspect` option takes: a callback, or an observer of inspection events. */
export type Inspector = ((event: InspectionEvent) => void) | Observer<InspectionEvent>;

/**
 * JobActor is a running job as a live XState actor: the job machine itself when someone inspects,
 * else a logic that follows the machine's remembered decisions (see followDecisions).
 */
export type JobActor = Actor<ActorLogic<JobActorSnapshot, JobEvent>> | Actor<JobMachine>;

type SupervisorSnapshot = Snapshot<undefined>;

/**
 * JobActors starts and stops the live actors of one runtime's running jobs. With an inspector, every
 * job actor is the job machine itself, a child of one supervisor actor, so all of them share one
 * XState system and the inspector, attached once, sees each job actor appear with the machine's
 * definition (as any machine actor shows itself), take its CLAIM, change and stop. Without one, nobody
 * observes which system a job actor belongs to, so each is a root actor of its own: joining the
 * supervisor costs about 4 µs more CPU per job (registering the child, and options that Node 20
 * merges slowly), which is a sixth of a quick job's whole cost.
 */
export class JobActors {
  /** supervisor is the scope of the job actors' parent, present only when someone inspects. */
  private readonly supervisor: AnyActorScope | null;

  constructor(
    private readonly maxInterruptions: number,
    inspect?: Inspector,
  ) {
    this.supervisor = inspect ? startSupervisor(inspect) : null;
  }

  /**
   * start creates a job's actor and starts it. `from` is the state the claim took the job from: an
   * inspected actor starts there and takes the CLAIM, so that it lives from the claim on; otherwise
   * the actor starts in the job's current state.
   */
  start(job: JobFacts & { interruptions: number }, from: JobState | null = null): JobActor {
    if (!this.supervisor) return createActor(jobActorLogic(job, this.maxInterruptions)).start();
    const claimed = from !== null && from !== job.state;
    const snapshot = jobMachine.resolveState({
      value: claimed ? from : job.state,
      context: {
        jobId: job.id,
        // The claim spent an attempt: before it, the job had one fewer.
        attempts: claimed ? Math.max(0, job.attempts - 1) : job.attempts,
        maxAttempts: job.maxAttempts,
        interruptions: job.interruptions,
        maxInterruptions: this.maxInterruptions,
      },
    });
    const actor = createActor(jobMachine, {
      parent: this.supervisor.self,
      id: `job:${job.id}`,
      snapshot,
      // Unused with a snapshot to restore, but the machine's type asks for it.
      input: { jobId: job.id, maxAttempts: job.maxAttempts, maxInterruptions: this.maxInterruptions },
    }).start();
    if (claimed) actor.send({ type: 'CLAIM' });
    return actor;
  }

  /** stop ends a job actor once its job is no longer this runtime's to run. */
  stop(actor: JobActor): void {
    if (this.supervisor) this.supervisor.stopChild(actor);
    else actor.stop();
  }
}

// startSupervisor starts the actor that parents the job actors for an inspector and returns its
// scope. The supervisor holds no state and takes no events; its scope is the public means of
// stopping a child.
function startSupervisor(inspect: Inspector): AnyActorScope {
  let captured: AnyActorScope | undefined;
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
  return captured;
}

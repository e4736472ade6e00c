import type { Job } from '../storage/job-row.js';
import type { JobActor } from './job-actors.js';

/**
 * RunningJob is one attempt this runtime holds, from its start until its write is settled: the job,
 * its actor and the means to abort it. The dispatcher, the executor and the conclusion all share it,
 * so it lives apart from each of them.
 */
export interface RunningJob {
  job: Job;
  /**
   * actor is the job's live actor until its conclusion is decided. It is stopped then, not once the
   * write is durable: no event reaches it after the decision, and an actor kept alive through the
   * write outlived V8's young generation, which made garbage collection the largest CPU cost of a
   * quick job.
   */
  actor: JobActor | null;
  /** controller is created when the handler first asks for its signal; nobody to tell before that. */
  controller: AbortController | null;
  /** abortReason is kept so that a signal first asked for after the abort is born aborted. */
  abortReason?: unknown;
  /** cancelReason is set when someone cancelled the job while it ran: it then ends cancelled. */
  cancelReason?: string;
}

/** abortJob fires a running job's AbortSignal with `reason`, or arms it for when the handler asks. */
export function abortJob(running: RunningJob, reason: unknown): void {
  running.abortReason = reason;
  running.controller?.abort(reason);
}

/**
 * controllerOf returns a running job's AbortController, created when first asked for: most
 * handlers never look at their signal, and there is nobody to tell before one does.
 */
export function controllerOf(running: RunningJob): AbortController {
  if (!running.controller) {
    running.controller = new AbortController();
    if ('abortReason' in running) running.controller.abort(running.abortReason);
  }
  return running.controller;
}

import type { PlannedTransition } from '../core/transitions.js';
import type { Job } from '../storage/job-row.js';
import type { Outcome } from '../storage/outcome-statements.js';

/** OutcomeExtras are what a change writes besides the state: a new run_at, an error, a result. */
export interface OutcomeExtras {
  runAt?: Date;
  error?: string;
  /** stack goes with `error` into the attempt's `errors` entry (never into last_error). */
  stack?: string | null;
  resultJson?: string | null;
  remove?: boolean;
  progressJson?: string | null;
}

/** toOutcome turns a change the machine planned for a held job into the row the writer applies. */
export function toOutcome(job: Job, plan: PlannedTransition, extras: OutcomeExtras = {}): Outcome {
  return {
    jobId: job.id,
    attempt: job.attempts,
    event: plan.event,
    from: plan.from,
    to: plan.to,
    attemptDelta: plan.attempts - job.attempts,
    runAt: extras.runAt ?? null,
    error: extras.error ?? null,
    stack: extras.stack ?? null,
    resultJson: extras.resultJson ?? null,
    finished: plan.finished,
    remove: extras.remove ?? false,
    progressJson: extras.progressJson ?? null,
  };
}

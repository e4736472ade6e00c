import { PresumedDeadError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { targetOf } from '../core/transitions.js';
import type { CompletionWriter } from '../dispatch/completions.js';
import type { Dispatcher } from '../dispatch/dispatcher.js';
import { releasePrefetched } from '../dispatch/give-back.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { Storage, SweepResult } from '../storage/storage.js';

/** ReactionParts are the parts a runtime's reactions to the consumers' upkeep act on. */
export interface ReactionParts {
  consumerId: string;
  storage: Storage;
  dispatcher: Dispatcher;
  completions: CompletionWriter;
  events: RuntimeEvents;
  logger: Logger;
  onNotifyError(error: unknown): void;
}

/**
 * givePresumedDeadWorkBack runs when other runtimes swept this one as dead (a long pause, a
 * partition): its running jobs were taken back, so their handlers are aborted (their late outcomes
 * are refused by the guarded write) and the local queue is given back; claiming resumes once it is
 * registered again.
 */
export async function givePresumedDeadWorkBack(parts: ReactionParts, at: Date): Promise<void> {
  const { consumerId, dispatcher, completions, events, logger } = parts;
  logger.warn({ consumerId }, 'presumed dead by other runtimes; registering again');
  events.emit('runtime:presumed-dead', { consumerId, at });
  await dispatcher.stopClaiming();
  dispatcher.abortRunning(new PresumedDeadError(consumerId));
  await releasePrefetched(dispatcher, completions);
}

/** announceSweep reports a sweep of silent consumers and wakes every worker for the jobs it made claimable. */
export function announceSweep(parts: ReactionParts, result: SweepResult, at: Date): void {
  const { storage, dispatcher, events, logger } = parts;
  logger.warn({ consumers: result.consumers, jobs: result.jobs.length }, 'swept silent consumers');
  events.emit('runtime:swept', { ...result, at });
  const failed = result.jobs.filter((job) => job.state === targetOf('FAIL')).map((job) => job.id);
  void Promise.all([
    storage.notifyJobsChanged(),
    failed.length > 0 ? storage.notifyFinished(failed) : undefined,
  ]).catch(parts.onNotifyError);
  dispatcher.wake();
}

import type { DatabaseStatus } from '../core/database-status.js';
import type { Logger } from '../core/logger.js';
import { planTransition, targetOf } from '../core/transitions.js';
import type { RuntimeEvents } from '../jobs/events.js';
import { toOutcome } from '../jobs/outcome.js';
import type { Storage } from '../storage/storage.js';
import type { CompletionWriter } from './completions.js';
import type { Dispatcher } from './dispatcher.js';

/**
 * releasePrefetched gives back, through the machine's RELEASE (attempt refunded), the claimed jobs
 * no handler has started, and resolves once those writes are done.
 */
export async function releasePrefetched(
  dispatcher: Dispatcher,
  completions: CompletionWriter,
): Promise<void> {
  const writes = dispatcher
    .takePrefetched()
    .map(({ job }) => toOutcome(job, planTransition(job, { type: 'RELEASE' })));
  await Promise.all(writes.map((write) => completions.write(write)));
}

/** HeldJobsOwner is whose held jobs releaseHeld gives back, and where it reports. */
export interface HeldJobsOwner {
  consumerId: string;
  storage: Storage;
  events: RuntimeEvents;
  database: DatabaseStatus;
  logger: Logger;
}

/**
 * releaseHeld gives back, through the machine's RELEASE (attempt refunded), every job the database
 * says `owner` still holds as running, known to it or not (a claim whose reply was lost): on stop,
 * and when a crash abandons the running handlers. A failure is logged, not thrown: the others' sweep
 * takes the jobs back instead.
 */
export async function releaseHeld(owner: HeldJobsOwner, now: Date): Promise<void> {
  const running = targetOf('CLAIM');
  try {
    const released = await owner.storage.jobsReleaseHeld(
      owner.consumerId,
      [],
      running,
      targetOf('RELEASE'),
      now,
    );
    for (const job of released) owner.events.emitTransition(job, running, 'RELEASE', now);
    if (released.length > 0) await owner.storage.notifyJobsChanged();
  } catch (error) {
    owner.database.failed(error);
    owner.logger.error({ err: error }, 'giving back held jobs failed; the sweep will interrupt them');
  }
}

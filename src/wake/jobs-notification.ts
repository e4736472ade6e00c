import { CANCEL_PREFIX } from '../storage/storage.js';

/**
 * JobsNotification is what one payload on a schema's jobs channel asks of a worker: to cancel a job
 * it may be running, or to look for claimable jobs.
 */
export type JobsNotification = { kind: 'cancel'; jobId: string } | { kind: 'changed' };

/** readJobsNotification reads a jobs-channel payload; anything but a cancel request means "look". */
export function readJobsNotification(payload: string): JobsNotification {
  return payload.startsWith(CANCEL_PREFIX)
    ? { kind: 'cancel', jobId: payload.slice(CANCEL_PREFIX.length) }
    : { kind: 'changed' };
}

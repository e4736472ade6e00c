import { CANCEL_PREFIX, PAUSE_PREFIX, RESUME_PREFIX } from '../storage/storage.js';

/**
 * JobsNotification is what one payload on a schema's jobs channel asks of a worker: to cancel a job
 * it may be running, to stop or resume claiming from a queue, or to look for claimable jobs.
 */
export type JobsNotification =
  | { kind: 'cancel'; jobId: string }
  | { kind: 'queue'; queue: string; paused: boolean }
  | { kind: 'changed' };

/** readJobsNotification reads a jobs-channel payload; anything it does not know means "look". */
export function readJobsNotification(payload: string): JobsNotification {
  if (payload.startsWith(CANCEL_PREFIX))
    return { kind: 'cancel', jobId: payload.slice(CANCEL_PREFIX.length) };
  if (payload.startsWith(PAUSE_PREFIX))
    return { kind: 'queue', queue: payload.slice(PAUSE_PREFIX.length), paused: true };
  if (payload.startsWith(RESUME_PREFIX))
    return { kind: 'queue', queue: payload.slice(RESUME_PREFIX.length), paused: false };
  return { kind: 'changed' };
}

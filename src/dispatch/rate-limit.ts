import { ValidationError } from '../core/errors.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import { bucketOf, type RateLimit } from './token-buckets.js';

/** TakeToken spends a token of bucket `key` at `now`: null if it got one, else when the next is due. */
export type TakeToken = (key: string, limit: RateLimit, now: Date) => Promise<Date | null>;

/**
 * RateLimiter takes, for a job of a rate-limited task, a token from the bucket its task names (or
 * its rateLimit function picks from the payload), from the limits configured on the runtime.
 */
export class RateLimiter {
  constructor(
    private readonly limits: ReadonlyMap<string, RateLimit>,
    private readonly takeToken: TakeToken,
  ) {}

  /** take spends `job`'s token at `now`: null if it got one, else when to try again. */
  take(task: TaskDefinition, job: Job, now: Date): Promise<Date | null> {
    const key = typeof task.rateLimit === 'function' ? task.rateLimit(job.payload) : task.rateLimit;
    const limit = typeof key === 'string' ? this.limits.get(bucketOf(key)) : undefined;
    if (typeof key !== 'string' || !limit) {
      throw new ValidationError(
        `tasks.${job.task}.rateLimit`,
        `a key of a configured bucket (${[...this.limits.keys()].join(', ')})`,
        key,
      );
    }
    return this.takeToken(key, limit, now);
  }
}

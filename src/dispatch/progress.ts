import type { Clock, TimerHandle } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { SingleFlight } from '../core/single-flight.js';
import type { RuntimeEvents } from '../jobs/events.js';
import type { Job } from '../storage/job-row.js';
import type { Storage } from '../storage/storage.js';

/** JobProgress is how far a running job has come, as its handler last reported. */
export interface JobProgress {
  completed: number;
  total: number;
}

/** PROGRESS_WRITE_INTERVAL_MS is the least time between two progress writes of a runtime. */
export const PROGRESS_WRITE_INTERVAL_MS = 500;

/**
 * ProgressWriter takes the progress handlers report and persists it throttled: every report is
 * emitted at once as `job:progress`, but the database sees at most one write per
 * PROGRESS_WRITE_INTERVAL_MS (of the runtime's clock), carrying each job's latest report only, so a
 * tight loop cannot flood it. Writes go one at a time, so an older report never lands after a newer
 * one. A job's last unwritten report travels with its attempt's write instead.
 */
export class ProgressWriter {
  private readonly pending = new Map<string, { job: Job; json: string }>();
  private timer: TimerHandle | null = null;
  /** flushes runs one write at a time; a timer that fires meanwhile asks for one more after it. */
  private readonly flushes: SingleFlight;

  constructor(
    private readonly storage: Storage,
    private readonly consumerId: string,
    private readonly clock: Clock,
    private readonly events: RuntimeEvents,
    onError: (error: unknown) => void,
  ) {
    this.flushes = new SingleFlight(() => this.flush(), onError);
  }

  /** report validates and records a job's progress; bad numbers throw a ValidationError to the handler. */
  report(job: Job, completed: number, total: number): void {
    if (typeof total !== 'number' || !Number.isFinite(total) || total < 0) {
      throw new ValidationError('progress.total', 'a finite number >= 0', total);
    }
    if (typeof completed !== 'number' || !Number.isFinite(completed) || completed < 0 || completed > total) {
      throw new ValidationError(
        'progress.completed',
        `a finite number from 0 to total (${total})`,
        completed,
      );
    }
    const progress: JobProgress = { completed, total };
    job.progress = progress;
    if (this.events.listenerCount('job:progress') > 0) {
      this.events.emit('job:progress', { job, completed, total, at: this.clock.now() });
    }
    this.pending.set(job.id, { job, json: JSON.stringify(progress) });
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = null;
      this.flushes.request();
    }, PROGRESS_WRITE_INTERVAL_MS);
  }

  /** take hands over a job's unwritten progress (as JSON text) so that its attempt's write carries it. */
  take(jobId: string): string | null {
    const entry = this.pending.get(jobId);
    if (!entry) return null;
    this.pending.delete(jobId);
    return entry.json;
  }

  /** stop cancels the next timed write and waits for one under way. */
  async stop(): Promise<void> {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.flushes.settled();
  }

  // flush writes every pending report in one statement. Progress is advisory: a failed write goes to
  // onError and is dropped, since the next report or the attempt's write carries a newer value anyway.
  private async flush(): Promise<undefined> {
    const batch = [...this.pending.values()];
    this.pending.clear();
    if (batch.length === 0) return;
    await this.storage.jobsWriteProgress(
      batch.map(({ job, json }) => ({ jobId: job.id, attempt: job.attempts, progressJson: json })),
      this.consumerId,
      this.clock.now(),
    );
  }
}

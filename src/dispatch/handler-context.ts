import type { Logger } from '../core/logger.js';
import type { JobContext } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { ProgressWriter } from './progress.js';
import { controllerOf, type RunningJob } from './running-job.js';

/**
 * HandlerContext is the `ctx` a handler receives. It is a class with lazy getters rather than an
 * object literal of closures because one is built for every job run: the signal, the child logger
 * and the progress function are made only for handlers that use them. Each getter may be
 * destructured (`const { signal, progress } = ctx`).
 */
export class HandlerContext implements JobContext {
  private jobLogger: Logger | undefined;
  private reportProgress: ((completed: number, total: number) => void) | undefined;

  constructor(
    private readonly running: RunningJob,
    private readonly baseLogger: Logger,
    private readonly progressWriter: ProgressWriter,
  ) {}

  /** job is the job as claimed. */
  get job(): Job {
    return this.running.job;
  }

  /** signal aborts when the job times out, is cancelled, or the runtime crashes or is forced to stop. */
  get signal(): AbortSignal {
    return controllerOf(this.running).signal;
  }

  /** logger is a child logger carrying the job id and task. */
  get logger(): Logger {
    this.jobLogger ??= this.baseLogger.child({ jobId: this.running.job.id, task: this.running.job.task });
    return this.jobLogger;
  }

  /** progress reports how far the job has come (see JobContext). */
  get progress(): (completed: number, total: number) => void {
    this.reportProgress ??= (completed, total) =>
      this.progressWriter.report(this.running.job, completed, total);
    return this.reportProgress;
  }
}

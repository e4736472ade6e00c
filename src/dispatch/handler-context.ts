import type { Logger } from '../core/logger.js';
import type { JobContext } from '../jobs/tasks.js';
import type { Job } from '../storage/job-row.js';
import type { RunningJob } from './dispatcher.js';
import type { ProgressWriter } from './progress.js';

/**
 * controllerOf returns a running job's AbortController, created when first asked for: most
 * handlers never look at their signal, and there is nobody to tell before one does.
 */
export function controllerOf(entry: RunningJob): AbortController {
  if (!entry.controller) {
    entry.controller = new AbortController();
    if ('abortReason' in entry) entry.controller.abort(entry.abortReason);
  }
  return entry.controller;
}

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
    private readonly entry: RunningJob,
    private readonly baseLogger: Logger,
    private readonly progressWriter: ProgressWriter,
  ) {}

  /** job is the job as claimed. */
  get job(): Job {
    return this.entry.job;
  }

  /** signal aborts when the job times out, is cancelled, or the runtime crashes or is forced to stop. */
  get signal(): AbortSignal {
    return controllerOf(this.entry).signal;
  }

  /** logger is a child logger carrying the job id and task. */
  get logger(): Logger {
    this.jobLogger ??= this.baseLogger.child({ jobId: this.entry.job.id, task: this.entry.job.task });
    return this.jobLogger;
  }

  /** progress reports how far the job has come (see JobContext). */
  get progress(): (completed: number, total: number) => void {
    this.reportProgress ??= (completed, total) =>
      this.progressWriter.report(this.entry.job, completed, total);
    return this.reportProgress;
  }
}

import type { Job } from '../storage/job-row.js';

/**
 * AttemptHook is told of each attempt whose handler is about to run, and may wrap the handler's call
 * (telemetry makes the attempt's span the active context there). It is defined here, below the room
 * that runs attempts, so that the executor calls it without knowing what implements it.
 */
export interface AttemptHook {
  /**
   * begin is called once per attempt, right before its handler runs; it returns null to leave the
   * attempt alone (the common, cheap case), or the scope the handler runs in.
   */
  begin(job: Job): AttemptScope | null;
}

/** AttemptScope is one attempt as an AttemptHook follows it. */
export interface AttemptScope {
  /** run calls `handler` once, synchronously, inside the scope, and returns what it returned. */
  run<T>(handler: () => T): T;
  /**
   * settled is told how the handler's attempt ended: `error` is what it threw (or its timeout), or
   * undefined when it returned. The job's outcome comes later, with its transition.
   */
  settled(failed: boolean, error: unknown): void;
}

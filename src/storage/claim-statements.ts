import type { JobState } from '../../machines/job.js';
import type { AttemptError } from './job-row.js';
import type { ClaimedJob } from './storage.js';

/**
 * ClaimedColumns is what the claim functions (migrations/0007) return for the jobs taken from one
 * state: one array per column, the jobs in claim order, and the state they were taken from. A
 * column is null when no job was taken from that state.
 */
export type ClaimedColumns = [
  ids: string[] | null,
  tasks: string[],
  queues: string[],
  payloads: unknown[],
  priorities: number[],
  runAtMs: (number | null)[],
  attempts: number[],
  maxAttempts: number[],
  lastErrors: (string | null)[],
  errors: AttemptError[][],
  keys: (string | null)[],
  expiresAtMs: (number | null)[],
  createdAtMs: number[],
  createdBys: (string | null)[],
  claimedFrom: JobState,
  claimedTo: JobState[],
  interruptions: number[],
];

/**
 * claimStatement calls a claim function so that each state's columns come back as one JSON field,
 * which the driver parses with the native JSON parser.
 */
export function claimStatement(call: string): string {
  return `SELECT c AS claimed FROM ${call} AS c`;
}

/**
 * toClaimedJobs builds the claimed jobs from the claim's columns in one step: the claim knows the
 * columns it set (holder, lock time), so they are filled in here rather than read back.
 */
export function toClaimedJobs(
  groups: readonly ClaimedColumns[],
  consumerId: string,
  now: Date,
  held: JobState,
): ClaimedJob[] {
  const claimed: ClaimedJob[] = [];
  for (const c of groups) {
    const ids = c[0];
    if (ids === null) continue;
    for (let i = 0; i < ids.length; i++) {
      const state = c[15][i] as JobState;
      const runAtMs = c[5][i] as number | null;
      const expiresAtMs = c[11][i] as number | null;
      claimed.push({
        job: {
          id: ids[i] as string,
          task: c[1][i] as string,
          queue: c[2][i] as string,
          payload: c[3][i],
          priority: c[4][i] as number,
          state,
          runAt: runAtMs === null ? null : new Date(runAtMs),
          attempts: c[6][i] as number,
          maxAttempts: c[7][i] as number,
          interruptions: c[16][i] as number,
          lastError: c[8][i] as string | null,
          errors: c[9][i] as AttemptError[],
          key: c[10][i] as string | null,
          expiresAt: expiresAtMs === null ? null : new Date(expiresAtMs),
          progress: null,
          result: null,
          createdAt: new Date(c[12][i] as number),
          createdBy: c[13][i] as string | null,
          lockedBy: state === held ? consumerId : null,
          lockedAt: state === held ? now : null,
          finishedAt: state === held ? null : now,
          updatedAt: now,
        },
        from: c[14],
      });
    }
  }
  return claimed;
}

/**
 * The worker log: one line per handler milestone, appended by each worker process to a file of its
 * own with a synchronous write, so that a line written before a SIGKILL is in the file (the kernel
 * has it) and the harness can tell which runs started and which ended. The log lives outside the
 * database because the database is what the harness breaks.
 *
 * A line is `<KIND> <jobId> <attempt> <worker> <epochMs> [<detail>]`, space-separated; a worker name
 * never holds a space.
 */
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * LineKind is a milestone: START before the handler's work, END after it returned normally, ABORT
 * when its signal fired and the work was cut short (the runtime aborted it).
 */
export type LineKind = 'START' | 'END' | 'ABORT';

/** LOG_SUFFIX ends every worker log's file name; the rest of the name is the worker's name. */
export const LOG_SUFFIX = '.worklog';

/** WorkLog appends lines to one worker's log. */
export class WorkLog {
  private readonly fd: number;

  /** The file is opened for appending once, so each line costs one write(2), not an open and a close. */
  constructor(
    path: string,
    private readonly worker: string,
  ) {
    this.fd = openSync(path, 'a');
  }

  /** write appends one line synchronously: it is in the kernel's hands when this returns. */
  write(kind: LineKind, jobId: string, attempt: number, detail?: string): void {
    const tail = detail ? ` ${detail.replace(/\s+/g, '_')}` : '';
    writeSync(this.fd, `${kind} ${jobId} ${attempt} ${this.worker} ${Date.now()}${tail}\n`);
  }

  /** close closes the file. */
  close(): void {
    closeSync(this.fd);
  }
}

/** Run is one execution of a handler as the logs tell it. */
export interface Run {
  jobId: string;
  attempt: number;
  worker: string;
  startedAt: number;
  /** endedAt is when the handler returned normally; undefined if it never did. */
  endedAt?: number;
  /** abortedAt is when the handler's signal cut its work short. */
  abortedAt?: number;
  /** abortReason is the name of the signal's reason (TimeoutError, PresumedDeadError, ...). */
  abortReason?: string;
}

/** RunsByJob holds every job's runs, in the order they started. */
export type RunsByJob = Map<string, Run[]>;

/**
 * readWorkLogs reads every worker log in `dir` and pairs each START with the END or ABORT of the same
 * job, attempt and worker. Malformed lines (none are expected: a line is one write) are counted, not fatal.
 */
export function readWorkLogs(dir: string): { runs: RunsByJob; malformed: number } {
  const runs: RunsByJob = new Map();
  let malformed = 0;
  // open holds the runs still waiting for their END or ABORT; a list, so that two runs of one job
  // at one attempt in one worker (which would itself be a finding) pair in order instead of clobbering.
  const open = new Map<string, Run[]>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(LOG_SUFFIX))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line === '') continue;
      const [kind, jobId, attemptText, worker, atText, detail] = line.split(' ');
      const attempt = Number(attemptText);
      const at = Number(atText);
      if (!jobId || !worker || !Number.isFinite(attempt) || !Number.isFinite(at)) {
        malformed++;
        continue;
      }
      const key = `${jobId} ${attempt} ${worker}`;
      if (kind === 'START') {
        const run: Run = { jobId, attempt, worker, startedAt: at };
        const pending = open.get(key);
        if (pending) pending.push(run);
        else open.set(key, [run]);
        const list = runs.get(jobId);
        if (list) list.push(run);
        else runs.set(jobId, [run]);
      } else if (kind === 'END' || kind === 'ABORT') {
        const run = open.get(key)?.shift();
        if (!run) {
          malformed++;
          continue;
        }
        if (kind === 'END') run.endedAt = at;
        else {
          run.abortedAt = at;
          if (detail) run.abortReason = detail;
        }
      } else {
        malformed++;
      }
    }
  }
  for (const list of runs.values()) list.sort((a, b) => a.startedAt - b.startedAt);
  return { runs, malformed };
}

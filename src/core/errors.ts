import type { JobEventType, JobState } from '../../machines/job.js';
import { sourcesOf } from './machine-shape.js';

/** JobchartError is the base class of every error jobchart raises on purpose; `code` is stable. */
export class JobchartError extends Error {
  /** code names the kind of error, stable across versions. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** ValidationError is bad input: `field` says which value, `expected` what it should have been. */
export class ValidationError extends JobchartError {
  /** field names the offending option or argument. */
  readonly field: string;
  /** expected says what a valid value looks like. */
  readonly expected: string;
  constructor(field: string, expected: string, received: unknown) {
    super('VALIDATION', `${field}: expected ${expected}, received ${describe(received)}`);
    this.field = field;
    this.expected = expected;
  }
}

/** UnknownTaskError is an enqueue of a task this runtime has no handler for and does not list as external. */
export class UnknownTaskError extends JobchartError {
  /** task is the name that was asked for. */
  readonly task: string;
  constructor(task: string, known: readonly string[]) {
    super(
      'UNKNOWN_TASK',
      `task "${task}": expected one of the runtime's tasks or externalTasks (${known.join(', ') || 'none'})`,
    );
    this.task = task;
  }
}

/**
 * InvalidTransitionError is a state change the job machine refuses, or one whose guarded write found
 * the job no longer in the state it was read in. Its message says it in plain words, naming the
 * states the machine accepts the event from (e.g. "job 42 has succeeded: only a failed, cancelled or
 * expired job can be retried (the machine refuses RESTART in succeeded)"); `state` and `event` keep
 * the machine's own words for code.
 */
export class InvalidTransitionError extends JobchartError {
  /** jobId is the job that was asked to change. */
  readonly jobId: string;
  /** state is the state the job was in. */
  readonly state: JobState;
  /** event is the event that was refused. */
  readonly event: JobEventType;
  constructor(jobId: string, state: JobState, event: JobEventType, detail?: string) {
    super('INVALID_TRANSITION', refusal(jobId, state, event, detail));
    this.jobId = jobId;
    this.state = state;
    this.event = event;
  }
}

// BEING says what a job in each state is, after "job 42 ".
const BEING: Record<JobState, string> = {
  not_started: 'has not started',
  running: 'is running',
  retry: 'is waiting to retry',
  interrupted: 'was interrupted',
  succeeded: 'has succeeded',
  failed: 'has failed',
  cancelled: 'was cancelled',
  expired: 'has expired',
  removed: 'was removed',
};

// DONE says what each event does to a job, after "can be ": a Record, so a new event needs its words.
const DONE: Record<JobEventType, string> = {
  CLAIM: 'claimed',
  SUCCEED: 'marked succeeded',
  RETRY: 'retried after a failure',
  FAIL: 'failed',
  INTERRUPT: 'taken back from a dead consumer',
  RELEASE: 'given back',
  RERUN: 'rerun',
  CANCEL: 'cancelled',
  EXPIRE: 'expired',
  RESCHEDULE: 'rescheduled',
  REPLACE: 'replaced by an enqueue of its key in mode reschedule',
  REMOVE: 'removed',
  RESTART: 'retried',
};

// refusal explains a refused event. The states that accept it come from the machine (sourcesOf),
// so the words cannot drift from what it decides; when the job's own state accepts the event, a
// guard refused it (e.g. RETRY with no attempts left), and the message says that instead.
function refusal(jobId: string, state: JobState, event: JobEventType, detail: string | undefined): string {
  const sources = sourcesOf(event);
  const machine = `the machine refuses ${event} in ${state}${detail ? `; ${detail}` : ''}`;
  if (sources.includes(state)) {
    return `job ${jobId} ${BEING[state]}: it cannot be ${DONE[event]} in its situation now (${machine})`;
  }
  // A short list reads best as what is allowed; a long one (REMOVE: all but running) as what is not.
  const rule =
    sources.length <= 4
      ? `only ${article(sources)} job can be ${DONE[event]}`
      : `a ${state} job cannot be ${DONE[event]}`;
  return `job ${jobId} ${BEING[state]}: ${rule} (${machine})`;
}

// article lists states as "a failed, cancelled or expired" (or "an interrupted" for one).
function article(states: readonly JobState[]): string {
  const list =
    states.length === 1
      ? `${states[0]}`
      : `${states.slice(0, -1).join(', ')} or ${states[states.length - 1]}`;
  return `${/^[aeiou]/.test(list) ? 'an' : 'a'} ${list}`;
}

/**
 * SchemaNotMigratedError is a use of a schema that has not been migrated to this jobchart's latest
 * migration. Either fix applies: `runtime.start()` migrates (unless `{ migrate: false }`), and so does
 * `jobchart migrate` on the command line.
 */
export class SchemaNotMigratedError extends JobchartError {
  /** schema is the schema that was checked. */
  readonly schema: string;
  /** version is the migration the schema is at (0: none applied). */
  readonly version: number;
  /** expected is the latest migration this jobchart knows. */
  readonly expected: number;
  constructor(schema: string, version: number, expected: number) {
    super(
      'SCHEMA_NOT_MIGRATED',
      `schema "${schema}" is at migration ${version}, expected ${expected}: migrate it with runtime.start() (without { migrate: false }) or \`jobchart migrate${schema === 'jobchart' ? '' : ` --schema ${schema}`}\``,
    );
    this.schema = schema;
    this.version = version;
    this.expected = expected;
  }
}

/** SchemaTooNewError is a database migrated by a newer jobchart than this one. */
export class SchemaTooNewError extends JobchartError {
  constructor(schema: string, version: number, known: number) {
    super(
      'SCHEMA_TOO_NEW',
      `schema "${schema}" is at migration ${version}, expected at most ${known}: upgrade jobchart`,
    );
  }
}

/** RuntimeStateError is a call the runtime cannot take in its current phase (e.g. start twice). */
export class RuntimeStateError extends JobchartError {
  constructor(message: string) {
    super('RUNTIME_STATE', message);
  }
}

/** TimeoutError is a handler that ran longer than its task's `timeoutMs`. */
export class TimeoutError extends JobchartError {
  /** jobId is the job whose attempt timed out. */
  readonly jobId: string;
  constructor(jobId: string, timeoutMs: number) {
    super('TIMEOUT', `job ${jobId}: expected to finish within ${timeoutMs} ms`);
    this.jobId = jobId;
  }
}

/**
 * WaitTimeoutError is a `runtime.waitFor` whose job did not reach one of the `expected` states within
 * `timeoutMs` of the runtime's clock. `state` is the last state read, or null if none was read yet.
 */
export class WaitTimeoutError extends JobchartError {
  /** jobId is the job that was waited for. */
  readonly jobId: string;
  /** timeoutMs is how long the caller was willing to wait. */
  readonly timeoutMs: number;
  /** expected lists the states the job was waited into. */
  readonly expected: readonly JobState[];
  /** state is the job's state when last read, or null if no read had finished. */
  readonly state: JobState | null;
  constructor(jobId: string, timeoutMs: number, expected: readonly JobState[], state: JobState | null) {
    super(
      'WAIT_TIMEOUT',
      `job ${jobId}: expected ${expected.join(', ')} within ${timeoutMs} ms, it is ${state ?? 'not read yet'}`,
    );
    this.jobId = jobId;
    this.timeoutMs = timeoutMs;
    this.expected = expected;
    this.state = state;
  }
}

/**
 * JobNotFoundError is a job id with no row behind it. `removed` is true when the job was seen earlier
 * and then disappeared (e.g. its handler returned `remove()` while someone waited for it).
 */
export class JobNotFoundError extends JobchartError {
  /** jobId is the id that was looked up. */
  readonly jobId: string;
  /** removed says the job existed when first read and was deleted afterwards. */
  readonly removed: boolean;
  constructor(jobId: string, removed = false) {
    super(
      'JOB_NOT_FOUND',
      removed
        ? `job ${jobId}: expected it to reach a finished state, it was removed instead`
        : `job ${jobId}: expected an existing job, found none`,
    );
    this.jobId = jobId;
    this.removed = removed;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `bigint ${value}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : value.toISOString();
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** DuplicateJobError is an enqueue with mode 'new' of a key that a live (unfinished) job already has. */
export class DuplicateJobError extends JobchartError {
  /** key is the key that was asked for. */
  readonly key: string;
  /** jobId is the live job that holds the key, or null if it finished before it could be read. */
  readonly jobId: string | null;
  constructor(key: string, jobId: string | null) {
    super(
      'DUPLICATE_JOB',
      `key "${key}": expected no live job with this key, found ${jobId ? `job ${jobId}` : 'one'} (use mode 'ignore_if_exists' or 'reschedule')`,
    );
    this.key = key;
    this.jobId = jobId;
  }
}

/** InvalidResultError is a handler's return value that cannot be stored as the job's result. */
export class InvalidResultError extends JobchartError {
  /** jobId is the job whose handler returned it. */
  readonly jobId: string;
  constructor(jobId: string, expected: string, cause?: unknown) {
    super('INVALID_RESULT', `job ${jobId}: expected the handler to return ${expected}`, { cause });
    this.jobId = jobId;
  }
}

/** JobCancelledError is the reason a cancelled running job's AbortSignal fires with. */
export class JobCancelledError extends JobchartError {
  /** jobId is the job that was cancelled. */
  readonly jobId: string;
  constructor(jobId: string, reason: string) {
    super('JOB_CANCELLED', `job ${jobId}: cancelled while running (${reason})`);
    this.jobId = jobId;
  }
}

/** ShutdownError is the reason running jobs' AbortSignals fire with when `stop()` stops waiting for them. */
export class ShutdownError extends JobchartError {
  constructor(waitedMs: number | null) {
    super(
      'SHUTDOWN',
      waitedMs === null
        ? 'the runtime was stopped again: expected running jobs to be abandoned at once'
        : `the runtime is stopping: expected running jobs to finish within ${waitedMs} ms`,
    );
  }
}

/** PresumedDeadError is the reason running jobs are aborted when other runtimes swept this one as dead. */
export class PresumedDeadError extends JobchartError {
  /** consumerId is this runtime's consumer id, whose jobs were taken back. */
  readonly consumerId: string;
  constructor(consumerId: string) {
    super(
      'PRESUMED_DEAD',
      `consumer ${consumerId}: expected to be registered, but other runtimes presumed it dead and took its jobs back`,
    );
    this.consumerId = consumerId;
  }
}

/**
 * OutcomeRefusedError is a job's outcome that the database refused to store (its data broke a rule
 * of PostgreSQL's that validation did not foresee). The job is failed instead, with this error's
 * message as its last error, and the outcomes written with it are unaffected.
 */
export class OutcomeRefusedError extends JobchartError {
  /** jobId is the job whose outcome was refused. */
  readonly jobId: string;
  /** sqlState is PostgreSQL's code for the refusal, if it gave one. */
  readonly sqlState: string | null;
  constructor(jobId: string, event: string, cause: unknown) {
    const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
    const sqlState = typeof code === 'string' ? code : null;
    super(
      'OUTCOME_REFUSED',
      `job ${jobId}: expected the database to store its ${event} outcome, it refused it (${sqlState ?? 'no code'}: ${String(message ?? cause)})`,
      { cause },
    );
    this.jobId = jobId;
    this.sqlState = sqlState;
  }
}

/** RuntimeCrashedError is the abort reason given to running jobs when the runtime crashes. */
export class RuntimeCrashedError extends JobchartError {
  constructor(cause: unknown) {
    super('RUNTIME_CRASHED', 'the runtime crashed: expected it to keep running', { cause });
  }
}

/** PolicyError is a policy that threw or answered something other than a PolicyDecision; the runtime crashes on it. */
export class PolicyError extends JobchartError {
  /** jobId is the job whose failure the policy was asked about. */
  readonly jobId: string;
  constructor(jobId: string, detail: string, cause?: unknown) {
    super('POLICY', `job ${jobId}: onException policy failed, expected a decision (${detail})`, { cause });
    this.jobId = jobId;
  }
}

/**
 * UnknownOptionError is an options object holding a key jobchart does not know, most often a
 * misspelling that JavaScript would otherwise ignore without a word. `suggestion` is the nearest
 * known name, if one is close.
 */
export class UnknownOptionError extends ValidationError {
  /** suggestion is the known option the key most likely meant, or null. */
  readonly suggestion: string | null;
  constructor(field: string, key: string, known: readonly string[], suggestion: string | null) {
    super(field, suggestion ?? `one of ${known.join(', ')}`, key);
    this.suggestion = suggestion;
    this.message = suggestion
      ? `unknown option ${field}: did you mean ${suggestion}?`
      : `unknown option ${field}: expected one of ${known.join(', ')}`;
  }
}

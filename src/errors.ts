import type { JobEventType, JobState } from '../machines/job.js';

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
 * the job no longer in the state it was read in.
 */
export class InvalidTransitionError extends JobchartError {
  /** jobId is the job that was asked to change. */
  readonly jobId: string;
  /** state is the state the job was in. */
  readonly state: JobState;
  /** event is the event that was refused. */
  readonly event: JobEventType;
  constructor(jobId: string, state: JobState, event: JobEventType, detail?: string) {
    super(
      'INVALID_TRANSITION',
      `job ${jobId}: event ${event} is not allowed in state ${state}${detail ? ` (${detail})` : ''}`,
    );
    this.jobId = jobId;
    this.state = state;
    this.event = event;
  }
}

/** SchemaNotMigratedError is a use of a schema that has not been migrated (call start() first). */
export class SchemaNotMigratedError extends JobchartError {
  constructor(schema: string, version: number, expected: number) {
    super(
      'SCHEMA_NOT_MIGRATED',
      `schema "${schema}" is at migration ${version}, expected ${expected}: call runtime.start() to migrate it`,
    );
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

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `bigint ${value}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : value.toISOString();
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

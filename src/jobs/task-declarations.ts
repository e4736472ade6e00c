import { ValidationError } from '../core/errors.js';
import { assertKnownKeys } from '../core/known-keys.js';
import type { Job } from '../storage/job-row.js';
import type { InferSchemaOutput, StandardSchemaV1 } from './standard-schema.js';
import {
  TASK_SETTING_KEYS,
  type TaskDefinition,
  type TaskHandler,
  type TaskSettings,
  validateTaskDefinition,
  validateTaskName,
  validateTaskSettings,
} from './tasks.js';

// DECLARED marks the objects `task()` returns. A symbol, so that a declaration is told apart from a
// `defineTask` definition at run time without a key that Object.keys (and assertKnownKeys) would see.
const DECLARED: unique symbol = Symbol.for('jobchart.task');

/**
 * DeclarationBrand is what every declaration has, whatever its types: maps of declarations are
 * constrained by it rather than by TaskDeclaration<any, any>, from which TypeScript would infer the
 * payload and result of `task()` calls written inside them as any.
 */
export interface DeclarationBrand {
  readonly [DECLARED]: true;
}

/**
 * TaskDeclaration is a task without its handler: its settings and, as types only, its payload and
 * result. Producer and worker import the same declarations; the worker adds `handlers`.
 */
// biome-ignore lint/suspicious/noExplicitAny: declarations choose their own payload type
export interface TaskDeclaration<Payload = any, Result = unknown>
  extends TaskSettings<Payload>,
    DeclarationBrand {
  /** '~types' carries the payload and result types for inference; it is never set. */
  readonly '~types'?: { payload: Payload; result: Result };
}

// biome-ignore lint/suspicious/noExplicitAny: any declaration, whatever its types
type AnyDeclaration = TaskDeclaration<any, any>;

/**
 * task declares a task's settings and types without its handler. The payload type comes from the
 * schema's output when there is a schema, else from the first type argument:
 * `task<{ to: string }, { messageId: string }>({ maxAttempts: 5 })` or `task({ schema })`.
 */
export function task<S extends StandardSchemaV1, Result = unknown>(
  settings: TaskSettings<InferSchemaOutput<S>> & { schema: S },
): TaskDeclaration<InferSchemaOutput<S>, Result>;
export function task<Payload = unknown, Result = unknown>(
  settings?: TaskSettings<Payload>,
): TaskDeclaration<Payload, Result>;
export function task(settings: TaskSettings = {}): AnyDeclaration {
  if (settings === null || typeof settings !== 'object') {
    throw new ValidationError('task', `an object of settings (${TASK_SETTING_KEYS.join(', ')})`, settings);
  }
  assertKnownKeys(settings, TASK_SETTING_KEYS, 'task');
  validateTaskSettings(settings, 'task');
  return { ...settings, [DECLARED]: true };
}

/** isTaskDeclaration says whether `value` was made by `task()`. */
export function isTaskDeclaration(value: unknown): value is AnyDeclaration {
  return typeof value === 'object' && value !== null && (value as AnyDeclaration)[DECLARED] === true;
}

/**
 * defineTasks checks a map of declarations (names and settings) and returns it unchanged, typed: the
 * one module that both the producer and the worker import, so they agree on every task.
 */
export function defineTasks<const T extends Record<string, DeclarationBrand>>(tasks: T): T {
  if (tasks === null || typeof tasks !== 'object') {
    throw new ValidationError('tasks', 'an object of { [name]: task(...) }', tasks);
  }
  for (const [name, declaration] of Object.entries(tasks)) {
    validateTaskName(name, `tasks.${name}`);
    if (!isTaskDeclaration(declaration)) {
      throw new ValidationError(`tasks.${name}`, 'a declaration made by task()', declaration);
    }
  }
  return tasks;
}

/** TaskEntry is what the `tasks` option maps a name to: a handler, a definition or a declaration. */
export type TaskEntry = TaskHandler | TaskDefinition | DeclarationBrand;

/** TaskMap is the `tasks` option: names to handlers, definitions or declarations. */
export type TaskMap = Record<string, TaskEntry>;

/** PayloadOf is a declaration's payload type (unknown for handlers and definitions: they are untyped). */
export type PayloadOf<E> = E extends TaskDeclaration<infer P, infer _R> ? P : unknown;

/** ResultOf is a declaration's result type (unknown for handlers and definitions). */
export type ResultOf<E> = E extends TaskDeclaration<infer _P, infer R> ? R : unknown;

/**
 * HandlersFor is the `handlers` option for a map of declarations: one handler for every declared
 * task, typed by its declaration; a missing or an extra handler does not compile.
 */
export type HandlersFor<T> = string extends keyof T
  ? Record<string, TaskHandler>
  : {
      [K in keyof T as T[K] extends DeclarationBrand ? K : never]: TaskHandler<
        PayloadOf<T[K]>,
        ResultOf<T[K]>
      >;
    };

/** TaskTypes are one task's payload and result types. */
export interface TaskTypes {
  payload: unknown;
  result: unknown;
}

/** TaskCatalog maps the task names a runtime accepts to their types. */
export type TaskCatalog = Record<string, TaskTypes>;

/** UntypedCatalog accepts any task name with any payload: a runtime without declarations. */
export type UntypedCatalog = Record<string, { payload: unknown; result: unknown }>;

/**
 * CatalogOf is the catalog of a runtime's `tasks` and `externalTasks`: typed by name when `tasks`
 * holds declarations, else untyped, as runtimes were before declarations (any string, any payload).
 */
export type CatalogOf<T, E extends string> = string extends keyof T
  ? UntypedCatalog
  : [Extract<T[keyof T], DeclarationBrand>] extends [never]
    ? UntypedCatalog
    : { [K in keyof T & string]: { payload: PayloadOf<T[K]>; result: ResultOf<T[K]> } } & {
        [K in E]: { payload: unknown; result: unknown };
      };

/** TaskNameOf is a task name a catalog accepts. */
export type TaskNameOf<C extends TaskCatalog> = keyof C & string;

/** JobOf is the job of task K of a catalog, typed. */
export type JobOf<C extends TaskCatalog, K extends keyof C> = Job<C[K]['payload'], C[K]['result']>;

/** AnyJobOf is the job of any task of a catalog. */
export type AnyJobOf<C extends TaskCatalog> = { [K in TaskNameOf<C>]: JobOf<C, K> }[TaskNameOf<C>];

/** PayloadField is `payload` of a spec: required unless its type admits undefined. */
export type PayloadField<P> = undefined extends P ? { payload?: P } : { payload: P };

/** PayloadArgs are an enqueue's arguments after the task: the payload (optional if it may be undefined), then options. */
export type PayloadArgs<P, Options> = undefined extends P
  ? [payload?: P, options?: Options]
  : [payload: P, options?: Options];

/** SpecOf is one `{ task, payload, ...options }` of a catalog, discriminated by task. */
export type SpecOf<C extends TaskCatalog, Options> = {
  [K in TaskNameOf<C>]: Options & { task: K } & PayloadField<C[K]['payload']>;
}[TaskNameOf<C>];

/** ResolvedTasks are the `tasks` and `handlers` options checked. */
export interface ResolvedTasks {
  /** handled are the tasks with a handler: what this runtime works (a worker has one at least). */
  handled: Map<string, TaskDefinition>;
  /** declared are the settings of every task this runtime knows, handled or not. */
  declared: Map<string, TaskSettings>;
}

/**
 * resolveTasks checks `tasks` (handlers, definitions or declarations) and `handlers` (one for every
 * declaration, if any are given) and returns what the runtime works and what it knows.
 */
export function resolveTasks(tasks: unknown, handlers: unknown): ResolvedTasks {
  const handled = new Map<string, TaskDefinition>();
  const declared = new Map<string, TaskSettings>();
  if (tasks !== undefined && (tasks === null || typeof tasks !== 'object')) {
    throw new ValidationError(
      'tasks',
      'an object of { [name]: handler | defineTask(...) | task(...) }',
      tasks,
    );
  }
  const entries = Object.entries((tasks ?? {}) as Record<string, unknown>);
  const declarations = entries.filter(([, entry]) => isTaskDeclaration(entry)).map(([name]) => name);
  if (handlers !== undefined) {
    if (handlers === null || typeof handlers !== 'object' || declarations.length === 0) {
      throw new ValidationError(
        'handlers',
        'an object of { [name]: handler } for the task() declarations of tasks',
        handlers,
      );
    }
    assertKnownKeys(handlers, declarations, 'handlers');
  }
  const handlerMap = (handlers ?? {}) as Record<string, unknown>;
  for (const [name, entry] of entries) {
    validateTaskName(name, `tasks.${name}`);
    if (!isTaskDeclaration(entry)) {
      const definition = validateTaskDefinition(entry as TaskDefinition, `tasks.${name}`);
      handled.set(name, definition);
      declared.set(name, definition);
      continue;
    }
    declared.set(name, entry);
    if (handlers === undefined) continue;
    const handler = handlerMap[name];
    if (typeof handler !== 'function')
      throw new ValidationError(`handlers.${name}`, 'a handler function', handler);
    handled.set(name, { ...entry, handler: handler as TaskHandler });
  }
  return { handled, declared };
}

import { JOB_STATES, type JobState } from '../../machines/job.js';
import { ValidationError } from '../core/errors.js';
import { assertKnownKeys, optionNames } from '../core/known-keys.js';
import type { RuntimeEventMap, RuntimeEvents, TransitionEvent } from '../jobs/events.js';
import { validateTaskName } from '../jobs/tasks.js';

/** SubscribeOptions choose which transitions `runtime.subscribe` yields; every filter given must match. */
export interface SubscribeOptions {
  /** task keeps transitions of jobs of this task (or of any of these tasks). */
  task?: string | readonly string[];
  /** states keeps transitions into these states (e.g. `['succeeded', 'failed']`). */
  states?: readonly JobState[];
  /** signal ends the iteration when aborted: events already buffered are still yielded, then it is done. */
  signal?: AbortSignal;
}

const SUBSCRIBE_OPTION_NAMES = optionNames<SubscribeOptions>({ task: true, states: true, signal: true });

type TransitionEventName = 'job:transition' | `job:${JobState}`;
// biome-ignore lint/suspicious/noExplicitAny: takers of any subscription's events
type Taker = (result: IteratorResult<any, undefined>) => void;

// COMPACT_AT: the buffer is a queue read from `head`; its consumed front is dropped once it is this long.
const COMPACT_AT = 1024;

/**
 * TransitionSubscription is the async iterator `runtime.subscribe` returns: it yields the job
 * transitions its filter keeps, in the order the runtime emitted them.
 *
 * - It listens only while iterated: the listener is attached by the first `next()` and removed when
 *   the loop ends (`break`, `return`, a throw in the loop body, or a call to `return()`). An iterator
 *   that is never iterated costs nothing, and events emitted before the first `next()` are not seen.
 * - With `states`, it listens to `job:<state>` for those states only, so other transitions build
 *   nothing; without, it listens to `job:transition`.
 * - Events that arrive while the loop body is busy are buffered without bound: a consumer slower than
 *   the transitions it asks for holds them all in memory. Narrow the filter, or keep the loop body
 *   quick and hand slow work elsewhere.
 * - Each yielded event carries a copy of the job as it was at that transition (the runtime keeps
 *   changing its own job objects as they move on).
 * - The iteration ends (done, after the buffered events) when `signal` aborts or the runtime stops.
 */
// biome-ignore lint/suspicious/noExplicitAny: a subscription to any task's transitions
export class TransitionSubscription<Event extends TransitionEvent<any, any> = TransitionEvent>
  implements AsyncIterableIterator<Event, undefined>
{
  private readonly tasks: ReadonlySet<string> | null;
  private readonly eventNames: readonly TransitionEventName[];
  private readonly signals: readonly AbortSignal[];
  private buffer: Event[] = [];
  private head = 0;
  private takers: Taker[] = [];
  private status: 'idle' | 'attached' | 'ended' = 'idle';

  /** Use `runtime.subscribe(options)`; `stopped` is the runtime's own "stopped" signal. */
  constructor(
    private readonly events: RuntimeEvents,
    options: SubscribeOptions,
    stopped: AbortSignal,
  ) {
    if (options === null || typeof options !== 'object')
      throw new ValidationError('options', 'an object { task?, states?, signal? }', options);
    // A misspelled filter would otherwise yield every transition, which looks like an answer.
    assertKnownKeys(options, SUBSCRIBE_OPTION_NAMES, 'subscribe');
    this.tasks = tasksOf(options.task);
    const states = statesOf(options.states);
    this.eventNames = states ? states.map((state) => `job:${state}` as const) : ['job:transition'];
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
      throw new ValidationError('signal', 'an AbortSignal', options.signal);
    this.signals = options.signal ? [options.signal, stopped] : [stopped];
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** next yields the next kept transition, waiting for one if none is buffered. */
  next(): Promise<IteratorResult<Event, undefined>> {
    if (this.status === 'idle') this.attach();
    if (this.head < this.buffer.length) return Promise.resolve({ value: this.shift(), done: false });
    if (this.status === 'ended') return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** return stops listening at once and drops whatever is buffered; `break` in a for-await calls it. */
  return(): Promise<IteratorResult<Event, undefined>> {
    this.end();
    this.buffer = [];
    this.head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  private attach(): void {
    if (this.signals.some((signal) => signal.aborted)) {
      this.status = 'ended';
      return;
    }
    this.status = 'attached';
    for (const name of this.eventNames) this.events.on(name, this.onEvent);
    for (const signal of this.signals) signal.addEventListener('abort', this.onAbort);
  }

  // end removes every listener and releases pending next() calls; buffered events stay readable.
  private end(): void {
    if (this.status === 'attached') {
      for (const name of this.eventNames) this.events.off(name, this.onEvent);
      for (const signal of this.signals) signal.removeEventListener('abort', this.onAbort);
    }
    this.status = 'ended';
    const takers = this.takers;
    this.takers = [];
    for (const take of takers) take({ value: undefined, done: true });
  }

  private readonly onAbort = (): void => this.end();

  private readonly onEvent = (event: RuntimeEventMap['job:transition'][0]): void => {
    if (this.tasks && !this.tasks.has(event.job.task)) return;
    const copy = { ...event, job: { ...event.job } } as Event;
    const take = this.takers.shift();
    if (take) take({ value: copy, done: false });
    else this.buffer.push(copy);
  };

  private shift(): Event {
    const event = this.buffer[this.head++] as Event;
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
    return event;
  }
}

function tasksOf(task: SubscribeOptions['task']): ReadonlySet<string> | null {
  if (task === undefined) return null;
  if (typeof task === 'string') return new Set([validateTaskName(task, 'task')]);
  if (!Array.isArray(task) || task.length === 0)
    throw new ValidationError('task', 'a task name or a non-empty array of them', task);
  return new Set(task.map((name, i) => validateTaskName(name, `task[${i}]`)));
}

function statesOf(states: SubscribeOptions['states']): JobState[] | null {
  if (states === undefined) return null;
  const valid = (state: unknown): state is JobState => JOB_STATES.includes(state as JobState);
  if (!Array.isArray(states) || states.length === 0 || !states.every(valid))
    throw new ValidationError('states', `a non-empty array of job states (${JOB_STATES.join(', ')})`, states);
  return [...new Set(states)];
}

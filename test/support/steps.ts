import type { EventEmitter } from 'node:events';
import { gate } from './helpers.js';

/**
 * inbox keeps every `name` event matching `match` from now on, and returns a function that resolves
 * with the next one kept (at once if it already came): a test takes events in order without racing
 * the runtime, which may emit the next before the test asks for it.
 */
export function inbox<T>(emitter: EventEmitter, name: string, match: (arg: T) => boolean = () => true) {
  const kept: T[] = [];
  let wake: (() => void) | null = null;
  emitter.on(name, (arg: T) => {
    if (!match(arg)) return;
    kept.push(arg);
    wake?.();
  });
  return async (): Promise<T> => {
    while (kept.length === 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return kept.shift() as T;
  };
}

/**
 * turns makes `count` gates for handlers that run one after another: the i-th handler to call
 * `take()` waits for the i-th gate, which the test opens with `open(i)`.
 */
export function turns(count: number) {
  const gates = Array.from({ length: count }, () => gate());
  let taken = 0;
  return {
    take: (): Promise<void> => gates[taken++]?.opened ?? Promise.resolve(),
    open: (i: number): void => gates[i]?.open(),
  };
}

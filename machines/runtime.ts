import { setup } from 'xstate';

/**
 * RuntimeEvent lists what moves a runtime through its own life. The runtime sends each one at the
 * point named; the machine decides whether it moves, so a late or doubled event changes nothing.
 */
export type RuntimeEvent =
  /** `start()` was called. */
  | { type: 'START' }
  /** start() migrated, registered and began claiming. */
  | { type: 'STARTED' }
  /** start() failed; its connections are closed and it cannot be started again. */
  | { type: 'START_FAILED' }
  /** The onException policy asked for a crash: claiming stopped, held jobs given back. */
  | { type: 'CRASH' }
  /** `stop()` was called. */
  | { type: 'STOP' }
  /** stop() closed everything it opened. */
  | { type: 'STOPPED' };

// Every live state may be stopped; STOP while starting lets start() finish its steps, then stop.
const stoppable = { STOP: { target: 'stopping' } } as const;

/**
 * runtimeMachine is the lifecycle of one runtime (created, starting, started, stopping, stopped,
 * crashed) and the only authority on it. A crashed runtime stays crashed through its stop: `crashed`
 * holds its own stopping and stopped, so that the phase still says it crashed once it has stopped.
 */
export const runtimeMachine = setup({
  types: { events: {} as RuntimeEvent },
}).createMachine({
  id: 'runtime',
  initial: 'created',
  states: {
    created: { on: { START: { target: 'starting' }, ...stoppable } },
    starting: {
      on: {
        STARTED: { target: 'started' },
        START_FAILED: { target: 'stopped' },
        CRASH: { target: 'crashed' },
        ...stoppable,
      },
    },
    started: { on: { CRASH: { target: 'crashed' }, ...stoppable } },
    stopping: { on: { STOPPED: { target: 'stopped' } } },
    stopped: { type: 'final' },
    crashed: {
      initial: 'halted',
      states: {
        halted: { on: stoppable },
        stopping: { on: { STOPPED: { target: 'stopped' } } },
        stopped: { type: 'final' },
      },
    },
  },
});

/** RuntimeMachine is the type of the runtime lifecycle machine. */
export type RuntimeMachine = typeof runtimeMachine;

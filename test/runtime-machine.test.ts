import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { type RuntimeEvent, runtimeMachine } from '../machines/runtime.js';
import { RuntimeStateError } from '../src/index.js';
import { freshSchema, testRuntime } from './support/helpers.js';

const EVENTS: RuntimeEvent[] = [
  { type: 'START' },
  { type: 'STARTED' },
  { type: 'START_FAILED' },
  { type: 'CRASH' },
  { type: 'STOP' },
  { type: 'STOPPED' },
];

// replay runs `events` through a fresh runtime machine and returns its state value.
function replay(...events: RuntimeEvent[]): unknown {
  const actor = createActor(runtimeMachine).start();
  for (const event of events) actor.send(event);
  return actor.getSnapshot().value;
}

describe('the runtime lifecycle machine', () => {
  it('reaches every state, each by the events that lead there', () => {
    const paths = getShortestPaths(runtimeMachine, { events: EVENTS });
    const reached = paths.map((path) => JSON.stringify(path.state.value)).sort();
    assert.deepEqual(reached, [
      '"created"',
      '"started"',
      '"starting"',
      '"stopped"',
      '"stopping"',
      '{"crashed":"halted"}',
      '{"crashed":"stopped"}',
      '{"crashed":"stopping"}',
    ]);
  });

  it('ignores what does not apply: a late STARTED after STOP, a CRASH while stopping, a second START', () => {
    assert.equal(replay({ type: 'START' }, { type: 'STOP' }, { type: 'STARTED' }), 'stopping');
    assert.equal(
      replay({ type: 'START' }, { type: 'STARTED' }, { type: 'STOP' }, { type: 'CRASH' }),
      'stopping',
    );
    assert.equal(replay({ type: 'START' }, { type: 'START' }), 'starting');
  });

  it('keeps a crashed runtime crashed through its stop', () => {
    assert.deepEqual(
      replay(
        { type: 'START' },
        { type: 'STARTED' },
        { type: 'CRASH' },
        { type: 'STOP' },
        { type: 'STOPPED' },
      ),
      { crashed: 'stopped' },
    );
  });

  it('drives the runtime: phases follow the machine, and a second start is refused', async () => {
    const runtime = testRuntime({ schema: freshSchema('lifecycle'), tasks: { work: () => 'done' } });
    assert.equal(runtime.phase, 'created');
    const starting = runtime.start();
    assert.equal(runtime.phase, 'starting');
    await starting;
    assert.equal(runtime.phase, 'started');
    await assert.rejects(runtime.start(), RuntimeStateError);
    const stopping = runtime.stop();
    assert.equal(runtime.phase, 'stopping');
    await stopping;
    assert.equal(runtime.phase, 'stopped');
  });
});

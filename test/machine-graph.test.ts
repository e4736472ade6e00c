import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMachine, getNextSnapshot } from 'xstate';
import { JOB_STATES, jobMachine } from '../machines/job.js';
import { runtimeMachine } from '../machines/runtime.js';
import { machineGraph } from '../src/core/machine-graph.js';

describe('machineGraph', () => {
  it('reads states, nesting, initial and final states, guards and actions from the definition', () => {
    const machine = createMachine({
      id: 'door',
      initial: 'closed',
      states: {
        closed: { tags: ['quiet'], on: { OPEN: { target: 'open', guard: 'unlocked' }, LOCK: 'locked' } },
        open: { on: { CLOSE: { target: 'closed', actions: 'slam' }, NOTE: { actions: 'log' } } },
        locked: {
          initial: 'bolted',
          states: { bolted: { on: { TURN: 'unbolted' } }, unbolted: { on: { PULL: '#door.gone' } } },
        },
        gone: { type: 'final' },
      },
    });
    assert.deepEqual(machineGraph(machine), {
      id: 'door',
      states: [
        { id: 'closed', key: 'closed', parent: null, type: 'atomic', initial: true, tags: ['quiet'] },
        { id: 'open', key: 'open', parent: null, type: 'atomic', initial: false, tags: [] },
        { id: 'locked', key: 'locked', parent: null, type: 'compound', initial: false, tags: [] },
        { id: 'locked.bolted', key: 'bolted', parent: 'locked', type: 'atomic', initial: true, tags: [] },
        {
          id: 'locked.unbolted',
          key: 'unbolted',
          parent: 'locked',
          type: 'atomic',
          initial: false,
          tags: [],
        },
        { id: 'gone', key: 'gone', parent: null, type: 'final', initial: false, tags: [] },
      ],
      transitions: [
        { source: 'closed', target: 'open', event: 'OPEN', guard: 'unlocked', actions: [] },
        { source: 'closed', target: 'locked', event: 'LOCK', guard: null, actions: [] },
        // NOTE only runs an action: no edge to draw.
        { source: 'open', target: 'closed', event: 'CLOSE', guard: null, actions: ['slam'] },
        { source: 'locked.bolted', target: 'locked.unbolted', event: 'TURN', guard: null, actions: [] },
        { source: 'locked.unbolted', target: 'gone', event: 'PULL', guard: null, actions: [] },
      ],
    });
  });

  it('gives the job machine as it runs: every first candidate of an event leads where the graph says', () => {
    const graph = machineGraph(jobMachine);
    assert.deepEqual(
      graph.states.map((state) => state.id),
      [...JOB_STATES],
    );
    assert.deepEqual(
      graph.states.filter((state) => state.initial).map((state) => state.id),
      ['not_started'],
    );
    const firsts = new Map<string, string>();
    for (const t of graph.transitions) {
      const key = `${t.source} ${t.event}`;
      if (!firsts.has(key)) firsts.set(key, t.target);
    }
    assert.ok(firsts.size > 20, `${firsts.size} (state, event) pairs`);
    const context = { jobId: '1', attempts: 1, maxAttempts: 5, interruptions: 0, maxInterruptions: 3 };
    for (const [key, target] of firsts) {
      const [source, event] = key.split(' ') as [string, string];
      const snapshot = jobMachine.resolveState({ value: source, context });
      const next = getNextSnapshot(jobMachine, snapshot, { type: event } as never);
      assert.equal(next.value, target, key);
    }
  });

  it('names nested states by their path (the runtime machine)', () => {
    const graph = machineGraph(runtimeMachine);
    const crashed = graph.states.filter((state) => state.parent === 'crashed').map((state) => state.id);
    assert.deepEqual(crashed, ['crashed.halted', 'crashed.stopping', 'crashed.stopped']);
    assert.ok(graph.transitions.some((t) => t.source === 'crashed.halted' && t.event === 'STOP'));
  });
});

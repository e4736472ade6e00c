import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMachine } from 'xstate';
import { JOB_STATES, jobMachine } from '../machines/job.js';
import { runtimeMachine } from '../machines/runtime.js';
import { machineGraph } from '../src/core/machine-graph.js';
import { drawStatechart } from '../src/dashboard/statechart-svg.js';

// groups lists the SVG groups whose id starts with `prefix`, with their class and first text's x.
function groups(svg: string, prefix: string): { id: string; classes: string; x: number }[] {
  return [...svg.matchAll(new RegExp(`<g id="(${prefix}[^"]*)" class="([^"]*)">([\\s\\S]*?)</g>`, 'g'))].map(
    (m) => ({
      id: (m[1] as string).replace(/&#45;/g, '-'),
      classes: m[2] as string,
      x: Number(/<text[^>]* x="([-0-9.]+)"/.exec(m[3] as string)?.[1]),
    }),
  );
}

describe('drawStatechart', () => {
  it('draws every state of the job machine and one arrow per pair of states a transition joins', async () => {
    const graph = machineGraph(jobMachine);
    const svg = await drawStatechart(graph, { counts: { running: 3, succeeded: 1200 }, current: 'running' });
    assert.match(svg, /^<svg class="statechart" data-machine="job"/);
    assert.deepEqual(
      groups(svg, 'state_')
        .map((g) => g.id)
        .sort(),
      JOB_STATES.map((state) => `state_${state}`).sort(),
    );
    const pairs = new Set(graph.transitions.map((t) => `transition_${t.source}_${t.target}`));
    assert.deepEqual(new Set(groups(svg, 'transition_').map((g) => g.id)), pairs);
    assert.ok(groups(svg, 'state_running')[0]?.classes.includes('current'));
    assert.ok(groups(svg, 'state_succeeded')[0]?.classes.includes('tag_finished'));
    assert.match(svg, />1,200</, 'a count is drawn under its state');
    assert.match(svg, />RETRY [[]hasAttemptsLeft[\]]</, 'a guard is named on its event');
  });

  it('follows the machine: another machine, another drawing, flowing from the initial state', async () => {
    const machine = createMachine({
      id: 'door',
      initial: 'closed',
      states: {
        closed: { on: { OPEN: 'open' } },
        open: { on: { CLOSE: 'closed', LOCK: 'locked' } },
        locked: { type: 'final' },
      },
    });
    const svg = await drawStatechart(machineGraph(machine));
    const x = (id: string) => groups(svg, `state_${id}`)[0]?.x as number;
    assert.ok(
      x('closed') < x('open') && x('open') < x('locked'),
      `${x('closed')} ${x('open')} ${x('locked')}`,
    );
    assert.deepEqual(
      groups(svg, 'transition_').map((g) => g.id),
      ['transition_closed_open', 'transition_open_closed', 'transition_open_locked'],
    );
  });

  it('draws a compound state as a frame around its children (the runtime machine)', async () => {
    const svg = await drawStatechart(machineGraph(runtimeMachine));
    assert.match(svg, /<g id="state_crashed" class="cluster">|<g id="state_crashed" class="[^"]*"/);
    for (const child of ['crashed.halted', 'crashed.stopping', 'crashed.stopped']) {
      assert.equal(groups(svg, `state_${child.replace('.', '\\.')}`).length, 1, child);
    }
  });

  it('escapes every text it writes', async () => {
    const machine = createMachine({
      id: 'x"y',
      initial: 'a',
      states: { a: { on: { '<img src=x onerror=alert(1)>': 'b', 'say "hi" \\ now': 'b' } }, b: {} },
    });
    const svg = await drawStatechart(machineGraph(machine));
    assert.doesNotMatch(svg, /<img/);
    assert.match(svg, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(svg, /data-machine="x&quot;y"/);
  });
});

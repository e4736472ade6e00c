import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMachine } from 'xstate';
import { JOB_STATES, jobMachine } from '../machines/job.js';
import { machineGraph } from '../src/core/machine-graph.js';
import { drawStatechart } from '../src/dashboard/statechart-svg.js';

// attributes lists the values of one data attribute over a drawing's elements, in order.
function attributes(svg: string, name: string): string[] {
  return [...svg.matchAll(new RegExp(`${name}="([^"]*)"`, 'g'))].map((m) => m[1] as string);
}

describe('drawStatechart', () => {
  it('draws every state of the job machine and one arrow per pair of states a transition joins', () => {
    const graph = machineGraph(jobMachine);
    const svg = drawStatechart(graph, { counts: { running: 3, succeeded: 1200 }, current: 'running' });
    assert.deepEqual(attributes(svg, 'data-state').sort(), [...JOB_STATES].sort());
    const pairs = new Set(graph.transitions.map((t) => `${t.source}>${t.target}`));
    const sources = attributes(svg, 'data-source');
    const targets = attributes(svg, 'data-target');
    assert.deepEqual(new Set(sources.map((source, i) => `${source}>${targets[i]}`)), pairs);
    assert.match(svg, /data-state="succeeded" data-count="1200">/);
    assert.match(svg, /class="state atomic current" data-state="running"/);
    assert.match(svg, />RETRY \[hasAttemptsLeft\]</, 'a guard is named on its event');
  });

  it('follows the machine: another machine, another drawing, nested states inside their parent', () => {
    const machine = createMachine({
      id: 'door',
      initial: 'closed',
      states: {
        closed: { on: { OPEN: 'open' } },
        open: { on: { CLOSE: 'closed', LOCK: 'locked' } },
        locked: { initial: 'bolted', states: { bolted: { on: { TURN: 'unbolted' } }, unbolted: {} } },
      },
    });
    const svg = drawStatechart(machineGraph(machine));
    assert.deepEqual(attributes(svg, 'data-state'), [
      'closed',
      'open',
      'locked',
      'locked.bolted',
      'locked.unbolted',
    ]);
    const box = (id: string) => {
      const m = new RegExp(
        `data-state="${id}"><rect x="([0-9.]+)" y="([0-9.]+)" width="([0-9.]+)" height="([0-9.]+)"`,
      ).exec(svg);
      assert.ok(m, id);
      const [x, y, w, h] = m.slice(1).map(Number) as [number, number, number, number];
      return { x, y, w, h };
    };
    const parent = box('locked');
    for (const child of ['locked.bolted', 'locked.unbolted']) {
      const b = box(child);
      assert.ok(
        b.x > parent.x &&
          b.x + b.w < parent.x + parent.w &&
          b.y > parent.y &&
          b.y + b.h < parent.y + parent.h,
        child,
      );
    }
    // Forward transitions point right: closed, then open, then locked.
    assert.ok(box('closed').x < box('open').x && box('open').x < box('locked').x);
  });

  it('escapes every text it writes', () => {
    const machine = createMachine({
      id: 'x<y',
      initial: 'a',
      states: { a: { on: { '<img onerror=1>': 'b' } }, b: {} },
    });
    const svg = drawStatechart(machineGraph(machine), { title: '"><script>alert(1)</script>' });
    assert.doesNotMatch(svg, /<script>|<img/);
    assert.match(svg, /&lt;img onerror=1&gt;/);
    assert.match(svg, /<title>&quot;&gt;&lt;script&gt;/);
  });
});

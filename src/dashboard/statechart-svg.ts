import { instance, type Viz } from '@viz-js/viz';
import type { GraphState, GraphTransition, MachineGraph } from '../core/machine-graph.js';

/** DrawOptions say what a statechart drawing shows besides the machine. */
export interface DrawOptions {
  /** counts puts a number on each state named (jobs in that state, say). */
  counts?: Readonly<Record<string, number>>;
  /** current lights one state (a job's own state). */
  current?: string | null;
}

// Graphviz, compiled to WebAssembly, lays the drawing out: started once per process, on first use.
let graphviz: Promise<Viz> | null = null;

/**
 * drawStatechart draws a machine's graph (see machineGraph) as SVG text, laid out by Graphviz's dot
 * from left to right: each state a box (a final one doubled, the current one lit, its count under its
 * name), each compound state a frame around its children, and one arrow per pair of states labelled
 * with the events (and guards) that lead from one to the other. Each state's group has the id
 * `state_<id>` and the classes `state`, its type and `tag_<tag>`; each arrow's `transition`.
 */
export async function drawStatechart(graph: MachineGraph, options: DrawOptions = {}): Promise<string> {
  graphviz ??= instance();
  const svg = (await graphviz).renderString(statechartDot(graph, options), { format: 'svg' });
  // Embeddable in a page: no XML prolog, doctype or comments.
  return svg
    .slice(svg.indexOf('<svg'))
    .replace(/<!--[\s\S]*?-->\n?/g, '')
    .replace('<svg ', `<svg class="statechart" data-machine="${escapeXml(graph.id)}" role="img" `);
}

/** statechartDot writes a machine's graph in Graphviz's DOT language (see drawStatechart). */
export function statechartDot(graph: MachineGraph, options: DrawOptions = {}): string {
  const childrenOf = (parent: string | null) => graph.states.filter((state) => state.parent === parent);
  const lines = [
    `digraph ${quote(graph.id)} {`,
    '  rankdir=LR; compound=true; nodesep=0.35; ranksep=0.7;',
    '  node [shape=box style="rounded,filled" fillcolor="#f4f6fb" color="#4a5a80" fontname="Helvetica" fontsize=12];',
    '  edge [color="#7a869e" fontname="Helvetica" fontsize=9 arrowsize=0.7];',
  ];
  const start = childrenOf(null).find((state) => state.initial);
  if (start) {
    lines.push('  __start [shape=circle style=filled fillcolor="#4a5a80" label="" width=0.15 id="start"];');
    lines.push(`  __start -> ${quote(entryOf(start.id, graph))};`);
  }
  const writeState = (state: GraphState, indent: string) => {
    const children = childrenOf(state.id);
    if (children.length > 0) {
      lines.push(`${indent}subgraph ${quote(`cluster_${state.id}`)} {`);
      lines.push(
        `${indent}  id=${quote(`state_${state.id}`)}; class=${quote(classesOf(state, options))}; label=${quote(state.key)}; style="rounded"; color="#4a5a80"; fontname="Helvetica";`,
      );
      for (const child of children) writeState(child, `${indent}  `);
      lines.push(`${indent}}`);
      return;
    }
    const count = options.counts?.[state.id];
    const label = count === undefined ? state.key : `${state.key}\n${count.toLocaleString('en-US')}`;
    const attributes = [
      `id=${quote(`state_${state.id}`)}`,
      `class=${quote(classesOf(state, options))}`,
      `label=${quote(label)}`,
    ];
    if (state.type === 'final') attributes.push('peripheries=2');
    if (options.current === state.id) attributes.push('fillcolor="#ffe9a8"');
    lines.push(`${indent}${quote(state.id)} [${attributes.join(' ')}];`);
  };
  for (const state of childrenOf(null)) writeState(state, '  ');
  for (const edge of edgesOf(graph.transitions)) {
    const attributes = [
      `id=${quote(`transition_${edge.source}_${edge.target}`)}`,
      'class="transition"',
      `label=${quote(edge.labels.join('\n'))}`,
    ];
    // An arrow to or from a compound state ends at its frame: Graphviz draws it to a state inside.
    if (childrenOf(edge.target).length > 0) attributes.push(`lhead=${quote(`cluster_${edge.target}`)}`);
    if (childrenOf(edge.source).length > 0) attributes.push(`ltail=${quote(`cluster_${edge.source}`)}`);
    lines.push(
      `  ${quote(entryOf(edge.source, graph))} -> ${quote(entryOf(edge.target, graph))} [${attributes.join(' ')}];`,
    );
  }
  lines.push('}');
  return lines.join('\n');
}

// entryOf is the state an arrow to `id` is drawn to: the state itself, or for a compound state the
// state it starts in (its initial child, followed down).
function entryOf(id: string, graph: MachineGraph): string {
  const children = graph.states.filter((state) => state.parent === id);
  if (children.length === 0) return id;
  return entryOf((children.find((state) => state.initial) ?? (children[0] as GraphState)).id, graph);
}

function classesOf(state: GraphState, options: DrawOptions): string {
  const classes = ['state', state.type];
  if (state.initial) classes.push('initial');
  if (options.current === state.id) classes.push('current');
  for (const tag of state.tags) classes.push(`tag_${tag.replace(/[^a-zA-Z0-9_-]/g, '_')}`);
  return classes.join(' ');
}

interface Edge {
  source: string;
  target: string;
  labels: string[];
}

// edgesOf merges the transitions between the same two states into one arrow, labelled with each
// event (and its guard) once, in the definition's order.
function edgesOf(transitions: readonly GraphTransition[]): Edge[] {
  const edges = new Map<string, Edge>();
  for (const t of transitions) {
    const key = `${t.source}\u0000${t.target}`;
    const edge = edges.get(key) ?? { source: t.source, target: t.target, labels: [] };
    const label = t.guard ? `${t.event} [${t.guard}]` : t.event;
    if (!edge.labels.includes(label)) edge.labels.push(label);
    edges.set(key, edge);
  }
  return [...edges.values()];
}

// quote writes a DOT string: double-quoted, its backslashes and quotes escaped, its newlines as \n
// (a centered line break in a label). Graphviz escapes the text it writes into the SVG.
function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** escapeXml makes text safe inside an SVG or HTML element or a quoted attribute. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

import type { GraphState, GraphTransition, MachineGraph } from '../core/machine-graph.js';

/** DrawOptions say what a statechart drawing shows besides the machine. */
export interface DrawOptions {
  /** counts puts a number on each state named (jobs in that state, say). */
  counts?: Readonly<Record<string, number>>;
  /** current lights one state (a job's own state). */
  current?: string | null;
  /** title names the drawing for assistive technology (`<title>`). */
  title?: string;
}

const NODE_WIDTH = 150;
const NODE_HEIGHT = 46;
const CHILD_GAP = 14;
const COLUMN_GAP = 120;
const ROW_GAP = 34;
const MARGIN = 24;

interface Box {
  state: GraphState;
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * drawStatechart draws a machine's graph (see machineGraph) as SVG text: the top-level states in
 * columns by their distance from the initial state, each compound state with its children inside,
 * and one arrow per pair of states labelled with the events (and guards) that lead from one to the
 * other. Every text is escaped. States carry `data-state` (and `data-count`), arrows `data-source`
 * and `data-target`, so a page can find and update them.
 */
export function drawStatechart(graph: MachineGraph, options: DrawOptions = {}): string {
  const boxes = layout(graph);
  const byId = new Map(boxes.map((box) => [box.state.id, box]));
  const arrows: Arrow[] = [];
  for (const [index, edge] of edgesOf(graph.transitions).entries()) {
    const from = byId.get(edge.source);
    const to = byId.get(edge.target);
    if (from && to) arrows.push(drawEdge(from, to, edge.labels, index));
  }
  // Arcs over the top row may rise above the boxes: everything moves down to make room for them.
  const shift = Math.max(0, MARGIN - Math.min(MARGIN, ...arrows.map((arrow) => arrow.top)));
  const width = Math.max(...boxes.map((box) => box.x + box.width), ...arrows.map((a) => a.right)) + MARGIN;
  const height = Math.max(...boxes.map((box) => box.y + box.height)) + MARGIN + shift;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" data-machine="${escapeXml(graph.id)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">`,
    `<title>${escapeXml(options.title ?? `${graph.id} statechart`)}</title>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/></marker></defs>',
    `<g transform="translate(0,${shift})">`,
  ];
  // Compound states first, so that their children are drawn over them; the arrows over all.
  const ordered = [...boxes].sort((a, b) => depthOf(a.state) - depthOf(b.state));
  for (const box of ordered) parts.push(drawState(box, options));
  for (const arrow of arrows) parts.push(arrow.svg);
  parts.push('</g>', '</svg>');
  return parts.join('\n');
}

// Arrow is one drawn arrow and how far up and right it reaches.
interface Arrow {
  svg: string;
  top: number;
  right: number;
}

// layout places the top-level states in columns by their rank (see ranksOf), in the definition's
// order within a column; a compound state is as wide as its
// children side by side, which sit in a row inside it.
function layout(graph: MachineGraph): Box[] {
  const top = graph.states.filter((state) => state.parent === null);
  const topOf = (id: string) => id.split('.')[0] as string;
  const rank = ranksOf(
    top.map((state) => state.id),
    (top.find((state) => state.initial) ?? top[0])?.id,
    graph.transitions.map((t) => [topOf(t.source), topOf(t.target)] as const),
  );
  const lastRank = Math.max(0, ...rank.values());
  // States no transition reaches go in a column of their own, after the rest.
  for (const state of top) if (!rank.has(state.id)) rank.set(state.id, lastRank + 1);
  const boxes: Box[] = [];
  const columns = new Map<number, GraphState[]>();
  for (const state of top) {
    const r = rank.get(state.id) as number;
    columns.set(r, [...(columns.get(r) ?? []), state]);
  }
  const childrenOf = (id: string) => graph.states.filter((state) => state.parent === id);
  const widthOf = (state: GraphState): number => {
    const children = childrenOf(state.id);
    if (children.length === 0) return NODE_WIDTH;
    return children.reduce((sum, child) => sum + widthOf(child) + CHILD_GAP, CHILD_GAP);
  };
  const heightOf = (state: GraphState): number => {
    const children = childrenOf(state.id);
    if (children.length === 0) return NODE_HEIGHT;
    return NODE_HEIGHT / 2 + Math.max(...children.map(heightOf)) + CHILD_GAP * 2;
  };
  const place = (state: GraphState, x: number, y: number) => {
    boxes.push({ state, x, y, width: widthOf(state), height: heightOf(state) });
    let childX = x + CHILD_GAP;
    for (const child of childrenOf(state.id)) {
      place(child, childX, y + NODE_HEIGHT / 2 + CHILD_GAP);
      childX += widthOf(child) + CHILD_GAP;
    }
  };
  let x = MARGIN;
  for (const r of [...columns.keys()].sort((a, b) => a - b)) {
    const column = columns.get(r) as GraphState[];
    let y = MARGIN;
    for (const state of column) {
      place(state, x, y);
      y += heightOf(state) + ROW_GAP;
    }
    x += Math.max(...column.map(widthOf)) + COLUMN_GAP;
  }
  return boxes;
}

// ranksOf ranks states for columns: a walk from the initial state, depth first in the definition's
// order, marks each transition back to a state on the walk's path as a way back; the others form an
// acyclic graph, in which a state's rank is the longest way to it from the initial state. So ways
// forward point right, ways back (a retry, a restart) arch back left, and a state every other leads
// to (removed) ends up last.
function ranksOf(
  ids: readonly string[],
  initial: string | undefined,
  edges: readonly (readonly [string, string])[],
): Map<string, number> {
  const forward = new Map<string, string[]>(ids.map((id) => [id, []]));
  const onPath = new Set<string>();
  const seen = new Set<string>();
  const order: string[] = [];
  const walk = (id: string) => {
    seen.add(id);
    onPath.add(id);
    for (const [source, target] of edges) {
      if (source !== id || target === id || onPath.has(target)) continue;
      const next = forward.get(id) as string[];
      if (!next.includes(target)) next.push(target);
      if (!seen.has(target)) walk(target);
    }
    onPath.delete(id);
    order.push(id);
  };
  if (initial !== undefined) walk(initial);
  const rank = new Map<string, number>();
  // Reverse post-order is a topological order of the forward edges.
  for (const id of order.reverse()) {
    if (!rank.has(id)) rank.set(id, 0);
    for (const target of forward.get(id) ?? []) {
      rank.set(target, Math.max(rank.get(target) ?? 0, (rank.get(id) as number) + 1));
    }
  }
  return rank;
}

function depthOf(state: GraphState): number {
  return state.id.split('.').length;
}

function drawState(box: Box, options: DrawOptions): string {
  const { state } = box;
  const count = options.counts?.[state.id];
  const classes = ['state', state.type];
  if (state.initial) classes.push('initial');
  if (options.current === state.id) classes.push('current');
  for (const tag of state.tags) classes.push(`tag-${tag.replace(/[^a-zA-Z0-9_-]/g, '_')}`);
  const compound = state.type === 'compound' || state.type === 'parallel';
  const labelY = compound ? box.y + 18 : box.y + (count === undefined ? box.height / 2 + 5 : 19);
  const lines = [
    `<g class="${classes.join(' ')}" data-state="${escapeXml(state.id)}"${count === undefined ? '' : ` data-count="${count}"`}>`,
    `<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" rx="10"/>`,
  ];
  if (state.type === 'final') {
    lines.push(
      `<rect class="final-ring" x="${box.x + 3}" y="${box.y + 3}" width="${box.width - 6}" height="${box.height - 6}" rx="8"/>`,
    );
  }
  lines.push(
    `<text class="name" x="${box.x + box.width / 2}" y="${labelY}" text-anchor="middle">${escapeXml(state.key)}</text>`,
  );
  if (count !== undefined) {
    lines.push(
      `<text class="count" x="${box.x + box.width / 2}" y="${box.y + 37}" text-anchor="middle">${escapeXml(count.toLocaleString('en-US'))}</text>`,
    );
  }
  lines.push('</g>');
  return lines.join('');
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

// drawEdge draws an arrow from one box to another: a curve from the right side of the source to the
// left of a target further right, an arc above or below for one in the same column or further left,
// a loop for a state to itself. The label sits at the curve's middle.
function drawEdge(from: Box, to: Box, labels: readonly string[], index: number): Arrow {
  const label = labels.join(' · ');
  let d: string;
  let lx: number;
  let ly: number;
  let top = Math.min(from.y, to.y);
  let right = Math.max(from.x + from.width, to.x + to.width);
  if (from === to) {
    const x = from.x + from.width;
    const y = from.y + from.height / 2;
    d = `M${x},${y - 8} C${x + 40},${y - 40} ${x + 40},${y + 40} ${x},${y + 8}`;
    [lx, ly] = [x + 34, y];
    right = x + 40 + label.length * 6;
  } else if (to.x > from.x + from.width / 2) {
    const [x1, y1] = [from.x + from.width, from.y + from.height / 2];
    const [x2, y2] = [to.x, to.y + to.height / 2];
    const bend = (x2 - x1) / 2;
    d = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
    [lx, ly] = [(x1 + x2) / 2, (y1 + y2) / 2 - 4];
  } else {
    // Backwards or within a column: leave from the top and arrive at the top, arching over.
    const [x1, y1] = [from.x + from.width / 2 + 12, from.y];
    const [x2, y2] = [to.x + to.width / 2 - 12, to.y];
    const lift = 30 + (index % 4) * 12;
    const crest = Math.min(y1, y2) - lift;
    d = `M${x1},${y1} C${x1},${crest} ${x2},${crest} ${x2},${y2}`;
    // A cubic's crest lies three quarters of the way to its control points; the label sits on it.
    [lx, ly] = [(x1 + x2) / 2, Math.min(y1, y2) - (lift * 3) / 4 - 3];
    top = ly - 12;
  }
  const svg = `<g class="transition" data-source="${escapeXml(from.state.id)}" data-target="${escapeXml(to.state.id)}"><path d="${d}" fill="none" marker-end="url(#arrow)"/><text x="${lx}" y="${ly}" text-anchor="middle">${escapeXml(label)}</text></g>`;
  return { svg, top, right };
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

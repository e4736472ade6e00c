import type { AnyStateMachine } from 'xstate';

/** GraphState is one state of a machine as a drawing needs it. */
export interface GraphState {
  /** id is the state's path from the root, dot-separated (`crashed.halted`); unique in the machine. */
  id: string;
  /** key is the state's own name (`halted`). */
  key: string;
  /** parent is the id of the compound state holding it, or null at the top level. */
  parent: string | null;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** initial says whether it is the state its parent (or the machine) starts in. */
  initial: boolean;
  tags: string[];
}

/** GraphTransition is one way out of a state: on `event`, to `target`, if `guard` allows. */
export interface GraphTransition {
  source: string;
  target: string;
  event: string;
  /** guard names the guard that must allow it (null: none); the first allowed candidate wins. */
  guard: string | null;
  actions: string[];
}

/** MachineGraph is a machine's states and transitions, read from its definition. */
export interface MachineGraph {
  id: string;
  states: GraphState[];
  transitions: GraphTransition[];
}

// StateNodeLike is the part of XState's StateNode read here.
interface StateNodeLike {
  id: string;
  key: string;
  type: GraphState['type'];
  tags: string[];
  states: Record<string, StateNodeLike>;
  initial?: { target?: readonly StateNodeLike[] };
  transitions: Map<string, readonly TransitionLike[]>;
}

interface TransitionLike {
  target?: readonly StateNodeLike[];
  guard?: unknown;
  actions: readonly unknown[];
}

/**
 * machineGraph reads a machine's states and transitions from its definition, in the order the
 * definition gives them, so that whatever draws or checks a machine follows the machine itself:
 * change the machine and its graph changes with it. A transition without a target (one that only
 * runs actions) is left out; each candidate of a guarded event is a transition of its own.
 */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const root = machine.root as unknown as StateNodeLike;
  const prefix = `${root.id}.`;
  const local = (node: StateNodeLike) => node.id.slice(prefix.length);
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = [];
  const visit = (node: StateNodeLike, parent: StateNodeLike) => {
    const initialIds = new Set((parent.initial?.target ?? []).map((n) => n.id));
    states.push({
      id: local(node),
      key: node.key,
      parent: parent === root ? null : local(parent),
      type: node.type,
      initial: initialIds.has(node.id),
      tags: [...node.tags],
    });
    for (const [event, candidates] of node.transitions) {
      for (const candidate of candidates) {
        for (const target of candidate.target ?? []) {
          transitions.push({
            source: local(node),
            target: local(target),
            event,
            guard: nameOf(candidate.guard),
            actions: candidate.actions.map(nameOf).filter((name): name is string => name !== null),
          });
        }
      }
    }
    for (const child of Object.values(node.states)) visit(child, node);
  };
  for (const child of Object.values(root.states)) visit(child, root);
  return { id: root.id, states, transitions };
}

// nameOf names a guard or action given by name (a string, or `{ type }`); an inline function has none.
function nameOf(given: unknown): string | null {
  if (typeof given === 'string') return given;
  if (typeof given === 'object' && given !== null && typeof (given as { type?: unknown }).type === 'string')
    return (given as { type: string }).type;
  return null;
}

/**
 * The worker half of `npm run bench:profile`: a sampling CPU profile of this process's main thread
 * (the same profiler `node --cpu-prof` starts), with each sample's time charged to the package its
 * function belongs to (XState, p-queue, the pg driver, jobchart itself, Node's internals, the
 * garbage collector) and to the function itself.
 */
import { Session } from 'node:inspector/promises';

/** SAMPLING_INTERVAL_US is the profiler's sampling interval (V8's default is 1,000). */
const SAMPLING_INTERVAL_US = 100;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** SelfTime is CPU time charged to one package or one function. */
export interface SelfTime {
  name: string;
  micros: number;
}

/** CpuProfile is a finished profile: self time by package and by function, most first. */
export interface CpuProfile {
  totalMicros: number;
  byPackage: SelfTime[];
  byFunction: SelfTime[];
}

/** CpuProfiler samples this process's main thread between `start` and `stop`. */
export class CpuProfiler {
  private readonly session = new Session();

  /** start connects to this process's inspector and starts sampling. */
  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    await this.session.post('Profiler.start');
  }

  /**
   * stop ends sampling and charges every sample's time to its package and its function. The first
   * samples, taken while `Profiler.start` itself still ran (V8 logs every compiled function then,
   * tens of milliseconds), are left out: they measure the profiler, not the drain.
   */
  async stop(): Promise<CpuProfile> {
    const { profile } = (await this.session.post('Profiler.stop')) as { profile: Profile };
    this.session.disconnect();
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    const packages = new Map<string, number>();
    const functions = new Map<string, number>();
    let totalMicros = 0;
    let starting = true;
    profile.samples.forEach((nodeId, i) => {
      const frame = frames.get(nodeId);
      const micros = profile.timeDeltas[i] ?? 0;
      starting &&= frame?.functionName === 'dispatch' && frame.url === '';
      if (starting || !frame || frame.functionName === '(idle)') return;
      totalMicros += micros;
      const owner = packageOf(frame.url, frame.functionName);
      packages.set(owner, (packages.get(owner) ?? 0) + micros);
      const name = `${frame.functionName || '(anonymous)'} ${owner}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
      functions.set(name, (functions.get(name) ?? 0) + micros);
    });
    return { totalMicros, byPackage: ranked(packages), byFunction: ranked(functions) };
  }
}

function ranked(times: Map<string, number>): SelfTime[] {
  return [...times.entries()].map(([name, micros]) => ({ name, micros })).sort((a, b) => b.micros - a.micros);
}

/**
 * packageOf names what a sampled function belongs to: an npm package by its directory under
 * node_modules (the pg family and p-queue's event emitter grouped with their users), jobchart's
 * runtime, the benchmark harness, Node's own JavaScript, or V8's pseudo-frames.
 */
function packageOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)') return 'V8 and native code';
    return 'V8 builtins';
  }
  if (url.startsWith('node:')) return 'Node.js';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (modules) {
    const name = modules[1] as string;
    if (name === 'pg' || name.startsWith('pg-') || name === 'pgpass' || name === 'postgres-array')
      return 'pg driver';
    if (name === 'eventemitter3' || name === 'p-queue' || name === 'p-timeout') return 'p-queue';
    return name;
  }
  if (url.includes('/dist/src/')) return 'jobchart';
  if (url.includes('/dist/bench/')) return 'bench harness';
  return 'other';
}

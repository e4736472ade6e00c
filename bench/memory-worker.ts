/**
 * The process the memory workload measures: a jobchart worker with defaults and nothing else, so
 * its peak resident set is the runtime's. It tells its parent over IPC when it starts the runtime,
 * drains until the parent says `stop` (the parent polls the database for completion, so that no
 * polling client counts here), then reports its peak RSS and exits.
 *
 * Usage (by bench/memory.ts only): node dist/bench/memory-worker.js <connection string>
 */
import { readFileSync } from 'node:fs';
import { createRuntime } from '../src/index.js';
import { quietLogger } from './systems/jobchart.js';

/** WorkerMessage is what this process sends its parent. */
export type WorkerMessage =
  | { type: 'starting' }
  | { type: 'result'; startRssBytes: number; maxRssBytes: number; vmHwmBytes: number | null };

/** send reports to the parent; a parent that is gone (interrupted) ends this process quietly. */
function send(message: WorkerMessage): void {
  process.send?.(message, undefined, {}, (error: Error | null) => {
    if (error) process.exit(1);
  });
}

/** vmHwm reads the kernel's peak resident set (VmHWM) of this process, where /proc has it. */
function vmHwm(): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const connectionString = process.argv[2];
  if (!connectionString || !process.send) throw new Error('memory-worker is started by bench/memory.ts');
  const startRssBytes = process.memoryUsage().rss;
  const runtime = createRuntime({
    connectionString,
    logger: quietLogger(),
    tasks: { noop: () => undefined },
  });
  let finished = false;
  // The parent gone (killed or interrupted) means nobody will say stop: end rather than linger.
  process.on('disconnect', () => {
    if (!finished) process.exit(1);
  });
  const stopRequested = new Promise<void>((resolve) => {
    process.on('message', (message) => {
      if (message === 'stop') resolve();
    });
  });
  send({ type: 'starting' });
  await runtime.start();
  await stopRequested;
  await runtime.stop();
  finished = true;
  // resourceUsage().maxRSS is in kibibytes (getrusage's ru_maxrss on Linux).
  send({
    type: 'result',
    startRssBytes,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    vmHwmBytes: vmHwm(),
  });
  process.disconnect();
}

await main();

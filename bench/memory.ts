/**
 * The memory workload's measurement: peak resident memory of a jobchart worker process draining a
 * backlog. The parent enqueues the backlog, forks bench/memory-worker.js, polls the database until
 * every job has succeeded, then tells the worker to stop and reads the peak it reports.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { untilDone } from './database.js';
import type { WorkerMessage } from './memory-worker.js';
import { enqueueNoops, UNFINISHED_SQL } from './systems/jobchart.js';
import { ratePerSecond } from './systems/system.js';

/** MemoryRun is one memory measurement. */
export interface MemoryRun {
  /** peakRssMiB is the worker's peak resident set (getrusage maxRSS). */
  peakRssMiB: number;
  /** startRssMiB is its resident set before the runtime was created (Node itself). */
  startRssMiB: number;
  /** vmHwmMiB is the kernel's VmHWM for the same process, as a cross-check (null off Linux). */
  vmHwmMiB: number | null;
  /** jobsPerSecond is the drain rate, from the runtime's start to the last job done. */
  jobsPerSecond: number;
}

const MiB = 2 ** 20;
const WORKER = fileURLToPath(new URL('./memory-worker.js', import.meta.url));

/** measureWorkerMemory enqueues `jobs` no-op jobs and measures a worker process draining them. */
export async function measureWorkerMemory(url: string, jobs: number): Promise<MemoryRun> {
  await enqueueNoops(url, jobs);
  const child = fork(WORKER, [url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
  // Awaited through `next` below; this keeps a spawn failure after an early throw from going unhandled.
  exited.catch(() => undefined);
  const messages: WorkerMessage[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (message) => {
    messages.push(message as WorkerMessage);
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async <T extends WorkerMessage['type']>(type: T) => {
    for (;;) {
      const found = messages.find((message) => message.type === type);
      if (found) return found as Extract<WorkerMessage, { type: T }>;
      const woken = new Promise<void>((resolve) => waiters.push(resolve));
      const code = await Promise.race([woken.then(() => undefined), exited]);
      if (code !== undefined) throw new Error(`memory worker exited with ${code} before sending ${type}`);
    }
  };
  try {
    await next('starting');
    const startedAt = performance.now();
    await untilDone(url, UNFINISHED_SQL);
    const jobsPerSecond = ratePerSecond(jobs, startedAt);
    child.send('stop');
    const result = await next('result');
    await exited;
    return {
      peakRssMiB: result.maxRssBytes / MiB,
      startRssMiB: result.startRssBytes / MiB,
      vmHwmMiB: result.vmHwmBytes === null ? null : result.vmHwmBytes / MiB,
      jobsPerSecond,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

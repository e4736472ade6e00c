/**
 * CPU time of the PostgreSQL server the benchmark runs on, read from /proc: the drain workload
 * reports how much CPU each system costs the server per job beside what it costs its own process,
 * because on a machine where both share a few cores that split is what decides the drain rate.
 * It works only when the server is a process on this machine (the embedded server, or a local one);
 * elsewhere, or without /proc, the figure is missing rather than wrong.
 */
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** CLOCK_TICK_US is the length of a clock tick, the unit of /proc's cumulative times (USER_HZ = 100). */
const CLOCK_TICK_US = 10_000;

let postmasterPid: number | null = null;

/**
 * locateServer finds the server behind `databaseUrl` among this machine's processes: the parent of
 * the backend serving a fresh connection. Afterwards serverCpuMicros measures that server's
 * processes; if the backend is not a local process, it stays unmeasured.
 */
export async function locateServer(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const backend = processStat(rows[0]?.pid ?? 0);
    // A backend of a server elsewhere may share its pid with an unrelated local process; a local
    // backend is a postgres process whose parent, the postmaster, is one too.
    const parent = backend ? processStat(backend.ppid) : null;
    postmasterPid = backend?.command === 'postgres' && parent?.command === 'postgres' ? backend.ppid : null;
  } finally {
    await client.end();
  }
}

/**
 * serverCpuMicros is the CPU time the located server has used so far, in microseconds: its
 * postmaster, every live child (backends, WAL writer, checkpointer, autovacuum) and the children
 * that have already exited. Null when no local server was located.
 */
export function serverCpuMicros(): number | null {
  if (postmasterPid === null) return null;
  const postmaster = processStat(postmasterPid);
  if (!postmaster) return null;
  let micros = onCpuMicros(postmasterPid) + postmaster.exitedChildrenTicks * CLOCK_TICK_US;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && processStat(pid)?.ppid === postmasterPid) micros += onCpuMicros(pid);
  }
  return micros;
}

interface ProcessStat {
  command: string;
  ppid: number;
  /** exitedChildrenTicks is the CPU of children that exited and were waited for (cutime + cstime). */
  exitedChildrenTicks: number;
}

// processStat reads /proc/<pid>/stat, or null for a process that is gone (or no /proc). The command
// is in parentheses and may hold spaces, so fields are counted from the closing one: state, ppid,
// then cutime and cstime as the 14th and 15th after it.
function processStat(pid: number): ProcessStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return {
      command: stat.slice(stat.indexOf('(') + 1, close),
      ppid: Number(fields[1]),
      exitedChildrenTicks: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return null;
  }
}

// onCpuMicros is a live process's own time on a CPU from /proc/<pid>/schedstat, kept in nanoseconds
// (the tick-counted utime would round each process to 10 ms); 0 for a process that is gone.
function onCpuMicros(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    return 0;
  }
}

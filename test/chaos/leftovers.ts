/**
 * What a harness killed outright (SIGKILL, a lost terminal) leaves behind, and how the next one
 * removes it: its PostgreSQL server, still running on a data directory in the temp directory, and
 * the directory of work logs of the run it was in. Both carry the dead harness's pid in their name,
 * so a live harness's files are never touched. Its worker processes need nothing: they exit by
 * themselves once their parent is gone (see worker.ts).
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** DATA_DIR_PREFIX starts the name of every server data directory, followed by the harness's pid. */
export const DATA_DIR_PREFIX = 'jobchart-chaos-';

/** RUN_DIR_PREFIX starts the name of every run's work-log directory, followed by the harness's pid. */
export const RUN_DIR_PREFIX = 'jobchart-chaos-run-';

/**
 * quitPostmaster sends SIGQUIT (immediate shutdown) to the postmaster whose pid is the first line of
 * the data directory's postmaster.pid, if that process still runs PostgreSQL on that directory. It is
 * synchronous, for exit handlers.
 */
export function quitPostmaster(dataDir: string): void {
  const lockFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(lockFile)) return;
  const pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // A recycled pid belongs to someone else: only a postgres on this very directory is ours.
    if (!cmdline.includes('postgres') || !cmdline.includes(dataDir)) return;
    process.kill(pid, 'SIGQUIT');
  } catch {
    // Gone already, or no /proc: nothing to quit.
  }
}

/**
 * removeLeftovers quits the servers and deletes the data and work-log directories of earlier
 * harnesses whose process no longer exists. Under root the embedded server keeps its data under
 * <tmp>/jobchart-embedded-pg, elsewhere where it was asked (the temp directory).
 */
export function removeLeftovers(): void {
  for (const parent of [resolve(tmpdir(), 'jobchart-embedded-pg'), tmpdir()]) {
    if (!existsSync(parent)) continue;
    for (const entry of readdirSync(parent)) {
      const run = new RegExp(`^${RUN_DIR_PREFIX}(\\d+)-`).exec(entry);
      const data = run ? null : new RegExp(`^${DATA_DIR_PREFIX}(\\d+)-`).exec(entry);
      const owner = Number((run ?? data)?.[1]);
      if (!owner || isAlive(owner)) continue;
      const dir = join(parent, entry);
      if (data) quitPostmaster(dir);
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
      } catch {
        // A server still quitting may hold a file a moment longer; the next harness tries again.
      }
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

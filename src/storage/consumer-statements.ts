import type { JobState } from '../../machines/job.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/** ConsumerRecord identifies a runtime that claims jobs. */
export interface ConsumerRecord {
  id: string;
  name: string;
  host: string;
  pid: number;
}

/** SweepResult lists the consumers a sweep deleted and the jobs it took back, with their new state. */
export interface SweepResult {
  consumers: string[];
  jobs: { id: string; state: JobState }[];
}

/** consumerRegister records a runtime that is about to claim jobs. */
export async function consumerRegister(
  db: Queryable,
  tables: Tables,
  consumer: ConsumerRecord,
  now: Date,
): Promise<void> {
  await db.query(
    `INSERT INTO ${tables.consumers} (id, name, host, pid, started_at, last_heartbeat) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (id) DO UPDATE SET last_heartbeat = EXCLUDED.last_heartbeat`,
    [consumer.id, consumer.name, consumer.host, consumer.pid, now],
  );
}

/** consumerHeartbeat says a consumer is alive; false means its row is gone (it was swept). */
export async function consumerHeartbeat(
  db: Queryable,
  tables: Tables,
  id: string,
  now: Date,
): Promise<boolean> {
  const result = await db.query(`UPDATE ${tables.consumers} SET last_heartbeat = $2 WHERE id = $1`, [
    id,
    now,
  ]);
  return result.rowCount === 1;
}

/** consumerDelete removes a consumer that stopped cleanly. */
export async function consumerDelete(db: Queryable, tables: Tables, id: string): Promise<void> {
  await db.query(`DELETE FROM ${tables.consumers} WHERE id = $1`, [id]);
}

/** OrphanedJob is a running job whose holder has no consumer row, as the sweep found it. */
export interface OrphanedJob {
  id: string;
  lockedBy: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  interruptions: number;
}

/** TakeBackWrite is what the sweep writes for one orphaned job: the machine's decision for it. */
export interface TakeBackWrite {
  state: JobState;
  attempts: number;
  interruptions: number;
  /** finished sets finished_at (the machine's `finished` tag). */
  finished: boolean;
  /** message is the job's last error, and is appended to its errors. */
  message: string;
}

/**
 * consumersSweep deletes consumers silent since before `silentSince` and, in the same statement,
 * finds every job in state `from` whose holder has no consumer row. `takeBack` (the machine) says
 * what each becomes; a second statement writes that, guarded on the job still being held as found,
 * so a concurrent sweep, or a late write of the holder itself, wins over this one and nothing is
 * done twice. The common sweep, finding nothing, is one round trip.
 */
export async function consumersSweep(
  db: Queryable,
  tables: Tables,
  silentSince: Date,
  now: Date,
  from: JobState,
  takeBack: (job: OrphanedJob) => TakeBackWrite,
): Promise<SweepResult> {
  const found = await db.query<{
    kind: 'consumer' | 'job';
    id: string;
    locked_by: string | null;
    attempts: number | null;
    max_attempts: number | null;
    interruptions: number | null;
  }>(
    `WITH dead AS (
         DELETE FROM ${tables.consumers} AS c
          WHERE c.id IN (SELECT id FROM ${tables.consumers} WHERE last_heartbeat < $1 FOR UPDATE SKIP LOCKED)
         RETURNING c.id)
       SELECT 'consumer' AS kind, id, NULL AS locked_by, NULL AS attempts, NULL AS max_attempts,
              NULL AS interruptions
         FROM dead
       UNION ALL
       SELECT 'job', j.id::text, j.locked_by, j.attempts, j.max_attempts, j.interruptions
         FROM ${tables.jobs} AS j
        WHERE j.locked_by IS NOT NULL AND j.state = $2
          AND NOT EXISTS (SELECT 1 FROM ${tables.consumers} AS c
                           WHERE c.id = j.locked_by AND c.id NOT IN (SELECT id FROM dead))`,
    [silentSince, from],
  );
  const swept: SweepResult = { consumers: [], jobs: [] };
  const orphans: { job: OrphanedJob; write: TakeBackWrite }[] = [];
  for (const row of found.rows) {
    if (row.kind === 'consumer') {
      swept.consumers.push(row.id);
      continue;
    }
    const job: OrphanedJob = {
      id: row.id,
      lockedBy: row.locked_by as string,
      state: from,
      attempts: row.attempts as number,
      maxAttempts: row.max_attempts as number,
      interruptions: row.interruptions as number,
    };
    orphans.push({ job, write: takeBack(job) });
  }
  if (orphans.length === 0) return swept;
  const taken = await db.query<{ id: string; state: JobState }>(
    `UPDATE ${tables.jobs} AS j
        SET state = w.state, attempts = w.attempts, interruptions = w.interruptions,
            finished_at = CASE WHEN w.finished THEN $8::timestamptz END,
            last_error = w.message,
            errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempts, 'at', $8::timestamptz,
                       'message', w.message)),
            locked_by = NULL, locked_at = NULL, updated_at = $8
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bool[], $7::text[])
              AS w(id, locked_by, state, attempts, interruptions, finished, message)
      WHERE j.id = w.id AND j.locked_by = w.locked_by AND j.state = $9
      RETURNING j.id::text AS id, j.state`,
    [
      orphans.map((o) => o.job.id),
      orphans.map((o) => o.job.lockedBy),
      orphans.map((o) => o.write.state),
      orphans.map((o) => o.write.attempts),
      orphans.map((o) => o.write.interruptions),
      orphans.map((o) => o.write.finished),
      orphans.map((o) => o.write.message),
      now,
      from,
    ],
  );
  for (const row of taken.rows) swept.jobs.push({ id: row.id, state: row.state });
  return swept;
}

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

/** SweepTransitions are the machine's states for a sweep: held jobs are `from`; INTERRUPT and FAIL targets. */
export interface SweepTransitions {
  from: JobState;
  interrupted: JobState;
  failed: JobState;
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

/**
 * consumersSweep deletes consumers silent since before `silentSince` and, in the same statement,
 * takes back every running job whose holder has no consumer row: the machine's INTERRUPT
 * (claimable again, attempt refunded, one more interruption) while the job has interruptions left
 * under `maxInterruptions` (the machine's hasInterruptionsLeft guard), else FAIL. Rows another
 * sweeper or a live writer has locked are skipped, so concurrent sweeps never do the same work twice.
 */
export async function consumersSweep(
  db: Queryable,
  tables: Tables,
  silentSince: Date,
  now: Date,
  transitions: SweepTransitions,
  maxInterruptions: number,
): Promise<SweepResult> {
  const result = await db.query<{
    kind: 'consumer' | 'job';
    id: string;
    state: JobState | null;
  }>(
    `WITH dead AS (
         DELETE FROM ${tables.consumers} AS c
          WHERE c.id IN (SELECT id FROM ${tables.consumers} WHERE last_heartbeat < $1 FOR UPDATE SKIP LOCKED)
         RETURNING c.id),
       orphaned AS (
         SELECT j.id, j.locked_by, j.interruptions + 1 < $3 AS resumes FROM ${tables.jobs} AS j
          WHERE j.locked_by IS NOT NULL AND j.state = '${transitions.from}'
            AND NOT EXISTS (SELECT 1 FROM ${tables.consumers} AS c
                             WHERE c.id = j.locked_by AND c.id NOT IN (SELECT id FROM dead))
            FOR UPDATE OF j SKIP LOCKED),
       taken AS (
         UPDATE ${tables.jobs} AS j
            SET state = CASE WHEN o.resumes THEN '${transitions.interrupted}' ELSE '${transitions.failed}' END,
                attempts = CASE WHEN o.resumes THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
                interruptions = j.interruptions + 1,
                finished_at = CASE WHEN o.resumes THEN NULL ELSE $2::timestamptz END,
                last_error = 'consumer ' || o.locked_by || ' stopped heartbeating while holding this job (interruption '
                             || j.interruptions + 1 || ' of at most ' || $3 || ')',
                errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempts, 'at', $2::timestamptz,
                           'message', 'consumer ' || o.locked_by || ' stopped heartbeating while holding this job (interruption '
                             || j.interruptions + 1 || ' of at most ' || $3 || ')')),
                locked_by = NULL, locked_at = NULL, updated_at = $2
           FROM orphaned AS o
          WHERE j.id = o.id
         RETURNING j.id, j.state)
       SELECT 'consumer' AS kind, id, NULL AS state FROM dead
       UNION ALL
       SELECT 'job', id::text, state FROM taken`,
    [silentSince, now, maxInterruptions],
  );
  const swept: SweepResult = { consumers: [], jobs: [] };
  for (const row of result.rows) {
    if (row.kind === 'consumer') swept.consumers.push(row.id);
    else swept.jobs.push({ id: row.id, state: row.state as JobState });
  }
  return swept;
}

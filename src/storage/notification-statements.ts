import { NOTIFY_PAYLOAD_MAX } from '../core/schema-name.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/** CANCEL_PREFIX starts a jobs-channel payload that asks the runtime running a job to cancel it. */
export const CANCEL_PREFIX = 'cancel:';

/** jobsNotifyChanged wakes listening workers, as an insert does, after an update made jobs due. */
export async function jobsNotifyChanged(db: Queryable, tables: Tables): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [tables.jobsChannel, '']);
}

/**
 * jobsNotifyFinished announces jobs that reached a finished state outside an outcome batch; a list
 * too long for NOTIFY is sent empty: "some finished, re-read".
 */
export async function jobsNotifyFinished(
  db: Queryable,
  tables: Tables,
  ids: readonly string[],
): Promise<void> {
  const payload = ids.join(',');
  await db.query('SELECT pg_notify($1, $2)', [
    tables.finishedChannel,
    payload.length <= NOTIFY_PAYLOAD_MAX ? payload : '',
  ]);
}

/** jobNotifyCancel asks whichever runtime runs job `id` to cancel it (see the jobs channel's payloads). */
export async function jobNotifyCancel(db: Queryable, tables: Tables, id: string): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [tables.jobsChannel, `${CANCEL_PREFIX}${id}`]);
}

/**
 * jobsNotifyCancel asks whichever runtimes run the jobs `ids` to cancel them: one statement, one
 * `cancel:<id>` notification per job (the payload jobNotifyCancel sends), so runtimes of every
 * version read them.
 */
export async function jobsNotifyCancel(db: Queryable, tables: Tables, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('SELECT pg_notify($1, $2 || id) FROM unnest($3::text[]) AS id', [
    tables.jobsChannel,
    CANCEL_PREFIX,
    ids,
  ]);
}

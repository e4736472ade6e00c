import { type JobState, STORED_STATES } from '../../machines/job.js';
import type { Tables } from './tables.js';
import type { Queryable } from './types.js';

/**
 * jobsCountByState counts the jobs of each stored state, exactly (one GROUP BY over the table); a
 * state no job is in counts 0, so every stored state is present.
 */
export async function jobsCountByState(
  db: Queryable,
  tables: Tables,
): Promise<Partial<Record<JobState, number>>> {
  const result = await db.query<{ state: JobState; n: string }>(
    `SELECT state, count(*) AS n FROM ${tables.jobs} GROUP BY state`,
  );
  const counts: Partial<Record<JobState, number>> = Object.fromEntries(
    STORED_STATES.map((state) => [state, 0]),
  );
  for (const row of result.rows) counts[row.state] = Number(row.n);
  return counts;
}

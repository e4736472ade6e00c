import type pg from 'pg';
import type { JobState } from '../../machines/job.js';
import { DuplicateJobError, ValidationError } from '../core/errors.js';
import { planTransition } from '../core/transitions.js';
import type { Job } from './job-row.js';
import { withClient } from './pool-client.js';
import type { Storage } from './storage.js';
import type { NewJob, Queryable } from './types.js';

/** InsertedJobs are the jobs an enqueue returns, in input order, and which of them were replaced. */
export interface InsertedJobs {
  jobs: Job[];
  /** created holds the jobs that were inserted (not an existing job returned or replaced). */
  created: Set<Job>;
  /** replaced lists the existing jobs that mode 'reschedule' gave a new specification, with their old state. */
  replaced: { job: Job; from: JobState }[];
}

/**
 * KeyedInsertContext is what a keyed insert needs beyond the rows, with the runtime's pool for a
 * transaction of its own: `pool` itself, or `connect`, a function checking a client out of it. Give
 * the pool: a client checked out by `connect` is listened to only once its promise has resolved, and
 * a backend terminated right after its startup crashes the process meanwhile (see withClient).
 */
export type KeyedInsertContext = KeyedInsertBase &
  ({ pool: Pick<pg.Pool, 'connect'>; connect?: never } | { connect(): Promise<pg.PoolClient>; pool?: never });

interface KeyedInsertBase {
  storage: Storage;
  createdBy: string;
  now: Date;
  /** client is the caller's own client: its transaction is used, and no other is opened. */
  client?: Queryable;
}

// RACE_ROUNDS bounds how often an enqueue retries a key whose live job changed under it (finished,
// or moved to another state) between two of its statements.
const RACE_ROUNDS = 10;

/**
 * insertJobs inserts validated jobs. Jobs without a key take the one-statement path. With keys, the
 * whole call is one transaction (the caller's, if it passed a client): mode 'new' inserts and turns a
 * key conflict into a DuplicateJobError, writing nothing; 'ignore_if_exists' returns the live job;
 * 'reschedule' replaces the live job through the machine's REPLACE, so a running one is refused.
 */
export async function insertJobs(
  rows: readonly NewJob[],
  context: KeyedInsertContext,
): Promise<InsertedJobs> {
  const { storage, createdBy, now } = context;
  if (rows.every((row) => row.key === null)) {
    const jobs = await storage.jobsInsert(rows, createdBy, now, context.client);
    return { jobs, created: new Set(jobs), replaced: [] };
  }
  assertKeysDistinct(rows);
  try {
    return await inTransaction(context, (client) => insertKeyed(rows, context, client));
  } catch (error) {
    // Read only once the failed transaction's client is back: a full pool must not wait on itself.
    throw await asDuplicate(error, storage);
  }
}

// inTransaction runs `work` in the caller's transaction if it passed a client, else in one of its own.
async function inTransaction<T>(
  context: KeyedInsertContext,
  work: (client: Queryable) => Promise<T>,
): Promise<T> {
  if (context.client) return work(context.client);
  return withClient(context.pool ?? context.connect, async (client) => {
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

async function insertKeyed(
  rows: readonly NewJob[],
  context: KeyedInsertContext,
  client: Queryable,
): Promise<InsertedJobs> {
  const { storage, createdBy, now } = context;
  const byRow = new Map<NewJob, Job>();
  const created = new Set<Job>();
  const replaced: InsertedJobs['replaced'] = [];
  const strict = rows.filter((row) => row.key === null || row.mode === 'new');
  const jobs = await storage.jobsInsert(strict, createdBy, now, client);
  strict.forEach((row, i) => {
    byRow.set(row, jobs[i] as Job);
    created.add(jobs[i] as Job);
  });
  let pending = rows.filter((row) => row.key !== null && row.mode !== 'new');
  for (let round = 0; pending.length > 0; round++) {
    if (round === RACE_ROUNDS) {
      throw new Error(`keys ${pending.map((row) => row.key).join(', ')}: gave up after ${round} races`);
    }
    const inserted = await storage.jobsInsertUnlessKeyLive(pending, createdBy, now, client);
    const taken = pending.filter((row) => !inserted.has(row.key as string));
    for (const row of pending) {
      const job = inserted.get(row.key as string);
      if (job) {
        byRow.set(row, job);
        created.add(job);
      }
    }
    const live = new Map(
      (
        await storage.jobsLiveByKeys(
          taken.map((row) => row.key as string),
          client,
        )
      ).map((job) => [job.key, job]),
    );
    const retry: NewJob[] = [];
    for (const row of taken) {
      const existing = live.get(row.key);
      if (!existing) {
        retry.push(row); // finished since the insert was skipped: the key is free again
      } else if (row.mode === 'ignore_if_exists') {
        byRow.set(row, existing);
      } else {
        const change = planTransition(existing, { type: 'REPLACE' });
        const written = await storage.jobReplace(existing.id, existing.state, change, row, now, client);
        if (!written) {
          retry.push(row);
          continue;
        }
        byRow.set(row, written);
        replaced.push({ job: written, from: existing.state });
      }
    }
    pending = retry;
  }
  if (replaced.length > 0) await storage.notifyJobsChanged(client);
  return { jobs: rows.map((row) => byRow.get(row) as Job), created, replaced };
}

function assertKeysDistinct(rows: readonly NewJob[]): void {
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    if (row.key === null) return;
    if (seen.has(row.key)) {
      throw new ValidationError(`jobs[${i}].key`, 'keys that differ within one enqueueMany', row.key);
    }
    seen.add(row.key);
  });
}

// asDuplicate turns a unique violation of the live-key index into a DuplicateJobError naming the key
// and the live job that holds it (read outside the failed transaction).
async function asDuplicate(error: unknown, storage: Storage): Promise<unknown> {
  const pgError = error as { code?: string; constraint?: string; detail?: string };
  if (pgError.code !== '23505' || pgError.constraint !== 'jobs_live_key_idx') return error;
  const key = /^Key \(key\)=\((.*)\) already exists\.$/s.exec(pgError.detail ?? '')?.[1];
  if (key === undefined) return error;
  const [holder] = await storage.jobsLiveByKeys([key]).catch(() => []);
  return new DuplicateJobError(key, holder?.id ?? null);
}

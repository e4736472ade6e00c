/**
 * The harness's own database connection: one client, reconnected whenever a fault broke it, so that
 * its backend pid is known (the terminate scenario spares it) and every read can be retried through
 * an outage. It holds every query the harness asks, so that scenarios read as scripts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

/** FINISHED is the set of states a job ends in (the machine's `finished` tag). */
export const FINISHED = ['succeeded', 'failed', 'cancelled', 'expired'] as const;

/** Progress is how far a drain has got. */
export interface Progress {
  total: number;
  finished: number;
  succeeded: number;
}

/** StateGroup is a count of jobs in one state held by one consumer (or none). */
export interface StateGroup {
  state: string;
  lockedBy: string | null;
  /** holderAlive says whether `lockedBy` still has a consumers row (null when nobody holds the jobs). */
  holderAlive: boolean | null;
  jobs: number;
  maxAttempts: number;
}

/** JobFacts are the final facts about a run's jobs that the report needs. */
export interface JobFacts {
  states: Record<string, number>;
  attemptsHistogram: Record<string, number>;
  maxAttempts: number;
  /**
   * interruptionsHistogram counts jobs by their `interruptions` counter: the times a job was taken
   * back from a consumer that stopped heartbeating, each of which refunded the attempt it held.
   */
  interruptionsHistogram: Record<string, number>;
  maxInterruptions: number;
  failedErrors: { lastError: string; jobs: number }[];
  /** attemptsById maps each job to its attempts counter, to compare with the runs the logs show. */
  attemptsById: Map<string, number>;
  /** interruptionsById maps each job to its interruptions counter (the refunded attempts). */
  interruptionsById: Map<string, number>;
  /** stateById maps each job to its state. */
  stateById: Map<string, string>;
}

/** Admin is the harness's connection to the private server. */
export class Admin {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private turns: Promise<unknown> = Promise.resolve();
  /** pid is the backend pid of the current connection (0 while disconnected). */
  pid = 0;

  constructor(private readonly url: string) {}

  /**
   * query runs one statement, connecting first if a fault closed the connection; it does not retry.
   * Statements take turns (the progress poll and a kill's follower ask at once): one client runs
   * one statement at a time, and pg only queues the others with a deprecation warning.
   */
  query<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const turn = this.turns.then(() => this.queryNow<R>(sql, values));
    this.turns = turn.catch(() => undefined);
    return turn;
  }

  private async queryNow<R extends pg.QueryResultRow>(
    sql: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const client = await this.connect();
    try {
      return await client.query<R>(sql, values);
    } catch (error) {
      // Whatever failed, the next query starts on a fresh connection: telling a broken connection
      // from an SQL error is not worth a reconnect's few milliseconds in a harness.
      this.drop(client);
      throw error;
    }
  }

  /**
   * retrying runs `read` until it succeeds: the server may be down, restarting or recovering. The
   * signal ends the wait (a run's deadline).
   */
  async retrying<T>(read: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (;;) {
      signal.throwIfAborted();
      try {
        return await read();
      } catch {
        await delay(100, undefined, { signal });
      }
    }
  }

  /** reachable says whether the server answers right now. */
  async reachable(): Promise<boolean> {
    return this.query('SELECT 1').then(
      () => true,
      () => false,
    );
  }

  /** progress counts a schema's jobs, finished ones and succeeded ones. */
  async progress(schema: string): Promise<Progress> {
    const { rows } = await this.query<{ total: number; finished: number; succeeded: number }>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE state = ANY($1))::int AS finished,
              count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded
         FROM "${schema}".jobs`,
      [FINISHED],
    );
    return rows[0] as Progress;
  }

  /** unfinished groups the jobs that are not finished by state and holder, saying if the holder lives. */
  async unfinished(schema: string): Promise<StateGroup[]> {
    const { rows } = await this.query<StateGroup>(
      `SELECT j.state, j.locked_by AS "lockedBy",
              CASE WHEN j.locked_by IS NULL THEN NULL ELSE bool_or(c.id IS NOT NULL) END AS "holderAlive",
              count(*)::int AS jobs, max(j.attempts)::int AS "maxAttempts"
         FROM "${schema}".jobs AS j LEFT JOIN "${schema}".consumers AS c ON c.id = j.locked_by
        WHERE j.state <> ALL($1)
        GROUP BY j.state, j.locked_by ORDER BY count(*) DESC`,
      [FINISHED],
    );
    return rows;
  }

  /** heldBy counts the jobs running for one consumer. */
  async heldBy(schema: string, consumer: string): Promise<number> {
    const { rows } = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".jobs WHERE state = 'running' AND locked_by = $1`,
      [consumer],
    );
    return rows[0]?.n ?? 0;
  }

  /** facts reads every job's state, attempts and interruptions once a run is over. */
  async facts(schema: string): Promise<JobFacts> {
    const { rows } = await this.query<{ id: string; state: string; attempts: number; interruptions: number }>(
      `SELECT id::text, state, attempts, interruptions FROM "${schema}".jobs`,
    );
    const failed = await this.query<{ lastError: string; jobs: number }>(
      `SELECT coalesce(last_error, '(none)') AS "lastError", count(*)::int AS jobs
         FROM "${schema}".jobs WHERE state = 'failed' GROUP BY 1 ORDER BY 2 DESC LIMIT 5`,
    );
    const facts: JobFacts = {
      states: {},
      attemptsHistogram: {},
      maxAttempts: 0,
      interruptionsHistogram: {},
      maxInterruptions: 0,
      failedErrors: failed.rows,
      attemptsById: new Map(),
      interruptionsById: new Map(),
      stateById: new Map(),
    };
    for (const row of rows) {
      facts.states[row.state] = (facts.states[row.state] ?? 0) + 1;
      facts.attemptsHistogram[row.attempts] = (facts.attemptsHistogram[row.attempts] ?? 0) + 1;
      facts.maxAttempts = Math.max(facts.maxAttempts, row.attempts);
      facts.interruptionsHistogram[row.interruptions] =
        (facts.interruptionsHistogram[row.interruptions] ?? 0) + 1;
      facts.maxInterruptions = Math.max(facts.maxInterruptions, row.interruptions);
      facts.attemptsById.set(row.id, row.attempts);
      facts.interruptionsById.set(row.id, row.interruptions);
      facts.stateById.set(row.id, row.state);
    }
    return facts;
  }

  /**
   * terminateOthers ends every client backend of this database but this connection's own: what a
   * pooler restart or a DBA's cleanup does to the workers. It returns how many it ended.
   */
  async terminateOthers(): Promise<number> {
    const { rows } = await this.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
         FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    );
    return rows[0]?.n ?? 0;
  }

  /** dropSchema removes a finished run's schema, so later runs work on a small database. */
  async dropSchema(schema: string): Promise<void> {
    await this.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }

  /** end closes the connection. */
  async end(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.pid = 0;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.url,
        connectionTimeoutMillis: 5_000,
        // query_timeout bounds a read the server never answers, so a poll cannot hang a run.
        query_timeout: 30_000,
      });
      // A connection a fault breaks emits 'error'; unheard, it would crash the harness.
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      try {
        await client.connect();
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        this.pid = rows[0]?.pid ?? 0;
        this.client = client;
        return client;
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.pid = 0;
    void client.end().catch(() => undefined);
  }
}

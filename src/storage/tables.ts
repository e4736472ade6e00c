import { finishedChannel, notifyChannel, quoteIdent } from '../core/schema-name.js';

/**
 * Tables are the names the statements of one schema address: the quoted schema (for its functions),
 * its tables, and its notification channels.
 */
export interface Tables {
  schema: string;
  jobs: string;
  consumers: string;
  tokenBuckets: string;
  /** queues holds each queue's paused flag (migrations/0012). */
  queues: string;
  /** transitionCounts adds up the transitions of every runtime per minute (migrations/0012). */
  transitionCounts: string;
  /** jobsChannel is where inserts are announced and cancellations asked for (see CANCEL_PREFIX). */
  jobsChannel: string;
  /** finishedChannel is where the ids of jobs that reached a finished state are announced. */
  finishedChannel: string;
}

/** tablesOf names the tables and channels of `schema`, a name validateSchemaName has accepted. */
export function tablesOf(schema: string): Tables {
  const quoted = quoteIdent(schema);
  return {
    schema: quoted,
    jobs: `${quoted}.jobs`,
    consumers: `${quoted}.consumers`,
    tokenBuckets: `${quoted}.token_buckets`,
    queues: `${quoted}.queues`,
    transitionCounts: `${quoted}.transition_counts`,
    jobsChannel: notifyChannel(schema),
    finishedChannel: finishedChannel(schema),
  };
}

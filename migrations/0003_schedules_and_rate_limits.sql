-- 0003: recurring schedules, token buckets for rate limits, and the claim of serial queues.

-- schedules holds named recurring jobs. A worker runtime claims a due schedule row (FOR UPDATE SKIP
-- LOCKED), enqueues the job of its tick and moves next_run_at past it in one transaction, so with
-- any number of runtimes each tick enqueues exactly one job. The job's key records the tick.
CREATE TABLE schedules (
  namespace     text NOT NULL,
  name          text NOT NULL,
  cron          text,
  every_ms      bigint CHECK (every_ms >= 1000),
  timezone      text NOT NULL DEFAULT 'UTC',
  task          text NOT NULL,
  payload       jsonb,
  description   text,
  enabled       boolean NOT NULL DEFAULT true,
  overlap       text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue')),
  catch_up      text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('none', 'latest', 'all')),
  -- next_run_at is the next tick due; NULL for an every_ms schedule whose run has not ended yet.
  next_run_at   timestamptz,
  last_tick_at  timestamptz,
  last_job_id   bigint,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (namespace, name),
  CHECK ((cron IS NULL) <> (every_ms IS NULL))
);

CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;

-- token_buckets holds one bucket per rate-limit key: the tokens it had at refilled_at. Capacity and
-- refill rate live in the runtimes' configuration; a take refills by the time passed, then spends one.
CREATE TABLE token_buckets (
  ident        text PRIMARY KEY,
  tokens       double precision NOT NULL,
  refilled_at  timestamptz NOT NULL
);

-- claim_serial_job takes the next due job of a serial queue, by run_at then id, only if no job of
-- that queue is running anywhere. An advisory lock per queue serializes these claims, and each
-- statement after it sees what the previous claimer committed, so two runtimes can never both find
-- the queue idle.
CREATE FUNCTION claim_serial_job(p_now timestamptz, p_tasks text[], p_consumer text, p_queue text)
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET jit = off
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('jobchart.serial:' || current_schema() || ':' || p_queue, 0));
  RETURN QUERY SELECT * FROM take_jobs(p_now, p_consumer, ARRAY(
    SELECT c.id FROM jobs AS c
     WHERE c.queue = p_queue AND c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
       AND c.run_at <= p_now AND c.task = ANY (p_tasks)
       AND NOT EXISTS (SELECT 1 FROM jobs AS r
                        WHERE r.locked_by IS NOT NULL AND r.queue = p_queue AND r.state = 'running')
     ORDER BY c.run_at, c.id
     LIMIT 1
       FOR UPDATE));
END;
$$;

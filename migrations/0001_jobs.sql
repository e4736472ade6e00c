-- 0001: the jobs table, its claim index, and the insert notification.
-- The migrator runs this with search_path set to the target schema, so names are unqualified.

CREATE TABLE jobs (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task          text NOT NULL,
  queue         text NOT NULL DEFAULT 'default',
  payload       jsonb,
  priority      integer NOT NULL DEFAULT 0,
  state         text NOT NULL DEFAULT 'not_started' CHECK (state IN
                  ('not_started', 'running', 'retry', 'interrupted', 'succeeded', 'failed', 'cancelled', 'expired')),
  -- run_at NULL parks a job: it is never claimed until someone gives it a time.
  run_at        timestamptz,
  attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts  integer NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
  last_error    text,
  -- errors holds one {attempt, at, message} object per failed attempt, oldest first.
  errors        jsonb NOT NULL DEFAULT '[]'::jsonb,
  key           text,
  expires_at    timestamptz,
  progress      jsonb,
  result        jsonb,
  created_at    timestamptz NOT NULL,
  created_by    text,
  locked_by     text,
  locked_at     timestamptz,
  finished_at   timestamptz,
  updated_at    timestamptz NOT NULL
);

-- jobs_claim_idx serves the claim query: only claimable rows, in the order they are taken.
-- The state list must equal the machine's claimable states (checked by the runtime at start).
CREATE INDEX jobs_claim_idx ON jobs (priority DESC, run_at, id)
  WHERE state IN ('not_started', 'retry', 'interrupted') AND run_at IS NOT NULL;

-- jobs_live_key_idx makes a key unique among jobs that are not finished; finished jobs keep theirs.
CREATE UNIQUE INDEX jobs_live_key_idx ON jobs (key)
  WHERE key IS NOT NULL AND state IN ('not_started', 'running', 'retry', 'interrupted');

CREATE INDEX jobs_locked_by_idx ON jobs (locked_by) WHERE locked_by IS NOT NULL;

-- jobs_queue_claim_idx serves claims limited to one named queue (queues with a concurrency limit).
CREATE INDEX jobs_queue_claim_idx ON jobs (queue, priority DESC, run_at, id)
  WHERE state IN ('not_started', 'retry', 'interrupted') AND run_at IS NOT NULL;

-- The claim functions are PL/pgSQL rather than SQL so that each session plans them once: a SQL
-- function is planned on every call, which cost about 0.3 ms per claim.
--
-- take_jobs is the second half of a claim: the jobs in p_ids, already locked by the caller, go
-- running for p_consumer with an attempt spent, or, if their expires_at has passed, expired with no
-- attempt spent. Rows come back in p_ids order with the state each was taken from. The state
-- literals are the machine's CLAIM and EXPIRE transitions (checked by the test suite).
-- claimed_job is a claimed row as the runtime reads it; times travel as epoch milliseconds, which
-- the driver parses as plain numbers (its timestamp parser was a measurable share of each claim).
CREATE TYPE claimed_job AS (id bigint, task text, queue text, payload jsonb, priority integer,
  run_at_ms float8, attempts integer, max_attempts integer, last_error text, errors jsonb, key text,
  expires_at_ms float8, created_at_ms float8, created_by text, claimed_from text, claimed_to text);

CREATE FUNCTION take_jobs(p_now timestamptz, p_consumer text, p_ids bigint[])
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
AS $$
BEGIN
  RETURN QUERY
    WITH taken AS (
      UPDATE jobs AS j
         SET state = CASE WHEN prev.expired THEN 'expired' ELSE 'running' END,
             attempts = CASE WHEN prev.expired THEN j.attempts ELSE j.attempts + 1 END,
             locked_by = CASE WHEN prev.expired THEN NULL ELSE p_consumer END,
             locked_at = CASE WHEN prev.expired THEN NULL ELSE p_now END,
             finished_at = CASE WHEN prev.expired THEN p_now END,
             updated_at = p_now
        FROM (SELECT c.id, c.state, c.expires_at IS NOT NULL AND c.expires_at <= p_now AS expired, n.ord
                FROM jobs AS c JOIN unnest(p_ids) WITH ORDINALITY AS n(id, ord) ON c.id = n.id) AS prev
       WHERE j.id = prev.id
      RETURNING j.id, j.task, j.queue, j.payload, j.priority, j.run_at, j.attempts, j.max_attempts, j.last_error,
                j.errors, j.key, j.expires_at, j.created_at, j.created_by, prev.state AS claimed_from,
                j.state AS claimed_to, prev.ord)
    SELECT id, task, queue, payload, priority, (extract(epoch FROM run_at) * 1000)::float8, attempts,
           max_attempts, last_error, errors, key, (extract(epoch FROM expires_at) * 1000)::float8,
           (extract(epoch FROM created_at) * 1000)::float8, created_by, claimed_from, claimed_to
      FROM taken
     ORDER BY ord;
END;
$$;

-- claim_jobs takes up to p_limit due jobs of the given tasks outside the queues in p_skip_queues
-- (highest priority first, then earliest run_at), skipping rows other consumers hold. It walks
-- jobs_claim_idx in order and stops at the limit: sorting is switched off because with missing or
-- stale statistics (a fresh table, a burst after a quiet spell) the planner would otherwise sort the
-- whole backlog on every claim. JIT is off too: the penalty that switches sorting off inflates plan
-- costs past jit_above_cost, and compiling each claim would cost far more than running it.
CREATE FUNCTION claim_jobs(p_now timestamptz, p_tasks text[], p_limit integer, p_consumer text,
                           p_skip_queues text[])
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET enable_sort = off
  SET jit = off
AS $$
BEGIN
  RETURN QUERY
    SELECT * FROM take_jobs(p_now, p_consumer, ARRAY(
      SELECT c.id FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.run_at <= p_now AND c.task = ANY (p_tasks) AND c.queue <> ALL (p_skip_queues)
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT p_limit
         FOR UPDATE SKIP LOCKED));
END;
$$;

-- claim_queue_jobs is claim_jobs for one named queue, through jobs_queue_claim_idx.
CREATE FUNCTION claim_queue_jobs(p_now timestamptz, p_tasks text[], p_limit integer, p_consumer text,
                                 p_queue text)
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET enable_sort = off
  SET jit = off
AS $$
BEGIN
  RETURN QUERY
    SELECT * FROM take_jobs(p_now, p_consumer, ARRAY(
      SELECT c.id FROM jobs AS c
       WHERE c.queue = p_queue AND c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.run_at <= p_now AND c.task = ANY (p_tasks)
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT p_limit
         FOR UPDATE SKIP LOCKED));
END;
$$;

-- notify_jobs_inserted wakes listening runtimes once per INSERT statement, not once per row, and
-- sends no data: the notification is a hint, the runtime reads the rows itself.
CREATE FUNCTION notify_jobs_inserted() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
AS $$
BEGIN
  PERFORM pg_notify(current_schema() || ':jobs', '');
  RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_inserted AFTER INSERT ON jobs
  FOR EACH STATEMENT EXECUTE FUNCTION notify_jobs_inserted();

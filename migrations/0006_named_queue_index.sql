-- 0006: jobs of the default queue no longer enter a second claim index.
--
-- jobs_queue_claim_idx served claims limited to one queue (queues with a concurrency limit, serial
-- queues), and every claimable job entered it, though most jobs are in the default queue and most
-- claims are not limited to one. An index entry is a large share of an insert: a bulk insert of
-- 1,000 jobs took 10.3 ms of server time with it and 6.3 ms without. The index now holds only jobs
-- outside the default queue. A claim limited to the default queue walks jobs_claim_idx instead and
-- keeps that queue's rows, which are most of what it holds.
DROP INDEX jobs_queue_claim_idx;

CREATE INDEX jobs_named_queue_claim_idx ON jobs (queue, priority DESC, run_at, id)
  WHERE state IN ('not_started', 'retry', 'interrupted') AND run_at IS NOT NULL AND queue <> 'default';

-- claim_queue_jobs: as in 0004. For a named queue the query repeats the index's `queue <> 'default'`,
-- so that the plan the function keeps for every queue name can use jobs_named_queue_claim_idx.
CREATE OR REPLACE FUNCTION claim_queue_jobs(p_now timestamptz, p_tasks text[], p_limit integer, p_consumer text,
                                            p_queue text)
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET enable_sort = off
  SET jit = off
AS $$
DECLARE
  v_ids bigint[];
  v_from text[];
BEGIN
  IF p_queue = 'default' THEN
    SELECT array_agg(c.id), array_agg(c.state) INTO v_ids, v_from FROM (
      SELECT c.id, c.state FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.run_at <= p_now AND c.task = ANY (p_tasks) AND c.queue = 'default'
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT p_limit
         FOR UPDATE SKIP LOCKED) AS c;
  ELSE
    SELECT array_agg(c.id), array_agg(c.state) INTO v_ids, v_from FROM (
      SELECT c.id, c.state FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.queue <> 'default' AND c.queue = p_queue AND c.run_at <= p_now AND c.task = ANY (p_tasks)
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT p_limit
         FOR UPDATE SKIP LOCKED) AS c;
  END IF;
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM take_jobs(p_now, p_consumer, v_ids, v_from);
  END IF;
END;
$$;

-- claim_serial_job: as in 0004, split the same way between the default queue and named ones.
CREATE OR REPLACE FUNCTION claim_serial_job(p_now timestamptz, p_tasks text[], p_consumer text, p_queue text)
  RETURNS SETOF claimed_job
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET jit = off
AS $$
DECLARE
  v_ids bigint[];
  v_from text[];
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('jobchart.serial:' || current_schema() || ':' || p_queue, 0));
  IF EXISTS (SELECT 1 FROM jobs AS r WHERE r.locked_by IS NOT NULL AND r.queue = p_queue AND r.state = 'running') THEN
    RETURN;
  END IF;
  IF p_queue = 'default' THEN
    SELECT array_agg(c.id), array_agg(c.state) INTO v_ids, v_from FROM (
      SELECT c.id, c.state FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.run_at <= p_now AND c.task = ANY (p_tasks) AND c.queue = 'default'
       ORDER BY c.run_at, c.id
       LIMIT 1
         FOR UPDATE) AS c;
  ELSE
    SELECT array_agg(c.id), array_agg(c.state) INTO v_ids, v_from FROM (
      SELECT c.id, c.state FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.queue <> 'default' AND c.queue = p_queue AND c.run_at <= p_now AND c.task = ANY (p_tasks)
       ORDER BY c.run_at, c.id
       LIMIT 1
         FOR UPDATE) AS c;
  END IF;
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM take_jobs(p_now, p_consumer, v_ids, v_from);
  END IF;
END;
$$;

-- 0008: a serial queue's claim takes its next job in the order of the claim indexes.
--
-- claim_serial_job_json (0007) took the next job by run_at, then id. Both claim indexes order their
-- rows by priority first, so no index gave that order: each claim read every claimable job of the
-- queue and sorted them to keep one, and draining a backlog of n jobs read about n²/2 rows. It also
-- ignored priority, which orders due jobs everywhere else. The claim now takes the highest priority,
-- then the earliest run_at, then the lowest id, and reads the index from its start: usually one row.
-- Sequential scans are off in it, as in take_jobs (0005), so that a table without statistics does
-- not get a plan that reads the whole table on every claim.
-- The signature is unchanged, so runtimes of the previous version still running call this one too.
CREATE OR REPLACE FUNCTION claim_serial_job_json(p_now timestamptz, p_tasks text[], p_consumer text, p_queue text)
  RETURNS SETOF json
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET jit = off
  SET enable_seqscan = off
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
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT 1
         FOR UPDATE) AS c;
  ELSE
    SELECT array_agg(c.id), array_agg(c.state) INTO v_ids, v_from FROM (
      SELECT c.id, c.state FROM jobs AS c
       WHERE c.state IN ('not_started', 'retry', 'interrupted') AND c.run_at IS NOT NULL
         AND c.queue <> 'default' AND c.queue = p_queue AND c.run_at <= p_now AND c.task = ANY (p_tasks)
       ORDER BY c.priority DESC, c.run_at, c.id
       LIMIT 1
         FOR UPDATE) AS c;
  END IF;
  IF v_ids IS NOT NULL THEN
    RETURN QUERY SELECT * FROM take_jobs_json(p_now, p_consumer, v_ids, v_from);
  END IF;
END;
$$;

-- 0009: interruptions are counted apart from attempts.
--
-- A job taken back from a consumer that stopped heartbeating used to keep the attempt its claim had
-- spent, although its handler may never have started (it may have waited in the dead consumer's
-- local queue): with maxAttempts 1, jobs that never ran ended failed. Now the sweep refunds that
-- attempt (the machine's INTERRUPT) and counts an interruption instead; at the runtime's
-- maxInterruptions the sweep fails the job (the machine's FAIL), so a job that kills its worker
-- every time still stops. ADD COLUMN with a constant default rewrites no row.
ALTER TABLE jobs ADD COLUMN interruptions integer NOT NULL DEFAULT 0;

-- take_jobs_json (0007) returns the interruption counts as a seventeenth column, so that a handler
-- sees them on ctx.job. The column is appended: runtimes of the previous version, which read the
-- first sixteen by position, still work during a rolling upgrade. Every claim function calls this
-- one, so none of them changes.
CREATE OR REPLACE FUNCTION take_jobs_json(p_now timestamptz, p_consumer text, p_ids bigint[], p_from text[])
  RETURNS SETOF json
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET enable_seqscan = off
AS $$
DECLARE
  v_from text;
  v_columns json;
  v_one_source boolean := p_from[1] = ALL (p_from);
BEGIN
  FOREACH v_from IN ARRAY ARRAY(SELECT DISTINCT f FROM unnest(p_from) AS f) LOOP
    WITH taken AS (
      UPDATE jobs AS j
         SET state = CASE WHEN j.expires_at <= p_now THEN 'expired' ELSE 'running' END,
             attempts = CASE WHEN j.expires_at <= p_now THEN j.attempts ELSE j.attempts + 1 END,
             locked_by = CASE WHEN j.expires_at <= p_now THEN NULL ELSE p_consumer END,
             locked_at = CASE WHEN j.expires_at <= p_now THEN NULL ELSE p_now END,
             finished_at = CASE WHEN j.expires_at <= p_now THEN p_now END,
             updated_at = p_now
       WHERE j.id = ANY (CASE WHEN v_one_source THEN p_ids
                              ELSE ARRAY(SELECT u.id FROM unnest(p_ids, p_from) AS u(id, f) WHERE u.f = v_from) END)
      RETURNING j.*)
    SELECT json_build_array(json_agg(t.id::text), json_agg(t.task), json_agg(t.queue), json_agg(t.payload),
             json_agg(t.priority), json_agg((extract(epoch FROM t.run_at) * 1000)::float8), json_agg(t.attempts),
             json_agg(t.max_attempts), json_agg(t.last_error), json_agg(t.errors), json_agg(t.key),
             json_agg((extract(epoch FROM t.expires_at) * 1000)::float8),
             json_agg((extract(epoch FROM t.created_at) * 1000)::float8), json_agg(t.created_by), v_from,
             json_agg(t.state), json_agg(t.interruptions))
      INTO v_columns
      FROM (SELECT * FROM taken ORDER BY priority DESC, run_at, id) AS t;
    RETURN NEXT v_columns;
  END LOOP;
END;
$$;

-- 0010: tags, and the trace context a job carries from where it was enqueued.
--
-- tags label a job for filtering (listJobs, bulk actions, counts). Most jobs have none, so the GIN
-- index that finds them holds only the jobs that have some: every state change rewrites a job's
-- index entries (state is in the claim indexes' predicates, so no update is HOT), and a GIN entry
-- for every untagged row would be paid on each of them.
--
-- trace_context holds the W3C trace context (traceparent, tracestate) that was active when the job
-- was enqueued, so that the span of each attempt, in whichever process, has the enqueuer's span as
-- its parent. NULL when nothing was traced. ADD COLUMN with a constant default rewrites no row.
ALTER TABLE jobs ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN trace_context jsonb;

CREATE INDEX jobs_tags_idx ON jobs USING gin (tags) WHERE tags <> '{}';

-- take_jobs_json (0009) returns the tags and the trace context as an eighteenth and nineteenth
-- column, appended for the reason 0009 gives: runtimes of the previous version read the first
-- seventeen by position.
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
             json_agg(t.state), json_agg(t.interruptions), json_agg(t.tags), json_agg(t.trace_context))
      INTO v_columns
      FROM (SELECT * FROM taken ORDER BY priority DESC, run_at, id) AS t;
    RETURN NEXT v_columns;
  END LOOP;
END;
$$;

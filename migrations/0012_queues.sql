-- 0012: queues an operator can pause, and cheap counts of jobs and of transitions.
--
-- queues holds what jobchart knows of a queue beyond its jobs: whether it is paused. A row exists
-- once a queue was paused or resumed, and a queue may be paused before its first job arrives. Every
-- runtime reads the paused names at start, on every poll and after a notification on the jobs
-- channel (`pause:<name>`, `resume:<name>`), and leaves them out of its claims.
CREATE TABLE queues (
  name text PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  paused_at timestamptz,
  updated_at timestamptz NOT NULL
);

-- job_counts is a snapshot of how many jobs there are per queue, task and state, and
-- job_counts_taken (one row) says when it was taken. An exact GROUP BY over the jobs table costs
-- about 200 ms on a million rows: runtime.stats() recounts only when the snapshot is older than its
-- max age, one process at a time, and everyone else reads the snapshot.
CREATE TABLE job_counts (
  queue text NOT NULL,
  task text NOT NULL,
  state text NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (queue, task, state)
);

CREATE TABLE job_counts_taken (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  counted_at timestamptz NOT NULL
);

-- transition_counts adds up the transitions every runtime made, per minute (the minute they were
-- made in, on the runtime's clock), from and to which state, per queue and task. from_state is ''
-- for an enqueue (a job that had no state). Runtimes add their counts every few seconds, and delete
-- the minutes older than two hours as they do.
CREATE TABLE transition_counts (
  minute timestamptz NOT NULL,
  from_state text NOT NULL,
  to_state text NOT NULL,
  queue text NOT NULL,
  task text NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY (minute, from_state, to_state, queue, task)
);

-- job_counts_json returns the job counts snapshot as
-- {"countedAt": epoch ms, "refreshed": bool, "rows": [[queue, task, state, n], ...]}, first
-- recounting it if it was taken before p_stale_before (or never). Only one process recounts at a
-- time: the others, failing to take the schema's advisory lock, return the snapshot there is (the
-- recount is invisible to them until it commits). The time taken is re-read under the lock, since
-- another process may have recounted just before.
--
-- The recount runs without parallel workers: with them it takes every core of a small server for
-- its duration (three processes on two cores here) and stalls the claims and writes of the workers;
-- alone it takes one backend a little longer.
CREATE FUNCTION job_counts_json(p_now timestamptz, p_stale_before timestamptz)
  RETURNS json
  LANGUAGE plpgsql
  SET search_path FROM CURRENT
  SET max_parallel_workers_per_gather = 0
  SET jit = off
AS $$
DECLARE
  v_at timestamptz;
  v_refreshed boolean := false;
BEGIN
  SELECT counted_at INTO v_at FROM job_counts_taken;
  IF (v_at IS NULL OR v_at < p_stale_before)
     AND pg_try_advisory_xact_lock(hashtextextended('jobchart.job_counts:' || current_schema(), 0)) THEN
    SELECT counted_at INTO v_at FROM job_counts_taken;
    IF v_at IS NULL OR v_at < p_stale_before THEN
      DELETE FROM job_counts;
      INSERT INTO job_counts (queue, task, state, n)
        SELECT j.queue, j.task, j.state, count(*) FROM jobs AS j GROUP BY j.queue, j.task, j.state;
      INSERT INTO job_counts_taken (singleton, counted_at) VALUES (true, p_now)
        ON CONFLICT (singleton) DO UPDATE SET counted_at = excluded.counted_at;
      v_at := p_now;
      v_refreshed := true;
    END IF;
  END IF;
  RETURN json_build_object(
    'countedAt', (extract(epoch FROM v_at) * 1000)::float8,
    'refreshed', v_refreshed,
    'rows', (SELECT coalesce(json_agg(json_build_array(c.queue, c.task, c.state, c.n)), '[]'::json)
               FROM job_counts AS c));
END;
$$;

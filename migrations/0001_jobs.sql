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
CREATE INDEX jobs_task_state_idx ON jobs (task, state);

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

-- 0002: consumers, the runtimes that claim jobs, so that a silent one's jobs can be taken back.
-- A runtime registers before it claims and heartbeats while it lives; jobs it holds carry its id in
-- jobs.locked_by. A consumer silent for too long is deleted by a sweep, and every running job whose
-- holder has no row here is interrupted (or failed, when it has no attempt left).

CREATE TABLE consumers (
  id              text PRIMARY KEY,
  name            text NOT NULL,
  host            text NOT NULL,
  pid             integer NOT NULL,
  started_at      timestamptz NOT NULL,
  last_heartbeat  timestamptz NOT NULL
);

CREATE INDEX consumers_last_heartbeat_idx ON consumers (last_heartbeat);

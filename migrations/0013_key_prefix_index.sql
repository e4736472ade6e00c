-- 0013: an index for filtering jobs by key prefix (listJobs and the bulk actions' `keyPrefix`).
--
-- The filter is `key ^@ $1` (starts_with: no wildcards to escape). PostgreSQL turns it into a range
-- scan only on an index whose order is byte order: text_pattern_ops, whatever the database's
-- collation (jobs_live_key_idx uses the default collation, and holds live jobs only, while bulk
-- actions mostly select finished ones). The same index serves `key = $1` on finished jobs.
-- Only keyed jobs are in it, so unkeyed jobs pay nothing on insert or update.
CREATE INDEX jobs_key_prefix_idx ON jobs (key text_pattern_ops) WHERE key IS NOT NULL;

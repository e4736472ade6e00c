-- 0011: the index the retention cleaner finds old finished jobs by.
-- jobs_finished_idx holds only finished rows (finished_at is set exactly when the machine tags a
-- job finished, and cleared when it is restarted), ordered by state then finished_at: each batch of
-- the cleaner (state = $2 AND finished_at < $3 ORDER BY finished_at LIMIT n) is one range scan of
-- it, oldest first, however many live or younger rows the table holds. Live rows never enter it, so claims do not maintain it; a finish
-- adds one entry.
CREATE INDEX jobs_finished_idx ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;

-- 0005: the claim's update always reaches its rows through the primary key.
--
-- take_jobs updates the few hundred rows the claim has just locked, by id. On a table without
-- statistics (a fresh table, or a burst enqueued since the last ANALYZE) the planner costed a
-- sequential scan of the whole table below that many index probes, so every claim read every row:
-- a claim of 500 from a 20,000-job backlog spent about a third of its server time in that scan, and
-- the cost grew with the backlog and the history. Switching sequential scans off for this function
-- leaves the planner the primary key alone, whatever the statistics say.
ALTER FUNCTION take_jobs(timestamptz, text, bigint[], text[]) SET enable_seqscan = off;

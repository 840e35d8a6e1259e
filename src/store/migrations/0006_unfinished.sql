-- scenarist store, schema 6: what the workers look up every second reads
-- only unfinished executions, so months of finished history never slow
-- them down (the PostgreSQL store has had such partial indexes from its
-- first schema).
--
-- The running executions of each scenario and concurrency key (claims
-- under limits), and those due to be resumed.
CREATE INDEX executions_running ON executions (scenario, concurrency_key) WHERE status = 'running';
CREATE INDEX executions_due ON executions (next_retry_at) WHERE status IN ('incomplete', 'waiting', 'queued');
-- (status, next_retry_at) over every execution: replaced by the two above
-- (counts by status read `executions_queue (status, id)`), one index less
-- to update at each change of status.
DROP INDEX executions_by_status;

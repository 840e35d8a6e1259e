-- scenarist store, schema 2: what the daemon needs.

-- One row per schedule tick: a tick never fires twice, also across restarts
-- and when several processes share a store.
CREATE TABLE schedule_ticks (
    scenario     TEXT   NOT NULL,
    scheduled_at BIGINT NOT NULL,
    execution_id TEXT   NOT NULL,
    PRIMARY KEY (scenario, scheduled_at)
);

-- The concurrency key of a queued execution (`settings.concurrency.key`).
ALTER TABLE executions ADD COLUMN concurrency_key TEXT;
CREATE INDEX executions_queue ON executions (status, id);

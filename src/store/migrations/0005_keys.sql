-- scenarist store, schema 5: business keys (`settings.keys`) and the indexes
-- the dashboard's pages read in order.

-- One row per key of an execution, written with the execution. `started_at`
-- is the execution's, copied so that a key's executions are read newest
-- first straight from the index.
CREATE TABLE execution_keys (
    execution_id TEXT   NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    value        TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    PRIMARY KEY (execution_id, name)
);
CREATE INDEX execution_keys_by_value ON execution_keys (value, started_at, execution_id);

CREATE INDEX executions_by_start ON executions (started_at, id);
CREATE INDEX executions_by_status_start ON executions (status, started_at, id);

-- scenarist store, schema 5: business keys (`settings.keys`) and the index
-- the dashboard's scenario filter reads in order.

-- One row per key of an execution, written with the execution. Lists are
-- newest first by execution id (a UUIDv7: the order events were accepted
-- in, which never changes), so a key's executions are read straight from
-- its index.
CREATE TABLE execution_keys (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (execution_id, name)
);
CREATE INDEX execution_keys_by_value ON execution_keys (value, execution_id);

CREATE INDEX executions_by_scenario_id ON executions (scenario, id);
-- The scenarios page counts a week of each scenario's executions by status
-- from this index alone.
DROP INDEX executions_by_scenario;
CREATE INDEX executions_by_scenario ON executions (scenario, started_at, status);

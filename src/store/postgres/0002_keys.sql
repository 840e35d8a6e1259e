-- scenarist store on PostgreSQL, schema 2: business keys (`settings.keys`),
-- as in the SQLite store's migration 5, and the indexes lists read in order
-- (newest first by id).

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
CREATE INDEX executions_by_status_id ON executions (status, id);

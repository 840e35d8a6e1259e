-- scenarist store on PostgreSQL, schema 2: business keys (`settings.keys`),
-- as in the SQLite store's migration 5.

CREATE TABLE execution_keys (
    execution_id TEXT   NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    value        TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    PRIMARY KEY (execution_id, name)
);
CREATE INDEX execution_keys_by_value ON execution_keys (value, started_at, execution_id);

CREATE INDEX executions_by_status_start ON executions (status, started_at, id);

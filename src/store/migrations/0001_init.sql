-- scenarist store, schema 1. Portable SQL: the PostgreSQL store will run the
-- same statements. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE scenario_versions (
    scenario    TEXT    NOT NULL,
    version     TEXT    NOT NULL, -- sha256 of the YAML text
    source      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (scenario, version)
);

CREATE TABLE executions (
    id            TEXT    NOT NULL PRIMARY KEY, -- UUIDv7: sorts by start time
    scenario      TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    trigger_doc   TEXT    NOT NULL, -- JSON, secrets masked
    vars          TEXT    NOT NULL, -- JSON: the --var overrides
    attempt       INTEGER NOT NULL, -- 1, then +1 for each resume
    started_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    finished_at   BIGINT,
    next_retry_at BIGINT,           -- incomplete executions only
    error_step    TEXT,
    error         TEXT,
    owner         TEXT,             -- the process running it: host/pid/start
    replay_of     TEXT
);
CREATE INDEX executions_by_scenario ON executions (scenario, started_at);
CREATE INDEX executions_by_status ON executions (status, next_retry_at);

CREATE TABLE steps (
    seq          INTEGER NOT NULL PRIMARY KEY, -- insertion order (BIGSERIAL in PostgreSQL)
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path         TEXT    NOT NULL, -- route/enterprise/notify#3
    step_key     TEXT    NOT NULL, -- notify#3
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    input        TEXT,             -- JSON, secrets masked
    output       TEXT    NOT NULL, -- JSON, secrets masked
    error        TEXT,
    detail       TEXT,
    started_at   BIGINT  NOT NULL,
    duration_ms  BIGINT  NOT NULL,
    UNIQUE (execution_id, path)
);

CREATE TABLE data_entries (
    store      TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL, -- JSON
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (store, key)
);

CREATE TABLE dedupe_keys (
    scenario     TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    execution_id TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (scenario, key)
);

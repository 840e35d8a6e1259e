-- scenarist store on PostgreSQL, schema 1: the same tables as the SQLite
-- store's migrations 1 to 4, plus what several daemons need. Times are
-- microseconds since the Unix epoch (UTC); JSON is kept as text, as in SQLite.

CREATE TABLE scenario_versions (
    scenario    TEXT   NOT NULL,
    version     TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (scenario, version)
);

CREATE TABLE executions (
    id              TEXT    NOT NULL PRIMARY KEY, -- UUIDv7: sorts by start time
    scenario        TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    trigger_doc     TEXT    NOT NULL,
    vars            TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    finished_at     BIGINT,
    next_retry_at   BIGINT,
    error_step      TEXT,
    error           TEXT,
    owner           TEXT,
    replay_of       TEXT,
    concurrency_key TEXT
);
CREATE INDEX executions_by_scenario ON executions (scenario, started_at);
CREATE INDEX executions_by_start ON executions (started_at, id);
-- Claims and wake-ups look only at unfinished executions: finished history
-- never slows them down.
CREATE INDEX executions_queued ON executions (id) WHERE status = 'queued';
CREATE INDEX executions_unfinished ON executions (status, next_retry_at)
    WHERE status IN ('queued', 'running', 'incomplete', 'waiting');

CREATE TABLE steps (
    seq          BIGSERIAL PRIMARY KEY,
    execution_id TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path         TEXT    NOT NULL,
    step_key     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    input        TEXT,
    output       TEXT    NOT NULL,
    error        TEXT,
    detail       TEXT,
    started_at   BIGINT  NOT NULL,
    duration_ms  BIGINT  NOT NULL,
    UNIQUE (execution_id, path)
);

CREATE TABLE data_entries (
    store      TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL,
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

CREATE TABLE schedule_ticks (
    scenario     TEXT   NOT NULL,
    scheduled_at BIGINT NOT NULL,
    execution_id TEXT   NOT NULL,
    PRIMARY KEY (scenario, scheduled_at)
);

CREATE TABLE business_events (
    event        TEXT             NOT NULL,
    key          TEXT             NOT NULL,
    value        DOUBLE PRECISION,
    data         TEXT,
    scenario     TEXT             NOT NULL,
    execution_id TEXT             NOT NULL,
    recorded_at  BIGINT           NOT NULL,
    PRIMARY KEY (event, key)
);
CREATE INDEX business_events_by_time ON business_events (recorded_at);

CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT   NOT NULL UNIQUE,
    event       TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    data        TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    source      TEXT
);
CREATE INDEX events_by_key ON events (event, key, seq);
CREATE INDEX events_by_time ON events (received_at);

CREATE TABLE event_waits (
    execution_id  TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path          TEXT    NOT NULL,
    event         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    since         BIGINT  NOT NULL,
    after_seq     BIGINT  NOT NULL,
    waiting_since BIGINT  NOT NULL,
    deadline      BIGINT  NOT NULL,
    woken         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, path)
);
CREATE INDEX event_waits_by_key ON event_waits (event, key);

CREATE TABLE event_deliveries (
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    PRIMARY KEY (event_id, execution_id)
);

-- One row per process that runs executions: its last sign of life. An
-- execution whose owner has been silent longer than the lease is taken over.
CREATE TABLE daemons (
    owner        TEXT   NOT NULL PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);

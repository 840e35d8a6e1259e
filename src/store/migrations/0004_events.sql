-- scenarist store, schema 4: correlated events and the executions waiting
-- for them (`wait_for`, `emit`).

-- Every event committed by `emit`, `scenarist emit` or `POST /api/events`,
-- kept for the event retention (30 days by default) so that a wait that starts
-- later still finds it.
CREATE TABLE events (
    seq         INTEGER NOT NULL PRIMARY KEY, -- commit order (BIGSERIAL in PostgreSQL)
    id          TEXT    NOT NULL UNIQUE,      -- UUID; stable for an emit step
    event       TEXT    NOT NULL,             -- deal.closed_won
    key         TEXT    NOT NULL,             -- lee@bigco.example
    data        TEXT    NOT NULL,             -- JSON, secrets masked
    received_at BIGINT  NOT NULL,
    source      TEXT                          -- the emitting execution, if any
);
CREATE INDEX events_by_key ON events (event, key, seq);
CREATE INDEX events_by_time ON events (received_at);

-- One row per wait_for step waiting now. A new event wakes the executions of
-- its (event, key) in the event's own transaction.
CREATE TABLE event_waits (
    execution_id  TEXT    NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path          TEXT    NOT NULL,
    event         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    since         BIGINT  NOT NULL, -- events received before are not taken
    after_seq     BIGINT  NOT NULL, -- events up to here were looked at
    waiting_since BIGINT  NOT NULL,
    deadline      BIGINT  NOT NULL,
    woken         INTEGER NOT NULL DEFAULT 0, -- an event came while the execution was still running
    PRIMARY KEY (execution_id, path)
);
CREATE INDEX event_waits_by_key ON event_waits (event, key);

-- Which executions each event woke, for `scenarist events`.
CREATE TABLE event_deliveries (
    event_id     TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    PRIMARY KEY (event_id, execution_id)
);

-- scenarist store, schema 7: poll triggers' cursors. One row per scenario
-- with a `poll` trigger: where it stands (`cursor`, and `seen`, the window of
-- ids already run), committed in the transaction that queues the executions
-- a poll produced, under `generation` (a compare-and-set: a poll whose watch
-- moved meanwhile commits nothing).
CREATE TABLE watches (
    scenario     TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    generation   INTEGER NOT NULL,
    cursor_doc   TEXT    NOT NULL,
    seen         TEXT    NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    polls        INTEGER NOT NULL DEFAULT 0,
    items        INTEGER NOT NULL DEFAULT 0,
    last_items   INTEGER NOT NULL DEFAULT 0,
    last_poll_at INTEGER,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    retry_at     INTEGER,
    restart      TEXT
);

-- scenarist store, schema 4: poll triggers' cursors. One row per scenario
-- with a `poll` trigger: where it stands (`cursor`, and `seen`, the window of
-- ids already run), committed in the transaction that queues the executions
-- a poll produced, under `generation` (a compare-and-set: a poll whose watch
-- moved meanwhile commits nothing).
CREATE TABLE watches (
    scenario     TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    generation   BIGINT  NOT NULL,
    cursor_doc   TEXT    NOT NULL,
    seen         TEXT    NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT ,
    polls        BIGINT  NOT NULL DEFAULT 0,
    items        BIGINT  NOT NULL DEFAULT 0,
    last_items   BIGINT  NOT NULL DEFAULT 0,
    last_poll_at BIGINT ,
    failures     BIGINT  NOT NULL DEFAULT 0,
    last_error   TEXT,
    retry_at     BIGINT ,
    restart      TEXT
);

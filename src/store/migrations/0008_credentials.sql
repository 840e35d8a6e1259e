-- scenarist store, schema 8: connections that keep tokens. One row per
-- connection: its tokens sealed (AEAD, under the key `key_id` names; the store
-- never holds a token in clear), what can be shown without them, and the
-- refresh lease (one process refreshes, the others wait). Every write is a
-- compare-and-set on `generation`.
CREATE TABLE credentials (
    connection   TEXT    PRIMARY KEY,
    grant_kind   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    sealed       BLOB    NOT NULL,
    key_id       TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    expires_at   INTEGER,
    connected_at INTEGER NOT NULL,
    refreshed_at INTEGER,
    refreshes    INTEGER NOT NULL DEFAULT 0,
    reason       TEXT,
    generation   INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER
);

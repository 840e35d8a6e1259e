-- scenarist store, schema 5: connections that keep tokens. One row per
-- connection: its tokens sealed (AEAD, under the key `key_id` names; the store
-- never holds a token in clear), what can be shown without them, and the
-- refresh lease (one process refreshes, the others wait). Every write is a
-- compare-and-set on `generation`.
CREATE TABLE credentials (
    connection   TEXT    PRIMARY KEY,
    grant_kind   TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    sealed       BYTEA   NOT NULL,
    key_id       TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    expires_at   BIGINT ,
    connected_at BIGINT  NOT NULL,
    refreshed_at BIGINT ,
    refreshes    BIGINT  NOT NULL DEFAULT 0,
    reason       TEXT,
    generation   BIGINT  NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT 
);

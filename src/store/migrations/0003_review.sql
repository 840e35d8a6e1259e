-- scenarist store, schema 3: review before reward, and the report.

-- Business events written by `record` steps. (event, key) is unique: a
-- retried, resumed or replayed execution never counts the same thing twice.
CREATE TABLE business_events (
    event        TEXT             NOT NULL, -- enrolled, referred, qualified, reward_issued, ...
    key          TEXT             NOT NULL, -- e.g. the referred person's email
    value        DOUBLE PRECISION,          -- e.g. the reward amount
    data         TEXT,                      -- JSON, secrets masked
    scenario     TEXT             NOT NULL,
    execution_id TEXT             NOT NULL,
    recorded_at  BIGINT           NOT NULL,
    PRIMARY KEY (event, key)
);
CREATE INDEX business_events_by_time ON business_events (recorded_at);

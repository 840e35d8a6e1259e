-- Rate-limit schedules shared by every daemon of the store: per key (an
-- API origin and its rate), the theoretical arrival time of the next call,
-- in microseconds of the database's clock (one clock for every daemon).
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL
);

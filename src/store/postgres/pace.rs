//! Rate-limit schedules in the database, so that the daemons sharing the
//! store pace their calls to an API together: each reservation is one
//! upsert on the key's row, read with the database's clock.

use std::time::Duration;

use super::{db, PgStore};
use crate::store::StoreError;

/// Reserves the next call: the row's next arrival time moves one interval
/// on, and the wait is how far the reserved slot (`burst` slots of
/// tolerance) lies ahead of now.
const RESERVE: &str = "
WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS t)
INSERT INTO rate_limits AS r (key, next_at) SELECT $1, now.t + $2 FROM now
ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(r.next_at, (SELECT t FROM now)) + $2
RETURNING GREATEST(0, r.next_at - $2 - $3 - (SELECT t FROM now))";

/// Holds every call back until `pause` from now (a `429` with `Retry-After`).
const HOLD: &str = "
INSERT INTO rate_limits AS r (key, next_at)
VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $2)
ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(r.next_at, EXCLUDED.next_at)";

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(super) async fn reserve(
    store: &PgStore,
    key: &str,
    interval: Duration,
    tolerance: Duration,
) -> Result<Duration, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one(RESERVE, &[&key, &micros(interval), &micros(tolerance)])
        .await
        .map_err(db)?;
    let wait: i64 = row.get(0);
    Ok(Duration::from_micros(wait.max(0) as u64))
}

pub(super) async fn hold(store: &PgStore, key: &str, until: Duration) -> Result<(), StoreError> {
    let client = store.client().await?;
    client
        .execute(HOLD, &[&key, &micros(until)])
        .await
        .map_err(db)?;
    Ok(())
}

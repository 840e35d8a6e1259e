//! Rate limits: the calls of every execution to one API, paced to the
//! connection's `rate_limit`, and slowed for everyone when the server answers
//! `429` with `Retry-After`.
//!
//! The pace is a GCRA (generic cell rate algorithm) schedule: each call
//! reserves the next slot, `interval` after the previous one, and up to
//! `burst` slots may be taken at once after a quiet time. A reservation is
//! made under a lock and waited for outside it, in a timer: a waiting step
//! holds no thread. The `Pacer` trait is the seam several daemons share a
//! schedule through (the PostgreSQL store keeps it in a table).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::RateLimit;

/// Where the calls' schedule is kept.
#[async_trait::async_trait]
pub trait Pacer: Send + Sync {
    /// Reserves the next call for `key`; how long to wait before making it.
    async fn reserve(&self, key: &str, limit: RateLimit) -> Duration;
    /// No call for `key` before `pause` from now (the server's `Retry-After`).
    async fn hold(&self, key: &str, limit: RateLimit, pause: Duration);
    /// Whether `key` was held back after `since`: a call that reserved its
    /// slot before the hold reserves again instead of going.
    fn held_since(&self, key: &str, since: Instant) -> bool;
}

/// Waits for the next slot of `key`, as many times as holds came in
/// meanwhile; returns how long it waited in all.
pub async fn wait_turn(pacer: &dyn Pacer, key: &str, limit: RateLimit) -> Duration {
    let started = Instant::now();
    loop {
        let reserved = Instant::now();
        let wait = pacer.reserve(key, limit).await;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if !pacer.held_since(key, reserved) {
            return started.elapsed();
        }
    }
}

/// The calls to one origin at one rate share a schedule, whichever scenario
/// or connection makes them.
pub fn pace_key(url: &reqwest::Url, limit: RateLimit) -> String {
    format!("{} {limit}", url.origin().ascii_serialization())
}

/// The schedule of one process, in memory.
#[derive(Default)]
pub struct LocalPacer {
    /// The theoretical arrival time of the next call, per key.
    next: Mutex<HashMap<String, Instant>>,
    /// When each key was last held back.
    holds: Mutex<HashMap<String, Instant>>,
}

impl LocalPacer {
    /// [`Pacer::reserve`] at a given instant (tests pass their own).
    pub fn reserve_at(&self, key: &str, limit: RateLimit, now: Instant) -> Duration {
        let interval = limit.pacing_interval();
        let tolerance = limit.tolerance();
        let mut next = self.next.lock().expect("pacer lock");
        let tat = next.entry(key.to_owned()).or_insert(now);
        let start = if *tat > now + tolerance {
            *tat - tolerance
        } else {
            now
        };
        *tat = (*tat).max(now) + interval;
        start - now
    }

    pub fn hold_at(&self, key: &str, limit: RateLimit, pause: Duration, now: Instant) {
        {
            let mut next = self.next.lock().expect("pacer lock");
            let tat = next.entry(key.to_owned()).or_insert(now);
            *tat = (*tat).max(now + pause + limit.tolerance());
        }
        self.holds
            .lock()
            .expect("pacer lock")
            .insert(key.to_owned(), now);
    }

    pub fn held_since(&self, key: &str, since: Instant) -> bool {
        let holds = self.holds.lock().expect("pacer lock");
        holds.get(key).is_some_and(|held| *held >= since)
    }
}

#[async_trait::async_trait]
impl Pacer for LocalPacer {
    async fn reserve(&self, key: &str, limit: RateLimit) -> Duration {
        self.reserve_at(key, limit, Instant::now())
    }

    async fn hold(&self, key: &str, limit: RateLimit, pause: Duration) {
        self.hold_at(key, limit, pause, Instant::now())
    }

    fn held_since(&self, key: &str, since: Instant) -> bool {
        LocalPacer::held_since(self, key, since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str, burst: u32) -> RateLimit {
        RateLimit {
            burst,
            ..text.parse().unwrap()
        }
    }

    #[test]
    fn calls_are_spaced_by_the_interval_after_the_burst() {
        let pacer = LocalPacer::default();
        let now = Instant::now();
        let rate = limit("10/s", 3);
        let waits: Vec<u128> = (0..6)
            .map(|_| pacer.reserve_at("k", rate, now).as_millis())
            .collect();
        // 100 ms a call, paced 5% wider.
        assert_eq!(waits, [0, 0, 0, 105, 210, 315]);
        // Another key has its own schedule.
        assert_eq!(pacer.reserve_at("other", rate, now), Duration::ZERO);
        // After a quiet time the burst is available again.
        let later = now + Duration::from_secs(10);
        assert_eq!(pacer.reserve_at("k", rate, later), Duration::ZERO);
    }

    #[test]
    fn a_hold_delays_every_later_call() {
        let pacer = LocalPacer::default();
        let now = Instant::now();
        let rate = limit("100/s", 5);
        assert_eq!(pacer.reserve_at("k", rate, now), Duration::ZERO);
        pacer.hold_at("k", rate, Duration::from_secs(2), now);
        assert!(pacer.held_since("k", now));
        let first = pacer.reserve_at("k", rate, now);
        assert_eq!(first, Duration::from_secs(2));
        assert_eq!(
            pacer.reserve_at("k", rate, now),
            Duration::from_micros(2_010_500)
        );
    }
}

//! Slows down guessing the admin token: after [`MAX_FAILURES`] wrong tokens
//! from one address within a minute, that address gets 429 (with
//! `Retry-After`) on the admin API and the dashboard's login until the
//! minute is over, right token or not. Behind a proxy every client shares
//! the proxy's address: then the limit holds for all of them together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; older windows are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// How long `ip` must wait before trying again, if it must.
    pub fn wait(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().expect("throttle lock");
        let (since, count) = failures.get(&ip)?;
        let left = WINDOW.checked_sub(since.elapsed())?;
        (*count >= MAX_FAILURES).then_some(left)
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() >= MAX_ADDRESSES {
            failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
        }
        let entry = failures.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_in_a_minute_block_that_address_only() {
        let throttle = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(a);
        }
        assert_eq!(throttle.wait(a), None);
        throttle.failed(a);
        let wait = throttle.wait(a).expect("blocked");
        assert!(wait <= WINDOW && wait > Duration::from_secs(50));
        assert_eq!(throttle.wait(b), None);
    }
}

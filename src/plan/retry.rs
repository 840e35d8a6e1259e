//! When to try a failed step again: a pure function of the attempt number, so
//! that it can be tested (and later persisted as a next-retry time) without sleeping.

use std::time::Duration;

use crate::model::{Backoff, RetrySpec};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub backoff: Backoff,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        backoff: Backoff::Fixed,
        initial: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };

    pub fn from_spec(spec: &RetrySpec) -> RetryPolicy {
        RetryPolicy {
            attempts: spec.attempts.max(1),
            backoff: spec.backoff,
            initial: spec
                .initial
                .map(|d| d.as_std())
                .unwrap_or(Duration::from_secs(1)),
            max: spec
                .max
                .map(|d| d.as_std())
                .unwrap_or(Duration::from_secs(300)),
        }
    }

    /// The wait before attempt `attempt + 1`, after `attempt` (1-based) failed.
    /// `jitter` in [0, 1) spreads retries of many executions: the delay is drawn
    /// from the upper half of the backoff, so it never falls below half of it.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let base = match self.backoff {
            Backoff::Fixed => self.initial,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
                self.initial.saturating_mul(factor)
            }
        }
        .min(self.max);
        base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The wait when the server said `Retry-After`: honoured, but never more than an hour.
    pub fn delay_with_hint(
        &self,
        attempt: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Duration {
        match retry_after {
            Some(hint) => hint.min(Duration::from_secs(3600)),
            None => self.delay(attempt, jitter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            backoff,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
        }
    }

    #[test]
    fn exponential_doubles_up_to_max() {
        let p = policy(Backoff::Exponential);
        let full: Vec<u128> = (1..=4).map(|a| p.delay(a, 1.0).as_millis()).collect();
        assert_eq!(full, vec![100, 200, 350, 350]);
        assert_eq!(
            p.delay(2, 0.0).as_millis(),
            100,
            "jitter keeps at least half"
        );
    }

    #[test]
    fn fixed_stays_put_and_hints_win() {
        let p = policy(Backoff::Fixed);
        assert_eq!(p.delay(4, 1.0).as_millis(), 100);
        assert_eq!(
            p.delay_with_hint(1, 0.3, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(p.delay(u32::MAX, 1.0).as_millis(), 100);
    }
}

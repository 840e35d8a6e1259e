//! Backpressure in seconds of work, not in a count of events.
//!
//! A queue of 10,000 is a second for a scenario that only sets a field and
//! hours for one that waits on a slow API. What a sender needs to know is how
//! long its event would wait, so the daemon measures how many executions it
//! completes per second while its queue is never empty (then the rate is its
//! capacity, not the arrival rate), and answers 503 with a `Retry-After` once
//! the queue holds more than `max_backlog` of that work. Without such a
//! measure (a daemon that just started, or whose queue emptied within the
//! window) nothing is refused here: a burst on an idle daemon is taken, and
//! `--max-queue` still caps it. A queue that stayed full while nothing
//! completed (a downstream that hangs) keeps `floor` executions waiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the daemon samples its completion count and queue.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How far back the completion rate is measured.
const WINDOW: Duration = Duration::from_secs(3);
/// The shortest span that makes a measure.
const SHORTEST: Duration = Duration::from_secs(1);
/// The longest `Retry-After` given.
const MAX_RETRY_AFTER: u64 = 60;

pub(crate) struct Backlog {
    max_backlog: Duration,
    floor: u64,
    completed: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    completed: u64,
    /// Executions were waiting when the sample was taken.
    queued: bool,
}

/// Why an event is refused: the work already queued, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// The queue in seconds at the measured rate; `None` when nothing
    /// completed over the window (a downstream that hangs, say).
    pub seconds_of_work: Option<f64>,
    pub retry_after: u64,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seconds_of_work {
            Some(seconds) => write!(f, "about {seconds:.0} s of work at the current rate"),
            None => write!(
                f,
                "no execution completed in the last {} s",
                WINDOW.as_secs()
            ),
        }
    }
}

impl Backlog {
    pub(crate) fn new(max_backlog: Duration, floor: u64) -> Backlog {
        Backlog {
            max_backlog,
            floor,
            completed: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// An execution finished (whatever its status): it counts towards the rate.
    pub(crate) fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// Called every `SAMPLE_EVERY` with the queue's depth.
    pub(crate) fn sample(&self, depth: u64, now: Instant) {
        let mut samples = self.samples.lock().expect("backlog samples");
        samples.push_back(Sample {
            at: now,
            completed: self.completed.load(Ordering::Relaxed),
            queued: depth > 0,
        });
        // Keep one sample at or before the window's start, as its base.
        while samples
            .get(1)
            .is_some_and(|s| now.duration_since(s.at) >= WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Executions completed per second over the window, when executions
    /// waited all along (so the workers were never short of work).
    pub(crate) fn capacity(&self) -> Option<f64> {
        let samples = self.samples.lock().expect("backlog samples");
        let (first, last) = (samples.front()?, samples.back()?);
        let span = last.at.duration_since(first.at);
        if span < SHORTEST || !samples.iter().all(|s| s.queued) {
            return None;
        }
        Some((last.completed - first.completed) as f64 / span.as_secs_f64())
    }

    /// Whether one more event may join a queue of `depth`.
    pub(crate) fn admit(&self, depth: u64) -> Result<(), Refusal> {
        if depth < self.floor {
            return Ok(());
        }
        let Some(rate) = self.capacity() else {
            return Ok(());
        };
        let allowed = ((rate * self.max_backlog.as_secs_f64()) as u64).max(self.floor);
        if depth < allowed {
            return Ok(());
        }
        Err(if rate > 0.0 {
            Refusal {
                seconds_of_work: Some(depth as f64 / rate),
                retry_after: (((depth - allowed) as f64 / rate).ceil() as u64)
                    .clamp(1, MAX_RETRY_AFTER),
            }
        } else {
            Refusal {
                seconds_of_work: None,
                retry_after: 5,
            }
        })
    }
}

/// The daemon's sampler: the queue's depth and the completions, every
/// `SAMPLE_EVERY`, until the daemon stops.
pub(super) async fn sample(
    shared: std::sync::Arc<super::Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let depth = shared.metrics.queue_depth.get().max(0) as u64;
        shared.backlog.sample(depth, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two seconds of samples with executions always waiting, completing
    /// `rate_per_s`; the daemon's `queued` flag as given.
    fn sampled(rate_per_s: u64, queued: impl Fn(u32) -> bool) -> Backlog {
        let backlog = Backlog::new(Duration::from_secs(10), 100);
        let start = Instant::now();
        for tick in 0..=8u32 {
            backlog.sample(
                if queued(tick) { 1_000 } else { 0 },
                start + SAMPLE_EVERY * tick,
            );
            for _ in 0..rate_per_s / 4 {
                backlog.completed();
            }
        }
        backlog
    }

    #[test]
    fn the_capacity_is_completions_per_second_while_executions_waited() {
        let backlog = sampled(400, |_| true);
        let rate = backlog.capacity().unwrap();
        assert!((rate - 400.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn a_queue_that_emptied_in_the_window_gives_no_measure_and_is_not_refused() {
        let backlog = sampled(400, |tick| tick != 3);
        assert_eq!(backlog.capacity(), None);
        assert_eq!(backlog.admit(50_000), Ok(()));
    }

    #[test]
    fn a_queue_under_ten_seconds_of_work_is_admitted() {
        let backlog = sampled(400, |_| true);
        assert_eq!(backlog.admit(3_000), Ok(()));
    }

    #[test]
    fn a_queue_over_ten_seconds_of_work_is_refused_with_when_to_come_back() {
        let backlog = sampled(400, |_| true);
        let refusal = backlog.admit(6_000).unwrap_err();
        assert_eq!(refusal.seconds_of_work, Some(15.0));
        // 2,000 over the 4,000 allowed, at 400/s.
        assert_eq!(refusal.retry_after, 5);
        assert_eq!(
            refusal.to_string(),
            "about 15 s of work at the current rate"
        );
    }

    #[test]
    fn a_full_queue_that_completes_nothing_keeps_the_floor() {
        let backlog = sampled(0, |_| true);
        assert_eq!(backlog.admit(99), Ok(()));
        let refusal = backlog.admit(100).unwrap_err();
        assert_eq!(refusal.seconds_of_work, None);
        assert_eq!(refusal.retry_after, 5);
    }

    #[test]
    fn a_daemon_that_just_started_takes_a_burst() {
        let backlog = Backlog::new(Duration::from_secs(10), 100);
        backlog.sample(5_000, Instant::now());
        assert_eq!(backlog.admit(5_000), Ok(()));
    }
}

//! Where "now" comes from: the system's clock, or one a caller controls
//! (the demo's, which jumps 91 days; `scenarist test`'s virtual clock, in
//! which a 3-day wait passes at once).

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A source of the current time, cheap to clone and shared by an
/// execution's steps, its journal and its runner.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock::new(Utc::now)
    }

    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

impl From<fn() -> DateTime<Utc>> for Clock {
    fn from(now: fn() -> DateTime<Utc>) -> Clock {
        Clock::new(now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

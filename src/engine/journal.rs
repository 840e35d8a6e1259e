//! The engine's window to the outside: every step's result passes through a
//! [`Journal`] as soon as it is known, before the next step starts.
//!
//! The CLI's live trace is a journal; the durable store will be one too, which
//! is what lets an execution resume after a crash without repeating finished steps.

use std::sync::Mutex;

use super::execution::{Execution, StepRecord};

pub trait Journal: Send + Sync {
    fn step_started(&self, _path: &str, _kind: &'static str) {}
    fn step_finished(&self, _record: &StepRecord) {}
    fn execution_finished(&self, _execution: &Execution) {}
}

/// Records nothing: for benchmarks and throwaway runs.
pub struct NoJournal;

impl Journal for NoJournal {}

/// Keeps every record in memory, in the order the engine reported them.
#[derive(Default)]
pub struct MemoryJournal {
    pub records: Mutex<Vec<StepRecord>>,
}

impl Journal for MemoryJournal {
    fn step_finished(&self, record: &StepRecord) {
        self.records
            .lock()
            .expect("journal lock")
            .push(record.clone());
    }
}

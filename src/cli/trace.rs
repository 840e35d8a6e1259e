//! The live trace on stderr: one line per step as it finishes.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;
use scenarist::engine::{
    Execution, ExecutionStatus, Journal, JournalError, StepRecord, StepStatus,
};

/// Prints each step's result the moment the engine reports it.
pub struct Trace {
    out: Mutex<std::io::Stderr>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace {
            out: Mutex::new(std::io::stderr()),
        }
    }

    pub fn line(&self, text: &str) {
        let mut out = self.out.lock().expect("stderr lock");
        let _ = writeln!(out, "{text}");
    }

    pub fn header(&self, scenario: &str, execution_id: &str, trigger: &str, dry_run: bool) {
        let mut out = self.out.lock().expect("stderr lock");
        let _ = writeln!(
            out,
            "▶ {scenario} · execution {execution_id} · {trigger} trigger{}",
            if dry_run { " · DRY RUN" } else { "" }
        );
    }
}

fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Skipped => "–",
        StepStatus::Filtered => "⊘",
        StepStatus::Running => "…",
        StepStatus::Waiting => "⏸",
    }
}

#[async_trait]
impl Journal for Trace {
    async fn step_finished(&self, record: &StepRecord) -> Result<(), JournalError> {
        let depth = record.path.matches('/').count();
        let indent = "  ".repeat(depth + 1);
        let label = record.path.rsplit('/').next().unwrap_or(&record.path);
        let mut line = format!(
            "{indent}{} {label:<24} {:<8}",
            mark(record.status),
            record.kind
        );
        if let Some(detail) = &record.detail {
            line.push(' ');
            line.push_str(detail);
        }
        if record.attempts > 1 {
            line.push_str(&format!(" ({} attempts)", record.attempts));
        }
        line.push_str(&format!("  {}ms", record.duration_ms));
        let mut out = self.out.lock().expect("stderr lock");
        let _ = writeln!(out, "{line}");
        if let Some(error) = &record.error {
            let _ = writeln!(out, "{indent}    error: {error}");
        }
        Ok(())
    }

    async fn execution_finished(&self, execution: &Execution) -> Result<(), JournalError> {
        let mut out = self.out.lock().expect("stderr lock");
        let end = match execution.status {
            ExecutionStatus::Succeeded => "■ succeeded".to_owned(),
            ExecutionStatus::Filtered => {
                "■ filtered (stopped by a filter; not a failure)".to_owned()
            }
            ExecutionStatus::Failed => "■ FAILED".to_owned(),
            ExecutionStatus::Incomplete
                if execution
                    .error
                    .as_ref()
                    .is_some_and(|e| e.message.contains("` needs to be reconnected")) =>
            {
                "■ INCOMPLETE (goes on once the connection is reconnected)".to_owned()
            }
            ExecutionStatus::Incomplete => "■ INCOMPLETE (stopped by on_error: break)".to_owned(),
            ExecutionStatus::Running => "■ running".to_owned(),
            ExecutionStatus::Queued => "■ queued".to_owned(),
            ExecutionStatus::Waiting => "■ WAITING".to_owned(),
            ExecutionStatus::Rejected => "■ rejected (a review said no; not a failure)".to_owned(),
        };
        let _ = write!(out, "{end} in {}ms", execution.duration_ms);
        if let Some(error) = &execution.error {
            if error.step.is_empty() {
                let _ = write!(out, ": {}", error.message);
            } else {
                let _ = write!(out, " at step {}: {}", error.step, error.message);
            }
        }
        let _ = writeln!(out);
        if execution.status == ExecutionStatus::Waiting {
            let parked = execution
                .steps
                .iter()
                .rev()
                .find(|r| r.status == StepStatus::Waiting);
            let review = parked.is_some_and(|r| r.kind == "approval");
            let event = parked.filter(|r| r.kind == "wait_for").and_then(|r| {
                let input = r.input.as_ref()?;
                Some((
                    input.get("event")?.as_str()?.to_owned(),
                    input.get("key")?.as_str()?.to_owned(),
                ))
            });
            let _ = if let Some((event, key)) = event {
                writeln!(
                    out,
                    "  for the event {event} [{key}]: `scenarist emit {event} {key}` (or the API) resumes it; `scenarist resume` or the daemon wakes it at its deadline"
                )
            } else if review {
                writeln!(
                    out,
                    "  for a review: decide with `scenarist approve {id}` or `scenarist reject {id}`",
                    id = execution.execution_id
                )
            } else {
                writeln!(
                    out,
                    "  for a delay: `scenarist resume` (or the daemon) continues it once the delay is over"
                )
            };
        }
        Ok(())
    }
}

//! What can go wrong starting, resuming, replaying or deciding an execution,
//! worded for the person who asked.

use uuid::Uuid;

use crate::engine::{ExecutionStatus, RunError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no execution has an id starting with `{0}`")]
    NotFound(String),
    #[error("`{prefix}` matches several executions ({}); give more of the id", .ids.join(", "))]
    Ambiguous { prefix: String, ids: Vec<String> },
    #[error("execution {id} is {status}: {why}")]
    NotResumable {
        id: Uuid,
        status: ExecutionStatus,
        why: &'static str,
    },
    #[error("execution {0} was taken over by another process")]
    Taken(Uuid),
    #[error("the scenario version {version} of `{scenario}` that execution {id} ran is not in the store")]
    MissingVersion {
        id: Uuid,
        scenario: String,
        version: String,
    },
    #[error("the stored version of `{scenario}` no longer compiles:\n{diagnostics}")]
    StoredVersion {
        scenario: String,
        diagnostics: String,
    },
    #[error("the stored trigger of execution {0} is damaged")]
    DamagedTrigger(Uuid),
    #[error("{0}")]
    InvalidEvent(String),
    #[error("`{0}` has no poll trigger")]
    NoPoll(String),
    #[error("execution {id} is not waiting for a review (it is {status}); nothing was changed")]
    NotWaiting { id: Uuid, status: String },
    #[error(
        "execution {id} waits for a delay until {until}, not for a review; nothing was changed"
    )]
    WaitsForDelay { id: Uuid, until: String },
    #[error("execution {id} waits for the event {event} [{key}] until {until}, not for a review; nothing was changed (`scenarist emit {event} {key}` sends it)")]
    WaitsForEvent {
        id: Uuid,
        event: String,
        key: String,
        until: String,
    },
    #[error("`{by}` may not decide execution {id}: its approvers are {}; nothing was changed", .approvers.join(", "))]
    NotAnApprover {
        id: Uuid,
        by: String,
        approvers: Vec<String>,
    },
}

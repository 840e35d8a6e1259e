//! Replays: a new execution of the same version with the same trigger,
//! reusing the original's `emit` ids.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Runner, RunnerError};
use crate::engine::{Execution, Journal, RunRequest, TriggerData};

impl Runner {
    /// The first execution of a replay chain: replays reuse its `emit` event
    /// ids, so replaying never announces the same milestone twice. A pruned
    /// ancestor ends the walk.
    pub(super) async fn origin_of(&self, id: Uuid, replay_of: Option<Uuid>) -> Uuid {
        let (mut origin, mut parent) = (id, replay_of);
        for _ in 0..64 {
            let Some(next) = parent else { break };
            origin = next;
            parent = match self.store.execution(next).await {
                Ok(Some(stored)) => stored.summary.replay_of,
                _ => None,
            };
        }
        origin
    }

    /// A new execution of the same scenario version with the same trigger.
    pub async fn replay(&self, id: Uuid, trace: &dyn Journal) -> Result<Execution, RunnerError> {
        self.replay_as(id, Uuid::now_v7(), trace).await
    }

    /// As [`Runner::replay`], with the new execution's id chosen by the
    /// caller (the dashboard links to it before it has run).
    pub async fn replay_as(
        &self,
        id: Uuid,
        new_id: Uuid,
        trace: &dyn Journal,
    ) -> Result<Execution, RunnerError> {
        let stored = self.load(id).await?;
        let (plan, _) = self.stored_plan(&stored.summary).await?;
        let request = RunRequest {
            trigger: trigger_data(&stored.trigger).ok_or(RunnerError::DamagedTrigger(id))?,
            vars: stored.vars.clone(),
            execution_id: Some(new_id),
            origin: Some(self.origin_of(id, stored.summary.replay_of).await),
            ..RunRequest::default()
        };
        self.start(&plan, request, trace, Some(id)).await
    }
}

/// The trigger as the engine takes it, from its stored document.
pub fn trigger_data(doc: &Value) -> Option<TriggerData> {
    let object = doc.as_object()?;
    let map = |key: &str| match object.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    Some(TriggerData {
        body: object.get("body").cloned().unwrap_or(Value::Null),
        headers: map("headers"),
        query: map("query"),
        received_at: object
            .get("received_at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
        extra: object
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "body" | "headers" | "query" | "received_at"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

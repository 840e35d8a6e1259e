//! The rest of the stand-in referral engine's API v2 that the built-in
//! `referral-factory` app calls: updating and searching users, and the
//! rewards a campaign with manual payouts leaves due until someone issues
//! or cancels them.

use serde::Serialize;
use serde_json::{json, Value};

use super::state::{query_param, str_field, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardStatus {
    /// Earned, waiting to be paid (campaigns with manual payouts).
    Due,
    Issued,
    Cancelled,
}

impl State {
    /// `PUT /api/v2/users/{identifier}`: changes the first name or email.
    pub(super) fn update_user(&mut self, identifier: &str, body: &Value) -> (u16, Value) {
        let Some(id) = self.participant_id(identifier) else {
            return (404, json!({"error": "user not found"}));
        };
        let p = self
            .participants
            .iter_mut()
            .find(|p| p.id == id)
            .expect("the participant just found");
        if let Some(name) = str_field(body, "first_name") {
            p.first_name = name.to_owned();
        }
        if let Some(email) = str_field(body, "email") {
            p.email = email.to_lowercase();
        }
        (200, json!({"data": p}))
    }

    /// `GET /api/v2/users?search=TEXT`: users whose email, name or code contains it.
    pub(super) fn search_users(&self, query: &str) -> (u16, Value) {
        let text = query_param(query, "search")
            .unwrap_or_default()
            .to_lowercase();
        let found: Vec<_> = self
            .participants
            .iter()
            .filter(|p| {
                [&p.email, &p.first_name, &p.code]
                    .iter()
                    .any(|field| field.to_lowercase().contains(&text))
            })
            .collect();
        (200, json!({"data": found}))
    }

    /// `GET /api/v2/rewards?status=due|issued|cancelled`.
    pub(super) fn list_rewards(&self, query: &str) -> (u16, Value) {
        let status = query_param(query, "status");
        let found: Vec<_> = self
            .rewards
            .iter()
            .filter(|r| {
                status
                    .as_deref()
                    .is_none_or(|s| json!(r.status).as_str() == Some(s))
            })
            .collect();
        (200, json!({"data": found}))
    }

    /// `POST /api/v2/rewards/{id}/issue`: a due reward is paid (issuing it
    /// again answers the same; a cancelled one cannot be issued).
    pub(super) fn issue_reward(&mut self, id: &str) -> (u16, Value) {
        let Some(reward) = self.rewards.iter_mut().find(|r| r.id == id) else {
            return (404, json!({"error": "reward not found"}));
        };
        match reward.status {
            RewardStatus::Cancelled => (409, json!({"error": "the reward was cancelled"})),
            RewardStatus::Issued => (200, json!({"data": reward})),
            RewardStatus::Due => {
                reward.status = RewardStatus::Issued;
                let reward = reward.clone();
                self.emit(
                    "reward_issued",
                    json!({"event": "reward_issued", "data": reward}),
                );
                (200, json!({"data": reward}))
            }
        }
    }

    /// `POST /api/v2/rewards/{id}/cancel`: a due reward is not paid.
    pub(super) fn cancel_reward(&mut self, id: &str, body: &Value) -> (u16, Value) {
        let Some(reward) = self.rewards.iter_mut().find(|r| r.id == id) else {
            return (404, json!({"error": "reward not found"}));
        };
        match reward.status {
            RewardStatus::Issued => (409, json!({"error": "the reward was already issued"})),
            RewardStatus::Cancelled => (200, json!({"data": reward})),
            RewardStatus::Due => {
                reward.status = RewardStatus::Cancelled;
                reward.cancel_reason = str_field(body, "reason").map(str::to_owned);
                (200, json!({"data": reward}))
            }
        }
    }
}

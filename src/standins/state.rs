//! What the stand-ins remember, and the rules of the stand-in referral engine.

use std::collections::{BTreeMap, HashMap, VecDeque};

use axum::http::Method;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantStatus {
    /// Enrolled as a referrer (an existing customer with a link).
    Enrolled,
    /// Signed up through someone's link; the reward waits for qualification.
    Pending,
    /// The milestone happened; the referrer's reward was issued.
    Qualified,
}

#[derive(Clone, Debug, Serialize)]
pub struct Participant {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub url: String,
    pub code: String,
    pub status: ParticipantStatus,
    pub referred_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Reward {
    pub referrer: String,
    pub referral: String,
    pub amount: u32,
}

/// Counts a person can read at the end of a demo or assert in a test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub enrolled: usize,
    pub referred: usize,
    pub qualified: usize,
    pub rewards_issued: usize,
    pub rewards_issued_twice: usize,
    pub crm_links_written: usize,
    pub crm_leads: usize,
    pub chat_messages: usize,
}

#[derive(Default)]
pub struct State {
    pub participants: Vec<Participant>,
    pub rewards: Vec<Reward>,
    /// Qualification requests for referrals already rewarded.
    pub double_rewards: Vec<String>,
    pub contacts: BTreeMap<String, Value>,
    pub leads: Vec<Value>,
    pub chat: Vec<String>,
    pub payments: Vec<Value>,
    pub requests: usize,
    /// Statuses to answer instead of the real thing, per "METHOD /path" prefix.
    injected: HashMap<String, VecDeque<u16>>,
    /// The referrer's reward per qualified referral.
    pub reward_amount: u32,
}

impl State {
    /// Adds a person who signed up through `referrer_email`'s link (what the
    /// referral engine does itself when someone uses a link).
    pub fn join(&mut self, email: &str, first_name: &str, referrer_email: &str) -> Participant {
        let participant = self.new_participant(
            email,
            first_name,
            ParticipantStatus::Pending,
            Some(referrer_email.to_owned()),
        );
        self.participants.push(participant.clone());
        participant
    }

    /// The next `count` requests matching `METHOD /path` prefix answer `status`.
    pub fn inject_failure(&mut self, method: &str, path_prefix: &str, status: u16, count: usize) {
        self.injected
            .entry(format!("{method} {path_prefix}"))
            .or_default()
            .extend(std::iter::repeat_n(status, count));
    }

    pub(super) fn take_injected_failure(&mut self, method: &Method, path: &str) -> Option<u16> {
        let request = format!("{method} {path}");
        let key = self
            .injected
            .keys()
            .find(|k| request.starts_with(k.as_str()))?
            .clone();
        let queue = self.injected.get_mut(&key)?;
        let status = queue.pop_front();
        if queue.is_empty() {
            self.injected.remove(&key);
        }
        status
    }

    pub fn summary(&self) -> Summary {
        Summary {
            enrolled: self
                .participants
                .iter()
                .filter(|p| p.referred_by.is_none())
                .count(),
            referred: self
                .participants
                .iter()
                .filter(|p| p.referred_by.is_some())
                .count(),
            qualified: self
                .participants
                .iter()
                .filter(|p| p.status == ParticipantStatus::Qualified)
                .count(),
            rewards_issued: self.rewards.len(),
            rewards_issued_twice: self.double_rewards.len(),
            crm_links_written: self
                .contacts
                .values()
                .filter(|c| c.get("referral_link").is_some())
                .count(),
            crm_leads: self.leads.len(),
            chat_messages: self.chat.len(),
        }
    }

    fn new_participant(
        &self,
        email: &str,
        first_name: &str,
        status: ParticipantStatus,
        referred_by: Option<String>,
    ) -> Participant {
        let n = self.participants.len() + 1;
        let code = format!(
            "{}{n}",
            first_name
                .chars()
                .take(3)
                .collect::<String>()
                .to_uppercase()
        );
        Participant {
            id: format!("u-{n}"),
            email: email.to_lowercase(),
            first_name: first_name.to_owned(),
            url: format!("https://refer.example/r/{code}"),
            code,
            status,
            referred_by,
        }
    }

    fn view(p: &Participant) -> Value {
        json!({ "data": p })
    }

    pub(super) fn enrol(&mut self, body: &Value) -> (u16, Value) {
        let Some(email) = body.get("email").and_then(Value::as_str) else {
            return (422, json!({"error": "email is required"}));
        };
        if let Some(existing) = self
            .participants
            .iter()
            .find(|p| p.email == email.to_lowercase())
        {
            return (200, Self::view(existing));
        }
        let first_name = body
            .get("first_name")
            .and_then(Value::as_str)
            .unwrap_or("friend");
        let participant =
            self.new_participant(email, first_name, ParticipantStatus::Enrolled, None);
        self.participants.push(participant.clone());
        (201, Self::view(&participant))
    }

    pub(super) fn find(&self, identifier: &str) -> (u16, Value) {
        let identifier = identifier.to_lowercase();
        match self
            .participants
            .iter()
            .find(|p| p.email == identifier || p.id == identifier)
        {
            Some(p) => (200, Self::view(p)),
            None => (404, json!({"error": "user not found"})),
        }
    }

    pub(super) fn qualify(&mut self, body: &Value) -> (u16, Value) {
        let Some(identifier) = body.get("identifier").and_then(Value::as_str) else {
            return (422, json!({"error": "identifier is required"}));
        };
        let qualified = body
            .get("qualified")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let reward_amount = if self.reward_amount == 0 {
            50
        } else {
            self.reward_amount
        };
        let Some(p) = self
            .participants
            .iter_mut()
            .find(|p| p.id == identifier || p.email == identifier)
        else {
            return (404, json!({"error": "user not found"}));
        };
        let Some(referrer) = p.referred_by.clone() else {
            return (422, json!({"error": "this user was not referred"}));
        };
        if !qualified {
            return (200, Self::view(p));
        }
        if p.status == ParticipantStatus::Qualified {
            // The real engine might accept it; a second reward is money lost.
            self.double_rewards.push(p.id.clone());
            return (200, json!({"data": p, "reward_issued": true}));
        }
        p.status = ParticipantStatus::Qualified;
        let view = json!({"data": p, "reward_issued": true});
        self.rewards.push(Reward {
            referrer,
            referral: identifier.to_owned(),
            amount: reward_amount,
        });
        (200, view)
    }

    pub(super) fn update_contact(&mut self, id: &str, body: &Value) -> (u16, Value) {
        let contact = self
            .contacts
            .entry(id.to_owned())
            .or_insert_with(|| json!({}));
        if let (Some(fields), Some(target)) = (
            body.get("custom_fields").and_then(Value::as_object),
            contact.as_object_mut(),
        ) {
            for (k, v) in fields {
                target.insert(k.clone(), v.clone());
            }
        }
        (200, json!({"id": id, "custom_fields": contact}))
    }

    pub(super) fn create_lead(&mut self, body: &Value) -> (u16, Value) {
        self.leads.push(body.clone());
        (201, json!({"id": format!("lead-{}", self.leads.len())}))
    }

    pub(super) fn first_payments(&self, _query: &str) -> (u16, Value) {
        (200, json!({"data": self.payments}))
    }

    pub(super) fn chat(&mut self, body: &Value) -> (u16, Value) {
        let text = body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.chat.push(text);
        (200, json!({"ok": true}))
    }
}

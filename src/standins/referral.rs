//! The stand-in referral engine, shaped like Referral Factory's public API v2.
//!
//! Webhooks it sends (no signature, no event id, like the real engine):
//! `user.join`, `user.qualified`, `reward_issued`, each as
//! `{"event": ..., "data": {...}}`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::rewards::RewardStatus;
use super::state::{str_field, State};

/// The campaign every stand-in participant belongs to.
const CAMPAIGN_ID: u32 = 4211;
/// The reward when `State::reward_amount` is left at 0.
const DEFAULT_REWARD: u32 = 50;

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
    /// `r-1`, `r-2`, ...
    pub id: String,
    /// The referrer's email.
    pub referrer: String,
    /// The qualified referral's email.
    pub referral: String,
    pub amount: u32,
    pub status: RewardStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl State {
    /// Adds a person who signed up through `referrer_email`'s link (what the
    /// referral engine does itself when someone uses a link) and sends
    /// `user.join`.
    pub fn join(&mut self, email: &str, first_name: &str, referrer_email: &str) -> Participant {
        self.join_with(email, first_name, referrer_email, &Value::Null)
    }

    /// Like [`State::join`]; the fields of the `details` object (e.g.
    /// `company`, `employees`) are added to the `user.join` event's data.
    pub fn join_with(
        &mut self,
        email: &str,
        first_name: &str,
        referrer_email: &str,
        details: &Value,
    ) -> Participant {
        let participant = self.new_participant(
            email,
            first_name,
            ParticipantStatus::Pending,
            Some(referrer_email.to_lowercase()),
        );
        self.participants.push(participant.clone());
        let mut data = event_data(&participant);
        if let Some(details) = details.as_object() {
            data.extend(details.clone());
        }
        self.emit("user.join", json!({"event": "user.join", "data": data}));
        participant
    }

    fn new_participant(
        &self,
        email: &str,
        first_name: &str,
        status: ParticipantStatus,
        referred_by: Option<String>,
    ) -> Participant {
        let n = self.participants.len() + 1;
        let initials: String = first_name.chars().take(3).collect();
        let code = format!("{}{n}", initials.to_uppercase());
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

    pub(super) fn participant_id(&self, identifier: &str) -> Option<String> {
        self.participant(identifier).map(|p| p.id.clone())
    }

    /// By id, email or referral code, as the real API's `identifier`.
    fn participant(&self, identifier: &str) -> Option<&Participant> {
        let lower = identifier.to_lowercase();
        self.participants
            .iter()
            .find(|p| p.email == lower || p.id == lower || p.code.eq_ignore_ascii_case(identifier))
    }

    /// `POST /api/v2/users`: enrols a referrer (idempotent on the email).
    pub(super) fn enrol(&mut self, body: &Value) -> (u16, Value) {
        let Some(email) = str_field(body, "email") else {
            return (422, json!({"error": "email is required"}));
        };
        if let Some(existing) = self.participant(email) {
            return (200, json!({"data": existing}));
        }
        let first_name = str_field(body, "first_name").unwrap_or("friend");
        let participant =
            self.new_participant(email, first_name, ParticipantStatus::Enrolled, None);
        self.participants.push(participant.clone());
        (201, json!({"data": participant}))
    }

    /// `POST /sim/join` (the stand-in's own control): someone signs up
    /// through a referrer's link.
    pub(super) fn sim_join(&mut self, body: &Value) -> (u16, Value) {
        let (Some(email), Some(referrer)) =
            (str_field(body, "email"), str_field(body, "referrer_email"))
        else {
            return (
                422,
                json!({"error": "email and referrer_email are required"}),
            );
        };
        if self.participant(referrer).is_none() {
            return (404, json!({"error": format!("no participant {referrer}")}));
        }
        if self.participant(email).is_some() {
            return (
                409,
                json!({"error": format!("{email} is already a participant")}),
            );
        }
        let first_name = str_field(body, "first_name").unwrap_or("friend").to_owned();
        let mut details = body.clone();
        if let Some(map) = details.as_object_mut() {
            for key in ["email", "first_name", "referrer_email"] {
                map.remove(key);
            }
        }
        let participant = self.join_with(email, &first_name, referrer, &details);
        (201, json!({"data": participant}))
    }

    /// `GET /api/v2/users/{identifier}`: by id or email.
    pub(super) fn find(&self, identifier: &str) -> (u16, Value) {
        match self.participant(identifier) {
            Some(p) => (200, json!({"data": p})),
            None => (404, json!({"error": "user not found"})),
        }
    }

    /// `PUT /api/v2/users/qualification`: a pending referral becomes
    /// qualified and the referrer's reward is issued. Qualifying it again is
    /// answered like the real engine might, and counted in `double_rewards`.
    pub(super) fn qualify(&mut self, body: &Value) -> (u16, Value) {
        let Some(identifier) = str_field(body, "identifier") else {
            return (422, json!({"error": "identifier is required"}));
        };
        let qualified = body
            .get("qualified")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // Stand-in simplification: the caller may say what the reward is
        // (a share of the deal); otherwise the campaign's fixed reward.
        let amount = match (
            body.get("reward_amount").and_then(crate::plan::as_number),
            self.reward_amount,
        ) {
            (Some(given), _) if given >= 0.0 => given.round() as u32,
            (_, 0) => DEFAULT_REWARD,
            (_, n) => n,
        };
        let Some(p) = self.participant(identifier).cloned() else {
            return (404, json!({"error": "user not found"}));
        };
        let Some(referrer) = p.referred_by.clone() else {
            return (422, json!({"error": "this user was not referred"}));
        };
        if !qualified {
            return (200, json!({"data": p}));
        }
        if p.status == ParticipantStatus::Qualified {
            // The real engine might accept it; a second reward is money lost.
            self.double_rewards.push(p.id.clone());
            return (200, json!({"data": p, "reward_issued": true}));
        }
        let p = self
            .participants
            .iter_mut()
            .find(|q| q.id == p.id)
            .expect("the participant just found");
        p.status = ParticipantStatus::Qualified;
        let p = p.clone();
        let reward = Reward {
            id: format!("r-{}", self.rewards.len() + 1),
            referrer,
            referral: p.email.clone(),
            amount,
            status: if self.manual_payouts {
                RewardStatus::Due
            } else {
                RewardStatus::Issued
            },
            cancel_reason: None,
        };
        self.emit(
            "user.qualified",
            json!({"event": "user.qualified", "data": event_data(&p)}),
        );
        let issued = reward.status == RewardStatus::Issued;
        if issued {
            self.emit(
                "reward_issued",
                json!({"event": "reward_issued", "data": reward}),
            );
        }
        let id = reward.id.clone();
        self.rewards.push(reward);
        (
            200,
            json!({"data": p, "reward_issued": issued, "reward_id": id}),
        )
    }
}

/// A participant as the engine's webhooks describe it.
fn event_data(p: &Participant) -> Map<String, Value> {
    let mut data = match json!(p) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    data.insert("campaign_id".into(), json!(CAMPAIGN_ID));
    if let Some(referrer) = &p.referred_by {
        data.insert("referrer".into(), json!({"email": referrer}));
    }
    data
}

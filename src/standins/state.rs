//! What the stand-ins remember. The rules of each imitated system live next
//! door: `referral.rs`, `crm.rs`, `payments.rs`; outbound webhooks in
//! `webhooks.rs`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use axum::http::Method;
use serde::Serialize;
use serde_json::Value;

use super::crm::{Contact, Deal};
use super::referral::{Participant, ParticipantStatus, Reward};
use super::webhooks::{Delivery, Outgoing};

/// Counts a person can read at the end of a demo or assert in a test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub enrolled: usize,
    pub referred: usize,
    pub qualified: usize,
    pub rewards_issued: usize,
    /// Sum of the issued rewards' amounts.
    pub rewards_value: u64,
    pub rewards_issued_twice: usize,
    pub crm_links_written: usize,
    pub crm_leads: usize,
    pub contacts: usize,
    pub deals: usize,
    pub deals_closed_won: usize,
    /// Payments recorded, succeeded or failed.
    pub payments: usize,
    pub first_payments: usize,
    pub chat_messages: usize,
    /// Webhook deliveries answered 2xx (after retries).
    pub webhooks_delivered: usize,
    /// Webhook deliveries that finished without a 2xx answer.
    pub webhooks_failed: usize,
}

#[derive(Default)]
pub struct State {
    pub participants: Vec<Participant>,
    pub rewards: Vec<Reward>,
    /// Qualification requests for referrals already rewarded.
    pub double_rewards: Vec<String>,
    /// CRM contacts by id.
    pub contacts: BTreeMap<String, Contact>,
    /// CRM deals by id.
    pub deals: BTreeMap<String, Deal>,
    pub leads: Vec<Value>,
    pub chat: Vec<String>,
    /// Payment records, oldest first: `{id, customer_email, amount, currency,
    /// status, first_payment}` (records set by hand may omit the last two).
    pub payments: Vec<Value>,
    pub requests: usize,
    /// Statuses to answer instead of the real thing, per "METHOD /path" prefix.
    injected: HashMap<String, VecDeque<u16>>,
    /// The referrer's reward per qualified referral (50 when left at 0).
    pub reward_amount: u32,
    /// Rewards wait as `due` until issued through the API (default: issued
    /// at qualification, as the demo's campaign does).
    pub manual_payouts: bool,
    /// Webhook URLs per event name.
    pub(super) subscriptions: BTreeMap<String, Vec<String>>,
    /// Webhooks emitted under the lock, sent once it is released.
    pub(super) outbox: Vec<Outgoing>,
    /// The last payload emitted per event, for `StandIns::redeliver_last`.
    pub(super) last_payload: HashMap<String, Value>,
    /// Finished webhook deliveries, in the order they finished.
    pub deliveries: Vec<Delivery>,
    /// Webhooks emitted so far (delivered or not yet).
    emitted: usize,
}

impl State {
    /// Rewards paid out (not due, not cancelled).
    pub fn issued_rewards(&self) -> impl Iterator<Item = &Reward> {
        self.rewards
            .iter()
            .filter(|r| r.status == super::rewards::RewardStatus::Issued)
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

    /// Queues `payload` for every URL subscribed to `event`; it is sent after
    /// the state lock is released.
    pub(super) fn emit(&mut self, event: &str, payload: Value) {
        let Some(urls) = self.subscriptions.get(event) else {
            return;
        };
        for url in urls {
            self.emitted += 1;
            self.outbox.push(Outgoing {
                event: event.to_owned(),
                url: url.clone(),
                body: payload.clone(),
            });
        }
        self.last_payload.insert(event.to_owned(), payload);
    }

    /// Webhooks emitted whose delivery has not finished yet: zero once
    /// every event sent so far has been answered (or given up on).
    pub fn pending_deliveries(&self) -> usize {
        self.emitted.saturating_sub(self.deliveries.len())
    }

    pub fn summary(&self) -> Summary {
        let count = |f: fn(&Participant) -> bool| self.participants.iter().filter(|p| f(p)).count();
        Summary {
            enrolled: count(|p| p.referred_by.is_none()),
            referred: count(|p| p.referred_by.is_some()),
            qualified: count(|p| p.status == ParticipantStatus::Qualified),
            rewards_issued: self.issued_rewards().count(),
            rewards_value: self.issued_rewards().map(|r| u64::from(r.amount)).sum(),
            rewards_issued_twice: self.double_rewards.len(),
            crm_links_written: self
                .contacts
                .values()
                .filter(|c| c.custom_fields.contains_key("referral_link"))
                .count(),
            crm_leads: self.leads.len(),
            contacts: self.contacts.len(),
            deals: self.deals.len(),
            deals_closed_won: self
                .deals
                .values()
                .filter(|d| d.stage == "closed_won")
                .count(),
            payments: self.payments.len(),
            first_payments: (0..self.payments.len())
                .filter(|&i| self.is_first_payment(i))
                .count(),
            chat_messages: self.chat.len(),
            webhooks_delivered: self.deliveries.iter().filter(|d| d.succeeded()).count(),
            webhooks_failed: self.deliveries.iter().filter(|d| !d.succeeded()).count(),
        }
    }

    pub(super) fn chat(&mut self, body: &Value) -> (u16, Value) {
        let text = str_field(body, "text").unwrap_or_default().to_owned();
        self.chat.push(text);
        (200, serde_json::json!({"ok": true}))
    }
}

/// A string field of a JSON body.
pub(super) fn str_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// A whole amount (numbers with a fraction are rounded).
pub(super) fn amount_field(body: &Value, key: &str) -> Option<u64> {
    let v = body.get(key)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}

/// The decoded value of `name` in a URL query string.
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            urlencoding::decode(&s).map(|c| c.into_owned()).unwrap_or(s)
        };
        (decode(key) == name).then(|| decode(value))
    })
}

/// The first `{prefix}{n}` not yet `taken`, counting from `from`.
pub(super) fn fresh_id(prefix: &str, from: usize, taken: impl Fn(&str) -> bool) -> String {
    (from..)
        .map(|n| format!("{prefix}{n}"))
        .find(|id| !taken(id))
        .expect("an unused id")
}

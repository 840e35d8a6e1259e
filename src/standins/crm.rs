//! The stand-in CRM: contacts with custom fields, deals with stages, leads.
//!
//! Webhooks it sends: `contact.created` `{"event", "contact"}` and
//! `deal.updated` `{"event", "deal"}` when a deal changes stage.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::state::{amount_field, fresh_id, query_param, str_field, State};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Contact {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub segment: String,
    pub custom_fields: Map<String, Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Deal {
    pub id: String,
    pub contact_id: String,
    pub contact_email: String,
    pub name: String,
    /// e.g. `open`, `closed_won`, `closed_lost`.
    pub stage: String,
    pub amount: u64,
    pub currency: String,
}

impl State {
    /// Creates a contact (sends `contact.created`) and returns its id.
    pub fn add_contact(
        &mut self,
        email: &str,
        first_name: &str,
        last_name: &str,
        company: &str,
        segment: &str,
    ) -> String {
        self.add_contact_with(email, first_name, last_name, company, segment, Value::Null)
    }

    /// Like [`State::add_contact`], with custom fields set from the start
    /// (e.g. the `referral_consent` checkbox), as a form in the CRM would.
    pub fn add_contact_with(
        &mut self,
        email: &str,
        first_name: &str,
        last_name: &str,
        company: &str,
        segment: &str,
        custom_fields: Value,
    ) -> String {
        let id = fresh_id("c-", self.contacts.len() + 1, |id| {
            self.contacts.contains_key(id)
        });
        let contact = Contact {
            id: id.clone(),
            email: email.to_lowercase(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            company: company.to_owned(),
            segment: segment.to_owned(),
            custom_fields: match custom_fields {
                Value::Object(fields) => fields,
                _ => Map::new(),
            },
        };
        self.emit(
            "contact.created",
            json!({"event": "contact.created", "contact": contact}),
        );
        self.contacts.insert(id.clone(), contact);
        id
    }

    /// Creates a deal for an existing contact and returns its id (no webhook:
    /// `deal.updated` is sent when the stage changes).
    pub fn add_deal(
        &mut self,
        contact_id: &str,
        name: &str,
        amount: u64,
        currency: &str,
        stage: &str,
    ) -> Result<String, String> {
        let contact = self
            .contacts
            .get(contact_id)
            .ok_or_else(|| format!("no contact {contact_id}"))?;
        let id = fresh_id("D-", 501 + self.deals.len(), |id| {
            self.deals.contains_key(id)
        });
        let deal = Deal {
            id: id.clone(),
            contact_id: contact_id.to_owned(),
            contact_email: contact.email.clone(),
            name: name.to_owned(),
            stage: stage.to_owned(),
            amount,
            currency: currency.to_owned(),
        };
        self.deals.insert(id.clone(), deal);
        Ok(id)
    }

    /// Moves a deal to `stage`; sends `deal.updated` and returns true when
    /// the stage changed, returns false when it already was at `stage`.
    pub fn move_deal(&mut self, id: &str, stage: &str) -> Result<bool, String> {
        let deal = self
            .deals
            .get_mut(id)
            .ok_or_else(|| format!("no deal {id}"))?;
        if deal.stage == stage {
            return Ok(false);
        }
        deal.stage = stage.to_owned();
        let payload = json!({"event": "deal.updated", "deal": deal});
        self.emit("deal.updated", payload);
        Ok(true)
    }

    /// `POST /contacts`.
    pub(super) fn create_contact(&mut self, body: &Value) -> (u16, Value) {
        let Some(email) = str_field(body, "email") else {
            return (422, json!({"error": "email is required"}));
        };
        if self
            .contacts
            .values()
            .any(|c| c.email == email.to_lowercase())
        {
            return (
                409,
                json!({"error": format!("a contact has email {email}")}),
            );
        }
        let field = |key| str_field(body, key).unwrap_or_default();
        let id = self.add_contact(
            email,
            field("first_name"),
            field("last_name"),
            field("company"),
            field("segment"),
        );
        (201, json!(self.contacts[&id]))
    }

    /// `GET /contacts/{id}`.
    pub(super) fn get_contact(&self, id: &str) -> (u16, Value) {
        match self.contacts.get(id) {
            Some(c) => (200, json!(c)),
            None => (404, json!({"error": "contact not found"})),
        }
    }

    /// `GET /contacts?email=...`: `{results: [...]}`, every contact without
    /// a query.
    pub(super) fn search_contacts(&self, query: &str) -> (u16, Value) {
        let email = query_param(query, "email").map(|e| e.to_lowercase());
        let results: Vec<&Contact> = self
            .contacts
            .values()
            .filter(|c| email.as_ref().is_none_or(|e| c.email == *e))
            .collect();
        (200, json!({"results": results}))
    }

    /// `PATCH /contacts/{id}` `{custom_fields: {...}}`: merges the fields. An
    /// unknown id is created bare (no webhook), as the demo writes links back
    /// to contacts it never created here.
    pub(super) fn update_contact(&mut self, id: &str, body: &Value) -> (u16, Value) {
        let contact = self
            .contacts
            .entry(id.to_owned())
            .or_insert_with(|| Contact {
                id: id.to_owned(),
                ..Contact::default()
            });
        if let Some(fields) = body.get("custom_fields").and_then(Value::as_object) {
            contact.custom_fields.extend(fields.clone());
        }
        (200, json!(contact))
    }

    /// `POST /deals`.
    pub(super) fn create_deal(&mut self, body: &Value) -> (u16, Value) {
        let (Some(contact_id), Some(amount)) =
            (str_field(body, "contact_id"), amount_field(body, "amount"))
        else {
            return (422, json!({"error": "contact_id and amount are required"}));
        };
        let field = |key, default| str_field(body, key).unwrap_or(default);
        match self.add_deal(
            contact_id,
            field("name", "Deal"),
            amount,
            field("currency", "EUR"),
            field("stage", "open"),
        ) {
            Ok(id) => (201, json!(self.deals[&id])),
            Err(e) => (422, json!({"error": e})),
        }
    }

    /// `GET /deals/{id}`.
    pub(super) fn get_deal(&self, id: &str) -> (u16, Value) {
        match self.deals.get(id) {
            Some(d) => (200, json!(d)),
            None => (404, json!({"error": "deal not found"})),
        }
    }

    /// `PATCH /deals/{id}` `{stage}`.
    pub(super) fn update_deal(&mut self, id: &str, body: &Value) -> (u16, Value) {
        let Some(stage) = str_field(body, "stage") else {
            return (422, json!({"error": "stage is required"}));
        };
        match self.move_deal(id, stage) {
            Ok(_) => (200, json!(self.deals[id])),
            Err(e) => (404, json!({"error": e})),
        }
    }

    /// `POST /leads`.
    pub(super) fn create_lead(&mut self, body: &Value) -> (u16, Value) {
        self.leads.push(body.clone());
        (201, json!({"id": format!("lead-{}", self.leads.len())}))
    }
}

//! The stand-in payments API: a list of payments, Stripe-like webhooks
//! `payment.succeeded` / `payment.failed` `{"type", "data"}`.

use serde_json::{json, Value};

use super::state::{amount_field, query_param, str_field, State};

impl State {
    /// Records a payment (sends `payment.succeeded` or `payment.failed`) and
    /// returns it. `first_payment` is true for a customer's first succeeded
    /// payment.
    pub fn record_payment(
        &mut self,
        customer_email: &str,
        amount: u64,
        currency: &str,
        succeeded: bool,
    ) -> Value {
        let customer_email = customer_email.to_lowercase();
        let first_payment = succeeded
            && !self
                .payments
                .iter()
                .any(|p| succeeded_payment(p) && payment_email(p) == customer_email);
        let status = if succeeded { "succeeded" } else { "failed" };
        let payment = json!({
            "id": format!("py_{}", 1001 + self.payments.len()),
            "customer_email": customer_email,
            "amount": amount,
            "currency": currency,
            "status": status,
            "first_payment": first_payment,
        });
        self.payments.push(payment.clone());
        let event = format!("payment.{status}");
        self.emit(&event, json!({"type": event, "data": payment}));
        payment
    }

    /// Whether `payments[index]` is its customer's first succeeded payment
    /// (its `first_payment` field, or worked out for records set by hand).
    pub(super) fn is_first_payment(&self, index: usize) -> bool {
        let payment = &self.payments[index];
        if let Some(first) = payment.get("first_payment").and_then(Value::as_bool) {
            return first;
        }
        let email = payment_email(payment);
        succeeded_payment(payment)
            && !self.payments[..index]
                .iter()
                .any(|p| succeeded_payment(p) && payment_email(p) == email)
    }

    /// `POST /v1/payments` `{customer_email, amount, currency, status}`.
    pub(super) fn create_payment(&mut self, body: &Value) -> (u16, Value) {
        let (Some(email), Some(amount)) = (
            str_field(body, "customer_email"),
            amount_field(body, "amount"),
        ) else {
            return (
                422,
                json!({"error": "customer_email and amount are required"}),
            );
        };
        let succeeded = match str_field(body, "status").unwrap_or("succeeded") {
            "succeeded" => true,
            "failed" => false,
            other => return (422, json!({"error": format!("unknown status {other}")})),
        };
        let currency = str_field(body, "currency").unwrap_or("EUR");
        (201, self.record_payment(email, amount, currency, succeeded))
    }

    /// `GET /v1/payments`: `{data: [...]}`, filtered by `status=` and
    /// `first=true` (or `first_payment=true`), at most `limit=`.
    pub(super) fn list_payments(&self, query: &str) -> (u16, Value) {
        let status = query_param(query, "status");
        let first = query_param(query, "first")
            .or_else(|| query_param(query, "first_payment"))
            .map(|v| v == "true");
        let limit = query_param(query, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(usize::MAX);
        let data: Vec<&Value> = (0..self.payments.len())
            .filter(|&i| {
                let p = &self.payments[i];
                status.as_deref().is_none_or(|s| payment_status(p) == s)
                    && first.is_none_or(|f| self.is_first_payment(i) == f)
            })
            .map(|i| &self.payments[i])
            .take(limit)
            .collect();
        (200, json!({"data": data}))
    }
}

fn payment_email(payment: &Value) -> String {
    str_field(payment, "customer_email")
        .unwrap_or_default()
        .to_lowercase()
}

/// A record without a status (set by hand) counts as succeeded.
fn payment_status(payment: &Value) -> &str {
    str_field(payment, "status").unwrap_or("succeeded")
}

fn succeeded_payment(payment: &Value) -> bool {
    payment_status(payment) == "succeeded"
}

//! Outbound webhooks: the stand-ins POST events to subscribed URLs, like the
//! real systems do. No signature and no event id are sent (the real referral
//! engine sends none; receivers dedupe on the body).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Waits between attempts: 3 attempts in all.
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(200)];
pub(super) const TIMEOUT: Duration = Duration::from_secs(5);

/// One finished webhook delivery (after its retries).
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub event: String,
    pub url: String,
    /// The last answer's HTTP status, if the last attempt got one.
    pub status: Option<u16>,
    /// The last attempt's transport error, if it got no answer.
    pub error: Option<String>,
    pub attempts: u32,
    /// The JSON body sent.
    pub body: Value,
}

impl Delivery {
    /// Answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A webhook waiting to be sent.
#[derive(Clone, Debug)]
pub(super) struct Outgoing {
    pub event: String,
    pub url: String,
    pub body: Value,
}

/// `StandIns::wait_for_deliveries` gave up.
#[derive(Debug, thiserror::Error)]
#[error("{finished} webhook deliveries finished within {waited:?}, expected {wanted}")]
pub struct DeliveriesTimeout {
    pub wanted: usize,
    pub finished: usize,
    pub waited: Duration,
}

/// POSTs `out`, retrying transport errors, 5xx and 429.
pub(super) async fn deliver(client: &reqwest::Client, out: Outgoing) -> Delivery {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, error) = match client.post(&out.url).json(&out.body).send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let retry = status.is_none_or(|s| s == 429 || s >= 500);
        match BACKOFF.get(attempts as usize - 1) {
            Some(wait) if retry => tokio::time::sleep(*wait).await,
            _ => {
                return Delivery {
                    event: out.event,
                    url: out.url,
                    status,
                    error,
                    attempts,
                    body: out.body,
                }
            }
        }
    }
}

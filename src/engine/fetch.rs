//! One request outside any execution: a poll's. It is built and sent as an
//! http step's would be (the connection's headers, retries and rate limit,
//! the outbound guard, a test's transport), but nothing is journaled: the
//! caller decides what the answer means.

use handlebars::Context;
use serde_json::Value;

use super::http::Request;
use super::pace::{pace_key, wait_turn};
use super::{Engine, Redactor};
use crate::plan::{HttpPlan, RetryPolicy};

/// An answer within `expect` (default 2xx).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub body: Value,
    /// `GET https://api.example/v1/invoices?...`, masked.
    pub summary: String,
}

/// Why there is no answer to use, masked, after every retry.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub status: Option<u16>,
}

impl Engine {
    /// Builds the request of `plan` over `ctx` and sends it, with retries.
    /// Query parameters that render empty are left out, so that a first
    /// poll's `created_after: "{{ cursor.date }}"` is not sent at all.
    pub async fn fetch(
        &self,
        plan: &HttpPlan,
        retry: Option<&RetryPolicy>,
        ctx: &Context,
        redactor: &Redactor,
    ) -> Result<Fetched, FetchError> {
        let mut request = Request::build(plan, ctx).map_err(|e| FetchError {
            message: redactor.string(format!("the request cannot be built: {}", e.0)),
            status: None,
        })?;
        drop_empty_query(&mut request.url);
        if let Some(crate::plan::AuthPlan::OAuth2(oauth)) = &plan.auth {
            self.sign_in(oauth, &plan.allowance, ctx, &mut request, None)
                .await
                .map_err(|e| FetchError {
                    message: e.masked(redactor),
                    status: None,
                })?;
        }
        let summary = request.summary(redactor);
        let policy = retry.unwrap_or(&RetryPolicy::NONE);
        let pace = match (plan.rate_limit, self.transport()) {
            (Some(limit), None) => Some((limit, pace_key(&request.url, limit), self.pacer())),
            _ => None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some((limit, key, pacer)) = &pace {
                wait_turn(pacer.as_ref(), key, *limit).await;
            }
            let expect = plan.expect.as_deref();
            let sender = super::Sender {
                step: "trigger",
                path: "trigger",
            };
            let result = match self.transport() {
                Some(t) => t.send(sender, &request, plan.request_timeout, expect).await,
                None => {
                    let outbound = self.outbound(&plan.allowance);
                    request.send(&outbound, plan.request_timeout, expect).await
                }
            };
            match result {
                Ok(response) => {
                    return Ok(Fetched {
                        status: response.status,
                        body: response.body,
                        summary,
                    })
                }
                Err(e) if e.retryable && attempt < policy.attempts => {
                    let delay =
                        policy.delay_with_hint(attempt, rand::random::<f64>(), e.retry_after);
                    match self.transport() {
                        Some(t) => t.pause(delay).await,
                        None => tokio::time::sleep(delay).await,
                    }
                }
                Err(e) => {
                    return Err(FetchError {
                        message: e.masked(redactor),
                        status: e.status,
                    })
                }
            }
        }
    }
}

fn drop_empty_query(url: &mut reqwest::Url) {
    if !url.query_pairs().any(|(_, v)| v.is_empty()) {
        return;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::drop_empty_query;

    #[test]
    fn empty_query_parameters_are_left_out() {
        let mut url = reqwest::Url::parse("https://x.test/a?after=&limit=10&page=").unwrap();
        drop_empty_query(&mut url);
        assert_eq!(url.as_str(), "https://x.test/a?limit=10");
        let mut url = reqwest::Url::parse("https://x.test/a?after=").unwrap();
        drop_empty_query(&mut url);
        assert_eq!(url.as_str(), "https://x.test/a");
    }
}

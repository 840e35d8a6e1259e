//! The transport of a test case: http steps get their answers from the
//! case's mocks, every attempt is written down for the expectations, no
//! request leaves the process, and waits between attempts pass in virtual
//! time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::model::{Mock, MockError, Mocks};
use crate::engine::{parse_retry_after, Request, Response, Sender, StepError, Transport};

/// The virtual clock of one case, in microseconds; moved only by the case
/// runner and by retry back-off.
#[derive(Clone)]
pub struct VirtualTime(Arc<AtomicI64>);

impl VirtualTime {
    pub fn starting(at: DateTime<Utc>) -> VirtualTime {
        VirtualTime(Arc::new(AtomicI64::new(at.timestamp_micros())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Moves forward to `at` (never back).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.0.fetch_max(at.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_micros() as i64, Ordering::SeqCst);
    }
}

/// One attempt an http step made.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub step: String,
    pub path: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

pub struct MockTransport {
    mocks: BTreeMap<String, Mocks>,
    time: VirtualTime,
    sent: Mutex<Vec<SentRequest>>,
    /// Per step path: answers used so far.
    used: Mutex<BTreeMap<String, usize>>,
}

impl MockTransport {
    pub fn new(mocks: BTreeMap<String, Mocks>, time: VirtualTime) -> MockTransport {
        MockTransport {
            mocks,
            time,
            sent: Mutex::new(Vec::new()),
            used: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.lock().expect("sent lock").clone()
    }

    /// The next answer for the step at `path`: a mock for that iteration
    /// (`lookup#1`) if there is one, else the step's. Each path keeps its
    /// own place in a list of answers, so the iterations of a concurrent
    /// `for_each` get theirs whatever order they run in.
    fn next_answer(&self, step: &str, path: &str) -> Option<Mock> {
        let last = path.rsplit('/').next().unwrap_or(path);
        let answers = self
            .mocks
            .get(last)
            .or_else(|| self.mocks.get(step))?
            .answers();
        let mut used = self.used.lock().expect("used lock");
        let n = used.entry(path.to_owned()).or_default();
        let answer = answers.get(*n).or_else(|| answers.last()).cloned();
        *n += 1;
        answer
    }
}

#[async_trait]
impl Transport for MockTransport {
    async fn send(
        &self,
        sender: Sender<'_>,
        request: &Request,
        timeout: Duration,
        expect: Option<&[u16]>,
    ) -> Result<Response, StepError> {
        self.sent.lock().expect("sent lock").push(SentRequest {
            step: sender.step.to_owned(),
            path: sender.path.to_owned(),
            method: request.method.as_str().to_owned(),
            url: request.url.to_string(),
            headers: request.headers.clone(),
            body: request.body_value(),
        });
        let Some(mock) = self.next_answer(sender.step, sender.path) else {
            return Err(StepError::fatal(format!(
                "no mock for step `{}`: the test would send {} {} (add `mocks: {{ {}: {{ status: 200, body: ... }} }}` to the case)",
                sender.step,
                request.method.as_str(),
                request.url,
                sender.step
            )));
        };
        match mock.error {
            Some(MockError::Timeout) => {
                self.time.advance(timeout);
                return Err(StepError::retryable(format!(
                    "no answer within {} (mocked timeout)",
                    crate::model::Duration(timeout)
                )));
            }
            Some(MockError::Connect) => {
                return Err(StepError::retryable(format!(
                    "cannot connect to {} (mocked connection error)",
                    request.url
                )))
            }
            None => {}
        }
        let headers: Map<String, Value> = mock
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        let retry_after = headers
            .get("retry-after")
            .and_then(Value::as_str)
            .and_then(parse_retry_after);
        let body = mock.body.clone().unwrap_or(Value::Null);
        request.judge(
            mock.status.unwrap_or(200),
            headers,
            body,
            retry_after,
            expect,
        )
    }

    async fn pause(&self, delay: Duration) {
        self.time.advance(delay);
    }
}

//! How an http step's request leaves the process. The engine sends over the
//! network unless given a [`Transport`]: `scenarist test` gives one that
//! answers from mocks and lets retry back-off pass in virtual time, so a
//! scenario's tests run offline, in milliseconds, on the real engine.

use std::time::Duration;

use async_trait::async_trait;

use super::http::{Request, Response};
use super::StepError;

/// Which step sends: its id, and its path (`route/big/notify#2` in loops).
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub step: &'a str,
    pub path: &'a str,
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// One attempt of an http step: the answer, judged against `expect`
    /// (see [`Request::judge`]), or why there is none.
    async fn send(
        &self,
        sender: Sender<'_>,
        request: &Request,
        timeout: Duration,
        expect: Option<&[u16]>,
    ) -> Result<Response, StepError>;

    /// The wait between two attempts.
    async fn pause(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }
}

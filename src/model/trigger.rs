//! How an execution starts: by hand, by a webhook, or on a schedule.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::HttpMethod;
use super::values::Duration;

/// Exactly one trigger; `manual` when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RawTrigger")]
pub enum Trigger {
    Manual(Manual),
    Webhook(Webhook),
    Schedule(Schedule),
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::Manual(Manual {})
    }
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual(_) => "manual",
            Trigger::Webhook(_) => "webhook",
            Trigger::Schedule(_) => "schedule",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manual {}

/// Served by the daemon at `/hooks/<path>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Unique within a directory of scenarios, e.g. `crm/deal-won`.
    pub path: String,
    #[serde(default = "default_webhook_method")]
    pub method: HttpMethod,
    pub auth: Option<WebhookAuth>,
    /// A template over the request (e.g. the sender's event id); a repeat starts nothing.
    pub dedupe: Option<String>,
    #[serde(default)]
    pub respond: WebhookRespond,
}

fn default_webhook_method() -> HttpMethod {
    HttpMethod::Post
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RawWebhookAuth")]
pub enum WebhookAuth {
    /// An HMAC-SHA256 signature of the raw body, compared in constant time.
    HmacSha256 {
        header: String,
        /// Usually `{{ env.SOME_SECRET }}`.
        secret: String,
        /// Text before the hex digest in the header, e.g. `sha256=`.
        #[serde(default)]
        prefix: String,
    },
    /// A shared token in a header.
    Token { header: String, secret: String },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookRespond {
    /// 202 with the execution id as soon as the event is stored.
    #[default]
    Immediately,
    /// Wait for the run and answer what its `respond` step produced.
    AfterRun,
}

/// Fires on a cron expression or a fixed interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// 5 or 6 fields (seconds first when 6).
    pub cron: Option<String>,
    pub every: Option<Duration>,
    /// An IANA time zone name (default UTC).
    pub timezone: Option<String>,
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// What to do with ticks missed while the daemon was down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    None,
    #[default]
    Last,
    All,
}

/// The written form of a trigger: one key naming the kind. serde_yaml reads
/// enums only from YAML tags, so the choice is made here, with a clear message.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Trigger", extend("minProperties" = 1, "maxProperties" = 1))]
struct RawTrigger {
    manual: Option<Manual>,
    webhook: Option<Webhook>,
    schedule: Option<Schedule>,
}

impl TryFrom<RawTrigger> for Trigger {
    type Error = String;

    fn try_from(raw: RawTrigger) -> Result<Self, Self::Error> {
        let mut found: Vec<Trigger> = Vec::new();
        found.extend(raw.manual.map(Trigger::Manual));
        found.extend(raw.webhook.map(Trigger::Webhook));
        found.extend(raw.schedule.map(Trigger::Schedule));
        match found.len() {
            1 => Ok(found.pop().expect("one trigger")),
            0 => Err("a trigger needs one of manual, webhook or schedule".to_owned()),
            _ => Err(format!(
                "a scenario has exactly one trigger, found {}",
                found
                    .iter()
                    .map(Trigger::kind)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WebhookAuth", extend("minProperties" = 1, "maxProperties" = 1))]
struct RawWebhookAuth {
    hmac_sha256: Option<HmacAuth>,
    token: Option<TokenAuth>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HmacAuth {
    header: String,
    secret: String,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenAuth {
    header: String,
    secret: String,
}

impl TryFrom<RawWebhookAuth> for WebhookAuth {
    type Error = String;

    fn try_from(raw: RawWebhookAuth) -> Result<Self, Self::Error> {
        match (raw.hmac_sha256, raw.token) {
            (Some(h), None) => Ok(WebhookAuth::HmacSha256 {
                header: h.header,
                secret: h.secret,
                prefix: h.prefix,
            }),
            (None, Some(t)) => Ok(WebhookAuth::Token {
                header: t.header,
                secret: t.secret,
            }),
            (None, None) => Err("`auth` needs `hmac_sha256` or `token`".to_owned()),
            (Some(_), Some(_)) => Err("`auth` takes `hmac_sha256` or `token`, not both".to_owned()),
        }
    }
}

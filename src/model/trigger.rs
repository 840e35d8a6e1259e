//! How an execution starts: by hand, by a webhook, on a schedule, or by
//! polling an API (`poll.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::HttpMethod;
use super::poll::Poll;
use super::values::Duration;

/// Exactly one trigger; `manual` when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RawTrigger")]
pub enum Trigger {
    Manual(Manual),
    Webhook(Webhook),
    Schedule(Schedule),
    Poll(Box<Poll>),
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
            Trigger::Poll(_) => "poll",
        }
    }

    /// One line for lists, pages and diagrams: `schedule every 15m`,
    /// `webhook POST /hooks/crm/deal-won`, `poll GET /v1/invoices every 1m`.
    pub fn describe(&self) -> String {
        let when = |cron: &Option<String>, every: &Option<Duration>, tz: &Option<String>| {
            let zone = tz.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
            match (cron, every) {
                (Some(cron), _) => format!("{cron}{zone}"),
                (_, Some(every)) => format!("every {every}"),
                _ => String::new(),
            }
        };
        match self {
            Trigger::Manual(_) => "manual".to_owned(),
            Trigger::Webhook(h) => format!(
                "webhook {} /hooks/{}",
                h.method.as_str(),
                h.path.trim_matches('/')
            ),
            Trigger::Schedule(s) => format!("schedule {}", when(&s.cron, &s.every, &s.timezone))
                .trim_end()
                .to_owned(),
            Trigger::Poll(p) => {
                let what = match (&p.request, &p.uses) {
                    (Some(r), _) => format!(
                        "{} {}",
                        r.method.as_str(),
                        r.path.as_deref().or(r.url.as_deref()).unwrap_or("")
                    ),
                    (None, Some(uses)) => uses.clone(),
                    (None, None) => String::new(),
                };
                format!("poll {what} {}", when(&p.cron, &p.every, &p.timezone))
                    .replace("  ", " ")
                    .trim_end()
                    .to_owned()
            }
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
        /// Usually `{{ env.SOME_SECRET }}`; several during a rotation (any one may match).
        secrets: Vec<String>,
        /// Text before the hex digest in the header, e.g. `sha256=`.
        #[serde(default)]
        prefix: String,
    },
    /// A shared token in a header.
    Token { header: String, secret: String },
    /// A sender's own signature scheme: the headers, the signed text and the
    /// replay window are the sender's, only the secrets are ours.
    Signed {
        scheme: SignatureScheme,
        /// Any one may match (rotation).
        secrets: Vec<String>,
        /// How far the signed timestamp may be from now; `None` for schemes
        /// that sign no timestamp (`github`).
        tolerance: Option<Duration>,
    },
}

/// Webhook signature schemes of well-known senders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// `Stripe-Signature: t=..,v1=..` over `t.body`.
    Stripe,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (Standard Webhooks,
    /// Svix) over `id.timestamp.body`, with a `whsec_` base64 secret.
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=..` over the body; no timestamp.
    Github,
    /// `X-Slack-Signature: v0=..` over `v0:timestamp:body`.
    Slack,
    /// `X-HubSpot-Signature-v3`: base64 over method, URL, body and the
    /// millisecond timestamp.
    Hubspot,
}

impl SignatureScheme {
    pub const ALL: [SignatureScheme; 5] = [
        SignatureScheme::Stripe,
        SignatureScheme::StandardWebhooks,
        SignatureScheme::Github,
        SignatureScheme::Slack,
        SignatureScheme::Hubspot,
    ];

    /// The name written under `auth:`.
    pub fn name(self) -> &'static str {
        match self {
            SignatureScheme::Stripe => "stripe",
            SignatureScheme::StandardWebhooks => "standard_webhooks",
            SignatureScheme::Github => "github",
            SignatureScheme::Slack => "slack",
            SignatureScheme::Hubspot => "hubspot",
        }
    }

    /// Whether the scheme signs a timestamp, so a replay window applies.
    pub fn is_timestamped(self) -> bool {
        !matches!(self, SignatureScheme::Github)
    }
}

/// The replay window of timestamped signatures when `tolerance` is not given,
/// as Stripe, Slack and Standard Webhooks recommend.
pub const DEFAULT_SIGNATURE_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

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
    poll: Option<Box<Poll>>,
}

impl TryFrom<RawTrigger> for Trigger {
    type Error = String;

    fn try_from(raw: RawTrigger) -> Result<Self, Self::Error> {
        let mut found: Vec<Trigger> = Vec::new();
        found.extend(raw.manual.map(Trigger::Manual));
        found.extend(raw.webhook.map(Trigger::Webhook));
        found.extend(raw.schedule.map(Trigger::Schedule));
        found.extend(raw.poll.map(Trigger::Poll));
        match found.len() {
            1 => Ok(found.pop().expect("one trigger")),
            0 => Err("a trigger needs one of manual, webhook, schedule or poll".to_owned()),
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
    stripe: Option<SignedAuth>,
    standard_webhooks: Option<SignedAuth>,
    github: Option<SignedAuth>,
    slack: Option<SignedAuth>,
    hubspot: Option<SignedAuth>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HmacAuth {
    header: String,
    secret: Option<String>,
    /// Instead of `secret` during a rotation: any one may match.
    secrets: Option<Vec<String>>,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenAuth {
    header: String,
    secret: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SignedAuth {
    secret: Option<String>,
    /// Instead of `secret` during a rotation: any one may match.
    secrets: Option<Vec<String>>,
    /// How far the signed timestamp may be from now (default 5m); older or
    /// newer requests are refused as replays.
    tolerance: Option<Duration>,
}

/// `secret: X` or `secrets: [X, Y]`, exactly one, never empty.
fn one_or_more(
    scheme: &str,
    secret: Option<String>,
    secrets: Option<Vec<String>>,
) -> Result<Vec<String>, String> {
    match (secret, secrets) {
        (Some(one), None) => Ok(vec![one]),
        (None, Some(many)) if many.is_empty() => {
            Err(format!("`{scheme}.secrets` needs at least one secret"))
        }
        (None, Some(many)) => Ok(many),
        (None, None) => Err(format!(
            "`{scheme}` needs `secret` (or `secrets` during a rotation)"
        )),
        (Some(_), Some(_)) => Err(format!("`{scheme}` takes `secret` or `secrets`, not both")),
    }
}

impl TryFrom<RawWebhookAuth> for WebhookAuth {
    type Error = String;

    fn try_from(raw: RawWebhookAuth) -> Result<Self, Self::Error> {
        let mut found: Vec<WebhookAuth> = Vec::new();
        if let Some(h) = raw.hmac_sha256 {
            found.push(WebhookAuth::HmacSha256 {
                header: h.header,
                secrets: one_or_more("hmac_sha256", h.secret, h.secrets)?,
                prefix: h.prefix,
            });
        }
        if let Some(t) = raw.token {
            found.push(WebhookAuth::Token {
                header: t.header,
                secret: t.secret,
            });
        }
        let signed = [
            (SignatureScheme::Stripe, raw.stripe),
            (SignatureScheme::StandardWebhooks, raw.standard_webhooks),
            (SignatureScheme::Github, raw.github),
            (SignatureScheme::Slack, raw.slack),
            (SignatureScheme::Hubspot, raw.hubspot),
        ];
        for (scheme, auth) in signed {
            let Some(auth) = auth else { continue };
            if auth.tolerance.is_some() && !scheme.is_timestamped() {
                return Err(format!(
                    "`{}` signatures carry no timestamp, so `tolerance` does not apply (repeats are stopped by the delivery id)",
                    scheme.name()
                ));
            }
            found.push(WebhookAuth::Signed {
                scheme,
                secrets: one_or_more(scheme.name(), auth.secret, auth.secrets)?,
                tolerance: auth.tolerance,
            });
        }
        const KINDS: &str =
            "`hmac_sha256`, `token`, `stripe`, `standard_webhooks`, `github` or `slack`";
        match found.len() {
            1 => Ok(found.pop().expect("one auth")),
            0 => Err(format!("`auth` needs one of {KINDS}")),
            _ => Err(format!("`auth` takes one of {KINDS}, not several")),
        }
    }
}

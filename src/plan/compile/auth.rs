//! The webhook's `auth`: its secrets are templates (usually `{{ env.X }}`),
//! compiled once like every other template, so a typo in an env name is a
//! positioned error at load time, not a 401 in production.

use super::{Compiler, Scope};
use crate::model::{WebhookAuth, DEFAULT_SIGNATURE_TOLERANCE};
use crate::plan::{Expr, WebhookAuthPlan};

impl Compiler<'_> {
    pub(super) fn webhook_auth(&mut self, auth: &WebhookAuth, scope: &Scope) -> WebhookAuthPlan {
        match auth {
            WebhookAuth::HmacSha256 {
                header,
                secrets,
                prefix,
            } => WebhookAuthPlan::HmacSha256 {
                header: header.clone(),
                secrets: self.secrets(secrets, "hmac_sha256", scope),
                prefix: prefix.clone(),
            },
            WebhookAuth::Token { header, secret } => WebhookAuthPlan::Token {
                header: header.clone(),
                secret: self.expr_str(secret, "trigger.webhook.auth.token.secret", scope),
            },
            WebhookAuth::Signed {
                scheme,
                secrets,
                tolerance,
            } => {
                let tolerance = match (scheme.is_timestamped(), tolerance) {
                    (false, _) => std::time::Duration::ZERO,
                    (true, None) => DEFAULT_SIGNATURE_TOLERANCE,
                    (true, Some(t)) => {
                        let t = t.as_std();
                        if t < std::time::Duration::from_secs(1) {
                            self.error(
                                &format!("trigger.webhook.auth.{}.tolerance", scheme.name()),
                                "the tolerance must be at least 1s (senders sign whole seconds)",
                            );
                        }
                        t
                    }
                };
                WebhookAuthPlan::Signed {
                    scheme: *scheme,
                    secrets: self.secrets(secrets, scheme.name(), scope),
                    tolerance,
                }
            }
        }
    }

    /// `secret` when there is one, `secrets[i]` during a rotation, so each error
    /// points at the line the user wrote.
    fn secrets(&mut self, secrets: &[String], kind: &str, scope: &Scope) -> Vec<Expr> {
        let single = secrets.len() == 1;
        secrets
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                let path = if single {
                    format!("trigger.webhook.auth.{kind}.secret")
                } else {
                    format!("trigger.webhook.auth.{kind}.secrets[{i}]")
                };
                self.expr_str(secret, &path, scope)
            })
            .collect()
    }
}

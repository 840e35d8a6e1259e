//! The trigger: a webhook's path, dedupe key and auth (`auth.rs`), or a
//! schedule's cron or interval in its time zone.

use super::{Compiler, Scope};
use crate::diagnostic::did_you_mean;
use crate::model::Trigger;
use crate::plan::{ScheduleTrigger, WebhookPlan};

impl Compiler<'_> {
    pub(super) fn check_trigger(&mut self) -> (Option<ScheduleTrigger>, Option<WebhookPlan>) {
        let trigger_scope = Scope::default();
        match &self.loaded.scenario.trigger {
            Trigger::Manual(_) => (None, None),
            Trigger::Webhook(hook) => {
                let path = hook.path.trim_start_matches('/');
                let valid = !path.is_empty()
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
                if !valid {
                    self.error(
                        "trigger.webhook.path",
                        format!(
                            "invalid webhook path `{}`: use letters, digits, `/`, `-`, `_` and `.`",
                            hook.path
                        ),
                    );
                }
                let dedupe = hook.dedupe.as_ref().map(|dedupe| {
                    let expr = self.expr_str(dedupe, "trigger.webhook.dedupe", &trigger_scope);
                    if expr.is_literal() {
                        self.error("trigger.webhook.dedupe", "the dedupe key must be a template over the request, e.g. `{{ trigger.body.event_id }}`");
                    }
                    expr
                });
                let auth = hook
                    .auth
                    .as_ref()
                    .map(|auth| self.webhook_auth(auth, &trigger_scope));
                let webhook = WebhookPlan {
                    path: path.to_owned(),
                    method: hook.method,
                    auth,
                    dedupe,
                    respond: hook.respond,
                };
                (None, Some(webhook))
            }
            Trigger::Schedule(schedule) => {
                let schedule_plan = self.schedule(
                    "trigger.schedule",
                    schedule.cron.as_deref(),
                    schedule.every,
                    schedule.timezone.as_deref(),
                    schedule.catch_up,
                );
                (Some(schedule_plan), None)
            }
            // Compiled by `check_poll` (`poll.rs`).
            Trigger::Poll(_) => (None, None),
        }
    }
}

impl Compiler<'_> {
    /// A cron expression or an interval, in a time zone: a schedule's or a poll's.
    pub(super) fn schedule(
        &mut self,
        base: &str,
        cron: Option<&str>,
        every: Option<crate::model::Duration>,
        timezone: Option<&str>,
        catch_up: crate::model::CatchUp,
    ) -> ScheduleTrigger {
        let timezone = match timezone {
            None => chrono_tz::UTC,
            Some(name) => name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                let hint = did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.error(
                    &format!("{base}.timezone"),
                    format!(
                        "unknown time zone `{name}`{hint} (use an IANA name such as Europe/Paris)"
                    ),
                );
                chrono_tz::UTC
            }),
        };
        let what = if base.ends_with("poll") {
            "a poll"
        } else {
            "a schedule"
        };
        let cron = match (cron, every) {
            (Some(_), Some(_)) => {
                self.error(base, format!("{what} takes `cron` or `every`, not both"));
                None
            }
            (None, None) => {
                self.error(
                    base,
                    format!("{what} needs `cron` (e.g. \"*/15 * * * *\") or `every` (e.g. 15m)"),
                );
                None
            }
            (Some(text), None) => {
                let fields = text.split_whitespace().count();
                if !(5..=6).contains(&fields) {
                    self.error(&format!("{base}.cron"), format!("invalid cron expression `{text}`: expected 5 fields (minute hour day month weekday) or 6 (seconds first), found {fields}"));
                    None
                } else {
                    match text.parse::<croner::Cron>() {
                        Ok(c) => Some(c),
                        Err(e) => {
                            self.error(
                                &format!("{base}.cron"),
                                format!("invalid cron expression `{text}`: {e}"),
                            );
                            None
                        }
                    }
                }
            }
            (None, Some(every)) => {
                if every.as_std() < std::time::Duration::from_secs(1) {
                    self.error(
                        &format!("{base}.every"),
                        format!("{what} cannot fire more often than every 1s"),
                    );
                }
                None
            }
        };
        ScheduleTrigger {
            cron,
            every: every.map(|d| d.as_std()),
            timezone,
            catch_up,
        }
    }
}

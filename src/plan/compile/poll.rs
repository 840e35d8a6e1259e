//! The `poll` trigger: its schedule, its request (an http step's, whose
//! templates read `cursor` and `page`), and how its answer is read (`items`,
//! `id`, `date`, `next_page`, each checked where it is written).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{hex, Compiler, Scope};
use crate::model::{CatchUp, Trigger};
use crate::plan::poll::{PollPlan, PollStart, DEFAULT_MAX_ITEMS, DEFAULT_MAX_PAGES};
use crate::plan::Expr;

const BASE: &str = "trigger.poll";

impl Compiler<'_> {
    pub(super) fn check_poll(&mut self) -> Option<PollPlan> {
        let Trigger::Poll(poll) = &self.loaded.scenario.trigger else {
            return None;
        };
        let schedule = self.schedule(
            BASE,
            poll.cron.as_deref(),
            poll.every,
            poll.timezone.as_deref(),
            CatchUp::None,
        );
        let request_scope = Scope {
            loop_names: vec!["cursor".to_owned(), "page".to_owned()],
            ..Scope::default()
        };
        let answer = match (&poll.request, &poll.uses) {
            (Some(request), None) => {
                if !poll.with.is_empty() {
                    self.error(
                        &format!("{BASE}.with"),
                        "`with` is the input of an app's watch: it goes with `uses`",
                    );
                }
                let (plan, retry) = self.http(request, &format!("{BASE}.request"), &request_scope);
                Some((plan, retry, None))
            }
            (None, Some(uses)) => self.app_watch(uses, &poll.with, &request_scope),
            (Some(_), Some(_)) => {
                self.error(BASE, "a poll takes `request` or `uses`, not both");
                None
            }
            (None, None) => {
                self.error(BASE, "a poll needs `request` (an http request) or `uses` (an app's watch, e.g. `referral-factory.watch_users`)");
                None
            }
        };
        let (request, retry, watch) = answer?;
        let text = |own: &Option<String>, app: Option<&String>| own.clone().or(app.cloned());
        let Some(items_text) = text(&poll.items, watch.as_ref().map(|w| &w.0)) else {
            self.error(
                BASE,
                "a poll needs `items`: the JSONPath of the items in an answer, e.g. `$.data[*]`",
            );
            return None;
        };
        let Some(id_text) = text(&poll.id, watch.as_ref().map(|w| &w.1)) else {
            self.error(
                BASE,
                "a poll needs `id`: what makes an item the same item, e.g. `{{ item.id }}`",
            );
            return None;
        };
        let date_text = text(&poll.date, watch.as_ref().and_then(|w| w.2.as_ref()));
        let next_page_text = text(&poll.next_page, watch.as_ref().and_then(|w| w.3.as_ref()));
        let items = self.answer_path(&items_text, "items");
        let next_page = next_page_text
            .as_ref()
            .map(|text| self.answer_path(text, "next_page"));
        let item_scope = Scope {
            loop_names: vec!["item".to_owned()],
            ..Scope::default()
        };
        let id = self.expr_str(&id_text, &format!("{BASE}.id"), &item_scope);
        if id.is_literal() {
            self.error(
                &format!("{BASE}.id"),
                "the id must be a template over the item, e.g. `{{ item.id }}`",
            );
        }
        let date = date_text.as_ref().map(|text| {
            let date = self.expr_str(text, &format!("{BASE}.date"), &item_scope);
            if date.is_literal() {
                self.error(
                    &format!("{BASE}.date"),
                    "the date must be a template over the item, e.g. `{{ item.created }}`",
                );
            }
            date
        });
        if poll.changes && date_text.is_none() {
            self.error(
                &format!("{BASE}.changes"),
                "`changes` runs an item again when its date is later, so it needs `date`",
            );
        }
        let start = match poll.start.as_deref() {
            None => PollStart::Now,
            Some(text) => PollStart::parse(text).unwrap_or_else(|e| {
                self.error(&format!("{BASE}.start"), e);
                PollStart::Now
            }),
        };
        if matches!(start, PollStart::At(_)) && date_text.is_none() {
            self.error(
                &format!("{BASE}.start"),
                "a start time picks items by their date, so it needs `date`",
            );
        }
        for (field, value) in [("max_pages", poll.max_pages), ("max_items", poll.max_items)] {
            if value == Some(0) {
                self.error(
                    &format!("{BASE}.{field}"),
                    format!("`{field}` must be at least 1"),
                );
            }
        }
        if next_page_text.is_none() && poll.max_pages.is_some() {
            self.error(
                &format!("{BASE}.max_pages"),
                "`max_pages` needs `next_page`: the JSONPath of the next page's token",
            );
        }
        let identity = serde_json::json!([
            poll.request,
            poll.uses,
            poll.with,
            items_text,
            id_text,
            date_text
        ]);
        Some(PollPlan {
            schedule,
            request,
            retry,
            items_container: items_text
                .trim()
                .strip_suffix("[*]")
                .filter(|prefix| prefix.len() > 1)
                .and_then(|prefix| Expr::compile_str(prefix).ok()),
            items,
            id,
            date,
            next_page,
            max_pages: poll.max_pages.unwrap_or(DEFAULT_MAX_PAGES).max(1),
            start,
            max_items: poll.max_items.unwrap_or(DEFAULT_MAX_ITEMS).max(1),
            changes: poll.changes,
            batch: poll.batch,
            fingerprint: hex(&Sha256::digest(identity.to_string().as_bytes())),
        })
    }

    /// A JSONPath over the answer's body (`$...`), compiled here.
    fn answer_path(&mut self, text: &str, field: &str) -> Expr {
        let path = format!("{BASE}.{field}");
        if !text.trim_start().starts_with('$') {
            self.error(
                &path,
                format!("`{text}` is not a JSONPath: it reads the answer's body from its root, e.g. `$.data[*]`"),
            );
            return Expr::Literal(Value::Null);
        }
        match Expr::compile_str(text) {
            Ok(expr) => expr,
            Err(e) => {
                self.error(&path, e);
                Expr::Literal(Value::Null)
            }
        }
    }
}

/// What an app's watch gives a poll: its items, id, date and next page, as written.
type WatchTexts = (String, String, Option<String>, Option<String>);

impl Compiler<'_> {
    /// `uses: APP.TRIGGER`: the app's watch as a request, with its texts.
    fn app_watch(
        &mut self,
        uses: &str,
        with: &serde_json::Map<String, Value>,
        scope: &Scope,
    ) -> Option<(
        crate::plan::HttpPlan,
        Option<crate::plan::RetryPolicy>,
        Option<WatchTexts>,
    )> {
        let at = format!("{BASE}.uses");
        let Some((app_name, trigger_name)) = uses.split_once('.') else {
            self.error(
                &at,
                format!("`{uses}` is not `APP.TRIGGER`, e.g. `referral-factory.watch_users`"),
            );
            return None;
        };
        let Some(app) = self.apps.get(app_name).cloned() else {
            let hint =
                crate::diagnostic::did_you_mean(app_name, self.apps.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
            self.error(&at, format!("unknown app `{app_name}`{hint}"));
            return None;
        };
        let Some(trigger) = app.triggers.get(trigger_name) else {
            let hint = crate::diagnostic::did_you_mean(
                trigger_name,
                app.triggers.keys().map(String::as_str),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| match app.triggers.is_empty() {
                true => " (it offers none)".to_owned(),
                false => format!(
                    " (it offers {})",
                    app.triggers.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
            self.error(
                &at,
                format!("`{app_name}` has no watch `{trigger_name}`{hint}"),
            );
            return None;
        };
        let (plan, retry) = self.app_call(&app, &trigger.action, uses, with, None, BASE, scope);
        let texts = (
            trigger.items.clone(),
            trigger.id.clone(),
            trigger.date.clone(),
            trigger.next_page.clone(),
        );
        Some((plan, retry, Some(texts)))
    }
}

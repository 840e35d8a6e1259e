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
        let (request, retry) = self.http(&poll.request, &format!("{BASE}.request"), &request_scope);
        let items = self.answer_path(&poll.items, "items");
        let next_page = poll
            .next_page
            .as_ref()
            .map(|text| self.answer_path(text, "next_page"));
        let item_scope = Scope {
            loop_names: vec!["item".to_owned()],
            ..Scope::default()
        };
        let id = self.expr_str(&poll.id, &format!("{BASE}.id"), &item_scope);
        if id.is_literal() {
            self.error(
                &format!("{BASE}.id"),
                "the id must be a template over the item, e.g. `{{ item.id }}`",
            );
        }
        let date = poll.date.as_ref().map(|text| {
            let date = self.expr_str(text, &format!("{BASE}.date"), &item_scope);
            if date.is_literal() {
                self.error(
                    &format!("{BASE}.date"),
                    "the date must be a template over the item, e.g. `{{ item.created }}`",
                );
            }
            date
        });
        if poll.changes && poll.date.is_none() {
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
        if matches!(start, PollStart::At(_)) && poll.date.is_none() {
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
        if poll.next_page.is_none() && poll.max_pages.is_some() {
            self.error(
                &format!("{BASE}.max_pages"),
                "`max_pages` needs `next_page`: the JSONPath of the next page's token",
            );
        }
        let identity = serde_json::json!([poll.request, poll.items, poll.id, poll.date]);
        Some(PollPlan {
            schedule,
            request,
            retry,
            items_container: poll
                .items
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

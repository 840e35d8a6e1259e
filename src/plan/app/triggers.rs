//! An app's watches (`triggers:`), compiled: the request as an action's
//! (its templates also read `cursor` and `page`), and how the answer is read,
//! checked here with positions in the app file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ActionPlan, AppCompiler};
use crate::load::join_key;
use crate::model::{Action, App};
use crate::plan::expr::Expr;

/// One watch an app offers.
#[derive(Debug)]
pub struct TriggerPlan {
    pub action: ActionPlan,
    /// As written; a scenario's poll compiles them (it may replace them).
    pub items: String,
    pub id: String,
    pub date: Option<String>,
    pub next_page: Option<String>,
}

impl AppCompiler<'_> {
    pub(super) fn triggers(&mut self, app: &App) -> BTreeMap<String, TriggerPlan> {
        let mut triggers = BTreeMap::new();
        for (name, trigger) in &app.triggers {
            let base = join_key("triggers", name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
            {
                self.error(
                    &base,
                    format!("`{name}` is not a trigger name: use lowercase letters, digits and _"),
                );
            }
            let action = Action {
                description: trigger.description.clone(),
                input: trigger.input.clone(),
                request: trigger.request.clone(),
                expect: trigger.expect.clone(),
                output: None,
            };
            let paths = [
                ("items", Some(&trigger.items)),
                ("next_page", trigger.next_page.as_ref()),
            ];
            for (field, path) in paths {
                let Some(path) = path else { continue };
                let at = format!("{base}.{field}");
                if !path.trim_start().starts_with('$') {
                    self.error(&at, format!("`{path}` is not a JSONPath: it reads the answer's body from its root, e.g. `$.data[*]`"));
                } else if let Err(e) = Expr::compile_str(path) {
                    self.error(&at, e);
                }
            }
            for (field, text) in [("id", Some(&trigger.id)), ("date", trigger.date.as_ref())] {
                let Some(text) = text else { continue };
                let at = format!("{base}.{field}");
                if self
                    .expr(&Value::String(text.clone()), &at, &["item"])
                    .is_literal()
                {
                    self.error(
                        &at,
                        format!("the {field} must be a template over the item, e.g. `{{{{ item.id }}}}`"),
                    );
                }
            }
            let roots = ["input", "env", "cursor", "page"];
            if let Some(plan) = self.action(&base, &action, &roots) {
                triggers.insert(
                    name.clone(),
                    TriggerPlan {
                        action: plan,
                        items: trigger.items.clone(),
                        id: trigger.id.clone(),
                        date: trigger.date.clone(),
                        next_page: trigger.next_page.clone(),
                    },
                );
            }
        }
        triggers
    }
}

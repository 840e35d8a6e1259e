//! The `store` step: one operation (`get`, `put`, `delete`, `increment`) on
//! one key of a named data store.

use serde_json::Value;

use super::{Compiler, Scope};
use crate::plan::{Expr, StoreOpPlan, StorePlan};

impl Compiler<'_> {
    pub(super) fn store(
        &mut self,
        store: &crate::model::StoreStep,
        base: &str,
        scope: &Scope,
    ) -> StorePlan {
        if !crate::model::StepId::from_str_checked(&store.name) {
            self.error(
                &format!("{base}.name"),
                format!(
                    "`{}` is not a data store name: use lowercase letters, digits and _",
                    store.name
                ),
            );
        }
        let ops = [
            ("get", &store.get),
            ("put", &store.put),
            ("delete", &store.delete),
            ("increment", &store.increment),
        ];
        let given: Vec<(&str, &String)> = ops
            .iter()
            .filter_map(|(name, key)| key.as_ref().map(|k| (*name, k)))
            .collect();
        let (verb, key_text) = match given.as_slice() {
            [one] => *one,
            [] => {
                self.error(base, "a store step needs exactly one of `get`, `put`, `delete`, `increment` (each names the key)");
                return StorePlan {
                    name: store.name.clone(),
                    key: Expr::Literal(Value::Null),
                    op: StoreOpPlan::Get,
                    ttl: None,
                };
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
                self.error(
                    base,
                    format!(
                        "a store step does one operation, found {}",
                        names.join(", ")
                    ),
                );
                several[0]
            }
        };
        let key = self.expr_str(key_text, &format!("{base}.{verb}"), scope);
        let value = store
            .value
            .as_ref()
            .map(|v| self.expr(v, &format!("{base}.value"), scope));
        let op = match (verb, value) {
            ("put", Some(value)) => StoreOpPlan::Put(value),
            ("put", None) => {
                self.error(base, "`put` needs a `value` to write");
                StoreOpPlan::Put(Expr::Literal(Value::Null))
            }
            ("increment", by) => StoreOpPlan::Increment(by),
            (other, Some(_)) => {
                self.error(
                    &format!("{base}.value"),
                    format!("`value` is not used by `{other}`"),
                );
                StoreOpPlan::Get
            }
            ("delete", None) => StoreOpPlan::Delete,
            _ => StoreOpPlan::Get,
        };
        if store.ttl.is_some() && !matches!(op, StoreOpPlan::Put(_) | StoreOpPlan::Increment(_)) {
            self.error(
                &format!("{base}.ttl"),
                "`ttl` applies to what `put` or `increment` writes",
            );
        }
        StorePlan {
            name: store.name.clone(),
            key,
            op,
            ttl: store.ttl.map(|d| d.as_std()),
        }
    }
}

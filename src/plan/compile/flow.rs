//! The steps that shape the flow: `router` (routes, each a scope of its own),
//! `for_each` (items, the loop's name, concurrency) and `respond` (the
//! webhook's answer).

use std::collections::HashSet;

use super::{Compiler, Scope, ROOTS};
use crate::model::{ForEachStep, RespondStep, RouterStep, Step};
use crate::plan::{Expr, ForEachPlan, PlanKind, RespondPlan, RoutePlan, RouterPlan};

impl Compiler<'_> {
    pub(super) fn router(
        &mut self,
        router: &RouterStep,
        step: &Step,
        path: &str,
        scope: &Scope,
    ) -> PlanKind {
        let base = format!("{path}.router");
        if router.routes.is_empty() {
            self.error(
                &format!("{base}.routes"),
                "a router needs at least one route",
            );
        }
        let mut names = HashSet::new();
        let mut fallbacks = 0;
        let mut routes = Vec::new();
        for (ri, route) in router.routes.iter().enumerate() {
            let rpath = format!("{base}.routes[{ri}]");
            if !names.insert(route.name.clone()) {
                self.error(
                    &format!("{rpath}.name"),
                    format!("duplicate route name `{}`", route.name),
                );
            }
            if route.when.is_none() {
                fallbacks += 1;
                if fallbacks > 1 {
                    self.error(
                        &rpath,
                        "only one route may omit `when` (the fallback route)",
                    );
                }
            }
            if route.steps.is_empty() {
                self.error(&format!("{rpath}.steps"), "a route needs at least one step");
            }
            let when = route
                .when
                .as_ref()
                .map(|c| self.cond(c, &format!("{rpath}.when"), scope));
            let mut inner = scope.clone();
            inner
                .enclosures
                .push(format!("route `{}` of step `{}`", route.name, step.id));
            let steps = self.steps(&route.steps, &format!("{rpath}.steps"), &mut inner);
            routes.push(RoutePlan {
                name: route.name.clone(),
                when,
                steps,
            });
        }
        PlanKind::Router(RouterPlan {
            mode: router.mode,
            routes,
        })
    }

    pub(super) fn for_each(
        &mut self,
        each: &ForEachStep,
        step: &Step,
        path: &str,
        scope: &Scope,
    ) -> PlanKind {
        let base = format!("{path}.for_each");
        let items = self.expr(&each.items, &format!("{base}.items"), scope);
        if matches!(items, Expr::Literal(ref v) if !v.is_array()) {
            self.error(
                &format!("{base}.items"),
                "`items` must be a list or an expression that gives one",
            );
        }
        let name_ok = crate::model::StepId::from_str_checked(&each.as_name)
            && !ROOTS.contains(&each.as_name.as_str())
            && each.as_name != "index";
        if !name_ok {
            self.error(&format!("{base}.as"), format!("`as: {}` must be a lowercase name other than trigger, steps, vars, env, execution and index", each.as_name));
        }
        if each.concurrency == 0 || each.concurrency > 64 {
            self.error(
                &format!("{base}.concurrency"),
                format!(
                    "concurrency must be between 1 and 64, found {}",
                    each.concurrency
                ),
            );
        }
        if each.steps.is_empty() {
            self.error(
                &format!("{base}.steps"),
                "a for_each needs at least one step",
            );
        }
        let mut inner = scope.clone();
        inner.loop_names.push(each.as_name.clone());
        inner.enclosures.push(format!("the loop `{}`", step.id));
        let steps = self.steps(&each.steps, &format!("{base}.steps"), &mut inner);
        let collect = each
            .collect
            .as_ref()
            .map(|v| self.expr(v, &format!("{base}.collect"), &inner));
        PlanKind::ForEach(Box::new(ForEachPlan {
            items,
            as_name: each.as_name.clone(),
            concurrency: each.concurrency.clamp(1, 64) as usize,
            steps,
            collect,
        }))
    }

    pub(super) fn respond(&mut self, respond: &RespondStep, path: &str, scope: &Scope) -> PlanKind {
        let base = format!("{path}.respond");
        if !(100..=599).contains(&respond.status) {
            self.error(
                &format!("{base}.status"),
                format!("{} is not an HTTP status (100 to 599)", respond.status),
            );
        }
        let headers = respond
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    self.expr(v, &format!("{base}.headers.{k}"), scope),
                )
            })
            .collect();
        let body = respond
            .body
            .as_ref()
            .map(|b| self.expr(b, &format!("{base}.body"), scope));
        PlanKind::Respond(RespondPlan {
            status: respond.status,
            headers,
            body,
        })
    }
}

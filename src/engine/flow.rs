//! Steps that hold other steps: routers and loops.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use handlebars::Context;
use serde_json::Value;

use super::execution::{ExecutionError, StepStatus};
use super::run::{Interpreter, Outcome, StepRun};
use crate::model::RouterMode;
use crate::plan::{ForEachPlan, RouterPlan};

impl Interpreter<'_> {
    pub(super) async fn router(
        &self,
        run: &StepRun<'_>,
        router: &RouterPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let mut taken = Vec::new();
        for (i, route) in router.routes.iter().enumerate() {
            if let Some(when) = &route.when {
                match when.eval(ctx) {
                    Ok(true) => {
                        taken.push(i);
                        if router.mode == RouterMode::First {
                            break;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        return self
                            .step_failed(run, ctx, format!("route `{}`: {e}", route.name), 1, None)
                            .await
                    }
                }
            }
        }
        if taken.is_empty() {
            if let Some(fallback) = router.routes.iter().position(|r| r.when.is_none()) {
                taken.push(fallback);
            }
        }
        let names: Vec<Value> = taken
            .iter()
            .map(|&i| Value::String(router.routes[i].name.clone()))
            .collect();
        for &i in &taken {
            let route = &router.routes[i];
            let at = run.at.route(run.step.id.as_str(), &route.name);
            match Box::pin(self.run_block(&route.steps, ctx, &at)).await {
                Outcome::Continue | Outcome::Filtered => {}
                // The router has not finished: it runs again when the execution resumes.
                stopped @ (Outcome::Aborted(_) | Outcome::Waiting(_) | Outcome::Rejected(_)) => {
                    return stopped
                }
                failed @ (Outcome::Failed(_) | Outcome::Incomplete(_)) => {
                    let record = self.record(
                        run,
                        StepStatus::Failed,
                        Value::Array(names),
                        Some(format!("route `{}` failed", route.name)),
                        1,
                    );
                    return self.keep(record, failed).await;
                }
            }
        }
        let detail = if names.is_empty() {
            "no route matched".to_owned()
        } else {
            format!(
                "routes: {}",
                taken
                    .iter()
                    .map(|&i| router.routes[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        self.succeeded(run, ctx, Value::Array(names), 1, Some(detail))
            .await
    }

    pub(super) async fn for_each(
        &self,
        run: &StepRun<'_>,
        each: &ForEachPlan,
        ctx: &mut Context,
    ) -> Outcome {
        let items = match each.items.eval(ctx) {
            Ok(Value::Array(items)) => items,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                let kind = if other.is_object() {
                    "a map"
                } else {
                    "a single value"
                };
                return self
                    .step_failed(
                        run,
                        ctx,
                        format!("`items` must give a list, but gave {kind}"),
                        1,
                        None,
                    )
                    .await;
            }
            Err(e) => {
                return self
                    .step_failed(run, ctx, format!("`items`: {e}"), 1, None)
                    .await
            }
        };
        let total = items.len();
        let mut collected: Vec<(usize, Value)> = Vec::with_capacity(total);
        let outcome = if each.concurrency <= 1 || total <= 1 {
            let saved = take_loop_names(ctx, &each.as_name);
            let mut outcome = Outcome::Continue;
            for (index, item) in items.into_iter().enumerate() {
                match self.iteration(run, each, ctx, index, item).await {
                    (Outcome::Continue, Some(value)) => collected.push((index, value)),
                    (Outcome::Continue | Outcome::Filtered, _) => {}
                    (failed, _) => {
                        outcome = failed;
                        break;
                    }
                }
            }
            restore_loop_names(ctx, &each.as_name, saved);
            outcome
        } else {
            let next = AtomicUsize::new(0);
            let stop = AtomicBool::new(false);
            let results = Mutex::new(Vec::with_capacity(total));
            let (items, next, stop, results) = (&items, &next, &stop, &results);
            let workers = (0..each.concurrency.min(total)).map(|_| {
                let mut worker_ctx = ctx.clone();
                async move {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= total || stop.load(Ordering::Relaxed) {
                            return Outcome::Continue;
                        }
                        match self
                            .iteration(run, each, &mut worker_ctx, index, items[index].clone())
                            .await
                        {
                            (Outcome::Continue, Some(value)) => {
                                results.lock().expect("results lock").push((index, value))
                            }
                            (Outcome::Continue | Outcome::Filtered, _) => {}
                            (failed, _) => {
                                stop.store(true, Ordering::Relaxed);
                                return failed;
                            }
                        }
                    }
                }
            });
            let outcomes = futures::future::join_all(workers).await;
            collected = std::mem::take(&mut *results.lock().expect("results lock"));
            collected.sort_by_key(|(i, _)| *i);
            outcomes
                .into_iter()
                .find(|o| !matches!(o, Outcome::Continue))
                .unwrap_or(Outcome::Continue)
        };
        let output = Value::Array(collected.into_iter().map(|(_, v)| v).collect());
        match outcome {
            Outcome::Continue | Outcome::Filtered => {
                let detail = format!("{total} items");
                self.succeeded(run, ctx, output, 1, Some(detail)).await
            }
            aborted @ Outcome::Aborted(_) => aborted,
            failed => {
                let record = self.record(
                    run,
                    StepStatus::Failed,
                    output,
                    Some("an iteration failed".to_owned()),
                    1,
                );
                self.keep(record, failed).await
            }
        }
    }

    /// Runs one iteration; returns its outcome and, when it finished, its collected value.
    async fn iteration(
        &self,
        run: &StepRun<'_>,
        each: &ForEachPlan,
        ctx: &mut Context,
        index: usize,
        item: Value,
    ) -> (Outcome, Option<Value>) {
        if let Some(root) = ctx.data_mut().as_object_mut() {
            // After the first iteration the keys are there: replace in place.
            match root.get_mut(&each.as_name) {
                Some(slot) => *slot = item,
                None => {
                    root.insert(each.as_name.clone(), item);
                }
            }
            match root.get_mut("index") {
                Some(slot) => *slot = Value::from(index),
                None => {
                    root.insert("index".to_owned(), Value::from(index));
                }
            }
        }
        let at = run.at.iteration(run.step.id.as_str(), index);
        let outcome = Box::pin(self.run_block(&each.steps, ctx, &at)).await;
        if !matches!(outcome, Outcome::Continue) {
            return (outcome, None);
        }
        let value = match &each.collect {
            Some(expr) => match expr.eval(ctx) {
                Ok(v) => v,
                Err(e) => {
                    return (
                        Outcome::Failed(ExecutionError {
                            step: run.path.clone(),
                            message: self
                                .redactor
                                .string(format!("`collect` of item {index}: {e}")),
                        }),
                        None,
                    )
                }
            },
            // The next iteration overwrites it, and nothing outside the loop can read it: move it out.
            None => each
                .steps
                .last()
                .and_then(|last| {
                    ctx.data_mut()
                        .get_mut("steps")
                        .and_then(Value::as_object_mut)
                        .and_then(|steps| steps.remove(last.id.as_str()))
                })
                .unwrap_or(Value::Null),
        };
        (Outcome::Continue, Some(value))
    }
}

/// Saves what an outer loop bound to the names this loop is about to bind.
fn take_loop_names(ctx: &mut Context, name: &str) -> (Option<Value>, Option<Value>) {
    let root = ctx.data_mut().as_object_mut();
    match root {
        Some(root) => (root.remove(name), root.remove("index")),
        None => (None, None),
    }
}

fn restore_loop_names(ctx: &mut Context, name: &str, saved: (Option<Value>, Option<Value>)) {
    if let Some(root) = ctx.data_mut().as_object_mut() {
        root.remove(name);
        root.remove("index");
        if let Some(v) = saved.0 {
            root.insert(name.to_owned(), v);
        }
        if let Some(v) = saved.1 {
            root.insert("index".to_owned(), v);
        }
    }
}

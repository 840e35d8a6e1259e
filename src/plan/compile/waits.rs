//! The steps that park an execution or talk to other executions: `approval`,
//! `delay`, `wait_for`, `emit` and `record`, and the event names they share.

use super::{Compiler, Scope, MAX_WAIT};
use crate::model::{ApprovalStep, EmitStep, RecordStep};
use crate::plan::{is_event_name, ApprovalPlan, EmitPlan, PlanKind, RecordPlan, WaitForPlan};

impl Compiler<'_> {
    pub(super) fn wait_for(
        &mut self,
        wait: &crate::model::WaitForStep,
        base: &str,
        scope: &Scope,
    ) -> WaitForPlan {
        self.check_event_name(&wait.event, &format!("{base}.event"));
        let timeout = wait.timeout.as_std();
        if timeout.is_zero() || timeout > MAX_WAIT {
            self.error(
                &format!("{base}.timeout"),
                format!(
                    "a wait_for timeout must be more than 0 and at most 365d, found {}",
                    wait.timeout
                ),
            );
        }
        if let Some(lookback) = wait.lookback {
            if lookback.as_std() > MAX_WAIT {
                self.error(
                    &format!("{base}.lookback"),
                    format!("lookback must be at most 365d, found {lookback}"),
                );
            }
        }
        let mut with_event = scope.clone();
        with_event.event_in_scope = true;
        WaitForPlan {
            event: wait.event.clone(),
            key: self.expr_str(&wait.key, &format!("{base}.key"), scope),
            condition: wait
                .condition
                .as_ref()
                .map(|c| self.cond(c, &format!("{base}.match"), &with_event)),
            timeout,
            on_timeout: wait.on_timeout,
            lookback: wait.lookback.map(|d| d.as_std()),
        }
    }

    /// Event names are identifiers people type on a command line and search for.
    pub(super) fn check_event_name(&mut self, name: &str, path: &str) {
        if !is_event_name(name) {
            self.error(
                path,
                format!("`{name}` is not an event name: use lowercase letters, digits, `_`, `.` and `-`, e.g. `deal.closed_won`"),
            );
        }
    }

    pub(super) fn approval(
        &mut self,
        approval: &ApprovalStep,
        path: &str,
        scope: &Scope,
    ) -> PlanKind {
        let base = format!("{path}.approval");
        PlanKind::Approval(Box::new(ApprovalPlan {
            message: self.expr_str(&approval.message, &format!("{base}.message"), scope),
            timeout: approval.timeout.as_std(),
            on_timeout: approval.on_timeout,
            approvers: approval.approvers.clone(),
            on_reject: approval.on_reject,
        }))
    }

    pub(super) fn emit(&mut self, emit: &EmitStep, path: &str, scope: &Scope) -> PlanKind {
        let base = format!("{path}.emit");
        self.check_event_name(&emit.event, &format!("{base}.event"));
        PlanKind::Emit(Box::new(EmitPlan {
            event: emit.event.clone(),
            key: self.expr_str(&emit.key, &format!("{base}.key"), scope),
            data: emit
                .data
                .as_ref()
                .map(|v| self.expr(v, &format!("{base}.data"), scope)),
        }))
    }

    pub(super) fn record(&mut self, record: &RecordStep, path: &str, scope: &Scope) -> PlanKind {
        let base = format!("{path}.record");
        PlanKind::Record(Box::new(RecordPlan {
            event: self.expr_str(&record.event, &format!("{base}.event"), scope),
            key: self.expr_str(&record.key, &format!("{base}.key"), scope),
            value: record
                .value
                .as_ref()
                .map(|v| self.expr(v, &format!("{base}.value"), scope)),
            data: record
                .data
                .as_ref()
                .map(|v| self.expr(v, &format!("{base}.data"), scope)),
        }))
    }
}

//! The connections of a plan that sign in with OAuth2: what `scenarist
//! connect`, `credentials` and the dashboard's Connections page list and
//! reach. Found in the compiled requests (every step, at any depth, and a
//! poll's), so an app's connection counts as soon as a step uses the app.

use std::sync::Arc;

use super::{AuthPlan, HttpPlan, NetworkAllowance, OAuth2Plan, Plan, PlanKind, PlanStep};

/// One connection that signs in, with what its requests may reach.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub oauth: Arc<OAuth2Plan>,
    pub allowance: NetworkAllowance,
}

impl Plan {
    /// Every OAuth2 connection the plan's requests use, once each, by name.
    pub fn sign_ins(&self) -> Vec<SignIn> {
        let mut found = Vec::new();
        let mut add = |http: &HttpPlan| {
            if let Some(AuthPlan::OAuth2(oauth)) = &http.auth {
                if !found.iter().any(|s: &SignIn| s.oauth.name == oauth.name) {
                    found.push(SignIn {
                        oauth: Arc::clone(oauth),
                        allowance: http.allowance.clone(),
                    });
                }
            }
        };
        if let Some(poll) = &self.poll {
            add(&poll.request);
        }
        walk(&self.steps, &mut add);
        walk(&self.on_failure, &mut add);
        found.sort_by(|a, b| a.oauth.name.cmp(&b.oauth.name));
        found
    }
}

fn walk(steps: &[PlanStep], add: &mut impl FnMut(&HttpPlan)) {
    for step in steps {
        match &step.kind {
            PlanKind::Http(http) => add(http),
            PlanKind::Router(router) => {
                for route in &router.routes {
                    walk(&route.steps, add);
                }
            }
            PlanKind::ForEach(each) => walk(&each.steps, add),
            _ => {}
        }
    }
}

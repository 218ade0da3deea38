//! The emulated cloud: its principals (as loaded, then changed by grant and
//! revoke), the injected fault and the counters, in memory behind one mutex
//! (never held across an await).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, PrincipalConfig};
use crate::error::IamError;
use crate::policy::{self, Decision};

/// Injected by `POST /_emulator/fail-next`: the next `remaining` simulate
/// calls answer `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: StatusCode,
    pub remaining: u32,
    pub retry_after: Option<u64>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Every simulate call, faulted and refused ones included.
    pub calls: u64,
    /// Calls that named a configured principal (whatever the proof).
    pub by_principal: BTreeMap<String, u64>,
    /// Calls answered 403 (unknown principal or wrong proof).
    pub access_denied: u64,
}

#[derive(Debug, Default)]
struct Inner {
    principals: Vec<PrincipalConfig>,
    fault: Option<Fault>,
    stats: Stats,
}

/// A principal's policy after an admin change, for the admin routes' answers.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub principal: String,
    pub action: String,
    /// How the action is now decided (an explicit deny still wins over a grant).
    pub decision: Decision,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// Why an admin change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    UnknownPrincipal(String),
    BadAction(String),
}

/// The emulated cloud.
#[derive(Debug)]
pub struct Emulator {
    config: Config,
    inner: Mutex<Inner>,
    /// `POST /_emulator/hold`: simulate calls wait until `release` (a test
    /// sees a verification in flight). A watch channel, so waiting holds no lock.
    held: tokio::sync::watch::Sender<bool>,
}

impl Emulator {
    pub fn new(config: Config) -> Self {
        let principals = config.principals.clone();
        Emulator { config, inner: Mutex::new(Inner { principals, ..Inner::default() }), held: tokio::sync::watch::Sender::new(false) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A poisoned lock still holds consistent state (no call panics midway
    /// by design), so it is used as is.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds (`true`) or releases (`false`) the simulate calls.
    pub fn hold(&self, held: bool) {
        self.held.send_replace(held);
    }

    /// Waits while the calls are held.
    pub async fn released(&self) {
        let mut held = self.held.subscribe();
        // The sender lives as long as the emulator: the wait cannot fail.
        let _ = held.wait_for(|held| !held).await;
    }

    /// Counts a simulate call and answers the injected fault, if one is queued.
    pub fn record_call(&self) -> Result<(), IamError> {
        let mut inner = self.lock();
        inner.stats.calls += 1;
        let Some(fault) = inner.fault.as_mut() else { return Ok(()) };
        fault.remaining = fault.remaining.saturating_sub(1);
        let error = IamError::for_status(fault.status, fault.retry_after);
        if fault.remaining == 0 {
            inner.fault = None;
        }
        Err(error)
    }

    /// Decides each action for `principal`, once `proof` is the principal's.
    /// An unknown principal and a wrong proof get the same answer, as STS
    /// gives: the caller learns nothing of which it was.
    pub fn simulate(&self, principal: &str, proof: &str, actions: &[String]) -> Result<Vec<Decision>, IamError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let found = inner.principals.iter().find(|p| p.id == principal);
        if let Some(p) = found {
            *inner.stats.by_principal.entry(p.id.clone()).or_default() += 1;
        }
        let Some(p) = found.filter(|p| p.proof.expose() == proof) else {
            inner.stats.access_denied += 1;
            // The principal is not echoed: an Azure client id is a secret to Warden.
            return Err(IamError::access_denied(
                "Not authorized to simulate this principal's policies: the principal is unknown or the ExternalId (tenant, audience) does not match it",
            ));
        };
        Ok(actions.iter().map(|action| policy::decide(&p.allow, &p.deny, action)).collect())
    }

    /// Allows `action` to `principal` (an explicit deny still wins).
    pub fn grant(&self, principal: &str, action: &str) -> Result<PolicyView, AdminError> {
        self.change(principal, action, |p| {
            if !p.allow.iter().any(|a| a.eq_ignore_ascii_case(action)) {
                p.allow.push(action.to_owned());
            }
        })
    }

    /// Removes `action` from `principal`'s allow list (every spelling of it;
    /// a wildcard that matches it stays).
    pub fn revoke(&self, principal: &str, action: &str) -> Result<PolicyView, AdminError> {
        self.change(principal, action, |p| p.allow.retain(|a| !a.eq_ignore_ascii_case(action)))
    }

    fn change(&self, principal: &str, action: &str, edit: impl FnOnce(&mut PrincipalConfig)) -> Result<PolicyView, AdminError> {
        policy::check_action(action).map_err(AdminError::BadAction)?;
        let mut inner = self.lock();
        let Some(p) = inner.principals.iter_mut().find(|p| p.id == principal) else {
            return Err(AdminError::UnknownPrincipal(format!("no principal {principal:?} in the emulator's configuration")));
        };
        edit(p);
        Ok(PolicyView {
            principal: p.id.clone(),
            action: action.to_owned(),
            decision: policy::decide(&p.allow, &p.deny, action),
            allow: p.allow.clone(),
            deny: p.deny.clone(),
        })
    }

    pub fn fail_next(&self, fault: Fault) {
        self.lock().fault = (fault.remaining > 0).then_some(fault);
    }

    pub fn stats(&self) -> Value {
        let inner = self.lock();
        json!({
            "calls": inner.stats.calls,
            "by_principal": inner.stats.by_principal,
            "access_denied": inner.stats.access_denied,
            "faults_pending": inner.fault.map_or(0, |f| f.remaining),
            "held": *self.held.borrow(),
            "waiting": self.held.receiver_count(),
        })
    }

    /// Back to the loaded configuration: grants and revocations undone,
    /// faults and counters forgotten.
    pub fn reset(&self) {
        *self.lock() = Inner { principals: self.config.principals.clone(), ..Inner::default() };
        self.hold(false);
    }
}

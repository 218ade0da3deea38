//! System actions' executors and their connector adapters: each adapter
//! builds what its executor needs from the rule and its alerts, so rule
//! authors never set it by hand (reference 001, "Connector adapters").

use serde_json::json;
use warden_core::actions::{CASES, ConnectorTypeSpec, ExecuteConnectorResponse};
use warden_core::cases::{AlertForCase, CaseUser, RuleForCase, validate_cases_action_params};

use super::ScheduledAction;
use crate::AppState;
use crate::auth::AuthUser;
use crate::cases::CasesError;

/// Where Warden's rule alerts live, as a case's alert attachments name it.
pub const ALERTS_INDEX: &str = ".alerts-warden.alerts-default";

pub async fn run(state: &AppState, spec: &ConnectorTypeSpec, owner: &AuthUser, action: &ScheduledAction) -> ExecuteConnectorResponse {
    match spec.id {
        CASES => cases(state, owner, action).await,
        other => ExecuteConnectorResponse::failed(&action.connector_id, &format!("{other} has no executor in Warden"), None, false),
    }
}

/// The cases adapter: the run's alerts and the rule become the executor's
/// input; no alerts, no run.
async fn cases(state: &AppState, owner: &AuthUser, action: &ScheduledAction) -> ExecuteConnectorResponse {
    let id = action.connector_id.as_str();
    if action.alerts.is_empty() {
        return ExecuteConnectorResponse::ok(id, Some(json!({"skipped": "no alerts"})));
    }
    let params = match validate_cases_action_params(&serde_json::Value::Object(action.params.clone())) {
        Ok(params) => params,
        Err(message) => return ExecuteConnectorResponse::failed(id, &format!("invalid params: {message}"), None, false),
    };
    let alerts: Vec<AlertForCase> =
        action.alerts.iter().map(|a| AlertForCase { id: a.id.clone(), index: ALERTS_INDEX.to_owned(), fields: a.fields.clone() }).collect();
    let rule = RuleForCase { id: action.rule_id.clone(), name: action.rule_name.clone(), tags: action.rule_tags.clone() };
    let user = CaseUser { username: owner.username.clone(), full_name: owner.full_name.clone(), email: None, profile_uid: Some(owner.id.clone()) };
    match crate::cases::run_case_action(state, &user, &rule, &alerts, &params).await {
        Ok(outcome) => {
            let mut response = ExecuteConnectorResponse::ok(id, serde_json::to_value(&outcome).ok());
            response.message = Some(format!(
                "{} case(s) opened, {} updated, {} reopened; {} alert(s) attached",
                outcome.opened.len(),
                outcome.updated.len(),
                outcome.reopened.len(),
                outcome.alerts_attached
            ));
            response
        }
        // Concurrent runs kept moving the group: another attempt will settle it.
        Err(err @ (CasesError::Conflict(_) | CasesError::Database(_))) => ExecuteConnectorResponse::failed(id, &err.to_string(), None, true),
        Err(err) => ExecuteConnectorResponse::failed(id, &err.to_string(), None, false),
    }
}

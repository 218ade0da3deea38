//! System actions' executors and their connector adapters: each adapter
//! builds what its executor needs from the rule and its alerts, so rule
//! authors never set it by hand (reference 001, "Connector adapters").

use serde_json::json;
use warden_core::actions::{CASES, ConnectorTypeSpec, ENDPOINT_RESPONSE, ExecuteConnectorResponse};
use warden_core::cases::{AlertForCase, CaseUser, RuleForCase, validate_cases_action_params};
use warden_core::response_actions::{ResponseActionRequest, ResponseAgentType, validate_endpoint_response_params};

use super::ScheduledAction;
use crate::AppState;
use crate::auth::AuthUser;
use crate::cases::CasesError;

/// Where Warden's rule alerts live, as a case's alert attachments name it.
pub const ALERTS_INDEX: &str = ".alerts-warden.alerts-default";

pub async fn run(state: &AppState, spec: &ConnectorTypeSpec, owner: &AuthUser, action: &ScheduledAction) -> ExecuteConnectorResponse {
    match spec.id {
        CASES => cases(state, owner, action).await,
        ENDPOINT_RESPONSE => endpoint_response(state, owner, action).await,
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

/// The endpoint-response adapter: each alert's host is isolated, through
/// its Warden agent when that agent can still receive actions, otherwise
/// through Microsoft Defender for Endpoint when MDE knows a machine of that
/// host name (an uninstalled Elastic agent leaves the host to MDE). One
/// action per agent type, as the rule's owner; no alerts, no run.
async fn endpoint_response(state: &AppState, owner: &AuthUser, action: &ScheduledAction) -> ExecuteConnectorResponse {
    let id = action.connector_id.as_str();
    if action.alerts.is_empty() {
        return ExecuteConnectorResponse::ok(id, Some(json!({"skipped": "no alerts"})));
    }
    let params = match validate_endpoint_response_params(&action.params) {
        Ok(params) => params,
        Err(message) => return ExecuteConnectorResponse::failed(id, &format!("invalid params: {message}"), None, false),
    };
    let comment = params.comment.clone().unwrap_or_else(|| format!("Isolated by rule {}", action.rule_name));
    let rule = crate::response_actions::RuleRef { id: &action.rule_id, name: &action.rule_name };
    let agent_ids: Vec<String> = action.alerts.iter().map(|a| a.instance_id.clone()).collect();
    let alert_ids: Vec<String> = action.alerts.iter().map(|a| a.id.clone()).collect();
    let able = match crate::response_actions::receivable(state, &agent_ids, params.command).await {
        Ok(able) => able,
        Err(err) => return ExecuteConnectorResponse::failed(id, &err.to_string(), None, true),
    };
    let mut sent = Vec::new();
    let mut problems = Vec::new();
    let send = |endpoint_ids: Vec<String>, agent_type: Option<ResponseAgentType>| {
        let request = ResponseActionRequest {
            endpoint_ids,
            agent_type,
            comment: Some(comment.clone()),
            alert_ids: Some(alert_ids.clone()),
            ..ResponseActionRequest::default()
        };
        async move { crate::response_actions::create_for_rule(state, params.command, &request, owner, rule).await.map(|created| created.data.id) }
    };
    if !able.is_empty() {
        match send(able.clone(), None).await {
            Ok(id) => sent.push(id),
            Err(err) => problems.push(err.to_string()),
        }
    }
    // Hosts whose agent cannot answer: their MDE machine, by host name.
    let left: Vec<&str> = action
        .alerts
        .iter()
        .filter(|a| !able.contains(&a.instance_id))
        .filter_map(|a| a.fields.pointer("/host/name").and_then(|v| v.as_str()))
        .collect();
    if !left.is_empty() {
        match crate::response_actions::mde::machines(state).await {
            Ok(machines) => {
                let short = |name: &str| name.split('.').next().unwrap_or(name).to_ascii_lowercase();
                let mut machine_ids = Vec::new();
                for host in &left {
                    match machines.iter().find(|m| m.computer_dns_name.as_deref().is_some_and(|n| short(n) == short(host))) {
                        Some(machine) => machine_ids.push(machine.id.clone()),
                        None => problems.push(format!("{host}: no agent can receive actions and Microsoft Defender for Endpoint does not know it")),
                    }
                }
                if !machine_ids.is_empty() {
                    match send(machine_ids, Some(ResponseAgentType::MicrosoftDefenderEndpoint)).await {
                        Ok(id) => sent.push(id),
                        Err(err) => problems.push(err.to_string()),
                    }
                }
            }
            Err(err) => problems.extend(left.iter().map(|host| format!("{host}: no agent can receive actions, and {err}"))),
        }
    }
    if sent.is_empty() {
        return ExecuteConnectorResponse::failed(id, &problems.join("; "), None, false);
    }
    let mut response = ExecuteConnectorResponse::ok(id, Some(json!({"actions": sent, "problems": problems})));
    response.message = Some(format!(
        "{} response action(s) sent{}",
        sent.len(),
        if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) }
    ));
    response
}

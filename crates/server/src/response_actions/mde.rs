//! Response actions on Microsoft Defender for Endpoint hosts, through the
//! `.microsoft_defender_endpoint` connector (`actions::mde`): isolate,
//! release, runscript from MDE's library, and cancel. MDE answers each with
//! a machine action, kept on the target (Kibana's `meta.machineActionId`);
//! the task `response_actions:mde_poll` follows them until they end. A cancel
//! asks MDE to cancel the target's machine action and stays pending until the
//! poll sees how that machine action ended: cancelled (the cancel succeeded,
//! the original failed and cancelled) or finished first (the cancel failed).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use warden_core::mde::{MachineAction, MachineActionStatus};
use warden_core::response_actions::{ActionResponse, ActionStatus, MdeHost, MdeHostsResponse, ResponseCommand, ValidRequest, expiration_ms};

use super::{ResponseError, announce, get};
use crate::AppState;
use crate::actions::mde::{self as connector, MdeClient, MdeError};
use crate::auth::AuthUser;
use crate::db::{begin_write, now_ms};
use crate::store::response_actions::{self as store, ActionRow, Completion, NewTarget};

/// Who cancelled an MDE action when no Warden cancel asked for it.
const CANCELLED_IN_MDE: &str = "Microsoft Defender for Endpoint";

/// One host's part of a new MDE action: its machine action, or why MDE
/// refused it (the host's part then ends failed at once, never stuck).
struct Sent {
    machine_id: String,
    host_name: String,
    outcome: Result<String, String>,
}

/// Sends `command` to MDE for each host and records the action with what
/// MDE answered, in one transaction. MDE is called first, outside the
/// transaction (a database lock is never held across an outside call).
pub(super) async fn create(
    state: &AppState,
    command: ResponseCommand,
    valid: ValidRequest,
    user: &AuthUser,
    cancelled: Option<String>,
    rule: Option<super::RuleRef<'_>>,
) -> Result<ActionResponse, ResponseError> {
    let now = now_ms();
    let comment = valid.comment.clone().unwrap_or_else(|| format!("{} from Warden by {}", command.console_name(), user.username));
    let sent = match connector::default_client(state).await {
        Ok(client) => send_all(state, &client, command, &valid, &comment, cancelled.as_deref()).await?,
        // No connector, or MDE unreachable: a failed action that says why.
        Err(err) => {
            valid.endpoint_ids.iter().map(|id| Sent { machine_id: id.clone(), host_name: id.clone(), outcome: Err(err.to_string()) }).collect()
        }
    };
    let action_id = uuid::Uuid::new_v4().to_string();
    let (origin, rule_id, rule_name) = super::origin_of(rule);
    let row = ActionRow {
        id: action_id.clone(),
        command: command.as_str().to_owned(),
        agent_type: valid.agent_type.as_str().to_owned(),
        parameters: valid.parameters.to_string(),
        comment: valid.comment.clone(),
        created_by: user.username.clone(),
        created_at: now,
        expires_at: now.saturating_add(expiration_ms(command, &valid.parameters)),
        status: ActionStatus::Pending.as_str().to_owned(),
        completed_at: None,
        origin,
        alert_ids: (!valid.alert_ids.is_empty()).then(|| json!(valid.alert_ids).to_string()),
        case_ids: (!valid.case_ids.is_empty()).then(|| json!(valid.case_ids).to_string()),
        rule_id,
        rule_name,
        file_id: None,
        bulk_id: None,
    };
    let targets: Vec<NewTarget<'_>> = sent
        .iter()
        .map(|s| NewTarget {
            agent_id: &s.machine_id,
            host_name: &s.host_name,
            cancel_supported: true,
            external_id: s.outcome.as_ref().ok().map(String::as_str),
        })
        .collect();
    let mut tx = begin_write(&state.db, state.engine).await?;
    store::insert_action(&mut tx, &row).await?;
    store::insert_targets(&mut tx, state.engine, &row, &targets, None).await?;
    for s in &sent {
        if let Err(error) = &s.outcome {
            store::complete_target(&mut tx, &failure(&action_id, &s.machine_id, now, error)).await?;
        }
    }
    store::settle_action(&mut tx, &action_id, now).await?;
    tx.commit().await?;
    tracing::info!(action_id = %action_id, command = command.as_str(), hosts = sent.len(), user = %user.username, "MDE response action sent");
    let hosts: Vec<String> = sent.iter().map(|s| s.machine_id.clone()).collect();
    announce(state, &action_id, &hosts);
    let details = get(state, &action_id).await?;
    Ok(ActionResponse { action: command.has_legacy_action_field().then(|| details.id.clone()), data: details })
}

fn failure<'a>(action_id: &'a str, machine_id: &'a str, at: i64, error: &str) -> Completion<'a> {
    Completion {
        action_id,
        agent_id: machine_id,
        at,
        successful: false,
        errors: Some(json!([error]).to_string()),
        output: None,
        canceled_by: None,
        cancel_action_id: None,
    }
}

async fn send_all(
    state: &AppState,
    client: &MdeClient,
    command: ResponseCommand,
    valid: &ValidRequest,
    comment: &str,
    cancelled: Option<&str>,
) -> Result<Vec<Sent>, ResponseError> {
    let machines = client.machines(&valid.endpoint_ids, valid.endpoint_ids.len() as u32).await;
    let names: HashMap<String, String> = match &machines {
        Ok(machines) => machines.iter().filter_map(|m| Some((m.id.clone(), m.computer_dns_name.clone()?))).collect(),
        Err(_) => HashMap::new(),
    };
    if let Ok(machines) = &machines
        && let Some(unknown) = valid.endpoint_ids.iter().find(|id| !machines.iter().any(|m| &&m.id == id))
    {
        return Err(ResponseError::BadRequest(format!("Endpoint '{unknown}' was not found in Microsoft Defender for Endpoint")));
    }
    // The machine actions a cancel names: the original's, per host.
    let originals: HashMap<String, String> = match cancelled {
        Some(original) => store::targets_of(&state.db, state.engine, &[original], &[])
            .await?
            .into_iter()
            .filter_map(|t| t.external_id.map(|e| (t.agent_id, e)))
            .collect(),
        None => HashMap::new(),
    };
    let mut sent = Vec::with_capacity(valid.endpoint_ids.len());
    for machine_id in &valid.endpoint_ids {
        let host_name = names.get(machine_id).cloned().unwrap_or_else(|| machine_id.clone());
        let outcome = match &machines {
            Err(err) => Err(err.to_string()),
            Ok(_) => match command {
                ResponseCommand::Isolate => client.isolate(machine_id, comment).await.map(|a| a.id).map_err(|e| e.to_string()),
                ResponseCommand::Unisolate => client.release(machine_id, comment).await.map(|a| a.id).map_err(|e| e.to_string()),
                ResponseCommand::Runscript => {
                    let name = valid.parameters.get("scriptName").and_then(Value::as_str).unwrap_or_default();
                    let args = valid.parameters.get("args").and_then(Value::as_str);
                    client.run_script(machine_id, name, args, comment).await.map(|a| a.id).map_err(|e| e.to_string())
                }
                ResponseCommand::Cancel => match originals.get(machine_id) {
                    // The cancel's target is the machine action it cancels.
                    Some(machine_action) => client.cancel(machine_action, comment).await.map(|_| machine_action.clone()).map_err(|e| e.to_string()),
                    None => Err("The action has no Microsoft Defender for Endpoint machine action on this host to cancel".to_owned()),
                },
                other => Err(format!("The {} command is not currently available for Microsoft Defender for Endpoint", other.console_name())),
            },
        };
        sent.push(Sent { machine_id: machine_id.clone(), host_name, outcome });
    }
    Ok(sent)
}

/// The machines of the MDE connector (for the system action).
pub async fn machines(state: &AppState) -> Result<Vec<warden_core::mde::Machine>, ResponseError> {
    let client = connector::default_client(state).await.map_err(|e| ResponseError::BadRequest(e.to_string()))?;
    client.machines(&[], 1_000).await.map_err(|e| ResponseError::BadRequest(e.to_string()))
}

/// The hosts MDE knows, for the Fleet view; not configured is an answer,
/// not an error. MDE refusing or unreachable is a 502 that says why.
pub async fn hosts(state: &AppState) -> Result<MdeHostsResponse, ResponseError> {
    let client = match connector::default_client(state).await {
        Ok(client) => client,
        Err(MdeError::NotConfigured(_)) => return Ok(MdeHostsResponse { configured: false, data: Vec::new() }),
        Err(err) => return Err(ResponseError::Upstream(err.to_string())),
    };
    let machines = client.machines(&[], 1_000).await.map_err(|e| ResponseError::Upstream(e.to_string()))?;
    Ok(MdeHostsResponse { configured: true, data: machines.iter().map(MdeHost::from).collect() })
}

/// One run of the poll: every pending MDE target whose machine action
/// ended is completed; returns how many.
pub async fn poll(state: &AppState) -> Result<usize, ResponseError> {
    let pending = store::pending_external_targets(&state.db, "microsoft_defender_endpoint", 500).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let client = connector::default_client(state).await.map_err(|e| ResponseError::Internal(anyhow::anyhow!(e.to_string())))?;
    let mut ids: Vec<String> = pending.iter().map(|p| p.external_id.clone()).collect();
    ids.sort();
    ids.dedup();
    // A few dozen ids per query: an OData filter's length is bounded.
    let mut found: HashMap<String, MachineAction> = HashMap::new();
    for chunk in ids.chunks(50) {
        let actions = client.actions(chunk).await.map_err(|e| ResponseError::Internal(anyhow::anyhow!(e.to_string())))?;
        found.extend(actions.into_iter().map(|a| (a.id.clone(), a)));
    }
    let now = now_ms();
    let mut ended = 0;
    let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Originals first: a cancel's outcome is read from its original's.
    let (cancels, originals): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.command == ResponseCommand::Cancel.as_str());
    for target in originals {
        let Some(machine_action) = found.get(&target.external_id) else { continue };
        let output = match machine_action.status {
            MachineActionStatus::Succeeded if target.command == ResponseCommand::Runscript.as_str() => {
                match client.script_result(&machine_action.id).await {
                    Ok(t) => Some(json!({"type": "json", "content": {"code": t.exit_code, "stdout": t.script_output, "stderr": t.script_errors}})),
                    Err(err) => {
                        Some(json!({"type": "text", "content": format!("The script ran; its transcript could not be read: {}", err.to_string())}))
                    }
                }
            }
            MachineActionStatus::Succeeded => Some(json!({"type": "json", "content": {"code": format!("ra_{}_success", target.command)}})),
            _ => None,
        };
        let mut tx = begin_write(&state.db, state.engine).await?;
        let done = match machine_action.status {
            MachineActionStatus::Pending | MachineActionStatus::InProgress => false,
            MachineActionStatus::Succeeded => {
                let completion = Completion {
                    action_id: &target.action_id,
                    agent_id: &target.agent_id,
                    at: now,
                    successful: true,
                    errors: None,
                    output: output.map(|o| o.to_string()),
                    canceled_by: None,
                    cancel_action_id: None,
                };
                store::complete_target(&mut tx, &completion).await?
            }
            MachineActionStatus::Failed | MachineActionStatus::TimeOut => {
                let why = machine_action_error(machine_action);
                store::complete_target(&mut tx, &failure(&target.action_id, &target.agent_id, now, &why)).await?
            }
            MachineActionStatus::Cancelled => {
                let cancel = store::pending_cancel_of(&mut tx, &target.agent_id, &target.external_id).await?;
                let by = cancel.as_ref().map(|(_, by)| by.as_str()).unwrap_or(CANCELLED_IN_MDE);
                let completion = Completion {
                    action_id: &target.action_id,
                    agent_id: &target.agent_id,
                    at: now,
                    successful: false,
                    errors: Some(json!([format!("Cancelled by {by}")]).to_string()),
                    output: None,
                    canceled_by: Some(by),
                    cancel_action_id: cancel.as_ref().map(|(id, _)| id.as_str()),
                };
                store::complete_target(&mut tx, &completion).await?
            }
        };
        store::settle_action(&mut tx, &target.action_id, now).await?;
        tx.commit().await?;
        if done {
            ended += 1;
            changed.entry(target.action_id.clone()).or_default().push(target.agent_id.clone());
        }
    }
    for cancel in cancels {
        let Some(original) = cancel.parameters.get("id").and_then(Value::as_str).map(str::to_owned) else { continue };
        let mut tx = begin_write(&state.db, state.engine).await?;
        let Some((ended_by, completed)) = store::target_end(&mut tx, &original, &cancel.agent_id).await? else {
            continue;
        };
        if !completed {
            continue;
        }
        let completion = if ended_by.as_deref() == Some(cancel.action_id.as_str()) {
            Completion {
                action_id: &cancel.action_id,
                agent_id: &cancel.agent_id,
                at: now,
                successful: true,
                errors: None,
                output: Some(json!({"type": "json", "content": {"code": "ra_cancel_success", "cancelled_action_id": original}}).to_string()),
                canceled_by: None,
                cancel_action_id: None,
            }
        } else {
            failure(
                &cancel.action_id,
                &cancel.agent_id,
                now,
                &format!("Action {original} had already ended on this host before the cancel took effect"),
            )
        };
        let done = store::complete_target(&mut tx, &completion).await?;
        store::settle_action(&mut tx, &cancel.action_id, now).await?;
        tx.commit().await?;
        if done {
            ended += 1;
            changed.entry(cancel.action_id.clone()).or_default().push(cancel.agent_id.clone());
            changed.entry(original).or_default().push(cancel.agent_id.clone());
        }
    }
    for (id, agents) in changed {
        announce(state, &id, &agents);
    }
    Ok(ended)
}

/// Why a machine action failed, from what MDE says of it.
fn machine_action_error(action: &MachineAction) -> String {
    let errors = action.errors();
    if !errors.is_empty() {
        return format!("Microsoft Defender for Endpoint: {}", errors.replace('\n', "; "));
    }
    match action.error_result.filter(|code| *code != 0) {
        Some(code) => format!("The machine action ended {} in Microsoft Defender for Endpoint (error {code})", action.status.as_str()),
        None => format!("The machine action ended {} in Microsoft Defender for Endpoint", action.status.as_str()),
    }
}

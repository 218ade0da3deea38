//! Bulk response actions (issue 16): one command to a selection of hosts
//! (ids, or a kuery resolved as the Fleet view resolves it), sent as one
//! action per 1,000 hosts through the single-host routes' own path (`send`),
//! each linked to one `response_action_bulks` row. The hosts that cannot
//! take the command (the core's `endpoint_refusal`) are left out and kept
//! with why. Progress is read from the actions as the history reads them;
//! cancel sends one cancel per action through the cancel route's path and
//! its `cancel_refusal`.

use std::collections::HashMap;

use serde_json::json;
use warden_core::fleet_api::BulkTarget;
use warden_core::kuery;
use warden_core::response_actions::bulk::{
    BulkCancelRefused, BulkCancelRequest, BulkCancelResponse, BulkCancelSent, BulkCreated, BulkHostsQuery, BulkPreview, BulkRecord,
    BulkResponseActionRequest, BulkStatus, MAX_BULK_HOSTS, RefusedHost, ValidBulkRequest, bulk_cancel_refusal, bulk_commands, bulk_status, chunks,
    listed, too_many_hosts, validate_bulk_request,
};
use warden_core::response_actions::{AUTHZ_FAILURE, ActionDetails, Canceller, ResponseAgentType, ResponseCommand, ValidRequest};

use super::{Recipients, ResponseError, Result, authorize_command, details_of, receivable_targets, send};
use crate::AppState;
use crate::auth::AuthUser;
use crate::db::{begin_write, now_ms};
use crate::fleet::rfc3339;
use crate::fleet::service::{FleetError, select_agents};
use crate::store::response_actions::{self as store, BulkRow, TargetRow};

fn not_found(id: &str) -> ResponseError {
    ResponseError::NotFound(format!("Bulk action with id '{id}' not found."))
}

impl From<FleetError> for ResponseError {
    fn from(err: FleetError) -> ResponseError {
        match err {
            FleetError::Invalid(message) => ResponseError::BadRequest(message),
            FleetError::Busy => ResponseError::Busy(err.to_string()),
            FleetError::Database(err) => ResponseError::Database(err),
            other => ResponseError::Internal(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// Refuses, before the body is read, a user who may send no command in
/// bulk at all (privilege and licence); the command sent is checked once
/// read, as its single-host route checks it.
pub fn authorize_any(state: &AppState, user: &AuthUser) -> Result<()> {
    let privileges = warden_core::authz::privileges_of(&user.roles);
    if bulk_commands(&privileges, state.license()).is_empty() {
        return Err(ResponseError::Forbidden(AUTHZ_FAILURE.into()));
    }
    Ok(())
}

/// The request's command authorized (its route's privilege and licence),
/// then the request checked.
fn checked(state: &AppState, user: &AuthUser, request: &BulkResponseActionRequest) -> Result<ValidBulkRequest> {
    authorize_command(state, user, request.command)?;
    validate_bulk_request(request).map_err(ResponseError::BadRequest)
}

/// The hosts a request selects, split by whether they can take its command.
struct Selection {
    eligible: Vec<String>,
    refused: Vec<RefusedHost>,
}

async fn select(state: &AppState, request: &BulkResponseActionRequest, valid: &ValidBulkRequest, filter: Option<kuery::Query>) -> Result<Selection> {
    let ids: Vec<String> = match &valid.ids {
        Some(ids) => ids.clone(),
        None => {
            let agents = select_agents(state, &request.agents, filter, request.include_inactive).await?;
            if agents.len() > MAX_BULK_HOSTS {
                return Err(ResponseError::BadRequest(too_many_hosts(agents.len())));
            }
            agents.into_iter().map(|agent| agent.id).collect()
        }
    };
    let mut conn = state.db.acquire().await?;
    let (targets, refused) = receivable_targets(state, &mut conn, valid.command, &ids, now_ms()).await?;
    Ok(Selection { eligible: targets.into_iter().map(|t| t.agent_id).collect(), refused })
}

/// What sending would do: the hosts selected, those that can take the
/// command, the actions it becomes, and the others with why.
pub async fn preview(state: &AppState, user: &AuthUser, request: &BulkResponseActionRequest, filter: Option<kuery::Query>) -> Result<BulkPreview> {
    let valid = checked(state, user, request)?;
    let selection = select(state, request, &valid, filter).await?;
    Ok(BulkPreview::of(valid.command, selection.eligible.len(), selection.refused))
}

fn refused_json(refused: &[RefusedHost]) -> Result<String> {
    Ok(serde_json::to_string(refused).map_err(anyhow::Error::from)?)
}

/// Sends the command to every host of the selection that can take it, one
/// action per 1,000 hosts, all linked to a new bulk action.
///
/// Each action is written in its own transaction, through the single-host
/// routes' path: a transaction stays the size of one action however large
/// the selection (SQLite's one write lock is not held across 10,000 hosts,
/// so check-ins and acks go on between chunks), and each chunk's agents are
/// woken as soon as it commits. The bulk's row comes first, in its own
/// transaction (the actions refer to it); if no action could be written it
/// is removed again. A chunk that fails after others were sent leaves those
/// sent: they are real actions, in the history and under the bulk's id.
pub async fn create(state: &AppState, user: &AuthUser, request: &BulkResponseActionRequest, filter: Option<kuery::Query>) -> Result<BulkCreated> {
    let valid = checked(state, user, request)?;
    let command = valid.command;
    let selection = select(state, request, &valid, filter).await?;
    let selected = selection.eligible.len() + selection.refused.len();
    if selected == 0 {
        return Err(ResponseError::BadRequest("[request body.agents]: no agent matches the kuery".into()));
    }
    if selection.eligible.is_empty() {
        let first = selection.refused.first().map(|r| r.reason.as_str()).unwrap_or_default();
        return Err(ResponseError::BadRequest(format!("None of the {selected} selected hosts can take {}: {first}", command.console_name())));
    }
    let (refused_total, refused_listed) = listed(selection.refused.clone());
    let bulk = BulkRow {
        id: uuid::Uuid::new_v4().to_string(),
        command: command.as_str().to_owned(),
        agent_type: ResponseAgentType::Endpoint.as_str().to_owned(),
        parameters: valid.parameters.to_string(),
        comment: valid.comment.clone(),
        created_by: user.username.clone(),
        created_at: now_ms(),
        kuery: match &request.agents {
            BulkTarget::Kuery(text) => Some(text.clone()),
            BulkTarget::Ids(_) => None,
        },
        selected: i64::try_from(selected).unwrap_or(i64::MAX),
        refused_total: i64::try_from(refused_total).unwrap_or(i64::MAX),
        refused: refused_json(&refused_listed)?,
    };
    let mut tx = begin_write(&state.db, state.engine).await?;
    store::insert_bulk(&mut tx, &bulk).await?;
    tx.commit().await?;

    let (mut action_ids, mut hosts, mut left_out) = (Vec::new(), 0, Vec::new());
    for chunk in chunks(&selection.eligible) {
        let request = ValidRequest {
            endpoint_ids: chunk.to_vec(),
            agent_type: ResponseAgentType::Endpoint,
            parameters: valid.parameters.clone(),
            comment: valid.comment.clone(),
            alert_ids: Vec::new(),
            case_ids: Vec::new(),
        };
        match send(state, command, request, user, None, None, Recipients::Receivable { bulk: Some(&bulk.id) }).await {
            Ok(sent) => {
                action_ids.extend(sent.action_id);
                hosts += sent.hosts;
                left_out.extend(sent.left_out);
            }
            Err(err) => {
                if action_ids.is_empty() {
                    forget(state, &bulk.id).await;
                }
                return Err(err);
            }
        }
    }
    if action_ids.is_empty() {
        forget(state, &bulk.id).await;
        return Err(ResponseError::BadRequest(format!("None of the {selected} selected hosts can take {} any more", command.console_name())));
    }
    let mut refused = selection.refused;
    if !left_out.is_empty() {
        refused.extend(left_out.iter().cloned());
        let mut tx = begin_write(&state.db, state.engine).await?;
        store::add_bulk_refusals(&mut tx, &bulk.id, i64::try_from(left_out.len()).unwrap_or(i64::MAX), &refused_json(&listed(refused.clone()).1)?)
            .await?;
        tx.commit().await?;
    }
    tracing::info!(bulk_id = %bulk.id, command = command.as_str(), hosts, actions = action_ids.len(), refused = refused.len(), user = %user.username, "bulk response action sent");
    let (refused_total, refused) = listed(refused);
    Ok(BulkCreated { bulk_id: bulk.id, command, action_ids, hosts, refused_total, refused })
}

/// Removes a bulk no action was written for; a failure here is only logged
/// (the caller answers the error that stopped the bulk).
async fn forget(state: &AppState, id: &str) {
    let removed = async {
        let mut tx = begin_write(&state.db, state.engine).await?;
        store::delete_bulk_without_actions(&mut tx, id).await?;
        tx.commit().await
    };
    if let Err(err) = removed.await {
        tracing::warn!(bulk_id = %id, error = %err, "could not remove a bulk action without actions");
    }
}

/// The bulk's actions as the history shows them.
async fn actions_of(state: &AppState, bulk_id: &str) -> Result<Vec<ActionDetails>> {
    let rows = store::actions_of_bulk(&state.db, bulk_id).await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut by_action: HashMap<String, Vec<TargetRow>> = HashMap::new();
    for target in store::targets_of(&state.db, state.engine, &ids, &[]).await? {
        by_action.entry(target.action_id.clone()).or_default().push(target);
    }
    let now = now_ms();
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let targets = by_action.remove(&row.id).unwrap_or_default();
            details_of(row, &targets, now)
        })
        .collect())
}

fn record_of(row: BulkRow) -> Result<BulkRecord> {
    let unreadable = || ResponseError::Internal(anyhow::anyhow!("bulk action {} has an unknown command or agent type", row.id));
    Ok(BulkRecord {
        command: ResponseCommand::parse(&row.command).ok_or_else(unreadable)?,
        agent_type: ResponseAgentType::parse(&row.agent_type).ok_or_else(unreadable)?,
        parameters: serde_json::from_str(&row.parameters).unwrap_or_default(),
        refused: serde_json::from_str(&row.refused).unwrap_or_default(),
        comment: row.comment,
        created_by: row.created_by,
        started_at: rfc3339(row.created_at),
        kuery: row.kuery,
        selected: usize::try_from(row.selected).unwrap_or_default(),
        refused_total: usize::try_from(row.refused_total).unwrap_or_default(),
        id: row.id,
    })
}

/// A bulk action's progress: every host counted, a page of them listed.
pub async fn status(state: &AppState, id: &str, query: &BulkHostsQuery) -> Result<BulkStatus> {
    let row = store::get_bulk(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let record = record_of(row)?;
    let actions = actions_of(state, id).await?;
    Ok(bulk_status(record, &actions, query))
}

/// Cancels every host of the bulk still pending: one cancel per action
/// that has some, through the cancel route's own path, so each is checked
/// by `cancel_refusal` inside its transaction and goes to the hosts pending
/// as that transaction reads them. An action refused (an agent that cannot
/// cancel, every host answered meanwhile) is reported, not an error.
pub async fn cancel(state: &AppState, user: &AuthUser, id: &str, request: &BulkCancelRequest) -> Result<BulkCancelResponse> {
    let comment = request.comment().map_err(ResponseError::BadRequest)?;
    let row = store::get_bulk(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let record = record_of(row)?;
    let privileges = warden_core::authz::privileges_of(&user.roles);
    let canceller =
        Canceller { username: &user.username, privileges: &privileges, license: state.license(), mde_cancel_enabled: state.config.mde_cancel };
    if let Some(refusal) = bulk_cancel_refusal(&canceller, record.command) {
        return Err(ResponseError::Forbidden(refusal.message));
    }
    let (mut sent, mut refused) = (Vec::new(), Vec::new());
    for action in actions_of(state, id).await?.into_iter().filter(|a| !a.pending_agents().is_empty()) {
        let request = ValidRequest {
            // None named: every host of the action still pending when the cancel is written.
            endpoint_ids: Vec::new(),
            agent_type: action.agent_type,
            parameters: json!({ "id": action.id }),
            comment: comment.clone(),
            alert_ids: Vec::new(),
            case_ids: Vec::new(),
        };
        match send(state, ResponseCommand::Cancel, request, user, None, None, Recipients::Receivable { bulk: None }).await {
            Ok(done) => {
                if let Some(cancel_action_id) = done.action_id {
                    sent.push(BulkCancelSent { action_id: action.id, cancel_action_id, hosts: done.hosts });
                }
            }
            Err(ResponseError::BadRequest(message) | ResponseError::Forbidden(message) | ResponseError::NotFound(message)) => {
                refused.push(BulkCancelRefused { action_id: action.id, message });
            }
            Err(err) => return Err(err),
        }
    }
    tracing::info!(bulk_id = %id, cancels = sent.len(), refused = refused.len(), user = %user.username, "bulk response action cancelled");
    Ok(BulkCancelResponse { bulk_id: record.id, sent, refused })
}

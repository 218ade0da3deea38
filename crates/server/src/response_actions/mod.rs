//! Response actions for Warden's own agents (Elastic Defend's API,
//! `kibana-api.md` §1): send a command to hosts, follow it, cancel it.
//!
//! An action is one `response_actions` row, one `response_action_targets`
//! row per host, and one `INPUT_ACTION` agent action per host that travels
//! through Fleet's check-in long poll. Each agent answers in its ack with a
//! result document; `record_results` writes it inside the acks' group commit.
//! A target ends exactly once: completion, cancel and expiry each write it
//! only while it is still pending (a conditional update), so when they race
//! one wins and the others see it ended.

pub mod bulk;
pub mod files;
pub mod mde;
pub mod scripts;

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::AnyConnection;
use warden_core::events::Event;
use warden_core::fleet_api::{AgentAction, AgentActionType};
use warden_core::ids::{ActionId, AgentId};
use warden_core::response_actions::bulk::RefusedHost;
use warden_core::response_actions::{
    ActionDetails, ActionHost, ActionListQuery, ActionListResponse, ActionOrigin, ActionOutput, ActionResponse, ActionStatus, ActionStatusResponse,
    AgentPendingActions, AgentState, Canceller, EndpointActionData, EndpointActionResult, EndpointAuthzResponse, EndpointHost, EndpointMetadata,
    ResponseActionRequest, ResponseAgentType, ResponseCommand, ValidRequest, agent_refusal, agent_type_license_refusal, cancel_refusal,
    command_refusal, endpoint_authz, endpoint_refusal, expiration_ms, overall, resolve_date, validate_request,
};

use crate::AppState;
use crate::auth::AuthUser;
use crate::db::{begin_write, now_ms};
use crate::error::ApiError;
use crate::fleet::{rfc3339, status as agent_status};
use crate::store::fleet as fleet_store;
use crate::store::response_actions::{self as store, ActionRow, Completion, ListFilter, NewTarget, TargetRow};

/// What went wrong, for the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("{0}")]
    BadRequest(String),
    /// 403 with Kibana's `Endpoint authorization failure` (and why).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// An outside system (MDE) refused or could not be reached.
    #[error("{0}")]
    Upstream(String),
    /// The database is momentarily busy (503 with Retry-After).
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ResponseError> for ApiError {
    fn from(err: ResponseError) -> ApiError {
        match err {
            ResponseError::BadRequest(message) => ApiError::BadRequest(message),
            ResponseError::Forbidden(message) => ApiError::Coded { status: StatusCode::FORBIDDEN, code: "Forbidden", message },
            ResponseError::NotFound(message) => ApiError::NotFound(message),
            ResponseError::Conflict(message) => ApiError::Conflict(message),
            ResponseError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            ResponseError::Upstream(message) => ApiError::Coded { status: StatusCode::BAD_GATEWAY, code: "Bad Gateway", message },
            ResponseError::Busy(message) => ApiError::Busy { message, retry_after_secs: 1 },
            ResponseError::Database(err) => ApiError::Database(err),
            ResponseError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = ResponseError> = std::result::Result<T, E>;

fn not_found(id: &str) -> ResponseError {
    ResponseError::NotFound(format!("Action with id '{id}' not found."))
}

/// The caller's endpoint authz, and what the SPA needs to apply the same rules.
pub fn authz_of(state: &AppState, user: &AuthUser) -> EndpointAuthzResponse {
    let privileges = warden_core::authz::privileges_of(&user.roles);
    EndpointAuthzResponse {
        authz: endpoint_authz(&privileges, state.license()),
        username: user.username.clone(),
        privileges,
        license: state.license(),
        mde_cancel_enabled: state.config.mde_cancel,
    }
}

/// Refuses a command the user may not send (privilege or licence), with
/// the 403 every endpoint route answers.
pub fn authorize_command(state: &AppState, user: &AuthUser, command: ResponseCommand) -> Result<()> {
    let privileges = warden_core::authz::privileges_of(&user.roles);
    if command == ResponseCommand::Cancel {
        if !endpoint_authz(&privileges, state.license()).can_cancel_action {
            return Err(ResponseError::Forbidden(warden_core::response_actions::AUTHZ_FAILURE.into()));
        }
        return Ok(());
    }
    match command_refusal(&privileges, state.license(), command) {
        Some(reason) => Err(ResponseError::Forbidden(format!("{}: {reason}", warden_core::response_actions::AUTHZ_FAILURE))),
        None => Ok(()),
    }
}

/// The rule an automated action comes from (the `.endpoint-response`
/// system action); `None` for an action a person sent.
#[derive(Debug, Clone, Copy)]
pub struct RuleRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

fn origin_of(rule: Option<RuleRef<'_>>) -> (String, Option<String>, Option<String>) {
    match rule {
        Some(rule) => (ActionOrigin::Automated.as_str().to_owned(), Some(rule.id.to_owned()), Some(rule.name.to_owned())),
        None => (ActionOrigin::Manual.as_str().to_owned(), None, None),
    }
}

/// A file that comes with an `upload` action.
pub struct UploadedFile {
    pub name: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// Sends `command` to the request's hosts: checks it, queues it for each
/// agent in one transaction, wakes their check-ins, and answers it.
pub async fn create(
    state: &AppState,
    command: ResponseCommand,
    request: &ResponseActionRequest,
    user: &AuthUser,
    upload: Option<UploadedFile>,
) -> Result<ActionResponse> {
    create_as(state, command, request, user, upload, None).await
}

/// [`create`] for a rule's system action, as the rule's owner.
pub async fn create_for_rule(
    state: &AppState,
    command: ResponseCommand,
    request: &ResponseActionRequest,
    owner: &AuthUser,
    rule: RuleRef<'_>,
) -> Result<ActionResponse> {
    create_as(state, command, request, owner, None, Some(rule)).await
}

async fn create_as(
    state: &AppState,
    command: ResponseCommand,
    request: &ResponseActionRequest,
    user: &AuthUser,
    upload: Option<UploadedFile>,
    rule: Option<RuleRef<'_>>,
) -> Result<ActionResponse> {
    authorize_command(state, user, command)?;
    let valid = validate_request(command, request).map_err(ResponseError::BadRequest)?;
    match valid.agent_type {
        ResponseAgentType::Endpoint => {}
        ResponseAgentType::MicrosoftDefenderEndpoint => {
            if let Some(reason) = agent_type_license_refusal(valid.agent_type, state.license()) {
                return Err(ResponseError::Forbidden(format!("{}: {reason}", warden_core::response_actions::AUTHZ_FAILURE)));
            }
            if let Some(reason) = agent_refusal(command, valid.agent_type, &[], "") {
                return Err(ResponseError::BadRequest(reason));
            }
            let cancelled = match command {
                ResponseCommand::Cancel => {
                    let mut conn = state.db.acquire().await?;
                    Some(check_cancel(state, &mut conn, user, &valid.endpoint_ids, &valid.parameters, now_ms()).await?.id)
                }
                _ => None,
            };
            return mde::create(state, command, valid, user, cancelled, rule).await;
        }
        _ => return Err(ResponseError::BadRequest("[request body.agent_type]: feature is disabled".into())),
    }
    let sent = send(state, command, valid, user, upload, rule, Recipients::Named).await?;
    let id = sent.action_id.ok_or_else(|| anyhow::anyhow!("a {} action to named hosts was not written", command.as_str()))?;
    let details = get(state, &id).await?;
    Ok(ActionResponse { action: command.has_legacy_action_field().then(|| details.id.clone()), data: details })
}

/// Who an action for Warden's own agents goes to, decided inside its transaction.
#[derive(Debug, Clone, Copy)]
enum Recipients<'a> {
    /// The request's hosts (the single-host routes): one that cannot
    /// receive the command refuses the whole request. A cancel that names
    /// none (a bulk's cancel) goes to every host of its action still pending.
    Named,
    /// Those of the request's hosts that can receive the command now; the
    /// others (changed since a bulk action read them) are left out and
    /// reported. `bulk` links the action to its bulk action.
    Receivable { bulk: Option<&'a str> },
}

/// What [`send`] wrote: the action (none when every host was left out),
/// how many hosts it went to, and the hosts left out.
struct Sent {
    action_id: Option<String>,
    hosts: usize,
    left_out: Vec<RefusedHost>,
}

/// Writes an action for Warden's own agents in one transaction (the
/// action, a target and an agent action per host, an upload's file), then
/// wakes their check-ins and announces it.
async fn send(
    state: &AppState,
    command: ResponseCommand,
    mut valid: ValidRequest,
    user: &AuthUser,
    upload: Option<UploadedFile>,
    rule: Option<RuleRef<'_>>,
    recipients: Recipients<'_>,
) -> Result<Sent> {
    let now = now_ms();
    let mut parameters = valid.parameters.clone();
    let mut tx = begin_write(&state.db, state.engine).await?;
    let cancelled = match command {
        ResponseCommand::Cancel => {
            let action = check_cancel(state, &mut tx, user, &valid.endpoint_ids, &parameters, now).await?;
            if valid.endpoint_ids.is_empty() {
                // A bulk's cancel: the hosts still pending as this transaction reads them.
                valid.endpoint_ids = action.pending_agents().into_iter().map(str::to_owned).collect();
            }
            Some(action.id)
        }
        _ => None,
    };
    let (targets, left_out) = match recipients {
        Recipients::Named => (target_agents(state, &mut tx, command, &valid.endpoint_ids, now).await?, Vec::new()),
        Recipients::Receivable { .. } => receivable_targets(state, &mut tx, command, &valid.endpoint_ids, now).await?,
    };
    if targets.is_empty() {
        return Ok(Sent { action_id: None, hosts: 0, left_out });
    }
    let action_id = uuid::Uuid::new_v4().to_string();
    let mut file_id = None;
    match command {
        ResponseCommand::Upload => {
            let file = upload.ok_or_else(|| ResponseError::BadRequest("[request body.file]: expected a file".into()))?;
            let stored = files::store_to_host(state, &mut tx, &action_id, file, now).await?;
            if let Some(params) = parameters.as_object_mut() {
                params.insert("file_id".into(), stored.id.clone().into());
                params.insert("file_name".into(), stored.name.clone().into());
                params.insert("file_sha256".into(), stored.sha256.clone().unwrap_or_default().into());
                params.insert("file_size".into(), stored.size.into());
            }
            file_id = Some(stored.id);
        }
        ResponseCommand::Runscript => {
            let script_id = parameters.get("scriptId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let script = store::get_script(&mut *tx, &script_id)
                .await?
                .ok_or_else(|| ResponseError::BadRequest(format!("[parameters.scriptId]: script [{script_id}] not found in the scripts library")))?;
            if script.requires_input != 0 && parameters.get("scriptInput").is_none_or(Value::is_null) {
                return Err(ResponseError::BadRequest(format!(
                    "[parameters.scriptInput]: script [{}] requires input: {}",
                    script.name, script.instructions
                )));
            }
            if let Some(params) = parameters.as_object_mut() {
                params.insert("file_id".into(), script.file_id.clone().into());
                params.insert("file_name".into(), script.file_name.clone().into());
                params.insert("file_sha256".into(), script.file_hash.clone().into());
            }
            file_id = Some(script.file_id);
        }
        _ => {}
    }
    let (origin, rule_id, rule_name) = origin_of(rule);
    let row = ActionRow {
        id: action_id.clone(),
        command: command.as_str().to_owned(),
        agent_type: valid.agent_type.as_str().to_owned(),
        parameters: parameters.to_string(),
        comment: valid.comment.clone(),
        created_by: user.username.clone(),
        created_at: now,
        expires_at: now.saturating_add(expiration_ms(command, &parameters)),
        status: ActionStatus::Pending.as_str().to_owned(),
        completed_at: None,
        origin,
        alert_ids: (!valid.alert_ids.is_empty()).then(|| serde_json::json!(valid.alert_ids).to_string()),
        case_ids: (!valid.case_ids.is_empty()).then(|| serde_json::json!(valid.case_ids).to_string()),
        rule_id,
        rule_name,
        file_id,
        bulk_id: match recipients {
            Recipients::Receivable { bulk } => bulk.map(str::to_owned),
            Recipients::Named => None,
        },
    };
    let data = EndpointActionData { command, comment: row.comment.clone(), parameters: parameters.clone(), expiration: rfc3339(row.expires_at) };
    let data = serde_json::to_value(&data).map_err(anyhow::Error::from)?;
    store::insert_action(&mut tx, &row).await?;
    let new_targets: Vec<NewTarget<'_>> = targets
        .iter()
        .map(|t| NewTarget { agent_id: &t.agent_id, host_name: &t.host_name, cancel_supported: t.cancel_supported, external_id: None })
        .collect();
    store::insert_targets(&mut tx, state.engine, &row, &new_targets, Some(&data.to_string())).await?;
    tx.commit().await?;
    tracing::info!(action_id = %row.id, command = command.as_str(), agents = targets.len(), cancels = ?cancelled, bulk = ?row.bulk_id, user = %user.username, "response action sent");
    let agent_ids: Vec<String> = targets.iter().map(|t| t.agent_id.clone()).collect();
    crate::fleet::service::actions_queued(
        state,
        targets
            .iter()
            .map(|t| {
                let action = AgentAction {
                    agent_id: AgentId::new(t.agent_id.clone()),
                    created_at: rfc3339(now),
                    data: data.clone(),
                    id: ActionId::new(row.id.clone()),
                    action_type: AgentActionType::InputAction,
                    input_type: crate::fleet::service::ENDPOINT_INPUT.to_owned(),
                };
                (AgentId::new(t.agent_id.clone()), Some(action))
            })
            .collect(),
    );
    state.events.publish(Event::response_action_changed(&row.id, &agent_ids));
    Ok(Sent { action_id: Some(row.id), hosts: targets.len(), left_out })
}

/// Announces that an action changed for `agents`, after the commit. An
/// action that ended without its agent leaves this node's outbox at once;
/// the other nodes drop it when they hear the event.
pub fn announce(state: &AppState, action_id: &str, agents: &[String]) {
    for agent in agents {
        state.hub.forget(agent, action_id);
    }
    state.events.publish(Event::response_action_changed(action_id, agents));
}

/// Of `ids`, the agents that can receive `command` now (enrolled, and
/// reporting its capability); the rest are left out without an error.
pub async fn receivable(state: &AppState, ids: &[String], command: ResponseCommand) -> Result<Vec<String>> {
    let mut conn = state.db.acquire().await?;
    let found = agents_of(state, &mut conn, ids).await?;
    let now = now_ms();
    Ok(ids.iter().filter(|id| target(state, &found, id, command, now).is_ok()).cloned().collect())
}

/// A target agent as a new action records it.
struct Target {
    agent_id: String,
    host_name: String,
    cancel_supported: bool,
}

/// The agents rows of `ids` (those that exist), read a thousand at a time.
async fn agents_of(state: &AppState, tx: &mut AnyConnection, ids: &[String]) -> Result<HashMap<String, fleet_store::AgentRow>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(1_000) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for row in fleet_store::agents_by_ids(&mut *tx, state.engine, &chunk).await? {
            found.insert(row.id.clone(), row);
        }
    }
    Ok(found)
}

/// Whether agent `id` can receive `command` now (it exists, and the core's
/// [`endpoint_refusal`]: enrolled, reporting the command's capability; an
/// offline one is fine, the action waits for it), or why not.
fn target(
    state: &AppState,
    found: &HashMap<String, fleet_store::AgentRow>,
    id: &str,
    command: ResponseCommand,
    now: i64,
) -> Result<Target, RefusedHost> {
    let Some(row) = found.get(id) else {
        return Err(RefusedHost { agent_id: id.to_owned(), host_name: None, reason: format!("Endpoint '{id}' was not found") });
    };
    let metadata: Value = serde_json::from_str(&row.local_metadata).unwrap_or(Value::Null);
    let capabilities = EndpointMetadata::of(&metadata).known_capabilities();
    let host =
        EndpointHost { id, host_name: &row.hostname, active: row.active != 0, status: agent_status(state, row, now), capabilities: &capabilities };
    if let Some(reason) = endpoint_refusal(command, &host) {
        return Err(RefusedHost { agent_id: id.to_owned(), host_name: Some(row.hostname.clone()), reason });
    }
    Ok(Target {
        agent_id: id.to_owned(),
        host_name: row.hostname.clone(),
        cancel_supported: capabilities.contains(&warden_core::response_actions::EndpointCapability::Cancel),
    })
}

/// The request's agents, each checked by [`target`]; the first that cannot
/// receive the command refuses the whole request.
async fn target_agents(state: &AppState, tx: &mut AnyConnection, command: ResponseCommand, ids: &[String], now: i64) -> Result<Vec<Target>> {
    let found = agents_of(state, tx, ids).await?;
    ids.iter().map(|id| target(state, &found, id, command, now).map_err(|refused| ResponseError::BadRequest(refused.reason))).collect()
}

/// The agents of `ids` that can receive `command` now, and the others with
/// why, each checked by [`target`] (a bulk action's hosts).
async fn receivable_targets(
    state: &AppState,
    tx: &mut AnyConnection,
    command: ResponseCommand,
    ids: &[String],
    now: i64,
) -> Result<(Vec<Target>, Vec<RefusedHost>)> {
    let found = agents_of(state, tx, ids).await?;
    let (mut targets, mut refused) = (Vec::with_capacity(ids.len()), Vec::new());
    for id in ids {
        match target(state, &found, id, command, now) {
            Ok(target) => targets.push(target),
            Err(why) => refused.push(why),
        }
    }
    Ok((targets, refused))
}

/// Applies the cancel rule to the action `parameters.id` names, inside the
/// transaction that creates the cancel; returns that action as it is now.
async fn check_cancel(
    state: &AppState,
    tx: &mut AnyConnection,
    user: &AuthUser,
    endpoint_ids: &[String],
    parameters: &Value,
    now: i64,
) -> Result<ActionDetails> {
    let target_id = parameters.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let row = store::get_action(&mut *tx, &target_id).await?.ok_or_else(|| not_found(&target_id))?;
    let targets = store::targets_of(&mut *tx, state.engine, &[&target_id], &[]).await?;
    let action = details_of(row, &targets, now).ok_or_else(|| anyhow::anyhow!("action {target_id} has an unknown command or agent type"))?;
    let privileges = warden_core::authz::privileges_of(&user.roles);
    let canceller =
        Canceller { username: &user.username, privileges: &privileges, license: state.license(), mde_cancel_enabled: state.config.mde_cancel };
    if let Some(refusal) = cancel_refusal(&canceller, &action, endpoint_ids) {
        return Err(match refusal.status {
            403 => ResponseError::Forbidden(refusal.message),
            404 => ResponseError::NotFound(refusal.message),
            _ => ResponseError::BadRequest(refusal.message),
        });
    }
    Ok(action)
}

/// One action with every output.
pub async fn get(state: &AppState, id: &str) -> Result<ActionDetails> {
    let row = store::get_action(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let targets = store::targets_of(&state.db, state.engine, &[id], &[id]).await?;
    details_of(row, &targets, now_ms()).ok_or_else(|| ResponseError::Internal(anyhow::anyhow!("action {id} has an unknown command or agent type")))
}

/// The history: filtered, newest first, a page at a time, with `total`.
pub async fn list(state: &AppState, query: &ActionListQuery) -> Result<ActionListResponse> {
    let now = now_ms();
    let date = |text: &Option<String>, end: bool, field: &str| -> Result<Option<i64>> {
        text.as_deref().map(|t| resolve_date(t, now, end).map_err(|e| ResponseError::BadRequest(format!("[request query.{field}]: {e}")))).transpose()
    };
    let filter = ListFilter {
        agent_ids: query.agent_ids.clone(),
        agent_types: query.agent_types.iter().map(|t| t.as_str().to_owned()).collect(),
        commands: query.commands.iter().map(|t| t.as_str().to_owned()).collect(),
        statuses: query.statuses.iter().map(|t| t.as_str().to_owned()).collect(),
        user_ids: query.user_ids.clone(),
        origins: query.types.iter().map(|t| t.as_str().to_owned()).collect(),
        start: date(&query.start_date, false, "startDate")?,
        end: date(&query.end_date, true, "endDate")?,
    };
    let offset = (query.page - 1)
        .checked_mul(query.page_size)
        .and_then(|o| i64::try_from(o).ok())
        .ok_or_else(|| ResponseError::BadRequest("[request query.page]: page × pageSize is too large".into()))?;
    let (rows, total) = store::list(&state.db, state.engine, &filter, now, query.page_size as i64, offset).await?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let outputs: Vec<&str> = query.with_outputs.iter().map(String::as_str).filter(|id| ids.contains(id)).collect();
    let targets = store::targets_of(&state.db, state.engine, &ids, &outputs).await?;
    let mut by_action: HashMap<String, Vec<TargetRow>> = HashMap::new();
    for target in targets {
        by_action.entry(target.action_id.clone()).or_default().push(target);
    }
    let data = rows
        .into_iter()
        .filter_map(|row| {
            let targets = by_action.remove(&row.id).unwrap_or_default();
            details_of(row, &targets, now)
        })
        .collect();
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    Ok(ActionListResponse {
        page: query.page,
        page_size: query.page_size,
        start_date: query.start_date.clone(),
        end_date: query.end_date.clone(),
        agent_types: (!query.agent_types.is_empty()).then(|| query.agent_types.clone()),
        elastic_agent_ids: some(query.agent_ids.clone()),
        user_ids: some(query.user_ids.clone()),
        commands: (!query.commands.is_empty()).then(|| query.commands.clone()),
        statuses: (!query.statuses.is_empty()).then(|| query.statuses.clone()),
        data,
        total: u64::try_from(total).unwrap_or_default(),
    })
}

/// Pending actions per agent by command (`action_status`); every agent asked
/// for is in the answer, with zeros.
pub async fn pending_by_agent(state: &AppState, agent_ids: &[String]) -> Result<ActionStatusResponse> {
    let counts = store::pending_counts(&state.db, state.engine, agent_ids, now_ms()).await?;
    let data = agent_ids
        .iter()
        .map(|agent_id| {
            let mut pending: BTreeMap<String, u64> =
                ResponseCommand::ALL.iter().filter(|c| **c != ResponseCommand::Cancel).map(|c| (c.as_str().to_owned(), 0)).collect();
            for (_, command, count) in counts.iter().filter(|(a, _, _)| a == agent_id) {
                pending.insert(command.clone(), u64::try_from(*count).unwrap_or_default());
            }
            AgentPendingActions { agent_id: agent_id.clone(), pending_actions: pending }
        })
        .collect();
    Ok(ActionStatusResponse { data })
}

/// An action as the API shows it, from its rows at `now`; `None` for a row
/// this version cannot read (an unknown command or agent type).
pub fn details_of(row: ActionRow, targets: &[TargetRow], now: i64) -> Option<ActionDetails> {
    let command = ResponseCommand::parse(&row.command)?;
    let agent_type = ResponseAgentType::parse(&row.agent_type)?;
    let mut agent_state = BTreeMap::new();
    let mut hosts = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut errors = Vec::new();
    for t in targets {
        let target_errors: Option<Vec<String>> = t.errors.as_deref().and_then(|e| serde_json::from_str(e).ok());
        errors.extend(target_errors.iter().flatten().map(|e| format!("{}: {e}", t.host_name)));
        agent_state.insert(
            t.agent_id.clone(),
            AgentState {
                is_completed: t.completed_at.is_some(),
                was_successful: t.was_successful != 0,
                errors: target_errors,
                completed_at: t.completed_at.map(rfc3339),
                was_canceled: t.was_canceled != 0,
                canceled_by: t.canceled_by.clone(),
                cancel_action_id: t.cancel_action_id.clone(),
                is_expired: t.is_expired != 0,
            },
        );
        hosts.insert(t.agent_id.clone(), ActionHost { name: t.host_name.clone(), cancel_supported: t.cancel_supported != 0 });
        if let Some(output) = t.output.as_deref().and_then(|o| serde_json::from_str::<ActionOutput>(o).ok()) {
            outputs.insert(t.agent_id.clone(), output);
        }
    }
    let summary = overall(agent_state.values(), row.status == "pending" && row.expires_at < now);
    let parse_list = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str::<Vec<String>>(t).ok());
    let completed_at = row.completed_at.or_else(|| (summary.is_expired && summary.is_completed).then_some(row.expires_at));
    Some(ActionDetails {
        agents: targets.iter().map(|t| t.agent_id.clone()).collect(),
        hosts,
        command,
        agent_type,
        is_expired: summary.is_expired,
        is_completed: summary.is_completed,
        was_successful: summary.was_successful,
        was_canceled: summary.was_canceled,
        errors: (!errors.is_empty()).then_some(errors),
        started_at: rfc3339(row.created_at),
        completed_at: completed_at.map(rfc3339),
        status: summary.status,
        created_by: row.created_by,
        comment: row.comment,
        parameters: serde_json::from_str(&row.parameters).unwrap_or(Value::Null),
        outputs: (!outputs.is_empty()).then_some(outputs),
        agent_state,
        alert_ids: parse_list(&row.alert_ids),
        case_ids: parse_list(&row.case_ids),
        rule_id: row.rule_id,
        rule_name: row.rule_name,
        expiration: rfc3339(row.expires_at),
        id: row.id,
    })
}

/// One agent's answer to an `INPUT_ACTION`, as its ack carried it.
pub struct AgentAnswer<'a> {
    pub agent_id: &'a str,
    pub action_id: &'a str,
    /// The ack's `error`, when the agent sent no result document.
    pub error: Option<&'a str>,
    pub result: Option<&'a EndpointActionResult>,
}

/// What recording an answer did: the ack item's status and message, and the
/// actions whose state changed (announced after the commit).
pub struct Recorded {
    pub status: u16,
    pub message: String,
    pub changed: Vec<(String, Vec<String>)>,
}

/// Writes an agent's answer inside the acks' transaction. A cancel that the
/// agent carried out ends the action it names for that agent (failed,
/// cancelled by the cancel's sender) unless that action already ended, in
/// which case the cancel itself fails: one terminal state, never two.
pub async fn record_result(tx: &mut AnyConnection, answer: &AgentAnswer<'_>, now: i64) -> sqlx::Result<Recorded> {
    let Some(action) = store::get_action(&mut *tx, answer.action_id).await? else {
        return Ok(Recorded { status: 404, message: format!("action {} not found for this agent", answer.action_id), changed: Vec::new() });
    };
    let result = answer.result.cloned().unwrap_or_default();
    let error = result.error.clone().or_else(|| answer.error.map(str::to_owned));
    let mut changed = Vec::new();
    let agent = answer.agent_id.to_owned();
    let errors_json = |e: &str| serde_json::json!([e]).to_string();
    // Stopped by a cancel on the host: cancelled by whoever sent that cancel.
    let (mut successful, mut errors, mut canceled_by, mut cancel_action_id) = (error.is_none(), error.as_deref().map(errors_json), None, None);
    if let Some(cancel_id) = result.canceled_by_action.as_deref()
        && let Some(cancel) = store::get_action(&mut *tx, cancel_id).await?
    {
        successful = false;
        errors = Some(errors_json(&format!("Cancelled by {}", cancel.created_by)));
        canceled_by = Some(cancel.created_by);
        cancel_action_id = Some(cancel_id.to_owned());
    }
    if action.command == ResponseCommand::Cancel.as_str() && successful {
        // The agent says it cancelled: end the original here too, so it can
        // never stay pending after a cancel that succeeded.
        let original = serde_json::from_str::<Value>(&action.parameters).ok().and_then(|p| p.get("id").and_then(Value::as_str).map(str::to_owned));
        if let Some(original) = original {
            let ended = store::complete_target(
                tx,
                &Completion {
                    action_id: &original,
                    agent_id: answer.agent_id,
                    at: now,
                    successful: false,
                    errors: Some(errors_json(&format!("Cancelled by {}", action.created_by))),
                    output: None,
                    canceled_by: Some(&action.created_by),
                    cancel_action_id: Some(&action.id),
                },
            )
            .await?;
            let ended_by = store::target_end(tx, &original, answer.agent_id).await?.and_then(|(cancel, _)| cancel);
            let ended_by_this = ended || ended_by.as_deref() == Some(action.id.as_str());
            if !ended_by_this {
                successful = false;
                errors = Some(errors_json(&format!("Action {original} had already ended on this host before the cancel took effect")));
            }
            store::settle_action(tx, &original, now).await?;
            changed.push((original, vec![agent.clone()]));
        }
    }
    let output = result.output.as_ref().and_then(|o| serde_json::to_string(o).ok());
    let written = store::complete_target(
        tx,
        &Completion {
            action_id: &action.id,
            agent_id: answer.agent_id,
            at: now,
            successful,
            errors,
            output,
            canceled_by: canceled_by.as_deref(),
            cancel_action_id: cancel_action_id.as_deref(),
        },
    )
    .await?;
    store::settle_action(tx, &action.id, now).await?;
    if !written {
        return Ok(Recorded {
            status: 409,
            message: format!("action {} had already ended on this host (cancelled or expired); this result was not recorded", action.id),
            changed,
        });
    }
    changed.push((action.id, vec![agent]));
    Ok(Recorded { status: 200, message: "OK".into(), changed })
}

/// Fails every pending action past its expiry (a batch at a time) and
/// announces each; returns how many targets expired.
pub async fn expire_due(state: &AppState) -> Result<usize> {
    let mut expired = 0;
    loop {
        let now = now_ms();
        let due = store::due_to_expire(&state.db, now, 500).await?;
        if due.is_empty() {
            return Ok(expired);
        }
        let mut tx = begin_write(&state.db, state.engine).await?;
        let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (action_id, agent_id) in &due {
            if store::expire_target(&mut tx, action_id, agent_id, now).await? {
                expired += 1;
                changed.entry(action_id.clone()).or_default().push(agent_id.clone());
            }
        }
        for action_id in changed.keys() {
            store::settle_action(&mut tx, action_id, now).await?;
        }
        tx.commit().await?;
        for (id, agents) in changed {
            announce(state, &id, &agents);
        }
    }
}

/// Removes actions older than `response_action_retention` and files older
/// than `response_file_retention`; returns (actions, files) removed.
pub async fn remove_old(state: &AppState) -> Result<(u64, u64)> {
    let now = now_ms();
    let before = now - i64::try_from(state.config.response_action_retention.as_millis()).unwrap_or(i64::MAX);
    let mut actions = 0;
    loop {
        let mut tx = begin_write(&state.db, state.engine).await?;
        let removed = store::delete_actions_before(&mut tx, before, 500).await?;
        tx.commit().await?;
        actions += removed;
        if removed < 500 {
            break;
        }
    }
    let mut tx = begin_write(&state.db, state.engine).await?;
    let files = store::delete_expired_files(&mut tx, now).await?;
    // A bulk goes once retention has removed all its actions.
    store::delete_bulks_before(&mut tx, before).await?;
    tx.commit().await?;
    Ok((actions, files))
}

/// The task that expires actions and removes old ones.
pub fn definitions(state: &AppState) -> Vec<crate::tasks::TaskDefinition> {
    let task_state = state.clone();
    let mut definition = crate::tasks::TaskDefinition::new(EXPIRY_TASK_TYPE, "Response actions expiry and retention", move |_ctx| {
        let state = task_state.clone();
        async move {
            let expired = expire_due(&state).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let (actions, files) = remove_old(&state).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            Ok(crate::tasks::RunOutput {
                state: None,
                summary: Some(format!("{expired} hosts' actions expired; {actions} old actions and {files} old files removed")),
            })
        }
    });
    definition.every = Some(state.config.response_action_expiry_interval);
    let poll_state = state.clone();
    let mut poll = crate::tasks::TaskDefinition::new(MDE_POLL_TASK_TYPE, "Microsoft Defender for Endpoint actions", move |_ctx| {
        let state = poll_state.clone();
        async move {
            let ended = mde::poll(&state).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            Ok(crate::tasks::RunOutput { state: None, summary: Some(format!("{ended} hosts' MDE machine actions ended")) })
        }
    });
    poll.every = Some(state.config.mde_poll_interval);
    vec![definition, poll]
}

pub const MDE_POLL_TASK_TYPE: &str = "response_actions:mde_poll";

pub const EXPIRY_TASK_TYPE: &str = "response_actions:expire";

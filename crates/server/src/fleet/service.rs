//! What analysts and agents ask of Fleet. Each function takes typed input,
//! owns its transaction, writes the activity log with the change it records
//! (`commit_logged`), and answers with the API's types or a `FleetError`.
//! Handlers (`http::fleet`, `http::fleet_server`) only parse, authorize, call
//! one of these and shape the reply.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use axum::http::StatusCode;
use warden_core::events::Event;
use warden_core::fleet::{AgentStatus, AuditDetails, AuditReason, Reenrollment, host_fingerprint, reenrollment};
use warden_core::fleet_api::{
    AckEvent, AckResponse, Agent, AgentAction, AgentActionType, AgentEvent, AgentEventKind, AgentPolicy, AgentPolicyRequest, AgentSortField,
    BulkTarget, BulkUnenrollRequest, CheckinRequest, CheckinResponse, EnrollRequest, EnrollResponse, EnrolledAgent, EnrollmentApiKey,
    EnrollmentApiKeyRequest, ListResponse, UnenrollRequest,
};
use warden_core::ids::{ActionId, AgentId, PolicyId};
use warden_core::kuery;

use super::{commit_logged, event, facts_status, rfc3339, status, to_agent, to_event};
use crate::AppState;
use crate::auth::{secrets_equal, sha256_hex};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::store::fleet::{self as store, CheckinWrite, NewAgent, PolicyRow};
/// What the agent routes' extractors hand to the service.
pub use crate::store::fleet::{AgentRow, EnrollmentKeyRow};

/// Kibana's `SO_SEARCH_LIMIT`: no page goes past the 10,000th agent.
pub const SO_SEARCH_LIMIT: usize = 10_000;
/// Acks per request: an agent acks what one check-in handed it, a handful.
pub const MAX_ACK_EVENTS: usize = 1_000;
const DEFAULT_INACTIVITY_TIMEOUT_SECS: i64 = 1_209_600;
/// The input an `INPUT_ACTION` for Elastic Defend names.
pub const ENDPOINT_INPUT: &str = "endpoint";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A request that cannot be carried out as asked (400).
    #[error("{0}")]
    Invalid(String),
    #[error("Agent {0} not found")]
    AgentNotFound(String),
    #[error("Agent policy {0} not found")]
    PolicyNotFound(String),
    #[error("Enrollment API key {0} not found")]
    EnrollmentKeyNotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// An agent's key that is missing, unknown, revoked or expired (401 `ErrUnauthorized`).
    #[error("{0}")]
    AgentUnauthorized(&'static str),
    /// One agent's key speaking for another (403 `ErrAgentIdentity`).
    #[error("the API key does not belong to this agent")]
    WrongAgent,
    /// The agent's final message, sent twice (409 `ErrAuditReasonConflict`).
    #[error("agent document contains audit_unenroll_reason")]
    AuditReasonConflict,
    /// The database is momentarily busy (503 with Retry-After).
    #[error("The database is busy; try again in a moment")]
    Busy,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FleetError> for ApiError {
    fn from(err: FleetError) -> ApiError {
        let coded = |status, code, message: String| ApiError::Coded { status, code, message };
        match err {
            FleetError::Invalid(message) => ApiError::BadRequest(message),
            FleetError::AgentNotFound(_) | FleetError::PolicyNotFound(_) | FleetError::EnrollmentKeyNotFound(_) => {
                ApiError::NotFound(err.to_string())
            }
            FleetError::Conflict(message) => ApiError::Conflict(message),
            FleetError::AgentUnauthorized(message) => coded(StatusCode::UNAUTHORIZED, "ErrUnauthorized", message.to_owned()),
            FleetError::WrongAgent => coded(StatusCode::FORBIDDEN, "ErrAgentIdentity", err.to_string()),
            FleetError::AuditReasonConflict => coded(StatusCode::CONFLICT, "ErrAuditReasonConflict", err.to_string()),
            FleetError::Busy => ApiError::Busy { message: err.to_string(), retry_after_secs: 1 },
            FleetError::Database(err) => ApiError::Database(err),
            FleetError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = FleetError> = std::result::Result<T, E>;

// --- agents, for analysts ---

/// An agent row with its derived status and parsed tags: enough to filter,
/// count and sort 10,000 agents without building their full JSON.
struct Ranked {
    row: store::AgentFactsRow,
    status: AgentStatus,
    tags: Vec<String>,
}

impl Ranked {
    fn subject(&self) -> kuery::Subject<'_> {
        kuery::Subject {
            status: self.status.as_str(),
            policy_id: &self.row.policy_id,
            hostname: &self.row.hostname,
            version: &self.row.version,
            tags: &self.tags,
        }
    }
}

/// The agents that match `filter` (and `keep`), with their derived status.
/// SQL narrows the rows first where the kuery allows it (policy, host name,
/// version); the kuery itself, the one rule, decides on what is left, off the
/// async workers, so a costly filter never stalls other requests.
async fn matching_agents(state: &AppState, filter: Option<kuery::Query>, keep: impl Fn(&Ranked) -> bool + Send + 'static) -> Result<Vec<Ranked>> {
    let rows = store::agent_facts_matching(&state.db, state.engine, filter.as_ref()).await?;
    let state = state.clone();
    let matching = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        rows.into_iter()
            .map(|row| Ranked { status: facts_status(&state, &row, now), tags: serde_json::from_str(&row.tags).unwrap_or_default(), row })
            .filter(|a| keep(a) && filter.as_ref().is_none_or(|q| q.matches(&a.subject())))
            .collect()
    })
    .await
    .map_err(anyhow::Error::from)?;
    Ok(matching)
}

fn summary(statuses: impl Iterator<Item = AgentStatus>) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = AgentStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    for status in statuses {
        *counts.entry(status.as_str().to_owned()).or_default() += 1;
    }
    counts
}

/// What the Fleet list asks for, parsed and within bounds.
pub struct AgentList {
    pub page: usize,
    pub per_page: usize,
    pub filter: Option<kuery::Query>,
    pub show_inactive: bool,
    pub status_summary: bool,
    pub sort: AgentSortField,
    pub descending: bool,
}

/// Agents, filtered, sorted and paged. Status is derived from the stored
/// facts and the current time, so filtering happens after the derivation;
/// the page's full records are read in one query.
pub async fn list_agents(state: &AppState, list: AgentList) -> Result<ListResponse<Agent>> {
    let AgentList { page, per_page, filter, show_inactive, status_summary, sort, descending } = list;
    let mut shown = matching_agents(state, filter, |_| true).await?;
    let status_summary = status_summary.then(|| summary(shown.iter().map(|a| a.status)));
    shown.retain(|a| show_inactive || !a.status.hidden_by_default());
    let shown = tokio::task::spawn_blocking(move || {
        sort_agents(&mut shown, sort, descending);
        shown
    })
    .await
    .map_err(anyhow::Error::from)?;
    let total = shown.len();
    let on_page: Vec<&Ranked> = shown.iter().skip((page - 1) * per_page).take(per_page).collect();
    let ids: Vec<&str> = on_page.iter().map(|a| a.row.id.as_str()).collect();
    let mut rows: BTreeMap<String, AgentRow> =
        store::agents_by_ids(&state.db, state.engine, &ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
    // In the page's order; an agent deleted meanwhile is skipped.
    let items = on_page.iter().filter_map(|a| rows.remove(&a.row.id).map(|row| to_agent(row, a.status))).collect();
    Ok(ListResponse { items, total, page, per_page, status_summary })
}

/// An agent a `fleet.agent_status` rule found: its record and since when
/// (at the latest) it has been in its status.
pub struct WatchedAgent {
    pub agent: Agent,
    pub since: i64,
}

/// The agents now in one of `statuses` (on one of `policy_ids`, matching
/// `filter`), for a `fleet.agent_status` rule run.
pub async fn agents_in_status(
    state: &AppState,
    statuses: Vec<AgentStatus>,
    policy_ids: Option<Vec<String>>,
    filter: Option<kuery::Query>,
) -> Result<Vec<WatchedAgent>> {
    let now = now_ms();
    let found =
        matching_agents(state, filter, move |a| statuses.contains(&a.status) && policy_ids.as_ref().is_none_or(|p| p.contains(&a.row.policy_id)))
            .await?;
    let mut watched = Vec::with_capacity(found.len());
    for chunk in found.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|a| a.row.id.as_str()).collect();
        for row in store::agents_by_ids(&state.db, state.engine, &ids).await? {
            let status = status(state, &row, now);
            // An agent's clock may run ahead: never later than now.
            let since = status_since(state, &row, status).min(now);
            watched.push(WatchedAgent { agent: to_agent(row, status), since });
        }
    }
    Ok(watched)
}

/// The earliest moment the agent is known to have been in `status`: when it
/// reported itself gone, when it fell silent long enough, when it was
/// unenrolled; otherwise its last check-in.
fn status_since(state: &AppState, row: &AgentRow, status: AgentStatus) -> i64 {
    let last_seen = row.last_checkin.unwrap_or(row.enrolled_at);
    let offline_after = i64::try_from(state.config.agent_offline_after.as_millis()).unwrap_or(i64::MAX);
    match status {
        AgentStatus::Uninstalled | AgentStatus::Orphaned | AgentStatus::Migrated => row.audit_unenrolled_time.unwrap_or(last_seen),
        AgentStatus::Replaced => row.replaced_at.unwrap_or(last_seen),
        AgentStatus::Offline => last_seen.saturating_add(offline_after),
        AgentStatus::Inactive => last_seen.saturating_add(row.inactivity_timeout.saturating_mul(1000)),
        AgentStatus::Unenrolled => row.unenrolled_at.unwrap_or(last_seen),
        _ => last_seen,
    }
}

fn sort_agents(agents: &mut [Ranked], sort: AgentSortField, descending: bool) {
    let text_key = |a: &Ranked| -> String {
        match sort {
            AgentSortField::Hostname => a.row.hostname.to_lowercase(),
            AgentSortField::Status => a.status.as_str().to_owned(),
            AgentSortField::PolicyId => a.row.policy_id.clone(),
            AgentSortField::Version => a.row.version.clone(),
            AgentSortField::EnrolledAt | AgentSortField::LastCheckin => String::new(),
        }
    };
    let time_key = |a: &Ranked| -> i64 {
        match sort {
            AgentSortField::LastCheckin => a.row.last_checkin.unwrap_or(0),
            _ => a.row.enrolled_at,
        }
    };
    agents.sort_by_cached_key(|a| (text_key(a), time_key(a), a.row.id.clone()));
    if descending {
        agents.reverse();
    }
}

async fn find_agent(state: &AppState, id: &str) -> Result<AgentRow> {
    store::agent(&state.db, id).await?.ok_or_else(|| FleetError::AgentNotFound(id.to_owned()))
}

pub async fn get_agent(state: &AppState, id: &str) -> Result<Agent> {
    let row = find_agent(state, id).await?;
    let status = status(state, &row, now_ms());
    Ok(to_agent(row, status))
}

/// The agent's activity log, newest first, at most `limit` lines.
pub async fn agent_events(state: &AppState, id: &str, limit: i64) -> Result<Vec<AgentEvent>> {
    find_agent(state, id).await?;
    Ok(store::events(&state.db, id, limit).await?.into_iter().map(to_event).collect())
}

/// Counts per status, in Fleet's shape plus every Warden status.
pub async fn agent_status(state: &AppState, policy_id: Option<String>, filter: Option<kuery::Query>) -> Result<BTreeMap<String, usize>> {
    let agents = matching_agents(state, filter, move |a| policy_id.as_ref().is_none_or(|p| *p == a.row.policy_id)).await?;
    let mut results = summary(agents.iter().map(|a| a.status));
    let count = |s: &str| results.get(s).copied().unwrap_or(0);
    let inactive_or_gone = count("inactive") + count("unenrolled") + count("replaced");
    let other = count("enrolling") + count("unenrolling") + count("degraded");
    results.insert("all".into(), agents.len());
    results.insert("active".into(), agents.len() - inactive_or_gone);
    results.insert("other".into(), other);
    results.insert("events".into(), 0);
    Ok(results)
}

/// Unenrolls an agent. `force` or `revoke` act at once (the key stops working
/// and a FORCE_UNENROLL annotation records who did it); otherwise the agent
/// is asked to unenroll and is unenrolled when it confirms, and asking again
/// while it has not confirmed queues nothing. An agent that reported itself
/// gone (uninstalled, orphaned, migrated) cannot confirm, so its unenroll
/// completes at once.
pub async fn unenroll(state: &AppState, id: &str, request: &UnenrollRequest, username: &str) -> Result<()> {
    let row = find_agent(state, id).await?;
    if row.active == 0 {
        return Err(FleetError::Invalid(format!("Agent {id} is already unenrolled")));
    }
    let gone = row.audit_unenrolled_reason.is_some();
    if row.unenrollment_started_at.is_some() && !(request.force || request.revoke || gone) {
        return Ok(());
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // `None`: another request asked this agent first, and nothing was written.
    let Some((line, action)) = unenroll_one(&mut tx, &row.id, gone, request, username, now).await? else { return Ok(()) };
    let mut lines = end_host_conflicts(state, &mut tx, &[row.id.as_str()], username, now).await?;
    lines.insert(0, line);
    commit_logged(state, tx, lines).await?;
    actions_queued(state, action.into_iter().map(|a| (a.agent_id.clone(), Some(a))).collect());
    Ok(())
}

/// Unenrolling one of two agents that claim a host settles their conflict:
/// the analyst chose the other, which is alone on its host again (and no
/// longer replaced, if the unenrolled one had replaced it).
async fn end_host_conflicts(
    state: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    unenrolled: &[&str],
    username: &str,
    now: i64,
) -> Result<Vec<store::EventRow>> {
    let freed = store::end_host_conflicts(tx, state.engine, unenrolled).await?;
    Ok(freed
        .into_iter()
        .map(|(agent, other)| {
            let message = format!("Agent {other}, which also claimed this host, was unenrolled: this agent is alone on its host again");
            event(&agent, AgentEventKind::HostConflictResolved, message, Some(username), now)
        })
        .collect())
}

/// Hands actions (committed) to waiting check-ins on this node, and tells the
/// other nodes: which agent has something to pick up, or, for many, one
/// event that sends them to the actions table.
pub fn actions_queued(state: &AppState, queued: Vec<(AgentId, Option<AgentAction>)>) {
    let mut woken = Vec::new();
    for (agent_id, action) in queued {
        if action.is_some() {
            woken.push(agent_id.clone());
        }
        state.hub.action_queued(agent_id.as_str(), action);
    }
    match woken.as_slice() {
        [] => {}
        [one] => state.events.publish(Event::agent_action_queued(one.as_str())),
        _ => state.events.publish(Event::agent_actions_queued()),
    }
}

fn unenroll_action(agent_id: &str, action_id: &str, now: i64) -> AgentAction {
    AgentAction {
        agent_id: AgentId::new(agent_id),
        created_at: rfc3339(now),
        data: serde_json::json!({"action_id": action_id}),
        id: ActionId::new(uuid::Uuid::new_v4().to_string()),
        action_type: AgentActionType::Unenroll,
        input_type: String::new(),
    }
}

/// Unenrolls one active agent inside `tx`; returns the activity-log line and
/// the action queued for the agent, if any, or `None` if the agent was
/// already asked (nothing written). `gone`: the agent reported itself gone,
/// so it cannot confirm.
async fn unenroll_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    gone: bool,
    request: &UnenrollRequest,
    username: &str,
    now: i64,
) -> Result<Option<(store::EventRow, Option<AgentAction>)>> {
    if request.force || request.revoke || gone {
        let forced_by = request.force.then_some(username);
        store::finish_unenroll(&mut **tx, id, now, forced_by).await?;
        let line = if request.force {
            event(id, AgentEventKind::ForceUnenrolled, "Force-unenrolled: the API key was revoked at once", Some(username), now)
        } else {
            event(id, AgentEventKind::Unenrolled, "Unenrolled and the API key revoked", Some(username), now)
        };
        return Ok(Some((line, None)));
    }
    if !store::start_unenroll(&mut **tx, id, now).await? {
        return Ok(None);
    }
    let action = unenroll_action(id, &uuid::Uuid::new_v4().to_string(), now);
    store::insert_action(&mut **tx, action.id.as_str(), id, action.action_type.as_str(), &action.data.to_string(), now, Some(username)).await?;
    Ok(Some((event(id, AgentEventKind::UnenrollRequested, "Asked the agent to unenroll", Some(username), now), Some(action))))
}

/// The agents a bulk operation names, with their facts: by id (at most
/// 10,000; unknown ids are left out), or by kuery as the Fleet view lists
/// them (inactive and unenrolled agents only with `include_inactive`), by
/// host name. Bulk unenroll and bulk response actions select through it.
pub async fn select_agents(
    state: &AppState,
    agents: &BulkTarget,
    filter: Option<kuery::Query>,
    include_inactive: bool,
) -> Result<Vec<store::AgentFactsRow>> {
    let mut selected: Vec<store::AgentFactsRow> = match agents {
        BulkTarget::Ids(ids) => {
            if ids.len() > SO_SEARCH_LIMIT {
                return Err(FleetError::Invalid(format!("[request body.agents]: at most {SO_SEARCH_LIMIT} agent ids, got {}", ids.len())));
            }
            let ids: HashSet<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
            matching_agents(state, None, move |a| ids.contains(&a.row.id)).await?.into_iter().map(|a| a.row).collect()
        }
        BulkTarget::Kuery(_) => {
            let shown = move |a: &Ranked| include_inactive || !a.status.hidden_by_default();
            matching_agents(state, filter, shown).await?.into_iter().map(|a| a.row).collect()
        }
    };
    selected.sort_by(|a, b| a.hostname.cmp(&b.hostname).then_with(|| a.id.cmp(&b.id)));
    Ok(selected)
}

/// Unenrolls many agents, by id or by kuery, in batches of `batch_size`
/// (default 1,000), each batch one transaction; waiting agents are woken as
/// soon as their batch commits. Returns the bulk action's id.
pub async fn bulk_unenroll(state: &AppState, body: BulkUnenrollRequest, filter: Option<kuery::Query>, username: &str) -> Result<String> {
    let targets = select_agents(state, &body.agents, filter, body.include_inactive).await?;
    let now = now_ms();
    let request = UnenrollRequest { force: body.force, revoke: body.revoke };
    let action_id = uuid::Uuid::new_v4().to_string();
    let acts_at_once = |row: &store::AgentFactsRow| request.force || request.revoke || row.audit_unenrolled_reason.is_some();
    // Active agents, except those already asked whose UNENROLL is still queued.
    let todo: Vec<&store::AgentFactsRow> =
        targets.iter().filter(|r| r.active != 0 && (acts_at_once(r) || r.unenrollment_started_at.is_none())).collect();
    for batch in todo.chunks(body.batch_size.unwrap_or(1000).clamp(1, SO_SEARCH_LIMIT)) {
        let mut tx = state.db.begin().await?;
        // Agents that will confirm get an UNENROLL action, written in one go;
        // the rest (forced, revoked, or gone) are finished one by one.
        let (at_once, to_ask): (Vec<&&store::AgentFactsRow>, Vec<&&store::AgentFactsRow>) = batch.iter().partition(|row| acts_at_once(row));
        // Only the agents this statement marked: one asked meanwhile by someone else gets no second UNENROLL.
        let ids: Vec<&str> = to_ask.iter().map(|row| row.id.as_str()).collect();
        let asked = store::start_unenroll_many(&mut tx, state.engine, &ids, now).await?;
        let actions: Vec<AgentAction> = asked.iter().map(|id| unenroll_action(id, &action_id, now)).collect();
        let mut lines: Vec<store::EventRow> =
            asked.iter().map(|id| event(id, AgentEventKind::UnenrollRequested, "Asked the agent to unenroll", Some(username), now)).collect();
        let rows: Vec<(String, String, String)> = actions.iter().map(|a| (a.id.to_string(), a.agent_id.to_string(), a.data.to_string())).collect();
        store::insert_unenroll_actions(&mut tx, state.engine, &rows, now, username).await?;
        let mut queued: Vec<(AgentId, Option<AgentAction>)> = actions.into_iter().map(|a| (a.agent_id.clone(), Some(a))).collect();
        for row in at_once {
            if let Some((line, action)) = unenroll_one(&mut tx, &row.id, row.audit_unenrolled_reason.is_some(), &request, username, now).await? {
                lines.push(line);
                queued.push((AgentId::new(row.id.clone()), action));
            }
        }
        let unenrolled: Vec<&str> = queued.iter().map(|(id, _)| id.as_str()).collect();
        lines.extend(end_host_conflicts(state, &mut tx, &unenrolled, username, now).await?);
        commit_logged(state, tx, lines).await?;
        actions_queued(state, queued);
    }
    Ok(action_id)
}

// --- policies and enrollment keys ---

fn to_policy(row: PolicyRow) -> AgentPolicy {
    AgentPolicy {
        id: PolicyId::new(row.id),
        name: row.name,
        namespace: row.namespace,
        description: row.description,
        is_managed: row.is_managed != 0,
        inactivity_timeout: row.inactivity_timeout,
        keep_agent_id_on_reenroll: row.keep_agent_id_on_reenroll != 0,
        revision: row.revision,
        updated_at: rfc3339(row.updated_at),
        agents: row.agents,
        is_verifier: row.is_verifier != 0,
        cloud_connector_id: row.cloud_connector_id,
        expires_at: row.expires_at.map(rfc3339),
    }
}

fn verifier_managed(id: &str) -> FleetError {
    FleetError::Invalid(format!("Agent policy {id} is a permission verifier's: Warden removes it when the verification ends"))
}

/// A verifier's policy is Warden's to change and remove.
async fn refuse_verifier(state: &AppState, id: &str) -> Result<()> {
    match store::policy(&state.db, id).await? {
        Some(policy) if policy.is_verifier != 0 => Err(verifier_managed(id)),
        _ => Ok(()),
    }
}

fn validate_policy(body: &AgentPolicyRequest) -> Result<i64> {
    if body.name.trim().is_empty() {
        return Err(FleetError::Invalid("[request body.name]: must not be empty".into()));
    }
    if body.namespace.is_empty() || !body.namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(FleetError::Invalid("[request body.namespace]: lowercase letters, digits and _ only".into()));
    }
    let timeout = body.inactivity_timeout.unwrap_or(DEFAULT_INACTIVITY_TIMEOUT_SECS);
    if timeout <= 0 {
        return Err(FleetError::Invalid("[request body.inactivity_timeout]: must be a positive number of seconds".into()));
    }
    Ok(timeout)
}

fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> FleetError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => FleetError::Conflict(format!("An agent policy named {name} already exists")),
        _ => FleetError::Database(err),
    }
}

fn policy_write<'a>(id: &'a str, name: &'a str, body: &'a AgentPolicyRequest, inactivity_timeout: i64) -> store::PolicyWrite<'a> {
    store::PolicyWrite {
        id,
        name,
        namespace: &body.namespace,
        description: body.description.as_deref(),
        is_managed: body.is_managed,
        inactivity_timeout,
        keep_agent_id_on_reenroll: body.keep_agent_id_on_reenroll,
        now: now_ms(),
    }
}

pub async fn list_policies(state: &AppState) -> Result<Vec<AgentPolicy>> {
    Ok(store::policies(&state.db).await?.into_iter().map(to_policy).collect())
}

pub async fn get_policy(state: &AppState, id: &str) -> Result<AgentPolicy> {
    store::policy(&state.db, id).await?.map(to_policy).ok_or_else(|| FleetError::PolicyNotFound(id.to_owned()))
}

pub async fn create_policy(state: &AppState, body: &AgentPolicyRequest) -> Result<AgentPolicy> {
    let timeout = validate_policy(body)?;
    let id = uuid::Uuid::new_v4().to_string();
    let name = body.name.trim();
    store::insert_policy(&state.db, policy_write(&id, name, body, timeout)).await.map_err(name_taken(name))?;
    get_policy(state, &id).await
}

pub async fn update_policy(state: &AppState, id: &str, body: &AgentPolicyRequest) -> Result<AgentPolicy> {
    let timeout = validate_policy(body)?;
    refuse_verifier(state, id).await?;
    let name = body.name.trim();
    let updated = store::update_policy(&state.db, policy_write(id, name, body, timeout)).await.map_err(name_taken(name))?;
    if !updated {
        return Err(FleetError::PolicyNotFound(id.to_owned()));
    }
    get_policy(state, id).await
}

/// Deletes a policy that no agent was ever enrolled into (400 otherwise, as
/// Fleet); returns it.
pub async fn delete_policy(state: &AppState, id: &str) -> Result<AgentPolicy> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let policy = store::policy(&mut *tx, id).await?.ok_or_else(|| FleetError::PolicyNotFound(id.to_owned()))?;
    if policy.is_verifier != 0 {
        return Err(verifier_managed(id));
    }
    if store::agents_ever_enrolled(&mut *tx, id).await? > 0 {
        return Err(FleetError::Invalid(format!("Cannot delete agent policy {id}: agents are enrolled in it")));
    }
    let connectors = store::delete_policy(&mut tx, id).await?;
    store::delete_policy_row(&mut *tx, id).await?;
    tx.commit().await?;
    for connector in connectors {
        state.events.publish(Event::cloud_connector_changed(&connector));
    }
    Ok(to_policy(policy))
}

fn to_enrollment_key(row: EnrollmentKeyRow) -> EnrollmentApiKey {
    EnrollmentApiKey {
        id: row.id,
        api_key_id: row.api_key_id,
        api_key: row.api_key,
        name: row.name,
        active: row.active != 0,
        policy_id: PolicyId::new(row.policy_id),
        created_at: rfc3339(row.created_at),
    }
}

pub async fn list_enrollment_keys(state: &AppState) -> Result<Vec<EnrollmentApiKey>> {
    Ok(store::enrollment_keys(&state.db).await?.into_iter().map(to_enrollment_key).collect())
}

pub async fn get_enrollment_key(state: &AppState, id: &str) -> Result<EnrollmentApiKey> {
    store::enrollment_key(&state.db, id).await?.map(to_enrollment_key).ok_or_else(|| FleetError::EnrollmentKeyNotFound(id.to_owned()))
}

/// `expires_in_ms`: already parsed and bounded (`parse_expiration_ms`).
pub async fn create_enrollment_key(state: &AppState, body: EnrollmentApiKeyRequest, expires_in_ms: Option<i64>) -> Result<EnrollmentApiKey> {
    let now = now_ms();
    let policy = store::policy(&state.db, body.policy_id.as_str())
        .await?
        .ok_or_else(|| FleetError::Invalid(format!("[request body.policy_id]: agent policy {} not found", body.policy_id)))?;
    if policy.is_verifier != 0 {
        // Only the verifier Warden starts may enroll there (its one-time key),
        // or anyone could report a connector's permissions as granted.
        return Err(verifier_managed(body.policy_id.as_str()));
    }
    let (api_key_id, secret, encoded) = new_api_key();
    let row = EnrollmentKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: body.name,
        api_key_id,
        api_key: encoded,
        secret_hash: sha256_hex(secret.as_bytes()),
        policy_id: body.policy_id.into_string(),
        active: 1,
        created_at: now,
        expires_at: expires_in_ms.map(|ms| now.saturating_add(ms)),
    };
    store::insert_enrollment_key(&state.db, &row).await?;
    Ok(to_enrollment_key(row))
}

pub async fn revoke_enrollment_key(state: &AppState, id: &str) -> Result<()> {
    if !store::revoke_enrollment_key(&state.db, id).await? {
        return Err(FleetError::EnrollmentKeyNotFound(id.to_owned()));
    }
    Ok(())
}

// --- what agents call (Fleet Server) ---

/// A new agent or enrollment API key: its id, its secret, and what the client sends.
fn new_api_key() -> (String, String, String) {
    let credentials = crate::api_keys::Credentials::generate();
    let encoded = credentials.encoded();
    (credentials.id, credentials.secret, encoded)
}

/// The enrollment key an enroll request presents, if it is known, matches,
/// is active and has not expired.
pub async fn enrollment_key(state: &AppState, key_id: &str, secret: &str) -> Result<EnrollmentKeyRow> {
    let key = store::enrollment_key_by_key_id(&state.db, key_id)
        .await?
        .filter(|k| secrets_equal(&k.secret_hash, &sha256_hex(secret.as_bytes())))
        .ok_or(FleetError::AgentUnauthorized("unknown enrollment key"))?;
    if key.active == 0 || key.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(FleetError::AgentUnauthorized("enrollment key is revoked or expired"));
    }
    Ok(key)
}

fn host_facts(local: &serde_json::Value) -> (String, String) {
    let text = |pointer: &str| local.pointer(pointer).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    (text("/host/hostname"), text("/elastic/agent/version"))
}

/// The longest replace token an agent may choose.
const MAX_REPLACE_TOKEN: usize = 256;

/// Enrolls an agent. One host is one agent: when the host's fingerprint is
/// an active agent's, that agent is replaced by the new one (or, where the
/// policy allows it and the agent proves it is the same with its replace
/// token, keeps its id), and both activity logs say so.
pub async fn enroll(state: &AppState, key: EnrollmentKeyRow, body: EnrollRequest) -> Result<EnrollResponse> {
    let policy = store::policy(&state.db, &key.policy_id).await?.ok_or(FleetError::AgentUnauthorized("the enrollment key's policy is gone"))?;
    let host_id = host_fingerprint(&body.metadata.local).map_err(FleetError::Invalid)?;
    let token_hash = match body.replace_token.as_deref() {
        Some(token) if token.is_empty() || token.chars().count() > MAX_REPLACE_TOKEN => {
            return Err(FleetError::Invalid(format!("[request body.replace_token]: from 1 to {MAX_REPLACE_TOKEN} characters")));
        }
        token => token.map(|t| sha256_hex(t.as_bytes())),
    };
    let now = now_ms();
    let (access_key_id, access_secret, encoded) = new_api_key();
    let (hostname, version) = host_facts(&body.metadata.local);
    let local = body.metadata.local.to_string();
    let user_provided = if body.metadata.user_provided.is_null() { "{}".to_owned() } else { body.metadata.user_provided.to_string() };
    let tags = serde_json::to_string(&body.metadata.tags).map_err(anyhow::Error::from)?;
    let access_key_hash = sha256_hex(access_secret.as_bytes());
    let mut tx = state.db.begin().await?;
    if !store::spend_enrollment_key(&mut tx, &key.id).await? {
        return Err(FleetError::AgentUnauthorized("enrollment key is revoked or expired"));
    }
    let on_host = match &host_id {
        Some(host_id) => store::agents_on_host(&mut *tx, host_id).await?,
        None => Vec::new(),
    };
    let same_agent = on_host.iter().find(|agent| {
        let token_matches = matches!((&agent.replace_token_hash, &token_hash), (Some(stored), Some(given)) if secrets_equal(stored, given));
        reenrollment(policy.keep_agent_id_on_reenroll != 0, agent.policy_id == policy.id, token_matches) == Reenrollment::KeepId
    });
    let id = same_agent.map_or_else(|| uuid::Uuid::new_v4().to_string(), |agent| agent.id.clone());
    let agent = NewAgent {
        id: &id,
        policy_id: &policy.id,
        policy_revision: policy.revision,
        agent_type: body.agent_type.as_str(),
        enrolled_at: now,
        local_metadata: &local,
        user_provided_metadata: &user_provided,
        tags: &tags,
        hostname: &hostname,
        version: &version,
        access_api_key_id: &access_key_id,
        access_key_hash: &access_key_hash,
        host_id: host_id.as_deref(),
        replace_token_hash: token_hash.as_deref(),
    };
    let host = if hostname.is_empty() { "an unnamed host" } else { &hostname };
    let mut lines = Vec::new();
    if same_agent.is_some() {
        store::reenroll_agent(&mut *tx, agent).await?;
        let message =
            format!("Enrolled again from the same host into policy {}: the agent id is kept, and its previous API key no longer works", policy.name);
        lines.push(event(&id, AgentEventKind::Reenrolled, message, None, now));
    } else {
        store::insert_agent(&mut *tx, agent).await?;
        lines.push(event(&id, AgentEventKind::Enrolled, format!("Enrolled into policy {} as {host}", policy.name), None, now));
    }
    for old in on_host.iter().filter(|old| old.id != id) {
        if store::mark_replaced(&mut tx, &old.id, &id, now).await? {
            let message = format!("Replaced by agent {id}: host {host} enrolled again with the same host id");
            lines.push(event(&old.id, AgentEventKind::Replaced, message, None, now));
            lines.push(event(&id, AgentEventKind::Replaced, format!("Replaces agent {}, enrolled earlier from the same host", old.id), None, now));
        }
    }
    commit_logged(state, tx, lines).await?;
    Ok(EnrollResponse {
        action: "created".into(),
        item: EnrolledAgent {
            id: AgentId::new(id),
            active: true,
            policy_id: PolicyId::new(policy.id),
            agent_type: body.agent_type,
            enrolled_at: rfc3339(now),
            user_provided_metadata: body.metadata.user_provided,
            local_metadata: body.metadata.local,
            actions: Vec::new(),
            access_api_key_id: access_key_id,
            access_api_key: encoded,
            status: "online".into(),
            tags: body.metadata.tags,
        },
    })
}

/// The agent whose key signed the request. A removed agent that keeps
/// calling (unenrolled, or its key revoked) is refused and the attempt
/// recorded on the agent (logged once).
pub async fn authenticate_agent(state: &AppState, key_id: &str, secret: &str) -> Result<AgentRow> {
    let row = store::agent_by_key_id(&state.db, key_id).await?.ok_or(FleetError::AgentUnauthorized("unknown API key"))?;
    if !secrets_equal(&row.access_key_hash, &sha256_hex(secret.as_bytes())) {
        return Err(FleetError::AgentUnauthorized("unknown API key"));
    }
    if row.active == 0 || row.key_revoked != 0 {
        let now = now_ms();
        let mut tx = state.db.begin().await?;
        store::record_rejected_call(&mut *tx, &row.id, now).await?;
        let first =
            (row.rejected_count == 0).then(|| event(&row.id, AgentEventKind::RejectedCall, "An unenrolled agent keeps trying to connect", None, now));
        commit_logged(state, tx, first.into_iter().collect()).await?;
        return Err(FleetError::AgentUnauthorized("agent is unenrolled or its API key was revoked"));
    }
    Ok(row)
}

/// One agent's key cannot speak for another.
pub fn same_agent(row: AgentRow, id: &str) -> Result<AgentRow> {
    if row.id == id { Ok(row) } else { Err(FleetError::WrongAgent) }
}

fn poll_timeout(state: &AppState, requested: Option<&str>) -> Result<Duration> {
    let limit = state.config.agent_poll_timeout;
    match requested {
        None => Ok(limit),
        Some(text) => {
            humantime::parse_duration(text).map(|d| d.min(limit)).map_err(|e| FleetError::Invalid(format!("[request body.poll_timeout]: {e}")))
        }
    }
}

/// A check-in: records what the agent reports (at once if it changes what an
/// analyst sees, else in the next heartbeat batch), then answers with its
/// pending actions, holding the request until one arrives or `poll_timeout`.
pub async fn checkin(state: &AppState, row: AgentRow, body: CheckinRequest) -> Result<CheckinResponse> {
    let wait = poll_timeout(state, body.poll_timeout.as_deref())?;
    // Boxed: the write's future is done before the check-in parks, and
    // inline it would stay in every parked check-in's memory (docs/perf.md).
    Box::pin(record_checkin(state, &row, &body)).await?;
    let id = row.id;
    let answer = |actions| CheckinResponse { action: "checkin".into(), ack_token: None, actions };
    // Park first, then look: an action queued in between still wakes us.
    let parked = state.hub.park(&id);
    let notified = parked.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut shutdown = state.hub.shutdown_signal();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let actions = Box::pin(deliver(state, &id)).await?;
        if !actions.is_empty() || wait.is_zero() || *shutdown.borrow() {
            return Ok(answer(actions));
        }
        tokio::select! {
            () = &mut notified => {
                notified.set(parked.notify.notified());
                notified.as_mut().enable();
            }
            () = tokio::time::sleep_until(deadline) => return Ok(answer(Vec::new())),
            _ = shutdown.changed() => {}
        }
    }
}

async fn record_checkin(state: &AppState, row: &AgentRow, body: &CheckinRequest) -> Result<()> {
    let now = now_ms();
    let before = status(state, row, now);
    let local = body.local_metadata.as_ref().map(|v| v.to_string());
    let components = body.components.as_ref().map(|v| v.to_string());
    // A replaced agent that checks in: two agents now claim its host.
    let conflict_with = row.replaced_by.clone().filter(|_| row.host_conflict_with.is_none());
    let changed = row.last_checkin.is_none()
        || row.audit_unenrolled_reason.is_some()
        || conflict_with.is_some()
        || row.last_checkin_status.as_deref() != Some(body.status.as_str())
        || row.last_checkin_message.as_deref() != Some(body.message.as_str())
        || local.as_ref().is_some_and(|l| *l != row.local_metadata)
        || components.as_ref().is_some_and(|c| *c != row.components)
        || before != status(state, &AgentRow { last_checkin: Some(now), ..row.clone() }, now);
    if !changed {
        state.hub.heartbeat(&row.id, now);
        return Ok(());
    }
    // What the analyst sees changes: write it now, not in the next batch.
    let (hostname, version) = body.local_metadata.as_ref().map(host_facts).unzip();
    let mut after_row = AgentRow {
        last_checkin: Some(now),
        last_checkin_status: Some(body.status.as_str().to_owned()),
        audit_unenrolled_reason: None,
        ..row.clone()
    };
    let mut tx = state.db.begin().await?;
    let mut lines = Vec::new();
    if let Some(other) = &conflict_with {
        if store::start_host_conflict(&mut tx, &row.id, other).await? {
            after_row.host_conflict_with = Some(other.clone());
            let message = format!("Checked in after agent {other} replaced it: two agents claim this host");
            lines.push(event(&row.id, AgentEventKind::HostConflict, message, None, now));
            let message = format!("Agent {}, which this agent replaced, checked in again: two agents claim this host", row.id);
            lines.push(event(other, AgentEventKind::HostConflict, message, None, now));
        } else if store::reclaim_host(&mut *tx, &row.id, other).await? {
            (after_row.replaced_by, after_row.replaced_at) = (None, None);
            let message = format!("Checked in again; agent {other}, which had replaced it, is unenrolled: the host is this agent's again");
            lines.push(event(&row.id, AgentEventKind::HostConflictResolved, message, None, now));
        }
    }
    let after = status(state, &after_row, now);
    store::write_checkin(
        &mut *tx,
        CheckinWrite {
            id: &row.id,
            now,
            status: body.status.as_str(),
            message: &body.message,
            local_metadata: local.as_deref(),
            hostname: hostname.as_deref(),
            version: version.as_deref(),
            components: components.as_deref(),
            last_known_status: after.as_str(),
        },
    )
    .await?;
    let came_back = matches!(row.last_known_status.as_deref(), Some("offline" | "inactive" | "uninstalled" | "orphaned" | "migrated"));
    if came_back {
        let was = row.last_known_status.clone().unwrap_or_default();
        lines.push(event(&row.id, AgentEventKind::CheckedInAfterSilence, format!("Checked in again (was {was}); audit fields cleared"), None, now));
    }
    commit_logged(state, tx, lines).await?;
    state.events.publish(Event::agent_changed(&row.id));
    if let Some(other) = after_row.host_conflict_with.as_deref().filter(|_| conflict_with.is_some()) {
        state.events.publish(Event::agent_changed(other));
    }
    Ok(())
}

/// Pending actions for the agent, marked as handed out.
async fn deliver(state: &AppState, agent_id: &str) -> Result<Vec<AgentAction>> {
    if !state.hub.may_have_actions(agent_id) {
        return Ok(Vec::new());
    }
    let now = now_ms();
    // Queued on this node: hand them out without a read. A later check-in
    // still looks at the table for anything else.
    let ready: Vec<AgentAction> =
        state.hub.take_outbox(agent_id).into_iter().filter(|a| state.hub.delivered_at(agent_id, a.id.as_str()).is_none()).collect();
    if !ready.is_empty() {
        for action in &ready {
            state.hub.delivered(agent_id, action.id.as_str(), now);
        }
        return Ok(ready);
    }
    let redeliver_before = now - 300_000;
    let rows = store::deliverable_actions(&state.db, agent_id, redeliver_before).await?;
    if rows.is_empty() {
        state.hub.no_actions_left(agent_id);
    }
    let mut actions = Vec::with_capacity(rows.len());
    // Handed out recently by this node but not yet written: not again.
    for row in rows.into_iter().filter(|r| state.hub.delivered_at(agent_id, &r.id).is_none_or(|at| at < redeliver_before)) {
        let Some(action_type) = AgentActionType::parse(&row.action_type) else {
            tracing::warn!(action = %row.id, action_type = %row.action_type, "skipping an agent action of an unknown type");
            continue;
        };
        // Written with the next heartbeat batch: one write per batch, not per agent.
        state.hub.delivered(agent_id, &row.id, now);
        let input_type = if action_type == AgentActionType::InputAction { ENDPOINT_INPUT } else { "" };
        actions.push(AgentAction {
            agent_id: AgentId::new(row.agent_id),
            created_at: rfc3339(row.created_at),
            data: serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null),
            id: ActionId::new(row.id),
            action_type,
            input_type: input_type.to_owned(),
        });
    }
    Ok(actions)
}

/// Records an agent's acks, committed with whatever other agents acked
/// meanwhile (the group commit in `background`).
pub async fn ack(state: &AppState, agent_id: &str, events: Vec<AckEvent>) -> Result<AckResponse> {
    if events.len() > MAX_ACK_EVENTS {
        return Err(FleetError::Invalid(format!(
            "[request body.events]: at most {MAX_ACK_EVENTS} events per request, got {}; send the rest in another request",
            events.len()
        )));
    }
    let items = state.hub.record_acks(agent_id, events).await?;
    let errors = items.iter().any(|i| i.status != 200);
    Ok(AckResponse { action: "acks".into(), errors, items })
}

/// The agent's final message: uninstalled, orphaned, key revoked, or moved
/// to another Fleet. Once per agent: a second one changes nothing.
pub async fn audit_unenroll(state: &AppState, row: AgentRow, reason: AuditReason, at: i64, details: AuditDetails) -> Result<()> {
    let now = now_ms();
    // A Detached Endpoint's report is proof of life, timed by Warden's clock.
    let heard_at = (reason == AuditReason::Orphaned).then_some(now);
    let recorded = AgentRow { audit_unenrolled_reason: Some(reason.as_str().to_owned()), last_heard_at: heard_at, ..row.clone() };
    let status_after = status(state, &recorded, now);
    let stored = if details.is_empty() { None } else { Some(serde_json::to_string(&details).map_err(anyhow::Error::from)?) };
    let mut tx = state.db.begin().await?;
    if !store::set_audit_reason(&mut *tx, &row.id, reason.as_str(), at, stored.as_deref(), status_after.as_str(), heard_at).await? {
        // Fleet Server's 409 still; but an orphaned endpoint that reports
        // again is alive, and the analyst sees when it was last heard from.
        let heard = reason == AuditReason::Orphaned && store::heard_from_orphan(&mut *tx, &row.id, now).await?;
        tx.commit().await?;
        if heard {
            state.events.publish(Event::agent_changed(&row.id));
        }
        return Err(FleetError::AuditReasonConflict);
    }
    let message = match reason {
        AuditReason::Uninstall => "The agent reported it was uninstalled",
        AuditReason::Orphaned => "The endpoint reported its agent is gone (Detached Endpoint)",
        AuditReason::KeyRevoked => "The agent reported its API key was revoked",
        AuditReason::Migrated => "The agent reported it was enrolled into another Fleet",
    };
    let message = match details.summary() {
        Some(summary) => format!("{message}: {summary}"),
        None => message.to_owned(),
    };
    commit_logged(state, tx, vec![event(&row.id, AgentEventKind::for_audit_reason(reason), message, None, now)]).await?;
    Ok(())
}

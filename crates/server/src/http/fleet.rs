//! Kibana's Fleet API for analysts and administrators: agents, their status
//! counts and activity log, unenroll, agent policies and enrollment keys.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use warden_core::authz::Privilege;
use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::{
    AgentAction,
    Agent, AgentEvent, AgentEventKind, BulkActionResponse, BulkTarget, BulkUnenrollRequest, AgentPolicy, AgentPolicyRequest, AgentStatusResponse, DeleteAgentPolicyRequest,
    EnrollmentApiKey, EnrollmentApiKeyRequest, ItemResponse, ListResponse, UnenrollRequest,
};
use warden_core::api_keys::parse_expiration_ms;
use warden_core::error::ErrorBody;
use warden_core::kuery;

use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::{QueryParams, RawBody};
use crate::AppState;
use crate::auth::{AuthUser, sha256_hex};
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::fleet::{self, rfc3339};
use crate::store::fleet::{self as store, EnrollmentKeyRow, PolicyRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/fleet/agents", get(list_agents))
        .route("/api/fleet/agents/{id}", get(get_agent))
        .route("/api/fleet/agents/{id}/events", get(agent_events))
        .route("/api/fleet/agents/{id}/unenroll", post(unenroll))
        .route("/api/fleet/agents/bulk_unenroll", post(bulk_unenroll))
        .route("/api/fleet/agent_status", get(agent_status))
        .route("/api/fleet/agent_policies", get(list_policies).post(create_policy))
        .route("/api/fleet/agent_policies/delete", post(delete_policy))
        .route("/api/fleet/agent_policies/{id}", get(get_policy).put(update_policy))
        .route("/api/fleet/enrollment_api_keys", get(list_enrollment_keys).post(create_enrollment_key))
        .route("/api/fleet/enrollment_api_keys/{id}", get(get_enrollment_key).delete(revoke_enrollment_key))
}

const SO_SEARCH_LIMIT: usize = 10_000;

/// Unknown parameters are a 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAgentsQuery {
    /// The page, from 1 (the default). `page` × `perPage` may not pass the
    /// 10,000th agent (400 otherwise): narrow the kuery instead.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<usize>,
    /// Agents per page, 1 to 10,000 (default 20).
    #[param(minimum = 1, maximum = 10000)]
    per_page: Option<usize>,
    /// A KQL subset over `status`, `policy_id`, `local_metadata.host.hostname`,
    /// `local_metadata.elastic.agent.version` and `tags`: at most 4,096 bytes,
    /// 32 levels of parentheses and `not`, and 100 comparisons (400 otherwise).
    #[param(max_length = 4096)]
    kuery: Option<String>,
    /// Include inactive and unenrolled agents.
    #[serde(default)]
    show_inactive: bool,
    /// Add `statusSummary`, the count per status of every agent the kuery matches.
    #[serde(default)]
    get_status_summary: bool,
    #[param(schema_with = super::openapi::agent_sort_field)]
    sort_field: Option<String>,
    #[param(schema_with = super::openapi::sort_order)]
    sort_order: Option<String>,
    // Accepted for Kibana compatibility; Warden has no agentless agents or metrics.
    #[serde(default)]
    #[allow(dead_code)]
    show_agentless: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    with_metrics: Option<bool>,
}

/// An agent row with its derived status and parsed tags: enough to filter,
/// count and sort 10,000 agents without building their full JSON.
struct Ranked {
    row: store::AgentFactsRow,
    status: AgentStatus,
    tags: Vec<String>,
}

impl Ranked {
    fn subject(&self) -> kuery::Subject<'_> {
        kuery::Subject { status: self.status.as_str(), policy_id: &self.row.policy_id, hostname: &self.row.hostname, version: &self.row.version, tags: &self.tags }
    }

}

fn ranked(state: &AppState, rows: Vec<store::AgentFactsRow>) -> Vec<Ranked> {
    let now = now_ms();
    rows.into_iter()
        .map(|row| Ranked { status: fleet::facts_status(state, &row, now), tags: serde_json::from_str(&row.tags).unwrap_or_default(), row })
        .collect()
}

fn parse_kuery(text: Option<&str>) -> Result<Option<kuery::Query>> {
    kuery::parse(text.unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The agents that match `filter` (and `keep`), with their derived status.
/// SQL narrows the rows first where the kuery allows it (policy, host name,
/// version); the kuery itself, the one rule, decides on what is left, off the
/// async workers, so a costly filter never stalls other requests.
async fn matching_agents(
    state: &AppState,
    filter: Option<kuery::Query>,
    keep: impl Fn(&Ranked) -> bool + Send + 'static,
) -> Result<Vec<Ranked>> {
    let rows = store::agent_facts_matching(&state.db, filter.as_ref()).await?;
    let state = state.clone();
    let matching = tokio::task::spawn_blocking(move || {
        ranked(&state, rows).into_iter().filter(|a| keep(a) && filter.as_ref().is_none_or(|q| q.matches(&a.subject()))).collect()
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

/// Agents, filtered, sorted and paged on the server. Status is derived from
/// the stored facts and the current time, so filtering happens after the
/// derivation (10,000 agents take a few milliseconds; see docs/perf.md).
#[utoipa::path(get, path = "/api/fleet/agents", tag = "fleet", params(ListAgentsQuery),
    responses(
        (status = 200, body = ListResponse<Agent>),
        (status = 400, description = "A query parameter out of bounds, unknown or malformed (the kuery included)", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_agents(State(state): State<AppState>, user: AuthUser, QueryParams(query): QueryParams<ListAgentsQuery>) -> Result<axum::Json<ListResponse<Agent>>> {
    user.require(Privilege::FleetRead)?;
    let (page, per_page) = paging(query.page, query.per_page)?;
    let filter = parse_kuery(query.kuery.as_deref())?;
    let descending = match query.sort_order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(ApiError::BadRequest(format!("[request query.sortOrder]: expected asc or desc, got `{other}`"))),
    };
    let sort_field = query.sort_field.as_deref().unwrap_or("enrolled_at");
    if !["enrolled_at", "local_metadata.host.hostname", "hostname", "status", "policy_id", "last_checkin", "local_metadata.elastic.agent.version", "agent.version"].contains(&sort_field) {
        return Err(ApiError::BadRequest(format!("[request query.sortField]: cannot sort by `{sort_field}`")));
    }
    let matching = matching_agents(&state, filter, |_| true).await?;
    let status_summary = query.get_status_summary.then(|| summary(matching.iter().map(|a| a.status)));
    let mut shown: Vec<Ranked> = matching
        .into_iter()
        .filter(|a| query.show_inactive || !matches!(a.status, AgentStatus::Inactive | AgentStatus::Unenrolled))
        .collect();
    let text_key = |a: &Ranked| -> String {
        match sort_field {
            "local_metadata.host.hostname" | "hostname" => a.row.hostname.to_lowercase(),
            "status" => a.status.as_str().to_owned(),
            "policy_id" => a.row.policy_id.clone(),
            "local_metadata.elastic.agent.version" | "agent.version" => a.row.version.clone(),
            _ => String::new(),
        }
    };
    let time_key = |a: &Ranked| -> i64 {
        match sort_field {
            "last_checkin" => a.row.last_checkin.unwrap_or(0),
            _ => a.row.enrolled_at,
        }
    };
    shown.sort_by(|a, b| text_key(a).cmp(&text_key(b)).then_with(|| time_key(a).cmp(&time_key(b))).then_with(|| a.row.id.cmp(&b.row.id)));
    if descending {
        shown.reverse();
    }
    let total = shown.len();
    let mut items = Vec::with_capacity(per_page);
    for ranked in shown.into_iter().skip((page - 1) * per_page).take(per_page) {
        // The page's full records; an agent deleted meanwhile is skipped.
        if let Some(row) = store::agent(&state.db, &ranked.row.id).await? {
            items.push(fleet::to_agent(row, ranked.status));
        }
    }
    Ok(axum::Json(ListResponse { items, total, page, per_page, status_summary }))
}

/// Kibana's bounds: `page` ≥ 1, `perPage` 1–10,000, and no page past the
/// 10,000th agent; checked arithmetic, so no client number can overflow.
fn paging(page: Option<usize>, per_page: Option<usize>) -> Result<(usize, usize)> {
    let page = page.unwrap_or(1);
    let per_page = per_page.unwrap_or(20);
    if page == 0 {
        return Err(ApiError::BadRequest("[request query.page]: must be at least 1".into()));
    }
    if !(1..=SO_SEARCH_LIMIT).contains(&per_page) {
        return Err(ApiError::BadRequest(format!("[request query.perPage]: must be between 1 and {SO_SEARCH_LIMIT}, got {per_page}")));
    }
    if page.checked_mul(per_page).is_none_or(|last| last > SO_SEARCH_LIMIT) {
        return Err(ApiError::BadRequest(format!(
            "[request query.page]: page {page} of {per_page} agents is past the first {SO_SEARCH_LIMIT} agents; narrow the kuery instead"
        )));
    }
    Ok((page, per_page))
}

async fn find_agent(state: &AppState, id: &str) -> Result<store::AgentRow> {
    store::agent(&state.db, id).await?.ok_or_else(|| ApiError::NotFound(format!("Agent {id} not found")))
}

#[utoipa::path(get, path = "/api/fleet/agents/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<Agent>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_agent(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<axum::Json<ItemResponse<Agent>>> {
    user.require(Privilege::FleetRead)?;
    let row = find_agent(&state, &id).await?;
    let status = fleet::status(&state, &row, now_ms());
    Ok(axum::Json(ItemResponse { item: fleet::to_agent(row, status) }))
}

/// The agent's activity log, newest first (Warden's addition).
#[utoipa::path(get, path = "/api/fleet/agents/{id}/events", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, description = "At most the latest 200 lines", body = ListResponse<AgentEvent>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        SignedInErrors,
    ))]
async fn agent_events(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<axum::Json<ListResponse<AgentEvent>>> {
    user.require(Privilege::FleetRead)?;
    find_agent(&state, &id).await?;
    let items: Vec<AgentEvent> = store::events(&state.db, &id, 200).await?.into_iter().map(fleet::to_event).collect();
    Ok(axum::Json(ListResponse { total: items.len(), page: 1, per_page: 200, items, status_summary: None }))
}

/// Unknown parameters are a 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentStatusQuery {
    /// Count only the agents of this policy.
    policy_id: Option<String>,
    /// As for `GET /api/fleet/agents`: at most 4,096 bytes, 32 levels of
    /// nesting and 100 comparisons (400 otherwise).
    #[param(max_length = 4096)]
    kuery: Option<String>,
}

/// Counts per status, in Fleet's shape plus every Warden status.
#[utoipa::path(get, path = "/api/fleet/agent_status", tag = "fleet", params(AgentStatusQuery),
    responses(
        (status = 200, body = AgentStatusResponse),
        (status = 400, description = "An unknown or malformed query parameter (the kuery included)", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn agent_status(State(state): State<AppState>, user: AuthUser, QueryParams(query): QueryParams<AgentStatusQuery>) -> Result<axum::Json<AgentStatusResponse>> {
    user.require(Privilege::FleetRead)?;
    let filter = parse_kuery(query.kuery.as_deref())?;
    let policy_id = query.policy_id;
    let agents = matching_agents(&state, filter, move |a| policy_id.as_ref().is_none_or(|p| *p == a.row.policy_id)).await?;
    let mut results = summary(agents.iter().map(|a| a.status));
    let count = |s: &str| results.get(s).copied().unwrap_or(0);
    let inactive_or_gone = count("inactive") + count("unenrolled");
    let other = count("enrolling") + count("unenrolling") + count("degraded");
    results.insert("all".into(), agents.len());
    results.insert("active".into(), agents.len() - inactive_or_gone);
    results.insert("other".into(), other);
    results.insert("events".into(), 0);
    Ok(axum::Json(AgentStatusResponse { results }))
}

/// Unenrolls an agent. `force` or `revoke` act at once (the key stops working
/// and a FORCE_UNENROLL annotation records who did it); otherwise the agent
/// is asked to unenroll and is unenrolled when it confirms. An agent that
/// reported itself gone (uninstalled, orphaned, migrated) cannot confirm, so
/// its unenroll completes at once.
#[utoipa::path(post, path = "/api/fleet/agents/{id}/unenroll", tag = "fleet",
    params(("id" = String, Path, min_length = 1), Xsrf),
    request_body(content = Option<UnenrollRequest>, description = "Optional: no body, or `null`, is `{}`"),
    responses(
        (status = 200, description = "`{}`", body = Object),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or the agent is already unenrolled", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn unenroll(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>, body: axum::body::Bytes) -> Result<axum::Json<serde_json::Value>> {
    user.require(Privilege::FleetAll)?;
    // The body is optional (nullable in Fleet's schema).
    let request: UnenrollRequest = if body.iter().all(u8::is_ascii_whitespace) || &body[..] == b"null" { UnenrollRequest::default() } else { super::json::parse(&body)? };
    let row = find_agent(&state, &id).await?;
    if row.active == 0 {
        return Err(ApiError::BadRequest(format!("Agent {id} is already unenrolled")));
    }
    let gone = row.audit_unenrolled_reason.is_some();
    if row.unenrollment_started_at.is_some() && !(request.force || request.revoke || gone) {
        // Asked already and its UNENROLL is still queued: asking again queues nothing.
        return Ok(axum::Json(serde_json::json!({})));
    }
    let mut tx = state.db.begin().await?;
    let (line, action) = unenroll_one(&mut tx, &row.id, gone, &request, &user.username, &uuid::Uuid::new_v4().to_string(), now_ms()).await?;
    tx.commit().await?;
    fleet::publish(&state, line);
    state.hub.action_queued(&id, action);
    Ok(axum::Json(serde_json::json!({})))
}

/// Unenrolls one active agent inside the caller's transaction; returns the
/// activity-log line to publish after the commit, and the action queued for
/// the agent, if any, to hand to its waiting check-in.
/// `gone`: the agent reported itself gone, so it cannot confirm.
async fn unenroll_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    gone: bool,
    request: &UnenrollRequest,
    username: &str,
    action_id: &str,
    now: i64,
) -> Result<(store::EventRow, Option<AgentAction>)> {
    let mut action = None;
    let line = if request.force || request.revoke || gone {
        let forced_by = request.force.then_some(username);
        store::finish_unenroll(&mut **tx, id, now, forced_by).await?;
        if request.force {
            fleet::event(id, AgentEventKind::ForceUnenrolled, "Force-unenrolled: the API key was revoked at once", Some(username), now)
        } else {
            fleet::event(id, AgentEventKind::Unenrolled, "Unenrolled and the API key revoked", Some(username), now)
        }
    } else {
        store::start_unenroll(&mut **tx, id, now).await?;
        let data = serde_json::json!({"action_id": action_id});
        let queued = AgentAction {
            agent_id: id.to_owned(),
            created_at: fleet::rfc3339(now),
            data,
            id: uuid::Uuid::new_v4().to_string(),
            action_type: "UNENROLL".to_owned(),
            input_type: String::new(),
        };
        store::insert_action(&mut **tx, &queued.id, id, &queued.action_type, &queued.data.to_string(), now, Some(username)).await?;
        action = Some(queued);
        fleet::event(id, AgentEventKind::UnenrollRequested, "Asked the agent to unenroll", Some(username), now)
    };
    store::insert_event(&mut **tx, &line).await?;
    Ok((line, action))
}

/// Unenrolls many agents, by id or by kuery, in batches of `batchSize`
/// (default 1,000), each batch one transaction; waiting agents are woken as
/// soon as their batch commits.
#[utoipa::path(post, path = "/api/fleet/agents/bulk_unenroll", tag = "fleet", params(Xsrf), request_body = BulkUnenrollRequest,
    responses(
        (status = 200, description = "Unknown ids and agents already unenrolled are skipped", body = BulkActionResponse),
        (status = 400, description = "No kbn-xsrf header, a malformed body, more than 10,000 ids, or a bad kuery", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn bulk_unenroll(State(state): State<AppState>, user: AuthUser, raw: RawBody) -> Result<axum::Json<BulkActionResponse>> {
    user.require(Privilege::FleetAll)?;
    let body: BulkUnenrollRequest = raw.json()?;
    let targets: Vec<store::AgentFactsRow> = match &body.agents {
        BulkTarget::Ids(ids) => {
            if ids.len() > SO_SEARCH_LIMIT {
                return Err(ApiError::BadRequest(format!("[request body.agents]: at most {SO_SEARCH_LIMIT} agent ids, got {}", ids.len())));
            }
            let ids: std::collections::HashSet<String> = ids.iter().cloned().collect();
            matching_agents(&state, None, move |a| ids.contains(&a.row.id)).await?.into_iter().map(|a| a.row).collect()
        }
        BulkTarget::Kuery(text) => {
            let include_inactive = body.include_inactive;
            matching_agents(&state, parse_kuery(Some(text))?, move |a| include_inactive || a.status != AgentStatus::Inactive)
                .await?
                .into_iter()
                .map(|a| a.row)
                .collect()
        }
    };
    let now = now_ms();
    let request = UnenrollRequest { force: body.force, revoke: body.revoke };
    let action_id = uuid::Uuid::new_v4().to_string();
    for batch in targets.iter().filter(|r| r.active != 0).collect::<Vec<_>>().chunks(body.batch_size.unwrap_or(1000).clamp(1, 10_000)) {
        let mut tx = state.db.begin().await?;
        let mut done = Vec::with_capacity(batch.len());
        // Agents that will confirm get an UNENROLL action, written in one go;
        // the rest (forced, revoked, or gone) are finished one by one.
        let (asked, finished): (Vec<&&store::AgentFactsRow>, Vec<&&store::AgentFactsRow>) = batch
            .iter()
            // Already asked and not yet confirmed: its UNENROLL is still queued.
            .filter(|row| request.force || request.revoke || row.unenrollment_started_at.is_none() || row.audit_unenrolled_reason.is_some())
            .partition(|row| !(request.force || request.revoke || row.audit_unenrolled_reason.is_some()));
        let data = serde_json::json!({"action_id": action_id});
        let actions: Vec<AgentAction> = asked
            .iter()
            .map(|row| AgentAction {
                agent_id: row.id.clone(),
                created_at: fleet::rfc3339(now),
                data: data.clone(),
                id: uuid::Uuid::new_v4().to_string(),
                action_type: "UNENROLL".to_owned(),
                input_type: String::new(),
            })
            .collect();
        let lines: Vec<store::EventRow> = asked
            .iter()
            .map(|row| fleet::event(&row.id, AgentEventKind::UnenrollRequested, "Asked the agent to unenroll", Some(&user.username), now))
            .collect();
        let rows: Vec<(String, String, String)> = actions.iter().map(|a| (a.id.clone(), a.agent_id.clone(), a.data.to_string())).collect();
        store::request_unenroll_many(&mut tx, state.engine, &rows, &lines, now, &user.username).await?;
        done.extend(lines.into_iter().zip(actions).map(|(line, action)| (line, Some(action))));
        for row in finished {
            done.push(unenroll_one(&mut tx, &row.id, row.audit_unenrolled_reason.is_some(), &request, &user.username, &action_id, now).await?);
        }
        tx.commit().await?;
        for (line, action) in done {
            let agent_id = line.agent_id.clone();
            fleet::publish(&state, line);
            state.hub.action_queued(&agent_id, action);
        }
    }
    Ok(axum::Json(BulkActionResponse { action_id }))
}

fn to_policy(row: PolicyRow) -> AgentPolicy {
    AgentPolicy {
        id: row.id,
        name: row.name,
        namespace: row.namespace,
        description: row.description,
        is_managed: row.is_managed != 0,
        inactivity_timeout: row.inactivity_timeout,
        revision: row.revision,
        updated_at: rfc3339(row.updated_at),
        agents: row.agents,
    }
}

const DEFAULT_INACTIVITY_TIMEOUT_SECS: i64 = 1_209_600;

fn validate_policy(body: &AgentPolicyRequest) -> Result<i64> {
    if body.name.trim().is_empty() {
        return Err(ApiError::BadRequest("[request body.name]: must not be empty".into()));
    }
    if body.namespace.is_empty() || !body.namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(ApiError::BadRequest("[request body.namespace]: lowercase letters, digits and _ only".into()));
    }
    let timeout = body.inactivity_timeout.unwrap_or(DEFAULT_INACTIVITY_TIMEOUT_SECS);
    if timeout <= 0 {
        return Err(ApiError::BadRequest("[request body.inactivity_timeout]: must be a positive number of seconds".into()));
    }
    Ok(timeout)
}

#[utoipa::path(get, path = "/api/fleet/agent_policies", tag = "fleet",
    responses(
        (status = 200, body = ListResponse<AgentPolicy>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_policies(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<ListResponse<AgentPolicy>>> {
    user.require(Privilege::FleetRead)?;
    let items: Vec<AgentPolicy> = store::policies(&state.db).await?.into_iter().map(to_policy).collect();
    Ok(axum::Json(ListResponse { total: items.len(), page: 1, per_page: items.len().max(20), items, status_summary: None }))
}

#[utoipa::path(get, path = "/api/fleet/agent_policies/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<AgentPolicy>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent policy", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_policy(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    user.require(Privilege::FleetRead)?;
    let row = store::policy(&state.db, &id).await?.ok_or_else(|| ApiError::NotFound(format!("Agent policy {id} not found")))?;
    Ok(axum::Json(ItemResponse { item: to_policy(row) }))
}

#[utoipa::path(post, path = "/api/fleet/agent_policies", tag = "fleet", params(Xsrf), request_body = AgentPolicyRequest,
    responses(
        (status = 200, body = ItemResponse<AgentPolicy>),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or a blank name, a bad namespace or a timeout under 1 s", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 409, description = "An agent policy of that name exists", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn create_policy(State(state): State<AppState>, user: AuthUser, raw: RawBody) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    user.require(Privilege::FleetAll)?;
    let body: AgentPolicyRequest = raw.json()?;
    let timeout = validate_policy(&body)?;
    let id = uuid::Uuid::new_v4().to_string();
    store::insert_policy(&state.db, &id, body.name.trim(), &body.namespace, body.description.as_deref(), body.is_managed, timeout, now_ms())
        .await
        .map_err(ApiError::on_unique_violation(format!("An agent policy named {} already exists", body.name.trim())))?;
    get_policy(State(state), user, Path(id)).await
}

#[utoipa::path(put, path = "/api/fleet/agent_policies/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1), Xsrf),
    request_body = AgentPolicyRequest,
    responses(
        (status = 200, body = ItemResponse<AgentPolicy>),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or a blank name, a bad namespace or a timeout under 1 s", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such agent policy", body = ErrorBody),
        (status = 409, description = "Another agent policy has that name", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn update_policy(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>, raw: RawBody) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    user.require(Privilege::FleetAll)?;
    let body: AgentPolicyRequest = raw.json()?;
    let timeout = validate_policy(&body)?;
    let updated = store::update_policy(&state.db, &id, body.name.trim(), &body.namespace, body.description.as_deref(), body.is_managed, timeout, now_ms())
        .await
        .map_err(ApiError::on_unique_violation(format!("An agent policy named {} already exists", body.name.trim())))?;
    if !updated {
        return Err(ApiError::NotFound(format!("Agent policy {id} not found")));
    }
    get_policy(State(state), user, Path(id)).await
}

/// Deletes a policy that no agent was ever enrolled into (400 otherwise, as Fleet).
#[utoipa::path(post, path = "/api/fleet/agent_policies/delete", tag = "fleet", params(Xsrf), request_body = DeleteAgentPolicyRequest,
    responses(
        (status = 200, description = "`{id, name}` of the deleted policy", body = Object),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or agents were enrolled in the policy", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such agent policy", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn delete_policy(State(state): State<AppState>, user: AuthUser, raw: RawBody) -> Result<axum::Json<serde_json::Value>> {
    user.require(Privilege::FleetAll)?;
    let body: DeleteAgentPolicyRequest = raw.json()?;
    let id = body.agent_policy_id;
    let mut tx = state.db.begin().await?;
    let policy = store::policy(&mut *tx, &id).await?.ok_or_else(|| ApiError::NotFound(format!("Agent policy {id} not found")))?;
    if store::agents_ever_enrolled(&mut *tx, &id).await? > 0 {
        return Err(ApiError::BadRequest(format!("Cannot delete agent policy {id}: agents are enrolled in it")));
    }
    store::delete_policy(&mut *tx, &id).await?;
    store::delete_policy_row(&mut *tx, &id).await?;
    tx.commit().await?;
    Ok(axum::Json(serde_json::json!({"id": policy.id, "name": policy.name})))
}

fn to_enrollment_key(row: EnrollmentKeyRow) -> EnrollmentApiKey {
    EnrollmentApiKey {
        id: row.id,
        api_key_id: row.api_key_id,
        api_key: row.api_key,
        name: row.name,
        active: row.active != 0,
        policy_id: row.policy_id,
        created_at: rfc3339(row.created_at),
    }
}

#[utoipa::path(get, path = "/api/fleet/enrollment_api_keys", tag = "fleet",
    responses(
        (status = 200, body = ListResponse<EnrollmentApiKey>),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_enrollment_keys(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<ListResponse<EnrollmentApiKey>>> {
    user.require(Privilege::FleetAll)?;
    let items: Vec<EnrollmentApiKey> = store::enrollment_keys(&state.db).await?.into_iter().map(to_enrollment_key).collect();
    Ok(axum::Json(ListResponse { total: items.len(), page: 1, per_page: items.len().max(20), items, status_summary: None }))
}

/// A revoked key is still found, with `active: false`.
#[utoipa::path(get, path = "/api/fleet/enrollment_api_keys/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<EnrollmentApiKey>),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such enrollment key", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_enrollment_key(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<axum::Json<ItemResponse<EnrollmentApiKey>>> {
    user.require(Privilege::FleetAll)?;
    let row = store::enrollment_key(&state.db, &id).await?.ok_or_else(|| ApiError::NotFound(format!("Enrollment API key {id} not found")))?;
    Ok(axum::Json(ItemResponse { item: to_enrollment_key(row) }))
}

#[utoipa::path(post, path = "/api/fleet/enrollment_api_keys", tag = "fleet", params(Xsrf), request_body = EnrollmentApiKeyRequest,
    responses(
        (status = 200, body = ItemResponse<EnrollmentApiKey>),
        (status = 400, description = "No kbn-xsrf header, a malformed body, a bad expiration, or no agent policy with that id", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn create_enrollment_key(State(state): State<AppState>, user: AuthUser, raw: RawBody) -> Result<axum::Json<ItemResponse<EnrollmentApiKey>>> {
    user.require(Privilege::FleetAll)?;
    let body: EnrollmentApiKeyRequest = raw.json()?;
    let now = now_ms();
    let expires_at = match body.expiration.as_deref() {
        None => None,
        // The same durations (and bounds) as API keys: 30m, 12h, 7d, up to ten years.
        Some(text) => Some(now.saturating_add(parse_expiration_ms(text).map_err(|e| ApiError::BadRequest(format!("[request body.expiration]: {e}")))?)),
    };
    store::policy(&state.db, &body.policy_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("[request body.policy_id]: agent policy {} not found", body.policy_id)))?;
    let (api_key_id, secret, encoded) = super::fleet_server::new_api_key();
    let row = EnrollmentKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: body.name,
        api_key_id,
        api_key: encoded,
        secret_hash: sha256_hex(secret.as_bytes()),
        policy_id: body.policy_id,
        active: 1,
        created_at: now,
        expires_at,
    };
    store::insert_enrollment_key(&state.db, &row).await?;
    Ok(axum::Json(ItemResponse { item: to_enrollment_key(row) }))
}

/// Revokes the key (as Kibana): agents can no longer enroll with it, and it
/// stays listed with `active: false`.
#[utoipa::path(delete, path = "/api/fleet/enrollment_api_keys/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1), Xsrf),
    responses(
        (status = 200, description = "`{\"action\": \"deleted\"}`", body = Object),
        (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such enrollment key", body = ErrorBody),
        SignedInErrors,
    ))]
async fn revoke_enrollment_key(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<axum::Json<serde_json::Value>> {
    user.require(Privilege::FleetAll)?;
    if !store::revoke_enrollment_key(&state.db, &id).await? {
        return Err(ApiError::NotFound(format!("Enrollment API key {id} not found")));
    }
    Ok(axum::Json(serde_json::json!({"action": "deleted"})))
}

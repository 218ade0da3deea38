//! Kibana's Fleet API for analysts and administrators: agents, their status
//! counts and activity log, unenroll, agent policies and enrollment keys.
//! Each handler parses, names its privilege (`Require<…>`, checked before the
//! body is read), calls one `fleet::service` function and shapes the reply.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::api_keys::parse_expiration_ms;
use warden_core::error::ErrorBody;
use warden_core::fleet_api::{
    Agent, AgentEvent, AgentPolicy, AgentPolicyRequest, AgentSortField, AgentStatusResponse, BulkActionResponse, BulkTarget, BulkUnenrollRequest,
    DeleteAgentPolicyRequest, EnrollmentApiKey, EnrollmentApiKeyRequest, ItemResponse, ListResponse, UnenrollRequest,
};
use warden_core::kuery;

use super::authz::{FleetAll, FleetRead, Require};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::{JsonBody, OptionalJsonBody, QueryParams};
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::fleet::service::{self, AgentList, SO_SEARCH_LIMIT};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents))
        .routes(routes!(get_agent))
        .routes(routes!(agent_events))
        .routes(routes!(unenroll))
        .routes(routes!(bulk_unenroll))
        .routes(routes!(agent_status))
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(delete_policy))
        .routes(routes!(get_policy, update_policy))
        .routes(routes!(list_enrollment_keys, create_enrollment_key))
        .routes(routes!(get_enrollment_key, revoke_enrollment_key))
}

/// Lines of an agent's activity log returned at most.
const EVENTS_SHOWN: usize = 200;

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

pub(super) fn parse_kuery(text: Option<&str>) -> Result<Option<kuery::Query>> {
    kuery::parse(text.unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))
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

/// Agents, filtered, sorted and paged on the server. Status is derived from
/// the stored facts and the current time, so filtering happens after the
/// derivation (at 10,000 agents a request takes ≈ 18–20 ms on an idle node,
/// 25 ms while they check in; see docs/perf.md).
#[utoipa::path(get, path = "/api/fleet/agents", tag = "fleet", params(ListAgentsQuery),
    responses(
        (status = 200, body = ListResponse<Agent>),
        (status = 400, description = "A query parameter out of bounds, unknown or malformed (the kuery included)", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_agents(
    State(state): State<AppState>,
    _: Require<FleetRead>,
    QueryParams(query): QueryParams<ListAgentsQuery>,
) -> Result<axum::Json<ListResponse<Agent>>> {
    let (page, per_page) = paging(query.page, query.per_page)?;
    let descending = match query.sort_order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(ApiError::BadRequest(format!("[request query.sortOrder]: expected asc or desc, got `{other}`"))),
    };
    let sort = match query.sort_field.as_deref() {
        None => AgentSortField::EnrolledAt,
        Some(name) => {
            AgentSortField::parse(name).ok_or_else(|| ApiError::BadRequest(format!("[request query.sortField]: cannot sort by `{name}`")))?
        }
    };
    let list = AgentList {
        page,
        per_page,
        filter: parse_kuery(query.kuery.as_deref())?,
        show_inactive: query.show_inactive,
        status_summary: query.get_status_summary,
        sort,
        descending,
    };
    Ok(axum::Json(service::list_agents(&state, list).await?))
}

#[utoipa::path(get, path = "/api/fleet/agents/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<Agent>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_agent(State(state): State<AppState>, _: Require<FleetRead>, Path(id): Path<String>) -> Result<axum::Json<ItemResponse<Agent>>> {
    Ok(axum::Json(ItemResponse { item: service::get_agent(&state, &id).await? }))
}

/// The agent's activity log, newest first (Warden's addition).
#[utoipa::path(get, path = "/api/fleet/agents/{id}/events", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, description = "At most the latest 200 lines", body = ListResponse<AgentEvent>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        SignedInErrors,
    ))]
async fn agent_events(State(state): State<AppState>, _: Require<FleetRead>, Path(id): Path<String>) -> Result<axum::Json<ListResponse<AgentEvent>>> {
    let items = service::agent_events(&state, &id, EVENTS_SHOWN as i64).await?;
    Ok(axum::Json(ListResponse { total: items.len(), page: 1, per_page: EVENTS_SHOWN, items, status_summary: None }))
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
async fn agent_status(
    State(state): State<AppState>,
    _: Require<FleetRead>,
    QueryParams(query): QueryParams<AgentStatusQuery>,
) -> Result<axum::Json<AgentStatusResponse>> {
    let filter = parse_kuery(query.kuery.as_deref())?;
    Ok(axum::Json(AgentStatusResponse { results: service::agent_status(&state, query.policy_id, filter).await? }))
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
async fn unenroll(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<UnenrollRequest>,
) -> Result<axum::Json<serde_json::Value>> {
    let request = request.unwrap_or_default();
    service::unenroll(&state, &id, &request, &user.username).await?;
    Ok(axum::Json(serde_json::json!({})))
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
async fn bulk_unenroll(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    JsonBody(body): JsonBody<BulkUnenrollRequest>,
) -> Result<axum::Json<BulkActionResponse>> {
    let filter = match &body.agents {
        BulkTarget::Kuery(text) => parse_kuery(Some(text))?,
        BulkTarget::Ids(_) => None,
    };
    Ok(axum::Json(BulkActionResponse { action_id: service::bulk_unenroll(&state, body, filter, &user.username).await?.into() }))
}

fn list<T>(items: Vec<T>) -> ListResponse<T> {
    ListResponse { total: items.len(), page: 1, per_page: items.len().max(20), items, status_summary: None }
}

#[utoipa::path(get, path = "/api/fleet/agent_policies", tag = "fleet",
    responses(
        (status = 200, body = ListResponse<AgentPolicy>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_policies(State(state): State<AppState>, _: Require<FleetRead>) -> Result<axum::Json<ListResponse<AgentPolicy>>> {
    Ok(axum::Json(list(service::list_policies(&state).await?)))
}

#[utoipa::path(get, path = "/api/fleet/agent_policies/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<AgentPolicy>),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such agent policy", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_policy(State(state): State<AppState>, _: Require<FleetRead>, Path(id): Path<String>) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    Ok(axum::Json(ItemResponse { item: service::get_policy(&state, &id).await? }))
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
async fn create_policy(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    JsonBody(body): JsonBody<AgentPolicyRequest>,
) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    Ok(axum::Json(ItemResponse { item: service::create_policy(&state, &body).await? }))
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
async fn update_policy(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AgentPolicyRequest>,
) -> Result<axum::Json<ItemResponse<AgentPolicy>>> {
    Ok(axum::Json(ItemResponse { item: service::update_policy(&state, &id, &body).await? }))
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
async fn delete_policy(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    JsonBody(body): JsonBody<DeleteAgentPolicyRequest>,
) -> Result<axum::Json<serde_json::Value>> {
    let policy = service::delete_policy(&state, body.agent_policy_id.as_str()).await?;
    Ok(axum::Json(serde_json::json!({"id": policy.id, "name": policy.name})))
}

#[utoipa::path(get, path = "/api/fleet/enrollment_api_keys", tag = "fleet",
    responses(
        (status = 200, body = ListResponse<EnrollmentApiKey>),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_enrollment_keys(State(state): State<AppState>, _: Require<FleetAll>) -> Result<axum::Json<ListResponse<EnrollmentApiKey>>> {
    Ok(axum::Json(list(service::list_enrollment_keys(&state).await?)))
}

/// A revoked key is still found, with `active: false`.
#[utoipa::path(get, path = "/api/fleet/enrollment_api_keys/{id}", tag = "fleet", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = ItemResponse<EnrollmentApiKey>),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such enrollment key", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_enrollment_key(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    Path(id): Path<String>,
) -> Result<axum::Json<ItemResponse<EnrollmentApiKey>>> {
    Ok(axum::Json(ItemResponse { item: service::get_enrollment_key(&state, &id).await? }))
}

#[utoipa::path(post, path = "/api/fleet/enrollment_api_keys", tag = "fleet", params(Xsrf), request_body = EnrollmentApiKeyRequest,
    responses(
        (status = 200, body = ItemResponse<EnrollmentApiKey>),
        (status = 400, description = "No kbn-xsrf header, a malformed body, a bad expiration, or no agent policy with that id", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn create_enrollment_key(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    JsonBody(body): JsonBody<EnrollmentApiKeyRequest>,
) -> Result<axum::Json<ItemResponse<EnrollmentApiKey>>> {
    // The same durations (and bounds) as API keys: 30m, 12h, 7d, up to ten years.
    let expires_in = body
        .expiration
        .as_deref()
        .map(parse_expiration_ms)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("[request body.expiration]: {e}")))?;
    Ok(axum::Json(ItemResponse { item: service::create_enrollment_key(&state, body, expires_in).await? }))
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
async fn revoke_enrollment_key(State(state): State<AppState>, _: Require<FleetAll>, Path(id): Path<String>) -> Result<axum::Json<serde_json::Value>> {
    service::revoke_enrollment_key(&state, &id).await?;
    Ok(axum::Json(serde_json::json!({"action": "deleted"})))
}

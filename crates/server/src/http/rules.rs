//! Rules (`/api/alerting`, Kibana's shapes), their runs, action log and
//! change history, and their alerts (`/internal/alerting`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::actions::{ConnectorChange, ConnectorExecution};
use warden_core::error::ErrorBody;
use warden_core::rules::{
    Alert, AlertStatus, AlertingConfig, CreateRuleRequest, FindAlertsResponse, FindRulesResponse, Rule, RuleRun, RuleTypeInfo, UpdateRuleRequest,
};

use super::authz::{Require, RulesAll, RulesRead};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::{JsonBody, QueryParams};
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::rules;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(get, create_with_id, update, delete))
        .routes(routes!(find))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(mute_all))
        .routes(routes!(unmute_all))
        .routes(routes!(types))
        .routes(routes!(config))
        .routes(routes!(runs))
        .routes(routes!(history))
        .routes(routes!(action_log))
        .routes(routes!(find_alerts))
        .routes(routes!(get_alert))
}

/// Creates a rule with a new id (needs `rules:all`, and what its type and
/// system actions require). It runs as the user who saved it, with an API
/// key Warden makes for it, and first runs at once.
#[utoipa::path(post, path = "/api/alerting/rule", tag = "alerting",
    params(Xsrf),
    request_body = CreateRuleRequest,
    responses(
        (status = 200, body = Rule),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an invalid field (the message names it), an unknown connector, or an action the rules refuse", body = ErrorBody),
        (status = 403, description = "Missing rules:all, or a privilege the rule type or a system action needs (the message names it)", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create(
    State(state): State<AppState>,
    Require(user, _): Require<RulesAll>,
    JsonBody(request): JsonBody<CreateRuleRequest>,
) -> Result<axum::Json<Rule>> {
    Ok(axum::Json(rules::create(&state, None, request, &user).await?))
}

/// Creates a rule with the given id (1 to 36 letters, digits, `-`, `_`).
#[utoipa::path(post, path = "/api/alerting/rule/{id}", tag = "alerting",
    params(("id" = String, Path, min_length = 1, max_length = 36, description = "The new rule's id"), Xsrf),
    request_body = CreateRuleRequest,
    responses(
        (status = 200, body = Rule),
        (status = 400, description = "As for a new id, or a malformed id", body = ErrorBody),
        (status = 403, description = "Missing rules:all, or a privilege the rule type or a system action needs", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create_with_id(
    State(state): State<AppState>,
    Require(user, _): Require<RulesAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreateRuleRequest>,
) -> Result<axum::Json<Rule>> {
    Ok(axum::Json(rules::create(&state, Some(&id), request, &user).await?))
}

/// One rule, its actions merged back into one array with their connector types.
#[utoipa::path(get, path = "/api/alerting/rule/{id}", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id")),
    responses(
        (status = 200, body = Rule),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get(State(state): State<AppState>, _: Require<RulesRead>, Path(id): Path<String>) -> Result<axum::Json<Rule>> {
    Ok(axum::Json(rules::get(&state, &id).await?))
}

/// Replaces a rule's definition (its type and consumer stay). Saved by
/// someone other than its key's owner, the rule gets a key of theirs and the
/// old key is queued for invalidation.
#[utoipa::path(put, path = "/api/alerting/rule/{id}", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id"), Xsrf),
    request_body = UpdateRuleRequest,
    responses(
        (status = 200, body = Rule),
        (status = 400, description = "As for create", body = ErrorBody),
        (status = 403, description = "As for create", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, rule = %id))]
async fn update(
    State(state): State<AppState>,
    Require(user, _): Require<RulesAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateRuleRequest>,
) -> Result<axum::Json<Rule>> {
    Ok(axum::Json(rules::update(&state, &id, request, &user).await?))
}

/// Deletes a rule with its alerts and runs; its key is queued for invalidation.
#[utoipa::path(delete, path = "/api/alerting/rule/{id}", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id"), Xsrf),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
        (status = 403, description = "Missing rules:all", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        SignedInErrors,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, rule = %id))]
async fn delete(State(state): State<AppState>, Require(user, _): Require<RulesAll>, Path(id): Path<String>) -> Result<StatusCode> {
    rules::delete(&state, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindRulesQuery {
    /// From 1 (the default).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
    /// Words in the name or the tags.
    #[param(max_length = 256)]
    search: Option<String>,
    /// Kibana's; accepted, and Warden searches the name and tags whatever it says.
    #[allow(dead_code)]
    search_fields: Option<String>,
    /// Kibana's; accepted, and one search string is one condition here.
    #[allow(dead_code)]
    default_search_operator: Option<String>,
    /// `name` (default), `created_at`, `updated_at`, `enabled` or `execution_status.last_execution_date`.
    sort_field: Option<String>,
    /// `asc` (default) or `desc`.
    sort_order: Option<String>,
    /// Only rules of this type.
    rule_type_id: Option<String>,
}

/// Rules, a page at a time, in Kibana's `_find` shape.
#[utoipa::path(get, path = "/api/alerting/rules/_find", tag = "alerting", params(FindRulesQuery),
    responses(
        (status = 200, body = FindRulesResponse),
        (status = 400, description = "A malformed or unknown query parameter", body = ErrorBody),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn find(
    State(state): State<AppState>,
    _: Require<RulesRead>,
    QueryParams(query): QueryParams<FindRulesQuery>,
) -> Result<axum::Json<FindRulesResponse>> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(10);
    if !(1..=10_000).contains(&page) || !(1..=100).contains(&per_page) {
        return Err(ApiError::BadRequest("[request query]: page must be 1 to 10000 and per_page 1 to 100".into()));
    }
    if query.search.as_ref().is_some_and(|s| s.len() > 256) {
        return Err(ApiError::BadRequest("[request query.search]: at most 256 bytes".into()));
    }
    let descending = match query.sort_order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("[request query.sort_order]: expected asc or desc, got {other}"))),
    };
    let query = rules::FindQuery { page, per_page, search: query.search, rule_type_id: query.rule_type_id, sort_field: query.sort_field, descending };
    Ok(axum::Json(rules::find(&state, query).await?))
}

macro_rules! rule_switch {
    ($(#[$doc:meta])* $name:ident, $path:literal, $service:ident, $value:literal) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "alerting",
            params(("id" = String, Path, min_length = 1, description = "The rule's id"), Xsrf),
            responses(
                (status = 204, description = "Done (also when it already was)"),
                (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
                (status = 403, description = "Missing rules:all, or (to enable) what the rule type needs", body = ErrorBody),
                (status = 404, description = "No such rule", body = ErrorBody),
                SignedInErrors,
            ))]
        #[tracing::instrument(skip_all, fields(user = %user.username, rule = %id))]
        async fn $name(State(state): State<AppState>, Require(user, _): Require<RulesAll>, Path(id): Path<String>) -> Result<StatusCode> {
            rules::$service(&state, &id, $value, &user).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

rule_switch!(
    /// Enables a rule: it runs at once, as the user who enabled it.
    enable, "/api/alerting/rule/{id}/_enable", set_enabled, true
);
rule_switch!(
    /// Disables a rule: its task stops and its active alerts become untracked.
    disable, "/api/alerting/rule/{id}/_disable", set_enabled, false
);
rule_switch!(
    /// Mutes every alert of the rule: it keeps tracking them but fires no action.
    mute_all, "/api/alerting/rule/{id}/_mute_all", set_muted, true
);
rule_switch!(
    /// Lets the rule's actions fire again.
    unmute_all, "/api/alerting/rule/{id}/_unmute_all", set_muted, false
);

/// The rule types, their action groups, and whether the caller may create each.
#[utoipa::path(get, path = "/api/alerting/rule_types", tag = "alerting",
    responses((status = 200, body = Vec<RuleTypeInfo>), (status = 403, description = "Missing rules:read", body = ErrorBody), SignedInErrors))]
async fn types(Require(user, _): Require<RulesRead>) -> axum::Json<Vec<RuleTypeInfo>> {
    axum::Json(rules::types(&user))
}

/// What the rule form must know: the shortest schedule a rule may have.
#[utoipa::path(get, path = "/internal/alerting/_config", tag = "alerting",
    responses((status = 200, body = AlertingConfig), (status = 403, description = "Missing rules:read", body = ErrorBody), SignedInErrors))]
async fn config(State(state): State<AppState>, _: Require<RulesRead>) -> axum::Json<AlertingConfig> {
    axum::Json(rules::config(&state))
}

/// The rule's runs, newest first (the newest 200): when, how long, what each found and queued, and errors.
#[utoipa::path(get, path = "/internal/alerting/rule/{id}/_runs", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id")),
    responses(
        (status = 200, body = Vec<RuleRun>),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        SignedInErrors,
    ))]
async fn runs(State(state): State<AppState>, _: Require<RulesRead>, Path(id): Path<String>) -> Result<axum::Json<Vec<RuleRun>>> {
    Ok(axum::Json(rules::runs(&state, &id).await?))
}

/// Who created, changed, enabled, disabled and deleted the rule, when, and what.
#[utoipa::path(get, path = "/internal/alerting/rule/{id}/_history", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id")),
    responses(
        (status = 200, body = Vec<ConnectorChange>),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        (status = 404, description = "No such rule, now or before", body = ErrorBody),
        SignedInErrors,
    ))]
async fn history(State(state): State<AppState>, _: Require<RulesRead>, Path(id): Path<String>) -> Result<axum::Json<Vec<ConnectorChange>>> {
    Ok(axum::Json(rules::history(&state, &id).await?))
}

/// The actions the rule ran, newest first: which connector, how it ended, why, and as whom.
#[utoipa::path(get, path = "/internal/alerting/rule/{id}/_action_executions", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The rule's id")),
    responses(
        (status = 200, body = Vec<ConnectorExecution>),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        SignedInErrors,
    ))]
async fn action_log(State(state): State<AppState>, _: Require<RulesRead>, Path(id): Path<String>) -> Result<axum::Json<Vec<ConnectorExecution>>> {
    rules::get(&state, &id).await?;
    Ok(axum::Json(crate::actions::executions_for_rule(&state, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindAlertsQuery {
    /// Only this rule's alerts.
    rule_id: Option<String>,
    /// `active`, `recovered` or `untracked`.
    status: Option<String>,
    /// Part of the agent id or of the context (host name, status…).
    #[param(max_length = 256)]
    search: Option<String>,
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// Alerts across rules, active first, newest first.
#[utoipa::path(get, path = "/internal/alerting/alerts/_find", tag = "alerting", params(FindAlertsQuery),
    responses(
        (status = 200, body = FindAlertsResponse),
        (status = 400, description = "A malformed or unknown query parameter", body = ErrorBody),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn find_alerts(
    State(state): State<AppState>,
    _: Require<RulesRead>,
    QueryParams(query): QueryParams<FindAlertsQuery>,
) -> Result<axum::Json<FindAlertsResponse>> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(20);
    if !(1..=10_000).contains(&page) || !(1..=100).contains(&per_page) {
        return Err(ApiError::BadRequest("[request query]: page must be 1 to 10000 and per_page 1 to 100".into()));
    }
    if query.search.as_ref().is_some_and(|s| s.len() > 256) {
        return Err(ApiError::BadRequest("[request query.search]: at most 256 bytes".into()));
    }
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            AlertStatus::parse(text)
                .ok_or_else(|| ApiError::BadRequest(format!("[request query.status]: expected active, recovered or untracked, got {text}")))?,
        ),
    };
    let query = rules::AlertQuery { rule_id: query.rule_id, status, search: query.search, page, per_page };
    Ok(axum::Json(rules::find_alerts(&state, query).await?))
}

/// One alert.
#[utoipa::path(get, path = "/internal/alerting/alert/{id}", tag = "alerting",
    params(("id" = String, Path, min_length = 1, description = "The alert's id (its uuid)")),
    responses(
        (status = 200, body = Alert),
        (status = 403, description = "Missing rules:read", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_alert(State(state): State<AppState>, _: Require<RulesRead>, Path(id): Path<String>) -> Result<axum::Json<Alert>> {
    Ok(axum::Json(rules::get_alert(&state, &id).await?))
}

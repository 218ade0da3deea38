//! Fleet's cloud connectors and package policies. Reading needs fleet:read,
//! changing fleet:all (Kibana: agent policies or integrations, read or all).
//! Each handler parses, names its privilege, calls one `cloud_connectors`
//! function and shapes the reply.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::cloud_connectors::{
    CloudConnectorItem, CloudConnectorList, CreateCloudConnector, PackagePolicyItem, PackagePolicyList, PackagePolicyRequest, UpdateCloudConnector,
    parse_connector_kuery,
};
use warden_core::error::ErrorBody;

use super::authz::{FleetAll, FleetRead, Require};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::{JsonBody, QueryParams};
use crate::AppState;
use crate::cloud_connectors::{self as service, DEFAULT_PER_PAGE};
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(usage))
        .routes(routes!(verify))
        .routes(routes!(list_package_policies, create_package_policy))
        .routes(routes!(get_package_policy, update_package_policy, delete_package_policy))
        .routes(routes!(bulk_delete_package_policies))
}

/// Kibana sends `page` and `perPage` as strings; both read as numbers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    /// From 1 (the default).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// 1 to 10,000 (default 20).
    #[param(minimum = 1, maximum = 10000)]
    per_page: Option<i64>,
    /// Kibana's KQL subset over name, cloudProvider, accountType, namespace
    /// and verification_status (bare or as `fleet-cloud-connector.attributes.<name>`).
    #[serde(default)]
    kuery: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete a connector that package policies use (they stay, without it).
    #[serde(default)]
    force: bool,
}

/// Cloud connectors, newest first, each with its verification state and its
/// last verification's per-template, per-permission results.
#[utoipa::path(get, path = "/api/fleet/cloud_connectors", tag = "fleet cloud connectors", params(PageQuery),
    responses(
        (status = 200, body = CloudConnectorList),
        (status = 400, description = "A page or perPage out of bounds, or a kuery that does not parse", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list(
    State(state): State<AppState>,
    _: Require<FleetRead>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<axum::Json<CloudConnectorList>> {
    let filter = parse_connector_kuery(query.kuery.as_deref().unwrap_or_default()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(axum::Json(service::list(&state, filter.as_ref(), query.page.unwrap_or(1), query.per_page.unwrap_or(DEFAULT_PER_PAGE)).await?))
}

/// Creates a connector, pending verification. Secrets (`{type: "password",
/// value}`) are encrypted and never returned: reads show a reference.
#[utoipa::path(post, path = "/api/fleet/cloud_connectors", tag = "fleet cloud connectors", params(Xsrf), request_body = CreateCloudConnector,
    responses(
        (status = 200, body = CloudConnectorItem),
        (status = 400, description = "No kbn-xsrf header, a malformed body, a blank or long name, or variables the provider does not take", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 409, description = "A cloud connector with this name already exists", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn create(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    JsonBody(body): JsonBody<CreateCloudConnector>,
) -> Result<axum::Json<CloudConnectorItem>> {
    Ok(axum::Json(CloudConnectorItem { item: service::create(&state, body, &user.username).await? }))
}

#[utoipa::path(get, path = "/api/fleet/cloud_connectors/{id}", tag = "fleet cloud connectors", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = CloudConnectorItem),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such cloud connector", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get(State(state): State<AppState>, _: Require<FleetRead>, Path(id): Path<String>) -> Result<axum::Json<CloudConnectorItem>> {
    Ok(axum::Json(CloudConnectorItem { item: service::get(&state, &id).await? }))
}

/// Changes name, account type or variables; what is left out stays (a
/// secret sent back as its reference is kept). New credentials set the
/// status to pending and the verifier runs soon.
#[utoipa::path(put, path = "/api/fleet/cloud_connectors/{id}", tag = "fleet cloud connectors", params(("id" = String, Path, min_length = 1), Xsrf),
    request_body = UpdateCloudConnector,
    responses(
        (status = 200, body = CloudConnectorItem),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or variables the provider does not take", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such cloud connector", body = ErrorBody),
        (status = 409, description = "A cloud connector with this name already exists", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn update(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateCloudConnector>,
) -> Result<axum::Json<CloudConnectorItem>> {
    Ok(axum::Json(CloudConnectorItem { item: service::update(&state, &id, body, &user.username).await? }))
}

#[utoipa::path(delete, path = "/api/fleet/cloud_connectors/{id}", tag = "fleet cloud connectors",
    params(("id" = String, Path, min_length = 1), DeleteQuery, Xsrf),
    responses(
        (status = 200, description = "`{id}`", body = Object),
        (status = 400, description = "No kbn-xsrf header, or package policies use it and force is not set", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such cloud connector", body = ErrorBody),
        (status = 409, description = "A verification of it is in flight", body = ErrorBody),
        SignedInErrors,
    ))]
async fn delete(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<DeleteQuery>,
) -> Result<axum::Json<serde_json::Value>> {
    service::delete(&state, &id, query.force).await?;
    Ok(axum::Json(serde_json::json!({"id": id})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageQuery {
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Default 10.
    #[param(minimum = 1, maximum = 10000)]
    per_page: Option<i64>,
}

/// The package policies that use a connector.
#[utoipa::path(get, path = "/api/fleet/cloud_connectors/{id}/usage", tag = "fleet cloud connectors",
    params(("id" = String, Path, min_length = 1), UsageQuery),
    responses(
        (status = 200, description = "`{items: [{id, name, package, policy_ids, created_at, updated_at}], total, page, perPage}`", body = Object),
        (status = 400, description = "A page or perPage out of bounds", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "No such cloud connector", body = ErrorBody),
        SignedInErrors,
    ))]
async fn usage(
    State(state): State<AppState>,
    _: Require<FleetRead>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<axum::Json<serde_json::Value>> {
    Ok(axum::Json(service::usage(&state, &id, query.page.unwrap_or(1), query.per_page.unwrap_or(10)).await?))
}

/// "Verify now": the verifier task runs soon and takes this connector first,
/// past its cooldown; never while another verification is in flight (it
/// waits for that one).
#[utoipa::path(post, path = "/internal/fleet/cloud_connectors/{id}/_verify", tag = "fleet cloud connectors",
    params(("id" = String, Path, min_length = 1), Xsrf),
    responses(
        (status = 200, body = CloudConnectorItem),
        (status = 400, description = "No kbn-xsrf header, the verifier is off, or no package policy uses the connector", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such cloud connector", body = ErrorBody),
        SignedInErrors,
    ))]
async fn verify(State(state): State<AppState>, _: Require<FleetAll>, Path(id): Path<String>) -> Result<axum::Json<CloudConnectorItem>> {
    Ok(axum::Json(CloudConnectorItem { item: service::request_verification(&state, &id).await? }))
}

#[utoipa::path(get, path = "/api/fleet/package_policies", tag = "fleet package policies", params(UsageQuery),
    responses(
        (status = 200, body = PackagePolicyList),
        (status = 400, description = "A page or perPage out of bounds", body = ErrorBody),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_package_policies(
    State(state): State<AppState>,
    _: Require<FleetRead>,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<axum::Json<PackagePolicyList>> {
    Ok(axum::Json(service::list_package_policies(&state, query.page.unwrap_or(1), query.per_page.unwrap_or(20)).await?))
}

/// A package policy in Fleet's full format (inputs as an array). With
/// `cloud_connector_id`, its package must be the connector's provider and
/// each enabled input's policy template one Warden can verify.
#[utoipa::path(post, path = "/api/fleet/package_policies", tag = "fleet package policies", params(Xsrf), request_body = PackagePolicyRequest,
    responses(
        (status = 200, body = PackagePolicyItem),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an unknown cloud connector, or a package or template it cannot serve", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such agent policy", body = ErrorBody),
        (status = 409, description = "A package policy with this name already exists", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn create_package_policy(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    JsonBody(body): JsonBody<PackagePolicyRequest>,
) -> Result<axum::Json<PackagePolicyItem>> {
    Ok(axum::Json(PackagePolicyItem { item: service::create_package_policy(&state, body, &user.username).await? }))
}

#[utoipa::path(get, path = "/api/fleet/package_policies/{id}", tag = "fleet package policies", params(("id" = String, Path, min_length = 1)),
    responses(
        (status = 200, body = PackagePolicyItem),
        (status = 403, description = "Missing fleet:read", body = ErrorBody),
        (status = 404, description = "Package policy <id> not found", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_package_policy(State(state): State<AppState>, _: Require<FleetRead>, Path(id): Path<String>) -> Result<axum::Json<PackagePolicyItem>> {
    Ok(axum::Json(PackagePolicyItem { item: service::get_package_policy(&state, &id).await? }))
}

#[utoipa::path(put, path = "/api/fleet/package_policies/{id}", tag = "fleet package policies", params(("id" = String, Path, min_length = 1), Xsrf),
    request_body = PackagePolicyRequest,
    responses(
        (status = 200, body = PackagePolicyItem),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an unknown cloud connector, or a package or template it cannot serve", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        (status = 404, description = "No such package policy or agent policy", body = ErrorBody),
        (status = 409, description = "A package policy with this name already exists", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn update_package_policy(
    State(state): State<AppState>,
    Require(user, _): Require<FleetAll>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PackagePolicyRequest>,
) -> Result<axum::Json<PackagePolicyItem>> {
    Ok(axum::Json(PackagePolicyItem { item: service::update_package_policy(&state, &id, body, &user.username).await? }))
}

/// Idempotent, as Fleet's: an unknown id answers 200 too.
#[utoipa::path(delete, path = "/api/fleet/package_policies/{id}", tag = "fleet package policies", params(("id" = String, Path, min_length = 1), Xsrf),
    responses(
        (status = 200, description = "`{id}`", body = Object),
        (status = 400, description = "No kbn-xsrf header, or a verifier's package policy (Warden manages those)", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
    ))]
async fn delete_package_policy(State(state): State<AppState>, _: Require<FleetAll>, Path(id): Path<String>) -> Result<axum::Json<serde_json::Value>> {
    service::delete_package_policy(&state, &id).await?;
    Ok(axum::Json(serde_json::json!({"id": id})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkDeleteRequest {
    /// 1 to 1,000 ids.
    package_policy_ids: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    force: Option<bool>,
}

/// Fleet's bulk delete: one result per id (`success`, or `statusCode` and why).
#[utoipa::path(post, path = "/api/fleet/package_policies/delete", tag = "fleet package policies", params(Xsrf), request_body = BulkDeleteRequest,
    responses(
        (status = 200, description = "`[{id, success, name?, statusCode?, body?: {message}}]`", body = Object),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or no ids / more than 1,000", body = ErrorBody),
        (status = 403, description = "Missing fleet:all", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
async fn bulk_delete_package_policies(
    State(state): State<AppState>,
    _: Require<FleetAll>,
    JsonBody(body): JsonBody<BulkDeleteRequest>,
) -> Result<axum::Json<Vec<serde_json::Value>>> {
    let results = service::delete_package_policies(&state, body.package_policy_ids).await?;
    Ok(axum::Json(results))
}

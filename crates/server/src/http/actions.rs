//! Connectors and connector types (`/api/actions`, Kibana's shapes), the rule
//! form's lists that include system actions (`/internal/actions`), and a
//! connector's change history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::actions::{
    Connector, ConnectorChange, ConnectorExecution, ConnectorType, CreateConnectorRequest, ExecuteConnectorRequest, ExecuteConnectorResponse,
    UpdateConnectorRequest,
};
use warden_core::error::ErrorBody;

use super::JsonBody;
use super::authz::{ActionsAll, ActionsRead, Require};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use crate::AppState;
use crate::actions;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(list_internal))
        .routes(routes!(create))
        .routes(routes!(get, create_with_id, update, delete))
        .routes(routes!(execute))
        .routes(routes!(history))
        .routes(routes!(executions))
        .routes(routes!(types))
        .routes(routes!(types_internal))
}

/// Every connector (needs `actions:read`); system actions are never listed here.
#[utoipa::path(get, path = "/api/actions/connectors", tag = "actions",
    responses((status = 200, body = Vec<Connector>), (status = 403, description = "Missing actions:read", body = ErrorBody), SignedInErrors))]
async fn list(State(state): State<AppState>, Require(user, _): Require<ActionsRead>) -> Result<axum::Json<Vec<Connector>>> {
    Ok(axum::Json(actions::list(&state, false, &user.roles).await?))
}

/// Every connector and the system actions the caller may use (what the rule form offers).
#[utoipa::path(get, path = "/internal/actions/connectors", tag = "actions",
    responses((status = 200, body = Vec<Connector>), (status = 403, description = "Missing actions:read", body = ErrorBody), SignedInErrors))]
async fn list_internal(State(state): State<AppState>, Require(user, _): Require<ActionsRead>) -> Result<axum::Json<Vec<Connector>>> {
    Ok(axum::Json(actions::list(&state, true, &user.roles).await?))
}

/// One connector (a system action's id is not found here).
#[utoipa::path(get, path = "/api/actions/connector/{id}", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id")),
    responses(
        (status = 200, body = Connector),
        (status = 403, description = "Missing actions:read", body = ErrorBody),
        (status = 404, description = "No such connector", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get(State(state): State<AppState>, Require(_user, _): Require<ActionsRead>, Path(id): Path<String>) -> Result<axum::Json<Connector>> {
    Ok(axum::Json(actions::get(&state, &id).await?))
}

/// Creates a connector with a new id (needs `actions:all`). Secrets are
/// encrypted and never returned. System action types are refused (400), as
/// are types above the licence (403) and webhook URLs outside
/// `actions_allowed_hosts` (400).
#[utoipa::path(post, path = "/api/actions/connector", tag = "actions",
    params(Xsrf),
    request_body = CreateConnectorRequest,
    responses(
        (status = 200, body = Connector),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an invalid config, secrets or name, or a system action type", body = ErrorBody),
        (status = 403, description = "Missing actions:all, or the licence does not cover the type", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create(
    State(state): State<AppState>,
    Require(user, _): Require<ActionsAll>,
    JsonBody(request): JsonBody<CreateConnectorRequest>,
) -> Result<axum::Json<Connector>> {
    Ok(axum::Json(actions::create(&state, None, request, &user.username).await?))
}

/// Creates a connector with the given id (1 to 36 letters, digits, `-`, `_`).
#[utoipa::path(post, path = "/api/actions/connector/{id}", tag = "actions",
    params(("id" = String, Path, min_length = 1, max_length = 36, description = "The new connector's id: letters, digits, `-` and `_`"), Xsrf),
    request_body = CreateConnectorRequest,
    responses(
        (status = 200, body = Connector),
        (status = 400, description = "No kbn-xsrf header, a malformed body or id, an invalid config, secrets or name, or a system action", body = ErrorBody),
        (status = 403, description = "Missing actions:all, or the licence does not cover the type", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create_with_id(
    State(state): State<AppState>,
    Require(user, _): Require<ActionsAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CreateConnectorRequest>,
) -> Result<axum::Json<Connector>> {
    Ok(axum::Json(actions::create(&state, Some(&id), request, &user.username).await?))
}

/// Replaces a connector's name, config and secrets (its type stays).
#[utoipa::path(put, path = "/api/actions/connector/{id}", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id"), Xsrf),
    request_body = UpdateConnectorRequest,
    responses(
        (status = 200, body = Connector),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an invalid config, secrets or name, or a system action", body = ErrorBody),
        (status = 403, description = "Missing actions:all, or the licence does not cover the type", body = ErrorBody),
        (status = 404, description = "No such connector", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, connector = %id))]
async fn update(
    State(state): State<AppState>,
    Require(user, _): Require<ActionsAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateConnectorRequest>,
) -> Result<axum::Json<Connector>> {
    Ok(axum::Json(actions::update(&state, &id, request, &user.username).await?))
}

/// Deletes a connector; its change history stays.
#[utoipa::path(delete, path = "/api/actions/connector/{id}", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id"), Xsrf),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "No kbn-xsrf header, or a system action", body = ErrorBody),
        (status = 403, description = "Missing actions:all", body = ErrorBody),
        (status = 404, description = "No such connector", body = ErrorBody),
        SignedInErrors,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, connector = %id))]
async fn delete(State(state): State<AppState>, Require(user, _): Require<ActionsAll>, Path(id): Path<String>) -> Result<StatusCode> {
    actions::delete(&state, &id, &user.username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a connector now. A call that fails (the receiver is down, the host is
/// not allowed) is a 200 with `status: error` and the reason, as Kibana's.
#[utoipa::path(post, path = "/api/actions/connector/{id}/_execute", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id"), Xsrf),
    request_body = ExecuteConnectorRequest,
    responses(
        (status = 200, body = ExecuteConnectorResponse),
        (status = 400, description = "No kbn-xsrf header, a malformed body, invalid params, or a system action", body = ErrorBody),
        (status = 403, description = "Missing actions:all, or the licence does not cover the type", body = ErrorBody),
        (status = 404, description = "No such connector", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, connector = %id))]
async fn execute(
    State(state): State<AppState>,
    Require(user, _): Require<ActionsAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ExecuteConnectorRequest>,
) -> Result<axum::Json<ExecuteConnectorResponse>> {
    let result = actions::execute(&state, &id, request.params, &user.username).await?;
    tracing::info!(status = result.status.as_str(), "connector executed");
    Ok(axum::Json(result))
}

/// Who created, changed and deleted the connector, when, and what (field names only).
#[utoipa::path(get, path = "/internal/actions/connector/{id}/_history", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id")),
    responses(
        (status = 200, body = Vec<ConnectorChange>),
        (status = 403, description = "Missing actions:read", body = ErrorBody),
        (status = 404, description = "No such connector, now or before", body = ErrorBody),
        SignedInErrors,
    ))]
async fn history(
    State(state): State<AppState>,
    Require(_user, _): Require<ActionsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<ConnectorChange>>> {
    Ok(axum::Json(actions::history(&state, &id).await?))
}

/// The connector's runs, newest first (the newest 200 are kept): when, how
/// each ended, why, whether to retry, and who ran it.
#[utoipa::path(get, path = "/internal/actions/connector/{id}/_executions", tag = "actions",
    params(("id" = String, Path, min_length = 1, description = "The connector's id")),
    responses(
        (status = 200, body = Vec<ConnectorExecution>),
        (status = 400, description = "A system action (its runs belong to the rules that use it)", body = ErrorBody),
        (status = 403, description = "Missing actions:read", body = ErrorBody),
        (status = 404, description = "No such connector, now or before", body = ErrorBody),
        SignedInErrors,
    ))]
async fn executions(
    State(state): State<AppState>,
    Require(_user, _): Require<ActionsRead>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<ConnectorExecution>>> {
    Ok(axum::Json(actions::executions(&state, &id).await?))
}

/// The connector types, with whether the licence enables each; system action types are never listed here.
#[utoipa::path(get, path = "/api/actions/connector_types", tag = "actions",
    responses((status = 200, body = Vec<ConnectorType>), (status = 403, description = "Missing actions:read", body = ErrorBody), SignedInErrors))]
async fn types(State(state): State<AppState>, Require(user, _): Require<ActionsRead>) -> Result<axum::Json<Vec<ConnectorType>>> {
    Ok(axum::Json(actions::types(&state, false, &user.roles)))
}

/// The connector types and the system action types the caller may use (the rule form).
#[utoipa::path(get, path = "/internal/actions/connector_types", tag = "actions",
    responses((status = 200, body = Vec<ConnectorType>), (status = 403, description = "Missing actions:read", body = ErrorBody), SignedInErrors))]
async fn types_internal(State(state): State<AppState>, Require(user, _): Require<ActionsRead>) -> Result<axum::Json<Vec<ConnectorType>>> {
    Ok(axum::Json(actions::types(&state, true, &user.roles)))
}

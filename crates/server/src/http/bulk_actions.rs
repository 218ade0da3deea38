//! Bulk response actions (`/internal/warden/response_actions/bulk…`): one
//! command to many hosts (ids, or a kuery as the Fleet view sends it), what
//! it would do, how it is going, and cancelling what is still pending. The
//! command's own privilege and licence are those of its single-host route.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::error::ErrorBody;
use warden_core::fleet_api::BulkTarget;
use warden_core::kuery;
use warden_core::response_actions::bulk::{
    BulkCancelRequest, BulkCancelResponse, BulkCreated, BulkHostsQuery, BulkPreview, BulkResponseActionRequest, BulkStatus,
};

use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::response_actions::{CancelRoute, ReadActionsLog, RequireCommand, RequireEndpoint};
use super::{JsonBody, OptionalJsonBody, QueryPairs};
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, Result};
use crate::response_actions::bulk as service;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(preview)).routes(routes!(status)).routes(routes!(cancel))
}

/// The caller may send some command in bulk (privilege and licence),
/// checked before the body is read; the command sent is checked once read.
pub struct RequireBulk(pub AuthUser);

impl FromRequestParts<AppState> for RequireBulk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        service::authorize_any(state, &user)?;
        Ok(RequireBulk(user))
    }
}

/// The selection's kuery, parsed within its limits (none for a list of ids).
fn kuery_of(agents: &BulkTarget) -> Result<Option<kuery::Query>> {
    match agents {
        BulkTarget::Kuery(text) => super::fleet::parse_kuery(Some(text)),
        BulkTarget::Ids(_) => Ok(None),
    }
}

/// Sends one command to every host of the selection that can take it: one
/// action per 1,000 hosts, linked by the bulk's id; the others are left out
/// and listed with why.
#[utoipa::path(post, path = "/internal/warden/response_actions/bulk", tag = "response-actions",
    params(Xsrf),
    request_body = BulkResponseActionRequest,
    responses(
        (status = 200, description = "The bulk action, its actions, and the hosts left out (the first 100, with why)", body = BulkCreated),
        (status = 400, description = "No kbn-xsrf header; a malformed body or parameter (the single-host route's message); a command that cannot go in bulk; no ids or more than 10,000; a bad kuery or one matching more than 10,000 agents or none; no host that can take the command", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: no command the caller may send in bulk, or not this command's privilege or licence", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create(
    State(state): State<AppState>,
    RequireBulk(user): RequireBulk,
    JsonBody(request): JsonBody<BulkResponseActionRequest>,
) -> Result<axum::Json<BulkCreated>> {
    let filter = kuery_of(&request.agents)?;
    Ok(axum::Json(service::create(&state, &user, &request, filter).await?))
}

/// What sending would do: how many hosts the selection names, how many can
/// take the command, how many actions it becomes, and the others with why.
/// Nothing is sent.
#[utoipa::path(post, path = "/internal/warden/response_actions/bulk/_preview", tag = "response-actions",
    params(Xsrf),
    request_body = BulkResponseActionRequest,
    responses(
        (status = 200, description = "The counts, and the hosts that cannot take the command (the first 100, with why)", body = BulkPreview),
        (status = 400, description = "No kbn-xsrf header; a malformed body or parameter; a command that cannot go in bulk; no ids or more than 10,000; a bad kuery or one matching more than 10,000 agents", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: no command the caller may send in bulk, or not this command's privilege or licence", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn preview(
    State(state): State<AppState>,
    RequireBulk(user): RequireBulk,
    JsonBody(request): JsonBody<BulkResponseActionRequest>,
) -> Result<axum::Json<BulkPreview>> {
    let filter = kuery_of(&request.agents)?;
    Ok(axum::Json(service::preview(&state, &user, &request, filter).await?))
}

/// A bulk's hosts query, for the document; the handler reads the pairs.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct HostsParams {
    /// From 1 (default 1).
    #[param(minimum = 1)]
    page: Option<u64>,
    /// 1 to 1,000 hosts (default 100).
    #[param(rename = "pageSize", minimum = 1, maximum = 1000)]
    page_size: Option<u64>,
    /// Only the hosts in this state: pending, successful, failed, cancelled, expired.
    outcome: Option<String>,
}

/// A bulk action's progress: the hosts counted by state (pending,
/// successful, failed, cancelled, expired) and a page of them by host name,
/// each with its action.
#[utoipa::path(get, path = "/internal/warden/response_actions/bulk/{id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The bulk action's id"), HostsParams),
    responses(
        (status = 200, body = BulkStatus),
        (status = 400, description = "An unknown or out-of-bounds query parameter", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: response_actions_log:read with a Platinum licence or better", body = ErrorBody),
        (status = 404, description = "`Bulk action with id '<id>' not found.`", body = ErrorBody),
        SignedInErrors,
    ))]
async fn status(
    State(state): State<AppState>,
    _: RequireEndpoint<ReadActionsLog>,
    Path(id): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<axum::Json<BulkStatus>> {
    let query = BulkHostsQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(ApiError::BadRequest)?;
    Ok(axum::Json(service::status(&state, &id, &query).await?))
}

/// Cancels every host of the bulk still pending: one cancel per action
/// that has some, each checked as the cancel route checks it. Answers the
/// cancels sent and the actions refused, with why; actions with nothing
/// pending are in neither.
#[utoipa::path(post, path = "/internal/warden/response_actions/bulk/{id}/_cancel", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The bulk action's id"), Xsrf),
    request_body(content = Option<BulkCancelRequest>, description = "Optional: no body is `{}`"),
    responses(
        (status = 200, description = "The cancels sent and the actions refused", body = BulkCancelResponse),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or a comment over 10,000 characters", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: no cancellable command at all, or not the bulk command's privilege or licence", body = ErrorBody),
        (status = 404, description = "`Bulk action with id '<id>' not found.`", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn cancel(
    State(state): State<AppState>,
    RequireCommand(user, _): RequireCommand<CancelRoute>,
    Path(id): Path<String>,
    OptionalJsonBody(request): OptionalJsonBody<BulkCancelRequest>,
) -> Result<axum::Json<BulkCancelResponse>> {
    Ok(axum::Json(service::cancel(&state, &user, &id, &request.unwrap_or_default()).await?))
}

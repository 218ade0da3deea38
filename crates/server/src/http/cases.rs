//! Cases (`/api/cases`, Kibana's shapes): open, change, find, read and
//! delete cases; comment on them and attach alerts. Reading needs
//! `cases:read`, every write `cases:all`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::cases::{
    AttachmentRequest, AttachmentsFindResponse, Case, CaseOwner, CasePostRequest, CaseSearchField, CaseSeverity, CaseSortField, CaseStatus,
    CasesFindResponse, CasesPatchRequest, SortOrder, parse_attachments_find_query, parse_delete_ids, parse_find_query,
};
use warden_core::error::ErrorBody;

use super::authz::{CasesAll, CasesRead, Require};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use super::{JsonBody, QueryPairs};
use crate::AppState;
use crate::cases::{self, case_user};
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, update, delete))
        .routes(routes!(find))
        .routes(routes!(get))
        .routes(routes!(add_comment))
        .routes(routes!(find_comments))
}

/// `_find`'s query, for the document; the handler reads the pairs itself,
/// since a filter may repeat (`status=open&status=closed`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, style = Form)]
#[allow(dead_code)]
struct FindCasesParams {
    /// Cases with any of these tags (repeat for several; at most 100 values per filter).
    #[param(max_items = 100)]
    tags: Option<Vec<String>>,
    status: Option<Vec<CaseStatus>>,
    severity: Option<Vec<CaseSeverity>>,
    /// User ids the case is assigned to; `none` for cases assigned to nobody.
    assignees: Option<Vec<String>>,
    /// User names of who opened the case.
    reporters: Option<Vec<String>>,
    owner: Option<Vec<CaseOwner>>,
    category: Option<Vec<String>>,
    /// Text in the title or description, any case (ASCII); at most 1,000 characters.
    #[param(max_length = 1000)]
    search: Option<String>,
    /// Where `search` looks (both when left out).
    #[param(rename = "searchFields")]
    search_fields: Option<Vec<CaseSearchField>>,
    /// The field to sort by (default `createdAt`).
    #[param(rename = "sortField")]
    sort_field: Option<CaseSortField>,
    /// `desc` (the default) or `asc`.
    #[param(rename = "sortOrder")]
    sort_order: Option<SortOrder>,
    /// The page, from 1; `page` × `perPage` may not pass 10,000.
    #[param(minimum = 1, maximum = 10000)]
    page: Option<usize>,
    /// Cases per page, 1 to 100 (default 20).
    #[param(rename = "perPage", minimum = 1, maximum = 100)]
    per_page: Option<usize>,
}

/// `DELETE /api/cases`'s query.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct DeleteCasesParams {
    /// 1 to 100 case ids: `ids=["a","b"]` (URL-encoded JSON, as Kibana documents it) or `ids=a&ids=b`.
    #[param(min_items = 1, max_items = 100)]
    ids: Vec<String>,
}

/// The attachments find's query.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct FindCommentsParams {
    #[param(minimum = 1, maximum = 10000)]
    page: Option<usize>,
    /// 1 to 100 (default 20).
    #[param(rename = "perPage", minimum = 1, maximum = 100)]
    per_page: Option<usize>,
    /// By creation time: `desc` (the default) or `asc`.
    #[param(rename = "sortOrder")]
    sort_order: Option<SortOrder>,
}

/// Opens a case: open, severity `low` unless given, by the caller.
#[utoipa::path(post, path = "/api/cases", tag = "cases",
    params(Xsrf),
    request_body = CasePostRequest,
    responses(
        (status = 200, body = Case),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or a field out of bounds (Kibana's message)", body = ErrorBody),
        (status = 403, description = "Missing cases:all", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create(
    State(state): State<AppState>,
    Require(user, _): Require<CasesAll>,
    JsonBody(request): JsonBody<CasePostRequest>,
) -> Result<axum::Json<Case>> {
    Ok(axum::Json(cases::create(&state, &request, &case_user(&user)).await?))
}

/// Changes 1 to 100 cases, each at the `version` it was read (all or none).
/// The answer holds the cases that changed, each with its new version.
#[utoipa::path(patch, path = "/api/cases", tag = "cases",
    params(Xsrf),
    request_body = CasesPatchRequest,
    responses(
        (status = 200, body = Vec<Case>),
        (status = 400, description = "No kbn-xsrf header, a malformed body, a field out of bounds, or a new owner", body = ErrorBody),
        (status = 403, description = "Missing cases:all", body = ErrorBody),
        (status = 404, description = "A case does not exist", body = ErrorBody),
        (status = 406, description = "Nothing would change", body = ErrorBody),
        (status = 409, description = "A case changed since its version was read", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn update(
    State(state): State<AppState>,
    Require(user, _): Require<CasesAll>,
    JsonBody(request): JsonBody<CasesPatchRequest>,
) -> Result<axum::Json<Vec<Case>>> {
    Ok(axum::Json(cases::update(&state, &request, &case_user(&user)).await?))
}

/// Deletes cases with their comments and alerts: all, or none if one is unknown.
#[utoipa::path(delete, path = "/api/cases", tag = "cases",
    params(DeleteCasesParams, Xsrf),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "No kbn-xsrf header, or no, too many or malformed ids", body = ErrorBody),
        (status = 403, description = "Missing cases:all", body = ErrorBody),
        (status = 404, description = "A case does not exist", body = ErrorBody),
        SignedInErrors,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn delete(State(state): State<AppState>, Require(user, _): Require<CasesAll>, QueryPairs(pairs): QueryPairs) -> Result<StatusCode> {
    let ids = parse_delete_ids(&pairs).map_err(ApiError::BadRequest)?;
    cases::delete(&state, &ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cases, filtered, sorted and paged, with counts by status of the cases the
/// other filters match. Filters take one value or repeat.
#[utoipa::path(get, path = "/api/cases/_find", tag = "cases",
    params(FindCasesParams),
    responses(
        (status = 200, body = CasesFindResponse),
        (status = 400, description = "An unknown, repeated or out-of-bounds query parameter", body = ErrorBody),
        (status = 403, description = "Missing cases:read", body = ErrorBody),
        SignedInErrors,
    ))]
async fn find(State(state): State<AppState>, _: Require<CasesRead>, QueryPairs(pairs): QueryPairs) -> Result<axum::Json<CasesFindResponse>> {
    let query = parse_find_query(&pairs).map_err(ApiError::BadRequest)?;
    Ok(axum::Json(cases::find(&state, &query).await?))
}

/// One case, without its comments.
#[utoipa::path(get, path = "/api/cases/{id}", tag = "cases",
    params(("id" = String, Path, min_length = 1, description = "The case's id")),
    responses(
        (status = 200, body = Case),
        (status = 403, description = "Missing cases:read", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get(State(state): State<AppState>, _: Require<CasesRead>, Path(id): Path<String>) -> Result<axum::Json<Case>> {
    Ok(axum::Json(cases::get(&state, &id).await?))
}

/// Comments on a case (`type: user`) or attaches alerts (`type: alert`), and
/// answers the case with all its attachments. Alerts the case holds already
/// are skipped; a case holds at most 1,000 alerts, and none when closed.
#[utoipa::path(post, path = "/api/cases/{id}/comments", tag = "cases",
    params(("id" = String, Path, min_length = 1, description = "The case's id"), Xsrf),
    request_body = AttachmentRequest,
    responses(
        (status = 200, body = Case),
        (status = 400, description = "No kbn-xsrf header, a malformed body, an owner other than the case's, an alert for a closed case, or more than 1,000 alerts", body = ErrorBody),
        (status = 403, description = "Missing cases:all", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, case = %id))]
async fn add_comment(
    State(state): State<AppState>,
    Require(user, _): Require<CasesAll>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<AttachmentRequest>,
) -> Result<axum::Json<Case>> {
    Ok(axum::Json(cases::add_attachment(&state, &id, &request, &case_user(&user)).await?))
}

/// A case's comments and alert attachments, a page at a time.
#[utoipa::path(get, path = "/api/cases/{id}/comments/_find", tag = "cases",
    params(("id" = String, Path, min_length = 1, description = "The case's id"), FindCommentsParams),
    responses(
        (status = 200, body = AttachmentsFindResponse),
        (status = 400, description = "An unknown or out-of-bounds query parameter", body = ErrorBody),
        (status = 403, description = "Missing cases:read", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        SignedInErrors,
    ))]
async fn find_comments(
    State(state): State<AppState>,
    _: Require<CasesRead>,
    Path(id): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<axum::Json<AttachmentsFindResponse>> {
    let query = parse_attachments_find_query(&pairs).map_err(ApiError::BadRequest)?;
    Ok(axum::Json(cases::find_attachments(&state, &id, query).await?))
}

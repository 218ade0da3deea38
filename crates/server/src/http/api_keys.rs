//! Personal API keys (`/internal/security/api_key`, Elasticsearch's shapes).

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::api_keys::{
    ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, InvalidateApiKeyRequest, InvalidateApiKeyResponse, InvalidateError, parse_expiration_ms,
    validate_create,
};
use warden_core::authz::{Privilege, has_privilege};
use warden_core::error::ErrorBody;

use super::JsonBody;
use super::authz::{ApiKeysManageOwn, Require, RequireSignedIn};
use super::openapi::{BodyTooLarge, SignedInErrors, Xsrf};
use crate::AppState;
use crate::api_keys::{self, NewPersonalKey};
use crate::db::now_ms;
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create, invalidate))
}

/// Creates a personal API key (needs `api_keys:manage_own`). The secret is in
/// this answer only; Warden keeps a hash. A key may be limited to some of the
/// caller's roles, never more. An API key cannot create keys.
#[utoipa::path(post, path = "/internal/security/api_key", tag = "security",
    params(Xsrf),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 200, body = CreateApiKeyResponse),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or a bad name, expiration or role \
            (a role the caller does not hold included)", body = ErrorBody),
        (status = 403, description = "Missing api_keys:manage_own, or called with an API key", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn create(
    State(state): State<AppState>,
    RequireSignedIn(user, _): RequireSignedIn<ApiKeysManageOwn>,
    JsonBody(request): JsonBody<CreateApiKeyRequest>,
) -> Result<axum::Json<CreateApiKeyResponse>> {
    let roles = validate_create(&request, &user.roles).map_err(ApiError::BadRequest)?;
    let now = now_ms();
    let expires_at =
        request.expiration.as_deref().map(parse_expiration_ms).transpose().map_err(ApiError::BadRequest)?.map(|ms| now.saturating_add(ms));
    let name = request.name.trim();
    let key = NewPersonalKey { user_id: &user.id, name, roles: &roles, expires_at };
    let credentials = api_keys::create_personal(&state.db, key).await?;
    tracing::info!(key = %credentials.id, "API key created");
    Ok(axum::Json(CreateApiKeyResponse {
        encoded: credentials.encoded(),
        id: credentials.id,
        name: name.to_owned(),
        expiration: expires_at,
        api_key: credentials.secret,
    }))
}

/// The caller's personal keys, newest first; `users:admin` sees everyone's.
#[utoipa::path(get, path = "/internal/security/api_key", tag = "security",
    responses(
        (status = 200, body = ApiKeyList),
        (status = 403, description = "Missing api_keys:manage_own", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list(State(state): State<AppState>, Require(user, _): Require<ApiKeysManageOwn>) -> Result<axum::Json<ApiKeyList>> {
    let owner = (!has_privilege(&user.roles, Privilege::UsersAdmin)).then_some(user.id.as_str());
    Ok(axum::Json(ApiKeyList { api_keys: api_keys::list_personal(&state.db, owner).await? }))
}

/// Invalidates keys at once (a user's explicit request needs no grace
/// period): the next call with them is 401. Keys that are not the caller's
/// (unless `users:admin`) count as errors, as in Elasticsearch.
#[utoipa::path(delete, path = "/internal/security/api_key", tag = "security",
    params(Xsrf),
    request_body = InvalidateApiKeyRequest,
    responses(
        (status = 200, description = "Unknown ids, or other users' keys, are counted in `error_count`", body = InvalidateApiKeyResponse),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or not 1 to 1,000 ids", body = ErrorBody),
        (status = 403, description = "Missing api_keys:manage_own", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn invalidate(
    State(state): State<AppState>,
    Require(user, _): Require<ApiKeysManageOwn>,
    JsonBody(request): JsonBody<InvalidateApiKeyRequest>,
) -> Result<axum::Json<InvalidateApiKeyResponse>> {
    if request.ids.is_empty() || request.ids.len() > 1000 {
        return Err(ApiError::BadRequest("[request body.ids]: expected between 1 and 1000 ids".into()));
    }
    let admin = has_privilege(&user.roles, Privilege::UsersAdmin);
    let (invalidated, previously, missing) = api_keys::invalidate_by_request(&state.db, &request.ids, &user.id, admin).await?;
    tracing::info!(invalidated = invalidated.len(), "API keys invalidated");
    Ok(axum::Json(InvalidateApiKeyResponse {
        invalidated_api_keys: invalidated,
        previously_invalidated_api_keys: previously,
        error_count: missing.len(),
        error_details: missing
            .into_iter()
            .map(|id| InvalidateError { error_type: "resource_not_found_exception".into(), reason: format!("no API key of yours with id [{id}]") })
            .collect(),
    }))
}

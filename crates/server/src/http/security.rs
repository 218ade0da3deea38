//! Sign-in, sign-out and the current user (`/internal/security/*`, as Kibana).

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::api::{CurrentUser, LoginRequest, UserSummary};
use warden_core::authz::privileges_of;
use warden_core::error::ErrorBody;

use super::JsonBody;
use super::authz::{Require, UsersAdmin};
use super::openapi::{BodyTooLarge, DatabaseBusy, SignedInErrors, Xsrf};
use crate::AppState;
use crate::auth::{self, AuthUser, ClientInfo, SESSION_COOKIE};
use crate::error::{ApiError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout)).routes(routes!(me)).routes(routes!(list_users))
}

fn current_user(user: &AuthUser) -> CurrentUser {
    CurrentUser {
        username: user.username.clone(),
        full_name: user.full_name.clone(),
        roles: user.roles.clone(),
        privileges: privileges_of(&user.roles),
        authentication_type: user.kind.as_str().to_owned(),
    }
}

/// Starts a session. Failures never say whether the user exists, and both the
/// user name and the client address are throttled.
#[utoipa::path(post, path = "/internal/security/login", tag = "security",
    params(Xsrf),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; sets the session cookie", body = CurrentUser),
        (status = 400, description = "No kbn-xsrf header, a malformed body, or an empty user name", body = ErrorBody),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this user name or address, or too many sign-ins from this address in progress",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")), body = ErrorBody),
        (status = 503, description = "Too many sign-ins in progress on this node, or the database is busy",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")), body = ErrorBody),
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(username = %body.username, client = %client.address))]
async fn login(State(state): State<AppState>, client: ClientInfo, headers: HeaderMap, JsonBody(body): JsonBody<LoginRequest>) -> Result<Response> {
    if body.username.trim().is_empty() {
        return Err(ApiError::BadRequest("[request body.username]: must not be empty".into()));
    }
    let Some(user) = auth::check_password(&state, client.address, &body.username, body.password).await? else {
        return Err(ApiError::Unauthorized("Invalid username or password".into()));
    };

    let token = auth::start_session(&state, &user.id, session_token(&headers).as_deref()).await?;
    tracing::info!("signed in");

    let auth_user = AuthUser { roles: user.roles(), id: user.id, username: user.username, full_name: user.full_name, kind: auth::AuthKind::Session };
    let cookie = session_cookie_header(&state, &token, client.https, None)?;
    Ok(([(SET_COOKIE, cookie)], axum::Json(current_user(&auth_user))).into_response())
}

/// Ends the session (server-side, so the cookie is useless at once).
/// Answers 204 whether or not a session was sent.
#[utoipa::path(post, path = "/internal/security/logout", tag = "security",
    params(Xsrf),
    responses(
        (status = 204, description = "Signed out; clears the session cookie"),
        (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
        DatabaseBusy,
    ))]
async fn logout(State(state): State<AppState>, client: ClientInfo, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = session_token(&headers) {
        auth::end_session(&state, &token).await?;
    }
    let cookie = session_cookie_header(&state, "", client.https, Some(0))?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
}

/// The signed-in user with the privileges their roles grant.
#[utoipa::path(get, path = "/internal/security/me", tag = "security",
    responses((status = 200, body = CurrentUser), SignedInErrors))]
async fn me(user: AuthUser) -> axum::Json<CurrentUser> {
    axum::Json(current_user(&user))
}

/// Every local user (needs `users:admin`).
#[utoipa::path(get, path = "/internal/security/users", tag = "security",
    responses(
        (status = 200, body = [UserSummary]),
        (status = 403, description = "Missing users:admin", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_users(State(state): State<AppState>, _: Require<UsersAdmin>) -> Result<axum::Json<Vec<UserSummary>>> {
    Ok(axum::Json(auth::list_users(&state).await?))
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    auth::session_cookie(&parts)
}

/// HttpOnly; SameSite=Lax so links from alerts and chat open signed in;
/// Secure when the request came over HTTPS; scoped to Warden's base path.
fn session_cookie_header(state: &AppState, token: &str, https: bool, max_age: Option<u64>) -> Result<HeaderValue> {
    let mut cookie = format!("{SESSION_COOKIE}={token}; Path={}/; HttpOnly; SameSite=Lax", state.config.public_base_path);
    if https {
        cookie.push_str("; Secure");
    }
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))
}

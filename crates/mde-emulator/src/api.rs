//! The routes: Entra ID's token endpoint, MDE's API under `/api`, the
//! result blobs under `/_blob` (no auth, as a SAS URL) and the emulator's
//! own admin routes under `/_emulator` (no auth: for tests and demos).
//!
//! Each handler parses, makes one call into [`Emulator`], and shapes MDE's
//! JSON; every error is MDE's `{"error":{"code","message","target"}}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{AadError, MdeError};
use crate::odata::ListQuery;
use crate::state::{ACTION_FIELDS, Caller, Command, Emulator, Fault, IsolationType, MACHINE_FIELDS};

type Result<T, E = MdeError> = std::result::Result<T, E>;

/// Builds the emulator's router over its state.
pub fn router(emulator: Arc<Emulator>) -> Router {
    let mde = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/api/machines", get(list_machines))
        .route("/api/machines/{id}", get(get_machine))
        .route("/api/machines/{id}/isolate", post(isolate))
        .route("/api/machines/{id}/unisolate", post(unisolate))
        .route("/api/machines/{id}/runliveresponse", post(run_live_response))
        .route("/api/machineactions", get(list_actions))
        .route("/api/machineactions/{id}", get(get_action))
        .route("/api/machineactions/{id}/cancel", post(cancel_action))
        // GetLiveResponseResultDownloadLink(index=N): one path segment, parsed in the handler.
        .route("/api/machineactions/{id}/{function}", get(action_function))
        .route("/api/libraryfiles", get(library_files))
        .route_layer(middleware::from_fn_with_state(emulator.clone(), count_and_fault));
    let other = Router::new()
        .route("/_blob/{token}", get(blob))
        .route("/_emulator/fail-next", post(fail_next))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/advance", post(advance));
    mde.merge(other).fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(emulator)
}

/// Counts every MDE call by route, answers an injected fault to API calls
/// (before authentication, as a gateway would), and logs the outcome.
async fn count_and_fault(State(emulator): State<Arc<Emulator>>, matched: MatchedPath, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = format!("{method} {}", matched.as_str());
    if let Err(fault) = emulator.record_call(&route, matched.as_str().starts_with("/api/")) {
        tracing::info!(%route, "injected fault");
        return fault.into_response();
    }
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(%method, %path, status = response.status().as_u16(), "call");
    response
}

async fn not_found() -> MdeError {
    MdeError::new(StatusCode::NOT_FOUND, "NotFound", "No HTTP resource was found that matches the request URI.")
}

async fn method_not_allowed(method: Method) -> MdeError {
    MdeError::new(StatusCode::METHOD_NOT_ALLOWED, "BadRequest", format!("The requested resource does not support http method '{method}'."))
}

// --- Extractors ---

/// The caller of an API route, from `Authorization: Bearer <token>`.
struct Authed(Caller);

impl FromRequestParts<Arc<Emulator>> for Authed {
    type Rejection = MdeError;

    async fn from_request_parts(parts: &mut Parts, emulator: &Arc<Emulator>) -> Result<Self> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        emulator.authenticate(bearer).map(Authed)
    }
}

/// A JSON body; anything unreadable is MDE's 400 `InvalidRequestBody`.
struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = MdeError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(MdeError::invalid_body(rejection_text(&rejection))),
        }
    }
}

fn rejection_text(rejection: &JsonRejection) -> String {
    format!("Request body is incorrect: {}", rejection.body_text())
}

/// `$filter`, `$top`, `$skip`, `$count`, `$orderby`.
fn list_query(query: Result<Query<HashMap<String, String>>, QueryRejection>, fields: &[&str]) -> Result<ListQuery> {
    let Query(params) = query.map_err(|rejection| MdeError::odata(rejection.body_text()))?;
    ListQuery::parse(&params, fields).map_err(|e| MdeError::odata(e.0))
}

/// A required, non-blank `Comment` (body parameters are case-sensitive).
fn required_comment(comment: Option<String>) -> Result<String> {
    comment.filter(|c| !c.trim().is_empty()).ok_or_else(|| MdeError::invalid_body("Request body is incorrect: Comment is required"))
}

/// The emulator's own URL as the client sees it: links point there.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn context(headers: &HeaderMap, what: &str) -> String {
    format!("{}/api/$metadata#{what}", base_url(headers))
}

/// A single entity with its `@odata.context`.
#[derive(Serialize)]
struct Entity<T> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(flatten)]
    value: T,
}

/// A collection, with `@odata.count` when asked for.
#[derive(Serialize)]
struct Collection {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    value: Vec<Value>,
}

fn collection(headers: &HeaderMap, what: &str, query: &ListQuery, (total, value): (usize, Vec<Value>)) -> Json<Collection> {
    Json(Collection { context: context(headers, what), count: query.count.then_some(total), value })
}

// --- Entra ID ---

async fn token(
    State(emulator): State<Arc<Emulator>>,
    Path(tenant): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, AadError> {
    let Ok(Form(form)) = form else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ));
    };
    let token = emulator.issue_token(&tenant, &form)?;
    tracing::info!(client_id = %emulator.config().client_id, "token issued");
    Ok(Json(token).into_response())
}

// --- Machines ---

async fn list_machines(
    State(emulator): State<Arc<Emulator>>,
    Authed(_): Authed,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Collection>> {
    let query = list_query(query, MACHINE_FIELDS)?;
    Ok(collection(&headers, "Machines", &query, emulator.machines(&query)))
}

async fn get_machine(
    State(emulator): State<Arc<Emulator>>,
    Authed(_): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Entity<Value>>> {
    Ok(Json(Entity { context: context(&headers, "Machines/$entity"), value: emulator.machine(&id)? }))
}

#[derive(Deserialize)]
struct IsolateRequest {
    #[serde(rename = "Comment")]
    comment: Option<String>,
    #[serde(rename = "IsolationType")]
    isolation_type: Option<String>,
}

#[derive(Deserialize)]
struct CommentRequest {
    #[serde(rename = "Comment")]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct LiveResponseRequest {
    #[serde(rename = "Commands")]
    commands: Option<Vec<Command>>,
    #[serde(rename = "Comment")]
    comment: Option<String>,
}

fn created<T: Serialize>(headers: &HeaderMap, action: T) -> Response {
    (StatusCode::CREATED, Json(Entity { context: context(headers, "MachineActions/$entity"), value: action })).into_response()
}

async fn isolate(
    State(emulator): State<Arc<Emulator>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body<IsolateRequest>,
) -> Result<Response> {
    let comment = required_comment(body.comment)?;
    let isolation_type = match body.isolation_type.as_deref() {
        None | Some("Full") => IsolationType::Full,
        Some("Selective") => IsolationType::Selective,
        Some("UnManagedDevice") => IsolationType::UnManagedDevice,
        Some(other) => {
            return Err(MdeError::invalid_body(format!(
                "Request body is incorrect: IsolationType '{other}' is not one of Full, Selective, UnManagedDevice"
            )));
        }
    };
    let action = emulator.isolation(&caller, &id, &comment, Some(isolation_type))?;
    tracing::info!(machine = %id, action = %action.id, "isolate requested");
    Ok(created(&headers, action))
}

async fn unisolate(
    State(emulator): State<Arc<Emulator>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body<CommentRequest>,
) -> Result<Response> {
    let comment = required_comment(body.comment)?;
    let action = emulator.isolation(&caller, &id, &comment, None)?;
    tracing::info!(machine = %id, action = %action.id, "unisolate requested");
    Ok(created(&headers, action))
}

async fn run_live_response(
    State(emulator): State<Arc<Emulator>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body<LiveResponseRequest>,
) -> Result<Response> {
    let Some(commands) = body.commands else { return Err(MdeError::invalid_body("Request body is incorrect: Commands is required")) };
    let action = emulator.run_live_response(&caller, &id, body.comment.as_deref().unwrap_or_default(), commands)?;
    tracing::info!(machine = %id, action = %action.id, "live response requested");
    Ok(created(&headers, action))
}

// --- Machine actions ---

async fn list_actions(
    State(emulator): State<Arc<Emulator>>,
    Authed(_): Authed,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Collection>> {
    let query = list_query(query, ACTION_FIELDS)?;
    Ok(collection(&headers, "MachineActions", &query, emulator.actions(&query)))
}

async fn get_action(State(emulator): State<Arc<Emulator>>, Authed(_): Authed, headers: HeaderMap, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(Entity { context: context(&headers, "MachineActions/$entity"), value: emulator.action(&id)? }).into_response())
}

async fn cancel_action(
    State(emulator): State<Arc<Emulator>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body<CommentRequest>,
) -> Result<Response> {
    let comment = required_comment(body.comment)?;
    let action = emulator.cancel(&caller, &id, &comment)?;
    tracing::info!(action = %id, "cancelled");
    Ok(Json(Entity { context: context(&headers, "MachineActions/$entity"), value: action }).into_response())
}

/// `GetLiveResponseResultDownloadLink(index=N)` → `N`.
fn download_link_index(function: &str) -> Option<usize> {
    const NAME: &str = "getliveresponseresultdownloadlink(";
    let head = function.get(..NAME.len())?;
    if !head.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let argument = function[NAME.len()..].strip_suffix(')')?;
    let (key, value) = argument.split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("index") {
        return None;
    }
    value.trim().parse().ok()
}

async fn action_function(
    State(emulator): State<Arc<Emulator>>,
    Authed(_): Authed,
    headers: HeaderMap,
    Path((id, function)): Path<(String, String)>,
) -> Result<Response> {
    let Some(index) = download_link_index(&function) else { return Err(not_found().await) };
    let token = emulator.result_link(&id, index)?;
    let link = format!("{}/_blob/{token}", base_url(&headers));
    Ok(Json(json!({"@odata.context": context(&headers, "Edm.String"), "value": link})).into_response())
}

/// A result download (no bearer: the link is the credential, as a SAS URL).
/// An unknown or expired link answers as Azure Storage does.
async fn blob(State(emulator): State<Arc<Emulator>>, Path(token): Path<String>) -> Response {
    match emulator.blob(&token) {
        Some(content) => Json(content).into_response(),
        None => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Signed expiry time has passed or the signature is invalid.</Message></Error>",
        )
            .into_response(),
    }
}

// --- Library ---

async fn library_files(State(emulator): State<Arc<Emulator>>, Authed(_): Authed, headers: HeaderMap) -> Json<Value> {
    Json(json!({"@odata.context": context(&headers, "LibraryFiles"), "value": emulator.library_files()}))
}

// --- The emulator's admin routes ---

fn admin_error(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextRequest {
    status: u16,
    #[serde(default = "one")]
    count: u32,
    retry_after: Option<u64>,
}

fn one() -> u32 {
    1
}

/// The next `count` API calls answer `status` with MDE's body for it (429
/// `TooManyRequests` with `Retry-After`, 500/503 `InternalServerError`, ...);
/// `count: 0` clears a queued fault.
async fn fail_next(State(emulator): State<Arc<Emulator>>, body: Result<Json<FailNextRequest>, JsonRejection>) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return admin_error(format!("expected {{\"status\": 429, \"count\": 2, \"retry_after\": 1}}: {}", rejection.body_text())),
    };
    let status = match StatusCode::from_u16(request.status) {
        Ok(status) if status.is_client_error() || status.is_server_error() => status,
        _ => return admin_error("status must be 400 to 599"),
    };
    let retry_after = request.retry_after.or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1));
    emulator.fail_next(Fault { status, remaining: request.count, retry_after });
    tracing::info!(status = status.as_u16(), count = request.count, "fault queued");
    Json(emulator.stats()).into_response()
}

async fn stats(State(emulator): State<Arc<Emulator>>) -> Response {
    Json(emulator.stats()).into_response()
}

async fn reset(State(emulator): State<Arc<Emulator>>) -> Response {
    emulator.reset();
    tracing::info!("reset");
    Json(emulator.stats()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    by: String,
}

/// Moves the emulator's clock forward by `by` (humantime): tokens expire and
/// actions end without the test sleeping.
async fn advance(State(emulator): State<Arc<Emulator>>, body: Result<Json<AdvanceRequest>, JsonRejection>) -> Response {
    let by = match body.map_err(|r| r.body_text()).and_then(|Json(r)| humantime::parse_duration(&r.by).map_err(|e| format!("{:?}: {e}", r.by))) {
        Ok(by) => by,
        Err(message) => return admin_error(format!("expected {{\"by\": \"90s\"}}: {message}")),
    };
    match emulator.advance(by) {
        Ok(offset) => Json(json!({"clock_offset_seconds": offset.as_secs_f64()})).into_response(),
        Err(message) => admin_error(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_link_function_is_recognised() {
        assert_eq!(download_link_index("GetLiveResponseResultDownloadLink(index=0)"), Some(0));
        assert_eq!(download_link_index("getliveresponseresultdownloadlink(index = 3)"), Some(3));
        for bad in [
            "GetLiveResponseResultDownloadLink",
            "GetLiveResponseResultDownloadLink(index=)",
            "GetLiveResponseResultDownloadLink(i=0)",
            "Other(index=0)",
            "GetLiveResponseResultDownloadLink(index=0",
        ] {
            assert_eq!(download_link_index(bad), None, "{bad}");
        }
    }
}

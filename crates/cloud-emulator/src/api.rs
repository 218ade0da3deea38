//! The routes: IAM's policy simulator and the emulator's own admin routes
//! under `/_emulator` (no auth: for tests and demos).
//!
//! Each handler parses, makes one call into [`Emulator`], and shapes IAM's
//! JSON; every error of the simulator is IAM's `{"Error":{"Code","Message"}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::IamError;
use crate::policy::{self, DEFAULT_MAX_ITEMS, Decision, MAX_ACTIONS, MAX_ITEMS_LIMIT};
use crate::state::{AdminError, Emulator, Fault};

/// The largest simulate request body: 1000 action names of 128 characters
/// fit with room to spare.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Builds the emulator's router over its state.
pub fn router(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route("/iam/simulate-principal-policy", post(simulate).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)))
        .route("/_emulator/grant", post(grant))
        .route("/_emulator/revoke", post(revoke))
        .route("/_emulator/fail-next", post(fail_next))
        .route("/_emulator/hold", post(hold))
        .route("/_emulator/release", post(release))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/reset", post(reset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(emulator)
}

async fn not_found() -> IamError {
    IamError::new(StatusCode::NOT_FOUND, "NotFound", "No route matches the request: the simulator is POST /iam/simulate-principal-policy")
}

async fn method_not_allowed(method: Method) -> IamError {
    IamError::new(StatusCode::METHOD_NOT_ALLOWED, "InvalidAction", format!("The requested resource does not support http method '{method}'."))
}

// --- The policy simulator ---

/// `SimulatePrincipalPolicy`'s parameters, as JSON. Parameters the emulator
/// does not model (`ResourceArns`, `ContextEntries`, ...) are ignored.
#[derive(Debug, Deserialize)]
struct SimulateRequest {
    #[serde(rename = "PolicySourceArn")]
    policy_source_arn: Option<String>,
    #[serde(rename = "ExternalId")]
    external_id: Option<String>,
    #[serde(rename = "ActionNames")]
    action_names: Option<Vec<String>>,
    #[serde(rename = "MaxItems")]
    max_items: Option<i64>,
    #[serde(rename = "Marker")]
    marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct SimulateResponse {
    evaluation_results: Vec<EvaluationResult>,
    is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EvaluationResult {
    eval_action_name: String,
    eval_resource_name: &'static str,
    eval_decision: Decision,
}

/// A request that follows the API's constraints.
struct Simulation {
    principal: String,
    proof: String,
    actions: Vec<String>,
    max_items: usize,
    marker: Option<String>,
}

/// IAM's wording of a broken constraint.
fn constraint(value: &str, field: &str, rule: &str) -> IamError {
    IamError::validation(format!("1 validation error detected: Value {value} at '{field}' failed to satisfy constraint: Member must {rule}"))
}

impl SimulateRequest {
    fn validate(self) -> Result<Simulation, IamError> {
        let principal = self.policy_source_arn.filter(|p| !p.is_empty()).ok_or_else(|| constraint("null", "policySourceArn", "not be null"))?;
        let actions = self.action_names.ok_or_else(|| constraint("null", "actionNames", "not be null"))?;
        if actions.is_empty() {
            return Err(constraint("'[]'", "actionNames", "have length greater than or equal to 1"));
        }
        if actions.len() > MAX_ACTIONS {
            return Err(constraint(
                &format!("of {} names", actions.len()),
                "actionNames",
                &format!("have length less than or equal to {MAX_ACTIONS}"),
            ));
        }
        for (n, action) in actions.iter().enumerate() {
            policy::check_action(action).map_err(|e| IamError::validation(format!("1 validation error detected at 'actionNames.{}': {e}", n + 1)))?;
        }
        let max_items = match self.max_items {
            None => DEFAULT_MAX_ITEMS,
            Some(n) => match usize::try_from(n) {
                Ok(n) if (1..=MAX_ITEMS_LIMIT).contains(&n) => n,
                _ => return Err(constraint(&format!("'{n}'"), "maxItems", &format!("have value between 1 and {MAX_ITEMS_LIMIT}"))),
            },
        };
        Ok(Simulation { principal, proof: self.external_id.unwrap_or_default(), actions, max_items, marker: self.marker })
    }
}

/// `POST /iam/simulate-principal-policy`: each action's decision for the
/// principal, paged. The body is read as JSON whatever its content type.
async fn simulate(State(emulator): State<Arc<Emulator>>, body: Result<Bytes, BytesRejection>) -> Result<Json<SimulateResponse>, IamError> {
    emulator.released().await;
    emulator.record_call()?;
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            IamError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", format!("The request body is larger than {MAX_BODY_BYTES} bytes"))
        }
        _ => IamError::validation(rejection.body_text()),
    })?;
    let request: SimulateRequest = serde_json::from_slice(&bytes)
        .map_err(|e| IamError::validation(format!("The request body is not a SimulatePrincipalPolicy request: {e}")))?;
    let simulation = request.validate()?;
    let (range, next) = policy::page(simulation.actions.len(), simulation.max_items, simulation.marker.as_deref()).map_err(IamError::validation)?;
    let decisions = emulator.simulate(&simulation.principal, &simulation.proof, &simulation.actions)?;
    let results: Vec<EvaluationResult> = simulation
        .actions
        .into_iter()
        .zip(decisions)
        .skip(range.start)
        .take(range.len())
        .map(|(action, decision)| EvaluationResult { eval_action_name: action, eval_resource_name: "*", eval_decision: decision })
        .collect();
    let allowed = results.iter().filter(|r| r.eval_decision == Decision::Allowed).count();
    tracing::info!(results = results.len(), allowed, denied = results.len() - allowed, truncated = next.is_some(), "simulated");
    Ok(Json(SimulateResponse { evaluation_results: results, is_truncated: next.is_some(), marker: next }))
}

// --- The emulator's admin routes ---

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionRequest {
    principal: String,
    action: String,
}

fn permission_change(
    body: Result<Json<PermissionRequest>, JsonRejection>,
    change: impl FnOnce(&str, &str) -> Result<crate::state::PolicyView, AdminError>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"principal\": \"…\", \"action\": \"s3:GetObject\"}}: {}", rejection.body_text()),
            );
        }
    };
    match change(&request.principal, &request.action) {
        Ok(view) => {
            tracing::info!(action = %view.action, decision = view.decision.as_str(), "policy changed");
            Json(view).into_response()
        }
        Err(AdminError::UnknownPrincipal(message)) => admin_error(StatusCode::NOT_FOUND, message),
        Err(AdminError::BadAction(message)) => admin_error(StatusCode::BAD_REQUEST, message),
    }
}

/// Adds an allow for the action (an explicit deny still wins).
async fn grant(State(emulator): State<Arc<Emulator>>, body: Result<Json<PermissionRequest>, JsonRejection>) -> Response {
    permission_change(body, |principal, action| emulator.grant(principal, action))
}

/// Removes the action from the principal's allow list.
async fn revoke(State(emulator): State<Arc<Emulator>>, body: Result<Json<PermissionRequest>, JsonRejection>) -> Response {
    permission_change(body, |principal, action| emulator.revoke(principal, action))
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

/// The next `count` simulate calls answer `status` with IAM's body for it
/// (429 `Throttling` with `Retry-After`, 500 `ServiceFailure`, 503
/// `ServiceUnavailable`, ...); `count: 0` clears a queued fault.
async fn fail_next(State(emulator): State<Arc<Emulator>>, body: Result<Json<FailNextRequest>, JsonRejection>) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            return admin_error(StatusCode::BAD_REQUEST, format!("expected {{\"status\": 500, \"count\": 1}}: {}", rejection.body_text()));
        }
    };
    let status = match StatusCode::from_u16(request.status) {
        Ok(status) if status.is_client_error() || status.is_server_error() => status,
        _ => return admin_error(StatusCode::BAD_REQUEST, "status must be 400 to 599"),
    };
    let retry_after = request.retry_after.or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1));
    emulator.fail_next(Fault { status, remaining: request.count, retry_after });
    tracing::info!(status = status.as_u16(), count = request.count, "fault queued");
    Json(emulator.stats()).into_response()
}

/// Simulate calls wait from now on, until `release`.
async fn hold(State(emulator): State<Arc<Emulator>>) -> Response {
    emulator.hold(true);
    tracing::info!("simulate calls held");
    Json(emulator.stats()).into_response()
}

/// The held calls go on, and new ones no longer wait.
async fn release(State(emulator): State<Arc<Emulator>>) -> Response {
    emulator.hold(false);
    tracing::info!("simulate calls released");
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

//! The Fleet Server side: what agents call, authenticated by their API key
//! (`Authorization: ApiKey base64(id:secret)`). These routes do not require
//! kbn-xsrf: no browser sends them, and a header-borne key cannot be forged
//! by a cross-site form. Each handler parses, authenticates the agent, calls
//! one `fleet::service` function and shapes the reply.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::cloud_connectors::VerificationReport;
use warden_core::error::ErrorBody;
use warden_core::fleet::AuditReason;
use warden_core::fleet_api::{AckRequest, AckResponse, AuditUnenrollRequest, CheckinRequest, CheckinResponse, EnrollRequest, EnrollResponse};

use super::JsonBody;
use super::openapi::{AgentKeyErrors, BodyTooLarge, DatabaseBusy};
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::fleet::service::{self, AgentRow, EnrollmentKeyRow};
use crate::fleet::{FleetError, parse_rfc3339};

/// Fleet Server's routes. Built apart from the browser's: no kbn-xsrf rule.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .routes(routes!(checkin))
        .routes(routes!(acks))
        .routes(routes!(audit_unenroll))
        .routes(routes!(verification_results))
}

/// `(id, secret)` of `Authorization: ApiKey base64(id:secret)`, or 401.
fn presented_key(parts: &Parts, missing: &'static str) -> Result<(String, String), FleetError> {
    crate::auth::api_key_credentials(parts).map(|c| (c.id, c.secret)).ok_or(FleetError::AgentUnauthorized(missing))
}

/// The agent whose key signed the request (see `service::authenticate_agent`).
pub struct AgentAuth(pub AgentRow);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let (key_id, secret) = presented_key(parts, "missing or malformed ApiKey authorization")?;
        Ok(AgentAuth(service::authenticate_agent(state, &key_id, &secret).await?))
    }
}

impl AgentAuth {
    /// One agent's key cannot speak for another.
    fn for_agent(self, id: &str) -> Result<AgentRow> {
        Ok(service::same_agent(self.0, id)?)
    }
}

/// The enrollment key signed the request (checked before the body is read:
/// a caller without a valid key learns nothing from it).
struct EnrollmentKey(EnrollmentKeyRow);

impl FromRequestParts<AppState> for EnrollmentKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let (key_id, secret) = presented_key(parts, "missing or malformed enrollment ApiKey")?;
        Ok(EnrollmentKey(service::enrollment_key(state, &key_id, &secret).await?))
    }
}

#[utoipa::path(post, path = "/api/fleet/agents/enroll", tag = "fleet-server", request_body = EnrollRequest,
    responses(
        (status = 200, body = EnrollResponse),
        (status = 400, description = "A malformed body, or an unknown `type`", body = ErrorBody),
        (status = 401, description = "`ErrUnauthorized`: no or a malformed `Authorization: ApiKey`, or an enrollment key that is \
            unknown, revoked or expired, or whose policy is gone", body = ErrorBody),
        BodyTooLarge,
        DatabaseBusy,
    ))]
async fn enroll(
    State(state): State<AppState>,
    EnrollmentKey(key): EnrollmentKey,
    JsonBody(body): JsonBody<EnrollRequest>,
) -> Result<axum::Json<EnrollResponse>> {
    Ok(axum::Json(service::enroll(&state, key, body).await?))
}

#[utoipa::path(post, path = "/api/fleet/agents/{id}/checkin", tag = "fleet-server", request_body = CheckinRequest,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, body = CheckinResponse),
        (status = 400, description = "A malformed body, an unknown `status`, or a `poll_timeout` that is not a duration", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn checkin(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AgentAuth,
    JsonBody(body): JsonBody<CheckinRequest>,
) -> Result<axum::Json<CheckinResponse>> {
    Ok(axum::Json(service::checkin(&state, auth.for_agent(&id)?, body).await?))
}

#[utoipa::path(post, path = "/api/fleet/agents/{id}/acks", tag = "fleet-server", request_body = AckRequest,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, description = "Per event: 200, or 404 for an action that is not this agent's", body = AckResponse),
        (status = 400, description = "A malformed body, or more than 1,000 events", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn acks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AgentAuth,
    JsonBody(body): JsonBody<AckRequest>,
) -> Result<axum::Json<AckResponse>> {
    auth.for_agent(&id)?;
    Ok(axum::Json(service::ack(&state, &id, body.events).await?))
}

/// The agent's final message: uninstalled, orphaned, key revoked, or moved
/// to another Fleet, with who and what ran the command if the agent says.
/// Once per agent: a second call is 409 and changes nothing, except that a
/// Detached Endpoint reporting `orphaned` again is recorded as last heard from.
#[utoipa::path(post, path = "/api/fleet/agents/{id}/audit/unenroll", tag = "fleet-server", request_body = AuditUnenrollRequest,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, description = "Recorded"),
        (status = 400, description = "A malformed body, an unknown `reason`, a `timestamp` that is not RFC 3339 UTC, details out of \
            bounds or with control characters, or a `new_fleet_url` that is not http(s) or not for `migrated`", body = ErrorBody),
        (status = 409, description = "`ErrAuditReasonConflict`: the agent already reported its final message (an orphaned endpoint's \
            repeat is still recorded as last heard from)", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn audit_unenroll(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AgentAuth,
    JsonBody(body): JsonBody<AuditUnenrollRequest>,
) -> Result<StatusCode> {
    let row = auth.for_agent(&id)?;
    let reason = AuditReason::parse(&body.reason).ok_or_else(|| ApiError::BadRequest("audit/unenroll request invalid reason".into()))?;
    let at = parse_rfc3339(&body.timestamp)
        .ok_or_else(|| ApiError::BadRequest(format!("[request body.timestamp]: expected an RFC 3339 time, got `{}`", body.timestamp)))?;
    let details = body.details().check(reason).map_err(ApiError::BadRequest)?;
    service::audit_unenroll(&state, row, reason, at, details).await?;
    Ok(StatusCode::OK)
}

/// A permission verifier's results, one record per permission (the records
/// Kibana's `verifier_otel` writes to its data stream). Only the agent
/// enrolled in that verification's policy may report; a record outside the
/// verification's plan is refused, and a record sent twice counts once. When
/// every permission has a result the verification ends and its verifier
/// policy is removed.
#[utoipa::path(post, path = "/api/fleet/agents/{id}/verification_results", tag = "fleet-server", request_body = VerificationReport,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, description = "`{\"accepted\": n}`: records new to the verification", body = Object),
        (status = 400, description = "A malformed body, more than 1,000 records, or a record outside the verification's plan", body = ErrorBody),
        (status = 403, description = "The agent does not run this verification, or it has ended", body = ErrorBody),
        (status = 404, description = "No such verification", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn verification_results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    auth: AgentAuth,
    JsonBody(body): JsonBody<VerificationReport>,
) -> Result<axum::Json<serde_json::Value>> {
    let row = auth.for_agent(&id)?;
    let accepted = crate::cloud_connectors::verifier::report(&state, &row, body).await?;
    Ok(axum::Json(serde_json::json!({"accepted": accepted})))
}

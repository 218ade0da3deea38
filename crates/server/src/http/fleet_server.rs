//! The Fleet Server side: what agents call, authenticated by their API key
//! (`Authorization: ApiKey base64(id:secret)`). These routes do not require
//! kbn-xsrf: no browser sends them, and a header-borne key cannot be forged
//! by a cross-site form.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use warden_core::error::ErrorBody;
use warden_core::fleet::{AuditReason, CHECKIN_STATUSES};
use warden_core::fleet_api::{
    AckRequest, AckResponse, AgentAction, AgentEventKind, AuditUnenrollRequest, CheckinRequest, CheckinResponse,
    EnrollRequest, EnrollResponse, EnrolledAgent,
};

use super::openapi::{AgentKeyErrors, BodyTooLarge, DatabaseBusy};
use super::{JsonBody, RawBody};
use crate::AppState;
use crate::auth::{secrets_equal, sha256_hex};
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::fleet::{self, rfc3339};
use crate::store::fleet::{self as store, AgentRow, CheckinWrite, NewAgent};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/fleet/agents/enroll", post(enroll))
        .route("/api/fleet/agents/{id}/checkin", post(checkin))
        .route("/api/fleet/agents/{id}/acks", post(acks))
        .route("/api/fleet/agents/{id}/audit/unenroll", post(audit_unenroll))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Coded { status: StatusCode::UNAUTHORIZED, code: "ErrUnauthorized", message: message.to_owned() }
}

/// `(id, secret)` from `Authorization: ApiKey base64(id:secret)`, read as
/// every other API key is.
fn api_key(parts: &Parts) -> Option<(String, String)> {
    crate::auth::api_key_credentials(parts).map(|c| (c.id, c.secret))
}

/// A new API key: its id, its secret, and what the client sends.
pub fn new_api_key() -> (String, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (secret, _) = crate::auth::new_session_token();
    let encoded = STANDARD.encode(format!("{id}:{secret}"));
    (id, secret, encoded)
}

/// The agent whose key signed the request. An unenrolled agent or a revoked
/// key is refused (401) and the attempt recorded on the agent.
pub struct AgentAuth(pub AgentRow);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let (key_id, secret) = api_key(parts).ok_or_else(|| unauthorized("missing or malformed ApiKey authorization"))?;
        let row = store::agent_by_key_id(&state.db, &key_id).await?.ok_or_else(|| unauthorized("unknown API key"))?;
        if !secrets_equal(&row.access_key_hash, &sha256_hex(secret.as_bytes())) {
            return Err(unauthorized("unknown API key"));
        }
        if row.active == 0 || row.key_revoked != 0 {
            let now = now_ms();
            let mut tx = state.db.begin().await?;
            store::record_rejected_call(&mut *tx, &row.id, now).await?;
            let line = (row.rejected_count == 0).then(|| {
                fleet::event(&row.id, AgentEventKind::RejectedCall, "An unenrolled agent keeps trying to connect", None, now)
            });
            if let Some(line) = &line {
                store::insert_event(&mut *tx, line).await?;
            }
            tx.commit().await?;
            if let Some(line) = line {
                fleet::publish(state, line);
            }
            return Err(unauthorized("agent is unenrolled or its API key was revoked"));
        }
        Ok(AgentAuth(row))
    }
}

impl AgentAuth {
    /// One agent's key cannot speak for another.
    fn for_agent(self, id: &str) -> Result<AgentRow> {
        if self.0.id == id {
            Ok(self.0)
        } else {
            Err(ApiError::Coded {
                status: StatusCode::FORBIDDEN,
                code: "ErrAgentIdentity",
                message: "the API key does not belong to this agent".into(),
            })
        }
    }
}

fn host_facts(local: &serde_json::Value) -> (String, String) {
    let text = |pointer: &str| local.pointer(pointer).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    (text("/host/hostname"), text("/elastic/agent/version"))
}

/// Enrolls a new agent with an enrollment key (`Authorization: ApiKey
/// <the enrollment key's api_key>`); the answer holds the agent's own key.
#[utoipa::path(post, path = "/api/fleet/agents/enroll", tag = "fleet-server", request_body = EnrollRequest,
    responses(
        (status = 200, body = EnrollResponse),
        (status = 400, description = "A malformed body, or an unknown `type`", body = ErrorBody),
        (status = 401, description = "`ErrUnauthorized`: no or a malformed `Authorization: ApiKey`, or an enrollment key that is \
            unknown, revoked or expired, or whose policy is gone", body = ErrorBody),
        BodyTooLarge,
        DatabaseBusy,
    ))]
async fn enroll(State(state): State<AppState>, parts: Parts, raw: RawBody) -> Result<axum::Json<EnrollResponse>> {
    let (key_id, secret) = api_key(&parts).ok_or_else(|| unauthorized("missing or malformed enrollment ApiKey"))?;
    let key = store::enrollment_key_by_key_id(&state.db, &key_id)
        .await?
        .filter(|k| secrets_equal(&k.secret_hash, &sha256_hex(secret.as_bytes())))
        .ok_or_else(|| unauthorized("unknown enrollment key"))?;
    let now = now_ms();
    if key.active == 0 || key.expires_at.is_some_and(|at| at <= now) {
        return Err(unauthorized("enrollment key is revoked or expired"));
    }
    // Only now the body: a caller without a valid key learns nothing from it.
    let body: EnrollRequest = raw.json()?;
    if !["PERMANENT", "EPHEMERAL", "TEMPORARY"].contains(&body.agent_type.as_str()) {
        return Err(ApiError::BadRequest(format!("[request body.type]: expected PERMANENT, EPHEMERAL or TEMPORARY, got `{}`", body.agent_type)));
    }
    let policy = store::policy(&state.db, &key.policy_id).await?.ok_or_else(|| unauthorized("the enrollment key's policy is gone"))?;
    let id = uuid::Uuid::new_v4().to_string();
    let (access_key_id, access_secret, encoded) = new_api_key();
    let (hostname, version) = host_facts(&body.metadata.local);
    let local = body.metadata.local.to_string();
    let user_provided = if body.metadata.user_provided.is_null() { "{}".to_owned() } else { body.metadata.user_provided.to_string() };
    let tags = serde_json::to_string(&body.metadata.tags).map_err(anyhow::Error::from)?;

    let mut tx = state.db.begin().await?;
    store::insert_agent(
        &mut *tx,
        NewAgent {
            id: &id,
            policy_id: &policy.id,
            policy_revision: policy.revision,
            agent_type: &body.agent_type,
            enrolled_at: now,
            local_metadata: &local,
            user_provided_metadata: &user_provided,
            tags: &tags,
            hostname: &hostname,
            version: &version,
            access_api_key_id: &access_key_id,
            access_key_hash: &sha256_hex(access_secret.as_bytes()),
        },
    )
    .await?;
    let line = fleet::event(&id, AgentEventKind::Enrolled, format!("Enrolled into policy {} as {}", policy.name, if hostname.is_empty() { "an unnamed host" } else { &hostname }), None, now);
    store::insert_event(&mut *tx, &line).await?;
    tx.commit().await?;
    fleet::publish(&state, line);

    Ok(axum::Json(EnrollResponse {
        action: "created".into(),
        item: EnrolledAgent {
            id,
            active: true,
            policy_id: policy.id,
            agent_type: body.agent_type,
            enrolled_at: rfc3339(now),
            user_provided_metadata: body.metadata.user_provided,
            local_metadata: body.metadata.local,
            actions: Vec::new(),
            access_api_key_id: access_key_id,
            access_api_key: encoded,
            status: "online".into(),
            tags: body.metadata.tags,
        },
    }))
}

fn poll_timeout(state: &AppState, requested: Option<&str>) -> Result<Duration> {
    let limit = state.config.agent_poll_timeout;
    match requested {
        None => Ok(limit),
        Some(text) => humantime::parse_duration(text)
            .map(|d| d.min(limit))
            .map_err(|e| ApiError::BadRequest(format!("[request body.poll_timeout]: {e}"))),
    }
}

/// The agent's long poll: records its status, then answers as soon as an
/// action is queued for it, or after `poll_timeout` with no actions.
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
    let row = auth.for_agent(&id)?;
    if !CHECKIN_STATUSES.contains(&body.status.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "[request body.status]: expected one of {}, got `{}`",
            CHECKIN_STATUSES.join(", "),
            body.status
        )));
    }
    let wait = poll_timeout(&state, body.poll_timeout.as_deref())?;
    let now = now_ms();
    let before = fleet::status(&state, &row, now);
    let local = body.local_metadata.as_ref().map(|v| v.to_string());
    let components = body.components.as_ref().map(|v| v.to_string());
    let changed = row.last_checkin.is_none()
        || row.audit_unenrolled_reason.is_some()
        || row.last_checkin_status.as_deref() != Some(body.status.as_str())
        || row.last_checkin_message.as_deref() != Some(body.message.as_str())
        || local.as_ref().is_some_and(|l| *l != row.local_metadata)
        || components.as_ref().is_some_and(|c| *c != row.components)
        || before != fleet::status(&state, &AgentRow { last_checkin: Some(now), ..row.clone() }, now);
    if changed {
        // What the analyst sees changes: write it now, not in the next batch.
        let (hostname, version) = body.local_metadata.as_ref().map(host_facts).unzip();
        let mut after_row = row.clone();
        after_row.last_checkin = Some(now);
        after_row.last_checkin_status = Some(body.status.clone());
        after_row.audit_unenrolled_reason = None;
        let after = fleet::status(&state, &after_row, now);
        let mut tx = state.db.begin().await?;
        store::write_checkin(
            &mut *tx,
            CheckinWrite {
                id: &id,
                now,
                status: &body.status,
                message: &body.message,
                local_metadata: local.as_deref(),
                hostname: hostname.as_deref(),
                version: version.as_deref(),
                components: components.as_deref(),
                last_known_status: after.as_str(),
            },
        )
        .await?;
        let came_back = matches!(
            row.last_known_status.as_deref(),
            Some("offline" | "inactive" | "uninstalled" | "orphaned" | "migrated")
        );
        let line = came_back.then(|| {
            let was = row.last_known_status.clone().unwrap_or_default();
            fleet::event(&id, AgentEventKind::CheckedInAfterSilence, format!("Checked in again (was {was}); audit fields cleared"), None, now)
        });
        if let Some(line) = &line {
            store::insert_event(&mut *tx, line).await?;
        }
        tx.commit().await?;
        if let Some(line) = line {
            fleet::publish(&state, line);
        }
    } else {
        state.hub.heartbeat(&id, now);
    }

    // Park first, then look: an action queued in between still wakes us.
    let parked = state.hub.park(&id);
    let notified = parked.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut shutdown = state.hub.shutdown_signal();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let actions = deliver(&state, &id).await?;
        if !actions.is_empty() || wait.is_zero() || *shutdown.borrow() {
            return Ok(axum::Json(CheckinResponse { action: "checkin".into(), ack_token: None, actions }));
        }
        tokio::select! {
            () = &mut notified => {
                notified.set(parked.notify.notified());
                notified.as_mut().enable();
            }
            () = tokio::time::sleep_until(deadline) => {
                return Ok(axum::Json(CheckinResponse { action: "checkin".into(), ack_token: None, actions: Vec::new() }));
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Pending actions for the agent, marked as handed out.
async fn deliver(state: &AppState, agent_id: &str) -> Result<Vec<AgentAction>> {
    if !state.hub.may_have_actions(agent_id) {
        return Ok(Vec::new());
    }
    let now = now_ms();
    // Queued on this node: hand them out without a read. A later check-in
    // still looks at the table for anything else.
    let ready: Vec<AgentAction> =
        state.hub.take_outbox(agent_id).into_iter().filter(|a| state.hub.delivered_at(&a.id).is_none()).collect();
    if !ready.is_empty() {
        for action in &ready {
            state.hub.delivered(&action.id, now);
        }
        return Ok(ready);
    }
    let redeliver_before = now - 300_000;
    let rows = store::deliverable_actions(&state.db, agent_id, redeliver_before).await?;
    if rows.is_empty() {
        state.hub.no_actions_left(agent_id);
    }
    let mut actions = Vec::with_capacity(rows.len());
    // Handed out recently by this node but not yet written: not again.
    for row in rows.into_iter().filter(|r| state.hub.delivered_at(&r.id).is_none_or(|at| at < redeliver_before)) {
        // Written with the next heartbeat batch: one write per batch, not per agent.
        state.hub.delivered(&row.id, now);
        actions.push(AgentAction {
            agent_id: row.agent_id,
            created_at: rfc3339(row.created_at),
            data: serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null),
            id: row.id,
            action_type: row.action_type,
            input_type: String::new(),
        });
    }
    Ok(actions)
}

/// Acks per request: an agent acks what one check-in handed it, a handful.
pub const MAX_ACK_EVENTS: usize = 1_000;

#[utoipa::path(post, path = "/api/fleet/agents/{id}/acks", tag = "fleet-server", request_body = AckRequest,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, description = "Per event: 200, or 404 for an action that is not this agent's", body = AckResponse),
        (status = 400, description = "A malformed body, or more than 1,000 events", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn acks(State(state): State<AppState>, Path(id): Path<String>, auth: AgentAuth, JsonBody(body): JsonBody<AckRequest>) -> Result<axum::Json<AckResponse>> {
    auth.for_agent(&id)?;
    if body.events.len() > MAX_ACK_EVENTS {
        return Err(ApiError::BadRequest(format!(
            "[request body.events]: at most {MAX_ACK_EVENTS} events per request, got {}; send the rest in another request",
            body.events.len()
        )));
    }
    // Committed together with whatever other agents acked meanwhile.
    let items = state.hub.record_acks(&id, body.events).await?;
    let errors = items.iter().any(|i| i.status != 200);
    Ok(axum::Json(AckResponse { action: "acks".into(), errors, items }))
}

/// The agent's final message: uninstalled, orphaned, key revoked, or moved
/// to another Fleet. Once per agent: a second call is 409 and changes nothing.
#[utoipa::path(post, path = "/api/fleet/agents/{id}/audit/unenroll", tag = "fleet-server", request_body = AuditUnenrollRequest,
    params(("id" = String, Path, min_length = 1, description = "Agent id")),
    responses(
        (status = 200, description = "Recorded"),
        (status = 400, description = "A malformed body, an unknown `reason`, or a `timestamp` that is not RFC 3339 UTC", body = ErrorBody),
        (status = 409, description = "`ErrAuditReasonConflict`: the agent already reported its final message", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn audit_unenroll(State(state): State<AppState>, Path(id): Path<String>, auth: AgentAuth, JsonBody(body): JsonBody<AuditUnenrollRequest>) -> Result<StatusCode> {
    let row = auth.for_agent(&id)?;
    let reason = AuditReason::parse(&body.reason).ok_or_else(|| ApiError::BadRequest("audit/unenroll request invalid reason".into()))?;
    let at = fleet::parse_rfc3339(&body.timestamp)
        .ok_or_else(|| ApiError::BadRequest(format!("[request body.timestamp]: expected an RFC 3339 time, got `{}`", body.timestamp)))?;
    let now = now_ms();
    let status_after = fleet::status(&state, &AgentRow { audit_unenrolled_reason: Some(reason.as_str().to_owned()), ..row.clone() }, now);
    let mut tx = state.db.begin().await?;
    if !store::set_audit_reason(&mut *tx, &row.id, reason.as_str(), at, status_after.as_str()).await? {
        return Err(ApiError::Coded {
            status: StatusCode::CONFLICT,
            code: "ErrAuditReasonConflict",
            message: "agent document contains audit_unenroll_reason".into(),
        });
    }
    let message = match reason {
        AuditReason::Uninstall => "The agent reported it was uninstalled",
        AuditReason::Orphaned => "The endpoint reported its agent is gone (Detached Endpoint)",
        AuditReason::KeyRevoked => "The agent reported its API key was revoked",
        AuditReason::Migrated => "The agent reported it was enrolled into another Fleet",
    };
    let line = fleet::event(&row.id, AgentEventKind::for_audit_reason(reason), message, None, now);
    store::insert_event(&mut *tx, &line).await?;
    tx.commit().await?;
    fleet::publish(&state, line);
    Ok(StatusCode::OK)
}

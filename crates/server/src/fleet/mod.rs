//! Fleet on the server: `service` (what analysts and agents ask of Fleet, each
//! in its own transaction), `hub` (this node's waiting check-ins, outbox and
//! buffers), `background` (heartbeat batches, the status sweep, cross-node
//! wake-ups, the acks' group commit), and here the views every part shares:
//! an agent's derived status, its API shape, and the activity log.

pub mod background;
pub mod cleanup;
pub mod hub;
pub mod service;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use warden_core::events::Event;
use warden_core::fleet::{AgentFacts, AgentStatus, AuditReason, StatusThresholds, derive_status, due_for_cleanup};
use warden_core::fleet_api::{Agent, AgentEvent, AgentEventKind, AgentInfo, AgentType, ForceUnenrollAnnotation, RejectedCalls};
use warden_core::ids::{AgentId, PolicyId};

pub use hub::Hub;
pub use service::FleetError;

use crate::AppState;
use crate::store::fleet::{self as store, AgentRow, EventRow};

pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text).ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64)
}

/// The facts of an agent row (full or facts-only), and the thresholds its
/// policy and this node set.
macro_rules! facts_of {
    ($state:expr, $row:expr) => {{
        let row = $row;
        let facts = AgentFacts {
            active: row.active != 0,
            enrolled_at: row.enrolled_at,
            last_checkin: row.last_checkin,
            last_checkin_status: row.last_checkin_status.clone(),
            unenrollment_started_at: row.unenrollment_started_at,
            audit_unenrolled_reason: row.audit_unenrolled_reason.as_deref().and_then(AuditReason::parse),
            last_heard_at: row.last_heard_at,
            replaced_at: row.replaced_at,
            host_conflict: row.host_conflict_with.is_some(),
            policy_revision: row.policy_revision,
            upgrade_started_at: None,
            upgraded_at: None,
        };
        let thresholds = StatusThresholds {
            offline_after_ms: $state.config.agent_offline_after.as_millis() as i64,
            inactive_after_ms: row.inactivity_timeout.saturating_mul(1000),
        };
        (facts, thresholds)
    }};
}

pub fn status(state: &AppState, row: &AgentRow, now: i64) -> AgentStatus {
    let (facts, thresholds) = facts_of!(state, row);
    derive_status(&facts, now, thresholds)
}

pub fn facts_status(state: &AppState, row: &store::AgentFactsRow, now: i64) -> AgentStatus {
    let (facts, thresholds) = facts_of!(state, row);
    derive_status(&facts, now, thresholds)
}

/// Whether the agents cleanup may remove the agent (`warden_core::fleet::due_for_cleanup`).
pub fn cleanup_due(state: &AppState, row: &store::AgentFactsRow, now: i64, after: Duration) -> bool {
    let (facts, thresholds) = facts_of!(state, row);
    due_for_cleanup(&facts, now, thresholds, i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

/// `cleanup_due` on a full row (read again inside the cleanup's transaction).
pub fn cleanup_still_due(state: &AppState, row: &AgentRow, now: i64, after: Duration) -> bool {
    let (facts, thresholds) = facts_of!(state, row);
    due_for_cleanup(&facts, now, thresholds, i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn to_agent(row: AgentRow, status: AgentStatus) -> Agent {
    Agent {
        agent: AgentInfo { id: AgentId::new(row.id.clone()), version: row.version.clone() },
        status,
        // Written by enroll from the same enum; an unreadable one is shown as Fleet's default.
        agent_type: AgentType::parse(&row.agent_type).unwrap_or(AgentType::Permanent),
        active: row.active != 0,
        enrolled_at: rfc3339(row.enrolled_at),
        unenrolled_at: row.unenrolled_at.map(rfc3339),
        unenrollment_started_at: row.unenrollment_started_at.map(rfc3339),
        audit_unenrolled_reason: row.audit_unenrolled_reason.as_deref().and_then(AuditReason::parse),
        audit_unenrolled_time: row.audit_unenrolled_time.map(rfc3339),
        // Checked before it was stored; unreadable, it is left out rather than failing the list.
        audit_unenrolled_details: row.audit_unenrolled_details.as_deref().and_then(|text| serde_json::from_str(text).ok()),
        last_heard_at: row.last_heard_at.map(rfc3339),
        host_id: row.host_id,
        replaced_by: row.replaced_by.map(AgentId::new),
        replaced_at: row.replaced_at.map(rfc3339),
        replaces: row.replaces.map(AgentId::new),
        host_conflict_with: row.host_conflict_with.map(AgentId::new),
        policy_id: PolicyId::new(row.policy_id),
        policy_revision: row.policy_revision,
        last_checkin: row.last_checkin.map(rfc3339),
        last_checkin_status: row.last_checkin_status,
        last_checkin_message: row.last_checkin_message,
        local_metadata: json(&row.local_metadata),
        user_provided_metadata: json(&row.user_provided_metadata),
        tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        components: json(&row.components),
        access_api_key_id: row.access_api_key_id,
        force_unenroll: match (row.force_unenrolled_by, row.force_unenrolled_at) {
            (Some(by), Some(at)) => Some(ForceUnenrollAnnotation { by, at: rfc3339(at) }),
            _ => None,
        },
        rejected_calls: row
            .last_rejected_at
            .filter(|_| row.rejected_count > 0)
            .map(|at| RejectedCalls { count: row.rejected_count, last_at: rfc3339(at) }),
        id: AgentId::new(row.id),
    }
}

pub fn to_event(row: EventRow) -> AgentEvent {
    AgentEvent {
        kind: AgentEventKind::parse(&row.kind).unwrap_or(AgentEventKind::RejectedCall),
        id: row.id,
        agent_id: AgentId::new(row.agent_id),
        message: row.message,
        actor: row.actor,
        created_at: rfc3339(row.created_at),
    }
}

/// A new activity-log line; `commit_logged` writes it with the change it
/// records and publishes it once saved.
pub fn event(agent_id: &str, kind: AgentEventKind, message: impl Into<String>, actor: Option<&str>, at: i64) -> EventRow {
    EventRow {
        // Time-ordered and monotonic in this process: lines written in the
        // same millisecond (an enrollment that replaces an agent) keep their
        // order in the log, which sorts by time, then id.
        id: uuid::Uuid::now_v7().to_string(),
        agent_id: agent_id.to_owned(),
        kind: kind.as_str().to_owned(),
        message: message.into(),
        actor: actor.map(str::to_owned),
        created_at: at,
    }
}

/// The one way activity-log lines are written: inside `tx`, beside the change
/// they record, committed together, and published (to the log and the event
/// bus) only once saved.
pub async fn commit_logged(state: &AppState, mut tx: sqlx::Transaction<'static, sqlx::Any>, lines: Vec<EventRow>) -> sqlx::Result<()> {
    store::insert_events_many(&mut tx, state.engine, &lines).await?;
    tx.commit().await?;
    for line in lines {
        tracing::info!(agent_id = %line.agent_id, kind = %line.kind, "{}", line.message);
        state.events.publish(Event::agent_event(&to_event(line)));
    }
    Ok(())
}

//! The `fleet.agent_status` rule type: one alert per agent in a watched
//! status (for at least `for_at_least`), with the agent, its host, its status
//! and why as the alert's context.

use serde_json::{Map, Value, json};
use warden_core::rules::AgentStatusParams;

use crate::AppState;

/// One alert the run found: what it is about and what actions may tell.
pub struct Instance {
    pub id: String,
    pub context: Map<String, Value>,
}

pub async fn evaluate(state: &AppState, params: &AgentStatusParams, now: i64) -> anyhow::Result<Vec<Instance>> {
    let filter = match params.kuery.as_deref() {
        Some(text) => warden_core::kuery::parse(text).map_err(|err| anyhow::anyhow!("the rule's kuery no longer parses: {}", err.0))?,
        None => None,
    };
    let held_since = now.saturating_sub(params.for_at_least_ms());
    let agents = crate::fleet::service::agents_in_status(state, params.statuses.clone(), params.policy_ids.clone(), filter).await?;
    Ok(agents
        .into_iter()
        .filter(|watched| watched.since.min(now) <= held_since)
        .map(|watched| {
            let agent = watched.agent;
            let hostname = agent.local_metadata.pointer("/host/hostname").and_then(Value::as_str).unwrap_or_default().to_owned();
            let details = agent.audit_unenrolled_details.clone().unwrap_or_default();
            let reason = match (agent.audit_unenrolled_reason, details.summary()) {
                (Some(reason), Some(summary)) => format!("{} ({}: {summary})", agent.status.explanation(), reason.as_str()),
                (Some(reason), None) => format!("{} ({})", agent.status.explanation(), reason.as_str()),
                (None, _) => match (&agent.host_conflict_with, &agent.replaced_by) {
                    (Some(other), _) => format!("{} (the other agent: {other})", agent.status.explanation()),
                    (None, Some(by)) => format!("{} (replaced by agent {by})", agent.status.explanation()),
                    (None, None) => agent.status.explanation().to_owned(),
                },
            };
            let context = json!({
                "agent": {
                    "id": agent.id.as_str(),
                    "name": hostname,
                    "version": agent.agent.version,
                    "policy_id": agent.policy_id.as_str(),
                    "status": agent.status.as_str(),
                    "status_label": agent.status.label(),
                    "last_checkin": agent.last_checkin,
                    "tags": agent.tags,
                },
                "host": { "name": hostname, "hostname": hostname, "id": agent.host_id },
                "status": agent.status.as_str(),
                "reason": reason,
                "since": crate::fleet::rfc3339(watched.since),
                "audit_unenrolled_reason": agent.audit_unenrolled_reason.map(|r| r.as_str()),
                "audit_unenrolled_time": agent.audit_unenrolled_time,
                "audit_unenrolled_user": details.user,
                "audit_unenrolled_process": details.process,
                "new_fleet_url": details.new_fleet_url,
                "last_heard_at": agent.last_heard_at,
                "replaced_by": agent.replaced_by,
                "host_conflict_with": agent.host_conflict_with,
            });
            Instance { id: agent.id.as_str().to_owned(), context: context.as_object().cloned().unwrap_or_default() }
        })
        .collect())
}

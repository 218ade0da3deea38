//! The `fleet:cleanup_agents` task (Kibana's open request: "another timer to
//! automatically wipe clean the inactive agents"): agents inactive or
//! replaced for longer than `agent_cleanup_after` are removed, with their
//! activity logs and actions, in batches of one transaction each. Off unless
//! `agent_cleanup_after` is set. What stays: response-action history (its
//! targets keep their host names), alerts (their context), and a line in the
//! log of the agent that replaced a removed one.

use std::time::Duration;

use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::AgentEventKind;

use super::{cleanup_due, cleanup_still_due, commit_logged, event, status};
use crate::AppState;
use crate::db::now_ms;
use crate::store::fleet as store;
use crate::tasks::{RunOutput, TaskDefinition};

pub const TASK_TYPE: &str = "fleet:cleanup_agents";
/// Agents removed per transaction: one batch never holds the writer long.
const BATCH: usize = 500;

pub fn definition(state: &AppState) -> TaskDefinition {
    let task_state = state.clone();
    let mut definition = TaskDefinition::new(TASK_TYPE, "Inactive and replaced agents cleanup", move |_ctx| {
        let state = task_state.clone();
        async move {
            let summary = match state.config.agent_cleanup_after {
                None => "off: agent_cleanup_after is not set, so agents are kept".to_owned(),
                Some(after) => {
                    let removed = run(&state, after).await?;
                    format!(
                        "removed {} agents ({} inactive, {} replaced) gone for longer than {}",
                        removed.inactive + removed.replaced,
                        removed.inactive,
                        removed.replaced,
                        humantime::format_duration(after)
                    )
                }
            };
            Ok(RunOutput { state: None, summary: Some(summary) })
        }
    });
    definition.every = Some(state.config.agent_cleanup_interval);
    definition
}

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub inactive: usize,
    pub replaced: usize,
}

/// Removes every agent due for cleanup now. The scan reads facts only; each
/// batch reads its agents again inside its (writing) transaction and keeps
/// any that checked in, or started a conflict, since.
pub async fn run(state: &AppState, after: Duration) -> sqlx::Result<Removed> {
    let now = now_ms();
    let due: Vec<String> = store::all_agent_facts(&state.db, state.engine)
        .await?
        .into_iter()
        .filter(|row| cleanup_due(state, row, now, after))
        .map(|row| row.id)
        .collect();
    let mut removed = Removed::default();
    for batch in due.chunks(BATCH) {
        let candidates: Vec<&str> = batch.iter().map(String::as_str).collect();
        let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
        let now = now_ms();
        let going: Vec<(store::AgentRow, AgentStatus)> = store::agents_by_ids(&mut *tx, state.engine, &candidates)
            .await?
            .into_iter()
            .filter(|row| cleanup_still_due(state, row, now, after))
            .map(|row| {
                let status = status(state, &row, now);
                (row, status)
            })
            .collect();
        let ids: Vec<&str> = going.iter().map(|(row, _)| row.id.as_str()).collect();
        // The agents that replaced removed ones (and stay) say so in their log.
        let mut lines = Vec::new();
        for (old, _) in &going {
            let Some(by) = old.replaced_by.as_deref().filter(|by| !ids.contains(by)) else { continue };
            if store::agent(&mut *tx, by).await?.is_some() {
                let message = format!("Agent {}, which this agent replaced, was removed by the cleanup; its host is this agent's", old.id);
                lines.push(event(by, AgentEventKind::ReplacedAgentRemoved, message, None, now));
            }
        }
        store::delete_agents(&mut tx, state.engine, &ids).await?;
        commit_logged(state, tx, lines).await?;
        for (row, status) in &going {
            tracing::info!(agent_id = %row.id, hostname = %row.hostname, status = status.as_str(), "removed by the agents cleanup");
        }
        removed.inactive += going.iter().filter(|(_, status)| *status == AgentStatus::Inactive).count();
        removed.replaced += going.iter().filter(|(_, status)| *status == AgentStatus::Replaced).count();
    }
    if removed != Removed::default() {
        state.events.publish(warden_core::events::Event::resync());
    }
    Ok(removed)
}

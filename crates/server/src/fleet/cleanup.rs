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

use super::{cleanup_due, commit_logged, event, facts_status};
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

/// Removes every agent due for cleanup now.
pub async fn run(state: &AppState, after: Duration) -> sqlx::Result<Removed> {
    let now = now_ms();
    let due: Vec<(store::AgentFactsRow, AgentStatus)> = store::all_agent_facts(&state.db, state.engine)
        .await?
        .into_iter()
        .filter(|row| cleanup_due(state, row, now, after))
        .map(|row| {
            let status = facts_status(state, &row, now);
            (row, status)
        })
        .collect();
    let mut removed = Removed::default();
    for batch in due.chunks(BATCH) {
        let ids: Vec<&str> = batch.iter().map(|(row, _)| row.id.as_str()).collect();
        // The agents that replaced removed ones (and stay) say so in their log.
        let removing = store::agents_by_ids(&state.db, state.engine, &ids).await?;
        let lines: Vec<store::EventRow> = removing
            .iter()
            .filter_map(|old| old.replaced_by.as_deref().filter(|by| !ids.contains(by)).map(|by| (old, by)))
            .map(|(old, by)| {
                let message = format!("Agent {}, which this agent replaced, was removed by the cleanup; its host is this agent's", old.id);
                event(by, AgentEventKind::ReplacedAgentRemoved, message, None, now)
            })
            .collect();
        let mut tx = state.db.begin().await?;
        store::delete_agents(&mut tx, state.engine, &ids).await?;
        commit_logged(state, tx, lines).await?;
        for (row, status) in batch {
            tracing::info!(agent_id = %row.id, hostname = %row.hostname, status = status.as_str(), "removed by the agents cleanup");
        }
        removed.inactive += batch.iter().filter(|(_, status)| *status == AgentStatus::Inactive).count();
        removed.replaced += batch.iter().filter(|(_, status)| *status == AgentStatus::Replaced).count();
    }
    if !due.is_empty() {
        state.events.publish(warden_core::events::Event::resync());
    }
    Ok(removed)
}

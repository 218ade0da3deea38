//! Fleet's background work on each node: heartbeat batches, the status sweep
//! that notices agents going dark, wake-ups for actions queued on other
//! nodes, and the group commit of agents' acks.

use std::collections::HashMap;

use tokio::sync::broadcast::error::RecvError;
use warden_core::events::{AgentActionQueued, EventKind, ResponseActionChanged};
use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::{AckItem, AgentActionType, AgentEventKind};

use super::hub::AckJob;
use super::{FleetError, commit_logged, event, facts_status};
use crate::db::now_ms;
use crate::store::fleet::{self as store, EventRow};
use crate::{AppState, response_actions};

/// Background work of this node until shutdown: heartbeat batches and the
/// status sweep on one interval, and wake-ups for actions another node queued
/// (heard on the event bus; after a resync, looked up in the actions table).
pub async fn run_background(state: AppState) {
    let mut flush = tokio::time::interval(state.config.agent_checkin_flush_interval);
    let mut shutdown = state.hub.shutdown_signal();
    let mut heard = state.events.subscribe();
    // Actions queued before this node started, or by a node that stopped.
    wake_for_actions_since(&state, 0).await;
    let mut last_lookup = now_ms();
    loop {
        tokio::select! {
            _ = flush.tick() => {
                state.hub.expire_outbox(now_ms() - 300_000);
                if let Err(err) = flush_heartbeats(&state).await {
                    tracing::warn!(error = %err, "could not write agent heartbeats");
                }
                if let Err(err) = sweep_statuses(&state).await {
                    tracing::warn!(error = %err, "could not sweep agent statuses");
                }
            }
            delivered = heard.recv() => match delivered {
                // An action that ended elsewhere must not leave this node's outbox.
                Ok(delivered) if !delivered.local && delivered.event.kind == EventKind::ResponseActionChanged => {
                    if let Some(changed) = delivered.event.payload_as::<ResponseActionChanged>() {
                        for agent in &changed.agent_ids {
                            state.hub.forget(agent, &changed.id);
                        }
                    }
                }
                Ok(delivered) if !delivered.local && delivered.event.kind == EventKind::AgentActionQueued => {
                    match delivered.event.payload_as::<AgentActionQueued>().and_then(|queued| queued.agent_id) {
                        Some(agent_id) => state.hub.action_queued(&agent_id, None),
                        // Many agents at once (or a payload too large to cross): the table has them.
                        None => {
                            let since = last_lookup - LOOKUP_OVERLAP_MS;
                            last_lookup = now_ms();
                            wake_for_actions_since(&state, since).await;
                        }
                    }
                }
                // The bus may have missed events (listener reconnected, or this
                // receiver fell behind): the table has every action.
                Ok(delivered) if delivered.event.kind == EventKind::Resync => {
                    let since = last_lookup - LOOKUP_OVERLAP_MS;
                    last_lookup = now_ms();
                    wake_for_actions_since(&state, since).await;
                }
                Err(RecvError::Lagged(_)) => {
                    let since = last_lookup - LOOKUP_OVERLAP_MS;
                    last_lookup = now_ms();
                    wake_for_actions_since(&state, since).await;
                }
                Err(RecvError::Closed) => return,
                Ok(_) => {}
            },
            _ = shutdown.changed() => {
                let _ = flush_heartbeats(&state).await;
                return;
            }
        }
    }
}

/// How far back a table lookup reaches before the previous one: clocks of
/// nodes differ a little, and an action is never missed for it.
const LOOKUP_OVERLAP_MS: i64 = 60_000;

/// Wakes the agents waiting here that have an action queued since `since`.
async fn wake_for_actions_since(state: &AppState, since: i64) {
    match store::agents_with_new_actions(&state.db, since.max(0)).await {
        Ok(ids) => {
            for id in ids {
                state.hub.action_queued(&id, None);
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not look for new agent actions"),
    }
}

/// Writes buffered heartbeats and delivery marks in one transaction.
pub async fn flush_heartbeats(state: &AppState) -> sqlx::Result<usize> {
    let beats = state.hub.take_heartbeats(now_ms());
    let delivered = state.hub.take_delivered();
    if beats.is_empty() && delivered.is_empty() {
        return Ok(0);
    }
    let written = async {
        let mut tx = state.db.begin().await?;
        for (id, at) in &beats {
            store::touch_checkin(&mut *tx, id, *at).await?;
        }
        for ((agent_id, action_id), at) in &delivered {
            store::mark_delivered(&mut *tx, agent_id, action_id, *at).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(err) = written {
        // Not lost: back into the buffers (newer entries win) for the next flush.
        state.hub.put_back(beats, delivered);
        return Err(err);
    }
    Ok(beats.len())
}

/// Notices agents that went offline or inactive since the last sweep, and
/// logs it once per transition.
pub async fn sweep_statuses(state: &AppState) -> sqlx::Result<()> {
    let now = now_ms();
    for row in store::all_agent_facts(&state.db, state.engine).await? {
        let current = facts_status(state, &row, now);
        if row.last_known_status.as_deref() == Some(current.as_str()) {
            continue;
        }
        let kind = match current {
            AgentStatus::Offline => Some(AgentEventKind::WentOffline),
            AgentStatus::Inactive => Some(AgentEventKind::WentInactive),
            _ => None,
        };
        let mut tx = state.db.begin().await?;
        store::set_last_known_status(&mut *tx, &row.id, current.as_str()).await?;
        let lines = kind.map(|kind| {
            let message = match kind {
                AgentEventKind::WentOffline => "Stopped checking in: offline".to_owned(),
                _ => "Silent for longer than the policy's inactivity timeout: inactive".to_owned(),
            };
            event(&row.id, kind, message, None, now)
        });
        commit_logged(state, tx, lines.into_iter().collect()).await?;
    }
    Ok(())
}

/// Group commit for agents' acks: whatever acks arrived while the previous
/// transaction ran are written in the next one, and each agent is answered
/// once its acks are committed. 10,000 agents acking an UNENROLL at once were
/// 10,000 transactions, serialized by SQLite. If a batch fails, its jobs are
/// retried one by one, so one bad ack fails only its own agent.
pub async fn run_ack_writer(state: AppState) {
    let Some(mut inbox) = state.hub.acks_inbox.lock().ok().and_then(|mut inbox| inbox.take()) else { return };
    let mut jobs = Vec::new();
    while inbox.recv_many(&mut jobs, 2_000).await > 0 {
        // A group commits at most ACK_EVENTS_PER_COMMIT acks, so one
        // transaction never holds the writer's lock for long.
        let mut pending = std::mem::take(&mut jobs).into_iter().peekable();
        while pending.peek().is_some() {
            let mut batch = Vec::new();
            let mut events = 0;
            while let Some(job) = pending.next_if(|job| batch.is_empty() || events + job.events.len() <= ACK_EVENTS_PER_COMMIT) {
                events += job.events.len();
                batch.push(job);
            }
            commit_ack_batch(&state, batch).await;
        }
    }
}

/// Acks committed together at most (one agent sends at most `MAX_ACK_EVENTS`).
const ACK_EVENTS_PER_COMMIT: usize = 10_000;

/// Commits a batch, answering each agent. A batch that fails is split in
/// halves until the failing job is alone, so one bad ack costs a few
/// transactions, not one per agent; a busy database fails the whole batch at
/// once (503: the agents send their acks again).
async fn commit_ack_batch(state: &AppState, batch: Vec<AckJob>) {
    let mut pending = vec![batch];
    while let Some(mut batch) = pending.pop() {
        let all: Vec<&AckJob> = batch.iter().collect();
        match write_acks(state, &all).await {
            Ok(results) => {
                for (job, items) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(items));
                }
            }
            Err(err) if crate::error::is_busy(&err) => {
                tracing::warn!(error = %err, agents = batch.len(), "database busy; acks refused with 503");
                for job in batch {
                    let _ = job.reply.send(Err(FleetError::Busy));
                }
            }
            Err(err) if batch.len() == 1 => {
                tracing::warn!(error = %err, agent_id = %batch[0].agent_id, "could not record acks");
                if let Some(job) = batch.pop() {
                    let _ = job.reply.send(Err(FleetError::Database(err)));
                }
            }
            Err(_) => {
                let second_half = batch.split_off(batch.len() / 2);
                pending.push(second_half);
                pending.push(batch);
            }
        }
    }
}

/// One transaction and a few statements for all `jobs`, however many acks
/// they carry (each agent's are bounded by `MAX_ACK_EVENTS`); the
/// activity-log lines are published after the commit.
async fn write_acks(state: &AppState, jobs: &[&AckJob]) -> sqlx::Result<Vec<Vec<AckItem>>> {
    let now = now_ms();
    let acks: Vec<store::Ack<'_>> = jobs
        .iter()
        .flat_map(|job| {
            job.events.iter().map(|ack| store::Ack { agent_id: &job.agent_id, action_id: ack.action_id.as_str(), error: ack.error.as_deref() })
        })
        .collect();
    let mut tx = state.db.begin().await?;
    let found: HashMap<(String, String), String> =
        store::ack_actions_many(&mut tx, state.engine, &acks, now).await?.into_iter().map(|(agent, action, kind)| ((agent, action), kind)).collect();
    let kind_of = |agent: &str, action: &str| found.get(&(agent.to_owned(), action.to_owned())).and_then(|kind| AgentActionType::parse(kind));
    let confirmed: Vec<&str> = acks
        .iter()
        .filter(|ack| ack.error.is_none() && kind_of(ack.agent_id, ack.action_id) == Some(AgentActionType::Unenroll))
        .map(|ack| ack.agent_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let lines: Vec<EventRow> = confirmed
        .iter()
        .map(|id| event(id, AgentEventKind::Unenrolled, "Unenrolled: the agent confirmed and its key was revoked", None, now))
        .collect();
    store::finish_unenroll_many(&mut tx, state.engine, &confirmed, now).await?;
    // Response actions' results, in the same transaction: the target's state
    // and the ack commit together.
    let mut recorded: HashMap<(String, String), AckItem> = HashMap::new();
    let mut changed: Vec<(String, Vec<String>)> = Vec::new();
    for job in jobs {
        for ack in &job.events {
            if kind_of(&job.agent_id, ack.action_id.as_str()) != Some(AgentActionType::InputAction) {
                continue;
            }
            let answer = response_actions::AgentAnswer {
                agent_id: &job.agent_id,
                action_id: ack.action_id.as_str(),
                error: ack.error.as_deref(),
                result: ack.action_response.as_ref(),
            };
            let outcome = response_actions::record_result(&mut tx, &answer, now).await?;
            changed.extend(outcome.changed);
            recorded.insert((job.agent_id.clone(), ack.action_id.to_string()), AckItem { status: outcome.status, message: outcome.message });
        }
    }
    commit_logged(state, tx, lines).await?;
    for (action_id, agents) in changed {
        response_actions::announce(state, &action_id, &agents);
    }
    Ok(jobs
        .iter()
        .map(|job| {
            job.events
                .iter()
                .map(|ack| {
                    let key = (job.agent_id.clone(), ack.action_id.to_string());
                    if let Some(item) = recorded.get(&key) {
                        item.clone()
                    } else if found.contains_key(&key) {
                        AckItem { status: 200, message: "OK".into() }
                    } else {
                        AckItem { status: 404, message: format!("action {} not found for this agent", ack.action_id) }
                    }
                })
                .collect()
        })
        .collect())
}

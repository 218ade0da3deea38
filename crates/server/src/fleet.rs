//! Fleet's moving parts on the server: the long-poll hub that wakes waiting
//! agents, batched heartbeats, the status sweep that notices agents going
//! dark, and the activity log with its event stream other code subscribes to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use warden_core::fleet::{AgentFacts, AgentStatus, AuditReason, StatusThresholds, derive_status};
use warden_core::fleet_api::{AckEvent, AckItem, Agent, AgentAction, AgentEvent, AgentEventKind, AgentInfo, ForceUnenrollAnnotation, RejectedCalls};

use crate::AppState;
use crate::db::now_ms;
use crate::store::fleet::{self as store, AgentRow, EventRow};

pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// Waiting check-ins, buffered heartbeats and the event stream of this node.
pub struct Hub {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// Agents that may have an action to pick up; a check-in of any other
    /// agent needs no look at the actions table.
    pending: Mutex<std::collections::HashSet<String>>,
    heartbeats: Mutex<HashMap<String, i64>>,
    /// Actions handed out and not yet written as delivered (action id → when).
    delivered: Mutex<HashMap<String, i64>>,
    /// Actions queued on this node, ready for their agent's check-in here
    /// without a read of the actions table (agent id → when, actions).
    outbox: Mutex<HashMap<String, (i64, Vec<AgentAction>)>>,
    pub events: broadcast::Sender<AgentEvent>,
    shutdown: watch::Sender<bool>,
    /// Acks waiting for the group commit (`run_ack_writer`).
    acks: mpsc::UnboundedSender<AckJob>,
    acks_inbox: Mutex<Option<mpsc::UnboundedReceiver<AckJob>>>,
}

/// One agent's acks, and where to send what was recorded.
pub struct AckJob {
    pub agent_id: String,
    pub events: Vec<AckEvent>,
    pub reply: oneshot::Sender<sqlx::Result<Vec<AckItem>>>,
}

impl Default for Hub {
    fn default() -> Self {
        let (acks, inbox) = mpsc::unbounded_channel();
        Hub {
            waiters: Mutex::default(),
            pending: Mutex::default(),
            heartbeats: Mutex::default(),
            delivered: Mutex::default(),
            outbox: Mutex::default(),
            events: broadcast::channel(1024).0,
            shutdown: watch::channel(false).0,
            acks,
            acks_inbox: Mutex::new(Some(inbox)),
        }
    }
}

/// Removes the waiter when the check-in ends, however it ends.
pub struct Parked<'a> {
    hub: &'a Hub,
    agent_id: String,
    pub notify: Arc<Notify>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.hub.waiters.lock()
            && waiters.get(&self.agent_id).is_some_and(|n| Arc::ptr_eq(n, &self.notify)) {
                waiters.remove(&self.agent_id);
            }
    }
}

impl Hub {
    pub fn park(&self, agent_id: &str) -> Parked<'_> {
        let notify = Arc::new(Notify::new());
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.insert(agent_id.to_owned(), notify.clone());
        }
        Parked { hub: self, agent_id: agent_id.to_owned(), notify }
    }

    /// An action was queued (and committed) for the agent: remember it, keep
    /// it at hand for the agent's check-in on this node, and wake that check-in.
    pub fn action_queued(&self, agent_id: &str, action: Option<AgentAction>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(agent_id.to_owned());
        }
        if let Some(action) = action
            && let Ok(mut outbox) = self.outbox.lock()
        {
            outbox.entry(agent_id.to_owned()).or_insert_with(|| (action_time(&action), Vec::new())).1.push(action);
        }
        self.wake(agent_id);
    }

    /// The actions queued on this node for the agent, taken.
    pub fn take_outbox(&self, agent_id: &str) -> Vec<AgentAction> {
        self.outbox.lock().ok().and_then(|mut o| o.remove(agent_id)).map(|(_, actions)| actions).unwrap_or_default()
    }

    /// Forgets outbox entries older than `before` (their agent checks in
    /// elsewhere, or not at all); the actions table still has them.
    fn expire_outbox(&self, before: i64) {
        if let Ok(mut outbox) = self.outbox.lock() {
            outbox.retain(|_, (at, _)| *at >= before);
        }
    }

    pub fn may_have_actions(&self, agent_id: &str) -> bool {
        self.pending.lock().map(|p| p.contains(agent_id)).unwrap_or(true)
    }

    pub fn no_actions_left(&self, agent_id: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(agent_id);
        }
    }

    /// Wakes the agent's check-in if it is waiting on this node.
    fn wake(&self, agent_id: &str) {
        if let Some(notify) = self.waiters.lock().ok().and_then(|w| w.get(agent_id).cloned()) {
            notify.notify_one();
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiters.lock().map(|w| w.len()).unwrap_or(0)
    }

    pub fn heartbeat(&self, agent_id: &str, at: i64) {
        if let Ok(mut beats) = self.heartbeats.lock() {
            beats.insert(agent_id.to_owned(), at);
        }
    }

    /// Buffered heartbeats, plus every agent parked here right now (an agent
    /// held in a long poll is alive).
    fn take_heartbeats(&self, now: i64) -> Vec<(String, i64)> {
        let mut beats: HashMap<String, i64> = self.heartbeats.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default();
        if let Ok(waiters) = self.waiters.lock() {
            for id in waiters.keys() {
                beats.insert(id.clone(), now);
            }
        }
        beats.into_iter().collect()
    }

    /// Notes that an action was handed out; written with the next batch.
    pub fn delivered(&self, action_id: &str, at: i64) {
        if let Ok(mut delivered) = self.delivered.lock() {
            delivered.insert(action_id.to_owned(), at);
        }
    }

    /// When this node handed the action out, if it has not been written yet.
    pub fn delivered_at(&self, action_id: &str) -> Option<i64> {
        self.delivered.lock().ok().and_then(|d| d.get(action_id).copied())
    }

    /// A batch whose write failed goes back, unless something newer arrived.
    fn put_back(&self, beats: Vec<(String, i64)>, delivered: Vec<(String, i64)>) {
        if let Ok(mut buffer) = self.heartbeats.lock() {
            for (id, at) in beats {
                let entry = buffer.entry(id).or_insert(at);
                *entry = (*entry).max(at);
            }
        }
        if let Ok(mut buffer) = self.delivered.lock() {
            for (id, at) in delivered {
                buffer.entry(id).or_insert(at);
            }
        }
    }

    fn take_delivered(&self) -> Vec<(String, i64)> {
        self.delivered.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default().into_iter().collect()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Hands an agent's acks to the group commit; the answer arrives once
    /// they are committed.
    pub async fn record_acks(&self, agent_id: &str, events: Vec<AckEvent>) -> crate::error::Result<Vec<AckItem>> {
        let (reply, answer) = oneshot::channel();
        self.acks
            .send(AckJob { agent_id: agent_id.to_owned(), events, reply })
            .map_err(|_| anyhow::anyhow!("the ack writer has stopped"))?;
        Ok(answer.await.map_err(|_| anyhow::anyhow!("the ack writer has stopped"))??)
    }

    /// Releases every held check-in so the server can stop.
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }
}

fn action_time(action: &AgentAction) -> i64 {
    parse_rfc3339(&action.created_at).unwrap_or_else(now_ms)
}

/// The status of an agent row (full or facts-only) at `now`.
macro_rules! status_of {
    ($state:expr, $row:expr, $now:expr) => {{
        let row = $row;
        let facts = AgentFacts {
            active: row.active != 0,
            enrolled_at: row.enrolled_at,
            last_checkin: row.last_checkin,
            last_checkin_status: row.last_checkin_status.clone(),
            unenrollment_started_at: row.unenrollment_started_at,
            audit_unenrolled_reason: row.audit_unenrolled_reason.as_deref().and_then(AuditReason::parse),
            policy_revision: row.policy_revision,
            upgrade_started_at: None,
            upgraded_at: None,
        };
        let thresholds = StatusThresholds {
            offline_after_ms: $state.config.agent_offline_after.as_millis() as i64,
            inactive_after_ms: row.inactivity_timeout.saturating_mul(1000),
        };
        derive_status(&facts, $now, thresholds)
    }};
}

pub fn status(state: &AppState, row: &AgentRow, now: i64) -> AgentStatus {
    status_of!(state, row, now)
}

pub fn facts_status(state: &AppState, row: &store::AgentFactsRow, now: i64) -> AgentStatus {
    status_of!(state, row, now)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn to_agent(row: AgentRow, status: AgentStatus) -> Agent {
    Agent {
        agent: AgentInfo { id: row.id.clone(), version: row.version.clone() },
        status,
        agent_type: row.agent_type,
        active: row.active != 0,
        enrolled_at: rfc3339(row.enrolled_at),
        unenrolled_at: row.unenrolled_at.map(rfc3339),
        unenrollment_started_at: row.unenrollment_started_at.map(rfc3339),
        audit_unenrolled_reason: row.audit_unenrolled_reason.as_deref().and_then(AuditReason::parse),
        audit_unenrolled_time: row.audit_unenrolled_time.map(rfc3339),
        policy_id: row.policy_id,
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
        rejected_calls: row.last_rejected_at.filter(|_| row.rejected_count > 0).map(|at| RejectedCalls { count: row.rejected_count, last_at: rfc3339(at) }),
        id: row.id,
    }
}

pub fn to_event(row: EventRow) -> AgentEvent {
    AgentEvent {
        kind: AgentEventKind::parse(&row.kind).unwrap_or(AgentEventKind::RejectedCall),
        id: row.id,
        agent_id: row.agent_id,
        message: row.message,
        actor: row.actor,
        created_at: rfc3339(row.created_at),
    }
}

/// A new activity-log line; write it with `store::insert_event` (inside the
/// caller's transaction) and `publish` it after the commit.
pub fn event(agent_id: &str, kind: AgentEventKind, message: impl Into<String>, actor: Option<&str>, at: i64) -> EventRow {
    EventRow {
        id: uuid::Uuid::new_v4().to_string(),
        agent_id: agent_id.to_owned(),
        kind: kind.as_str().to_owned(),
        message: message.into(),
        actor: actor.map(str::to_owned),
        created_at: at,
    }
}

pub fn publish(state: &AppState, event: EventRow) {
    tracing::info!(agent_id = %event.agent_id, kind = %event.kind, "{}", event.message);
    let _ = state.hub.events.send(to_event(event));
}

/// Background work of this node: heartbeat batches and the status sweep on
/// one interval, cross-node action wake-ups every second.
pub async fn run_background(state: AppState) {
    let mut flush = tokio::time::interval(state.config.agent_checkin_flush_interval);
    let mut actions = tokio::time::interval(Duration::from_secs(1));
    let mut shutdown = state.hub.shutdown_signal();
    // Actions queued before this node started (or by a node that stopped).
    let mut watermark = 0;
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
            _ = actions.tick() => {
                // Actions queued by another node: wake the agents waiting here.
                let now = now_ms();
                match store::agents_with_new_actions(&state.db, (watermark - 5_000).max(0)).await {
                    Ok(ids) => {
                        for id in ids {
                            state.hub.action_queued(&id, None);
                        }
                        watermark = now;
                    }
                    Err(err) => tracing::warn!(error = %err, "could not look for new agent actions"),
                }
            }
            _ = shutdown.changed() => {
                let _ = flush_heartbeats(&state).await;
                return;
            }
        }
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
        for (action_id, at) in &delivered {
            store::mark_delivered(&mut *tx, action_id, *at).await?;
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
    for row in store::all_agent_facts(&state.db).await? {
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
        let line = kind.map(|kind| {
            let message = match kind {
                AgentEventKind::WentOffline => "Stopped checking in: offline".to_owned(),
                _ => "Silent for longer than the policy's inactivity timeout: inactive".to_owned(),
            };
            event(&row.id, kind, message, None, now)
        });
        if let Some(line) = &line {
            store::insert_event(&mut *tx, line).await?;
        }
        tx.commit().await?;
        if let Some(line) = line {
            publish(state, line);
        }
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

async fn commit_ack_batch(state: &AppState, batch: Vec<AckJob>) {
    let all: Vec<&AckJob> = batch.iter().collect();
    match write_acks(state, &all).await {
        Ok(results) => {
            for (job, items) in batch.into_iter().zip(results) {
                let _ = job.reply.send(Ok(items));
            }
        }
        Err(err) if batch.len() == 1 => {
            tracing::warn!(error = %err, "could not record acks");
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(err));
            }
        }
        Err(_) => {
            for job in batch {
                let result = write_acks(state, &[&job]).await.map(|mut r| r.pop().unwrap_or_default());
                if let Err(err) = &result {
                    tracing::warn!(error = %err, agent_id = %job.agent_id, "could not record acks");
                }
                let _ = job.reply.send(result);
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
            job.events.iter().map(|ack| store::Ack { agent_id: &job.agent_id, action_id: &ack.action_id, error: ack.error.as_deref() })
        })
        .collect();
    let mut tx = state.db.begin().await?;
    let found: HashMap<(String, String), String> =
        store::ack_actions_many(&mut tx, state.engine, &acks, now).await?.into_iter().map(|(agent, action, kind)| ((agent, action), kind)).collect();
    let confirmed: Vec<&str> = acks
        .iter()
        .filter(|ack| ack.error.is_none() && found.get(&(ack.agent_id.to_owned(), ack.action_id.to_owned())).is_some_and(|kind| kind == "UNENROLL"))
        .map(|ack| ack.agent_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let lines: Vec<EventRow> = confirmed
        .iter()
        .map(|id| event(id, AgentEventKind::Unenrolled, "Unenrolled: the agent confirmed and its key was revoked", None, now))
        .collect();
    store::finish_unenroll_many(&mut tx, state.engine, &confirmed, now).await?;
    store::insert_events_many(&mut tx, state.engine, &lines).await?;
    tx.commit().await?;
    for line in lines {
        publish(state, line);
    }
    Ok(jobs
        .iter()
        .map(|job| {
            job.events
                .iter()
                .map(|ack| {
                    if found.contains_key(&(job.agent_id.clone(), ack.action_id.clone())) {
                        AckItem { status: 200, message: "OK".into() }
                    } else {
                        AckItem { status: 404, message: format!("action {} not found for this agent", ack.action_id) }
                    }
                })
                .collect()
        })
        .collect())
}

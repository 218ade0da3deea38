//! The long-poll hub of this node: waiting check-ins and the wake-ups that
//! end them, the outbox of actions queued here, buffered heartbeats and
//! delivery marks (written in batches by `background`), and the queue of acks
//! for the group commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc, oneshot, watch};
use warden_core::fleet_api::{AckEvent, AckItem, AgentAction};

use super::{FleetError, parse_rfc3339};
use crate::db::now_ms;

/// Waiting check-ins, buffered heartbeats and queued acks of this node.
pub struct Hub {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    /// Agents that may have an action to pick up; a check-in of any other
    /// agent needs no look at the actions table.
    pending: Mutex<std::collections::HashSet<String>>,
    heartbeats: Mutex<HashMap<String, i64>>,
    /// Actions handed out and not yet written as delivered ((agent id,
    /// action id) → when: one response action goes to many agents).
    delivered: Mutex<HashMap<(String, String), i64>>,
    /// Actions queued on this node, ready for their agent's check-in here
    /// without a read of the actions table (agent id → when, actions).
    outbox: Mutex<HashMap<String, (i64, Vec<AgentAction>)>>,
    shutdown: watch::Sender<bool>,
    /// Acks waiting for the group commit (`run_ack_writer`).
    acks: mpsc::UnboundedSender<AckJob>,
    pub(super) acks_inbox: Mutex<Option<mpsc::UnboundedReceiver<AckJob>>>,
}

/// One agent's acks, and where to send what was recorded.
pub struct AckJob {
    pub agent_id: String,
    pub events: Vec<AckEvent>,
    pub reply: oneshot::Sender<Result<Vec<AckItem>, FleetError>>,
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
            && waiters.get(&self.agent_id).is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
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

    /// Drops an action from the agent's outbox here: it ended without the
    /// agent (cancelled or expired), so it must not be handed out.
    pub fn forget(&self, agent_id: &str, action_id: &str) {
        if let Ok(mut outbox) = self.outbox.lock()
            && let Some((_, actions)) = outbox.get_mut(agent_id)
        {
            actions.retain(|a| a.id.as_str() != action_id);
        }
    }

    /// Forgets outbox entries older than `before` (their agent checks in
    /// elsewhere, or not at all); the actions table still has them.
    pub(super) fn expire_outbox(&self, before: i64) {
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
    pub(super) fn take_heartbeats(&self, now: i64) -> Vec<(String, i64)> {
        let mut beats: HashMap<String, i64> = self.heartbeats.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default();
        if let Ok(waiters) = self.waiters.lock() {
            for id in waiters.keys() {
                beats.insert(id.clone(), now);
            }
        }
        beats.into_iter().collect()
    }

    /// Notes that an action was handed out to an agent; written with the next batch.
    pub fn delivered(&self, agent_id: &str, action_id: &str, at: i64) {
        if let Ok(mut delivered) = self.delivered.lock() {
            delivered.insert((agent_id.to_owned(), action_id.to_owned()), at);
        }
    }

    /// When this node handed the action out to the agent, if it has not been written yet.
    pub fn delivered_at(&self, agent_id: &str, action_id: &str) -> Option<i64> {
        self.delivered.lock().ok().and_then(|d| d.get(&(agent_id.to_owned(), action_id.to_owned())).copied())
    }

    /// A batch whose write failed goes back, unless something newer arrived.
    pub(super) fn put_back(&self, beats: Vec<(String, i64)>, delivered: Vec<((String, String), i64)>) {
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

    pub(super) fn take_delivered(&self) -> Vec<((String, String), i64)> {
        self.delivered.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default().into_iter().collect()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Hands an agent's acks to the group commit; the answer arrives once
    /// they are committed.
    pub async fn record_acks(&self, agent_id: &str, events: Vec<AckEvent>) -> Result<Vec<AckItem>, FleetError> {
        let stopped = || FleetError::Internal(anyhow::anyhow!("the ack writer has stopped"));
        let (reply, answer) = oneshot::channel();
        self.acks.send(AckJob { agent_id: agent_id.to_owned(), events, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Releases every held check-in so the server can stop.
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }
}

fn action_time(action: &AgentAction) -> i64 {
    parse_rfc3339(&action.created_at).unwrap_or_else(now_ms)
}

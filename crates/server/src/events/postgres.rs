//! Events between nodes on PostgreSQL: each node sends its events with
//! `pg_notify('warden_events', …)` through the pool and hears the others' on a
//! dedicated `PgListener` connection (the `Any` pool cannot LISTEN), which it
//! re-opens with backoff when it drops, and then resyncs (it may have missed
//! events meanwhile).
//!
//! A NOTIFY payload must be shorter than 8000 bytes. An event whose notice
//! would be longer crosses without its payload (`payload: null`, deliberately
//! truncated, logged): the other nodes deliver it as is, and a browser that
//! gets a `null` payload refetches what the event's kind names.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgListener;
use warden_core::events::{Event, EventKind};

use super::bus::{EventBus, stopped};
use crate::db::Db;

/// The NOTIFY channel every node listens on.
pub const CHANNEL: &str = "warden_events";
/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
pub const MAX_NOTICE_BYTES: usize = 7_999;
/// Backoff between attempts to re-open the listener or to resend a NOTIFY.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A NOTIFY that still fails after this many tries is dropped (the other
/// nodes are told to resync once one gets through).
const NOTIFY_ATTEMPTS: u32 = 8;

/// What one node tells the others.
#[derive(Serialize)]
struct Notice<'a> {
    origin: &'a str,
    /// `None`: "I could not send you some events: resync".
    event: Option<&'a Event>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

#[derive(Deserialize)]
struct Received {
    origin: String,
    event: Option<Event>,
    #[serde(default)]
    truncated: bool,
}

/// The NOTIFY payload for `event`, without its payload if it would not fit.
pub fn encode(origin: &str, event: &Event) -> String {
    let full = serde_json::to_string(&Notice { origin, event: Some(event), truncated: false }).unwrap_or_default();
    if full.len() <= MAX_NOTICE_BYTES {
        return full;
    }
    tracing::warn!(kind = %event.kind.as_str(), bytes = full.len(), "event too large for NOTIFY: the other nodes get it without its payload");
    let cut = Event { kind: event.kind, audience: event.audience, payload: Value::Null };
    serde_json::to_string(&Notice { origin, event: Some(&cut), truncated: true }).unwrap_or_default()
}

fn encode_resync(origin: &str) -> String {
    serde_json::to_string(&Notice { origin, event: None, truncated: false }).unwrap_or_default()
}

/// Another node's notice, delivered here; this node's own are skipped.
fn receive(bus: &EventBus, payload: &str) {
    let Ok(notice) = serde_json::from_str::<Received>(payload) else {
        tracing::warn!(bytes = payload.len(), "unreadable event notice from another node");
        return;
    };
    if notice.origin == bus.node_id() {
        return;
    }
    match notice.event {
        None => bus.resync(),
        Some(event) if event.kind == EventKind::Resync => bus.resync(),
        Some(event) => {
            if notice.truncated {
                tracing::debug!(kind = %event.kind.as_str(), "event from another node arrived without its payload");
            }
            bus.deliver(event, false);
        }
    }
}

/// Sends this node's queued notices in order until the bus is closed and the
/// queue is empty.
pub async fn send_notices(bus: Arc<EventBus>, db: Db) {
    let Some(mut inbox) = bus.take_notices_inbox() else { return };
    while let Some(notice) = inbox.recv().await {
        if !notify_with_retries(&db, &notice).await {
            bus.notice_dropped();
            continue;
        }
        if bus.take_notices_dropped() && !notify_with_retries(&db, &encode_resync(bus.node_id())).await {
            bus.notice_dropped();
        }
    }
}

async fn notify_with_retries(db: &Db, notice: &str) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=NOTIFY_ATTEMPTS {
        match sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(notice).execute(db).await {
            Ok(_) => return true,
            Err(err) if attempt == NOTIFY_ATTEMPTS => {
                tracing::warn!(error = %err, "could not NOTIFY the other nodes of an event; dropped, they will resync");
            }
            Err(err) => {
                tracing::debug!(error = %err, attempt, "NOTIFY failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    false
}

/// Hears the other nodes' events until shutdown, on its own connection to
/// `database_url`; re-opens it with backoff when it drops, then resyncs.
pub async fn listen(bus: Arc<EventBus>, database_url: String) {
    let mut shutdown = bus.shutdown_signal();
    let mut backoff = FIRST_BACKOFF;
    let mut lost = false;
    loop {
        let connected = tokio::select! {
            connected = open(&database_url) => connected,
            () = stopped(&mut shutdown) => return,
        };
        match connected {
            Ok(mut listener) => {
                backoff = FIRST_BACKOFF;
                if lost {
                    tracing::info!("listening to the other nodes again");
                    bus.resync();
                }
                let error = loop {
                    tokio::select! {
                        received = listener.try_recv() => match received {
                            Ok(Some(notification)) => receive(&bus, notification.payload()),
                            Ok(None) => break "connection lost".to_owned(),
                            Err(err) => break err.to_string(),
                        },
                        () = stopped(&mut shutdown) => return,
                    }
                };
                tracing::warn!(%error, "lost the connection that hears the other nodes' events; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "could not listen to the other nodes' events; retrying"),
        }
        lost = true;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn open(database_url: &str) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect(database_url).await?;
    // A lost connection is ours to re-open (with backoff, then a resync).
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use warden_core::authz::Privilege;
    use warden_core::events::Audience;

    use super::*;
    use crate::db::Engine;

    #[test]
    fn large_events_cross_without_their_payload() {
        let small = Event::agent_action_queued("a1");
        let notice = encode("n1", &small);
        let received: Received = serde_json::from_str(&notice).expect("a notice");
        assert_eq!((received.origin.as_str(), received.event.as_ref(), received.truncated), ("n1", Some(&small), false));

        let large =
            Event { kind: EventKind::AgentEvent, audience: Audience::Privilege(Privilege::FleetRead), payload: Value::from("x".repeat(9_000)) };
        let notice = encode("n1", &large);
        assert!(notice.len() <= MAX_NOTICE_BYTES);
        let received: Received = serde_json::from_str(&notice).expect("a notice");
        let event = received.event.expect("the event");
        assert!(received.truncated);
        assert_eq!((event.kind, event.audience, event.payload), (EventKind::AgentEvent, Audience::Privilege(Privilege::FleetRead), Value::Null));
    }

    #[test]
    fn notices_from_other_nodes_are_delivered_and_own_ones_skipped() {
        let bus = EventBus::new(Engine::Sqlite);
        let mut heard = bus.subscribe();
        receive(&bus, &encode(bus.node_id(), &Event::agent_action_queued("mine")));
        receive(&bus, &encode("other", &Event::agent_action_queued("theirs")));
        receive(&bus, &encode_resync("other"));
        receive(&bus, "not json");
        let got: Vec<(bool, EventKind)> = std::iter::from_fn(|| heard.try_recv().ok()).map(|d| (d.local, d.event.kind)).collect();
        // The resync is this node's own signal, hence local.
        assert_eq!(got, [(false, EventKind::AgentActionQueued), (true, EventKind::Resync)]);
    }
}

//! Live events: one bus per node that services publish to after their
//! commit, carried between nodes by PostgreSQL's NOTIFY, and pushed to each
//! browser tab over one server-sent-events stream filtered by its user's
//! privileges. The event type and its closed set of kinds live in
//! `warden_core::events`.
//!
//! - Publish: `state.events.publish(Event::agent_event(&line))` (after the
//!   commit; never blocks).
//! - Hear (a service): `state.events.subscribe()` yields every event of this
//!   node in order (internal ones too, local and from other nodes, see
//!   `Delivered::local`) and `EventKind::Resync` when the node may have missed
//!   some; `Lagged` means the same as a resync.
//! - Browser: `GET /internal/warden/events` (`sse`).

pub mod bus;
pub mod postgres;
pub mod sse;

use axum::Router;
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;
use warden_core::events::Event;
use warden_core::paths::EVENTS;

pub use bus::{Delivered, EventBus, MAX_STREAMS_PER_USER, RING_CAPACITY};

use crate::AppState;
use crate::db::Engine;

pub fn router() -> Router<AppState> {
    Router::new().route(&format!("/{EVENTS}"), get(sse::stream))
}

/// This node's event work until shutdown: on PostgreSQL, sending its events
/// to the other nodes and hearing theirs; and the Fleet bridge. Start it
/// before serving; after `EventBus::shut_down` the listener stops, after
/// `EventBus::close` the rest.
pub fn run_background(state: &AppState) -> impl Future<Output = ()> + Send + 'static {
    let bridge = bridge_fleet_events(state);
    let bus = state.events.clone();
    let db = state.db.clone();
    let engine = state.engine;
    let database_url = state.config.database_url.clone();
    async move {
        match engine {
            Engine::Postgres => {
                tokio::join!(bridge, postgres::send_notices(bus.clone(), db), postgres::listen(bus, database_url));
            }
            Engine::Sqlite => bridge.await,
        }
    }
}

/// Forwards Fleet's activity-log lines (`Hub::events`) onto the bus, for
/// `fleet:read`, until the bus is closed. Subscribes at once, so no line
/// published after this call is missed. (Stands in until Fleet publishes on
/// the bus itself.)
pub fn bridge_fleet_events(state: &AppState) -> impl Future<Output = ()> + Send + 'static {
    let mut lines = state.hub.events.subscribe();
    let bus = state.events.clone();
    async move {
        let mut closed = bus.closed_signal();
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Ok(line) => bus.publish(Event::agent_event(&line)),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the Fleet event bridge fell behind");
                        // Nobody got those lines: this node and the others catch up.
                        bus.notice_dropped();
                        bus.resync();
                    }
                    Err(RecvError::Closed) => return,
                },
                () = bus::stopped(&mut closed) => return,
            }
        }
    }
}

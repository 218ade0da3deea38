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

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use bus::{Delivered, EventBus, MAX_STREAMS_PER_USER, RING_CAPACITY};

use crate::AppState;
use crate::db::Engine;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sse::stream))
}

/// This node's event work until shutdown, on PostgreSQL: sending its events
/// to the other nodes and hearing theirs (on SQLite there is one node and
/// nothing to do). Start it before serving; after `EventBus::shut_down` the
/// listener stops, after `EventBus::close` the sender.
pub fn run_background(state: &AppState) -> impl Future<Output = ()> + Send + 'static {
    let bus = state.events.clone();
    let db = state.db.clone();
    let engine = state.engine;
    let database_url = state.config.database_url.clone();
    async move {
        if engine == Engine::Postgres {
            tokio::join!(postgres::send_notices(bus.clone(), db), postgres::listen(bus, database_url));
        }
    }
}

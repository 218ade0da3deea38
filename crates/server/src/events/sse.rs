//! `GET /internal/warden/events`: the browser's one server-sent-events stream,
//! filtered by the user's privileges.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use warden_core::authz::Role;
use warden_core::events::{EventKind, READY, RESET, StreamPosition};

use super::bus::{Delivered, EventBus, MAX_STREAMS_PER_USER, Start, StreamSlot, stopped};
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, Result};
use crate::http::openapi::SignedInErrors;

/// A comment this often keeps proxies and the browser from timing out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this long and the browser reconnects (with
/// `Last-Event-ID`, so nothing is lost): its user and roles are checked again,
/// so a signed-out or disabled user, or a taken role, stops receiving soon.
pub const MAX_STREAM_AGE: Duration = Duration::from_secs(5 * 60);
/// How long the browser waits before reconnecting (the `retry:` field).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(2);
/// How long a user whose streams are all in use should wait.
const RETRY_AFTER_SECS: u64 = 10;

/// The events the user may see, as they happen on any node. Starts with
/// `ready` (or, with a `Last-Event-ID` header from this node still in its
/// last 1,000 events, with the events after it; otherwise with `reset`).
/// Every event has an `id` (`<node>:<sequence>`); a client that reads too
/// slowly gets `reset`. Keep-alive comments every 15 s; the stream ends after
/// 5 minutes (the browser reconnects) and when the server stops. At most 20
/// streams per user on one node.
#[utoipa::path(get, path = "/internal/warden/events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header,
        description = "The `id` of the last event received (`EventSource` sends it when it reconnects): replay what came after it")),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "Server-sent events: `ready`, `reset`, and one per `EventKind`: `agent_event` (`data` is an `AgentEvent`), `agent_changed` (`{agent_id}`), `task_changed` (`{id}`), `connector_changed` (`{id}`)",
            body = String,
            headers(("Cache-Control" = String, description = "`no-cache`"), ("X-Accel-Buffering" = String, description = "`no`: nginx passes events on at once"))),
        SignedInErrors,
        (status = 429, description = "The user has 20 streams open on this node, or too many failed sign-ins",
            body = warden_core::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
pub async fn stream(State(state): State<AppState>, user: AuthUser, headers: HeaderMap) -> Result<Response> {
    let Some(slot) = state.events.claim_stream(&user.id) else {
        return Err(ApiError::TooManyRequests {
            message: format!("Too many open event streams (at most {MAX_STREAMS_PER_USER} per user)"),
            retry_after_secs: RETRY_AFTER_SECS,
        });
    };
    let last_event_id = headers.get("last-event-id").map(|value| value.to_str().unwrap_or_default().to_owned());
    let events = event_stream(state.events.clone(), user.roles, last_event_id.as_deref(), slot, MAX_STREAM_AGE);
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    Ok(([(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"))], sse).into_response())
}

/// What one stream has yet to send and where it listens.
struct Feed {
    bus: Arc<EventBus>,
    roles: Vec<Role>,
    queued: VecDeque<SseEvent>,
    live: tokio::sync::broadcast::Receiver<Arc<Delivered>>,
    /// Live events up to here are already covered (replayed, or before a `reset`).
    covered: u64,
    shutdown: tokio::sync::watch::Receiver<bool>,
    ends_at: Instant,
    _slot: StreamSlot,
}

/// The stream for a user holding `roles` whose browser last saw `last_event_id`.
pub fn event_stream(
    bus: Arc<EventBus>,
    roles: Vec<Role>,
    last_event_id: Option<&str>,
    slot: StreamSlot,
    max_age: Duration,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let opened = bus.open_stream(last_event_id);
    let mut queued = VecDeque::from([SseEvent::default().retry(RECONNECT_AFTER)]);
    match opened.start {
        Start::Fresh(position) => queued.push_back(signal(READY, &position)),
        Start::Reset(position) => queued.push_back(signal(RESET, &position)),
        Start::Replay(events) => queued.extend(events.iter().filter_map(|delivered| to_sse(&bus, &roles, delivered))),
    }
    let feed = Feed {
        shutdown: bus.shutdown_signal(),
        bus,
        roles,
        queued,
        live: opened.live,
        covered: opened.position,
        ends_at: Instant::now() + max_age,
        _slot: slot,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        let next = feed.next().await?;
        Some((Ok(next), feed))
    })
}

impl Feed {
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some(queued) = self.queued.pop_front() {
            return Some(queued);
        }
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut self.shutdown) => return None,
                () = tokio::time::sleep_until(self.ends_at) => return None,
                received = self.live.recv() => match received {
                    Ok(delivered) => {
                        let Some(seq) = delivered.seq.filter(|seq| *seq > self.covered) else { continue };
                        self.covered = seq;
                        if let Some(event) = to_sse(&self.bus, &self.roles, &delivered) {
                            return Some(event);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // Too slow: skip to now (a new receiver, not the full
                        // backlog of the old one) and let the client refetch.
                        self.live = self.live.resubscribe();
                        let position = self.bus.position();
                        tracing::debug!(missed, "event stream lagged; sending reset");
                        self.covered = position.sequence;
                        return Some(signal(RESET, &position));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// `ready` or `reset`: a signal of the stream itself, at `position`.
fn signal(name: &str, position: &StreamPosition) -> SseEvent {
    SseEvent::default().event(name).id(position.to_string()).data("{}")
}

/// The SSE form of `delivered` for a user holding `roles`, if they may see it:
/// a resync is a `reset` for everyone.
fn to_sse(bus: &EventBus, roles: &[Role], delivered: &Delivered) -> Option<SseEvent> {
    let seq = delivered.seq?;
    let position = StreamPosition { node: bus.node_id().to_owned(), sequence: seq };
    if delivered.event.kind == EventKind::Resync {
        return Some(signal(RESET, &position));
    }
    if !delivered.event.visible_to(roles) {
        return None;
    }
    Some(SseEvent::default().event(delivered.event.kind.as_str()).id(position.to_string()).data(delivered.event.payload.to_string()))
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use warden_core::authz::Privilege;
    use warden_core::events::{Audience, Event};
    use warden_core::fleet_api::{AgentEvent, AgentEventKind};

    use super::*;
    use crate::db::Engine;

    fn line(agent_id: &str) -> AgentEvent {
        AgentEvent {
            id: format!("e-{agent_id}"),
            agent_id: agent_id.into(),
            kind: AgentEventKind::Enrolled,
            message: "Enrolled".into(),
            actor: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// The stream as the browser reads it: one text per event.
    fn wire(stream: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> impl Stream<Item = String> + Unpin {
        Sse::new(stream).into_response().into_body().into_data_stream().map(|frame| String::from_utf8_lossy(&frame.expect("a frame")).into_owned())
    }

    /// The next event that has data (skips the `retry:` one), in time.
    async fn next(stream: &mut (impl Stream<Item = String> + Unpin)) -> String {
        loop {
            let text = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event in time").expect("the stream goes on");
            if text.contains("data:") {
                return text;
            }
        }
    }

    #[tokio::test]
    async fn users_receive_only_what_their_roles_allow() {
        let bus = Arc::new(EventBus::new(Engine::Sqlite));
        let slot = bus.claim_stream("viewer").expect("a slot");
        let mut viewer = wire(event_stream(bus.clone(), vec![Role::Viewer], None, slot, MAX_STREAM_AGE));
        assert!(next(&mut viewer).await.contains("event: ready"));
        bus.publish(Event::agent_action_queued("internal"));
        bus.publish(Event::new(EventKind::AgentEvent, Audience::Privilege(Privilege::UsersAdmin), &line("admins-only")));
        bus.publish(Event::agent_event(&line("for-fleet-readers")));
        let got = next(&mut viewer).await;
        assert!(got.contains("event: agent_event") && got.contains("for-fleet-readers"), "{got}");
        assert!(got.contains(&format!("id: {}:2", bus.node_id())), "{got}");
    }

    #[tokio::test]
    async fn streams_end_on_shutdown_and_when_they_are_old() {
        let bus = Arc::new(EventBus::new(Engine::Sqlite));
        let slot = bus.claim_stream("u").expect("a slot");
        let mut stream = wire(event_stream(bus.clone(), vec![Role::Viewer], None, slot, MAX_STREAM_AGE));
        assert!(next(&mut stream).await.contains("event: ready"));
        bus.shut_down();
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("ends in time");
        assert!(end.is_none());
        drop(stream);
        assert_eq!(bus.open_streams(), 0);

        let bus = Arc::new(EventBus::new(Engine::Sqlite));
        let slot = bus.claim_stream("u").expect("a slot");
        let mut stream = wire(event_stream(bus.clone(), vec![Role::Viewer], None, slot, Duration::from_millis(50)));
        assert!(next(&mut stream).await.contains("event: ready"));
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("ends in time");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_slow_stream_gets_reset() {
        let bus = Arc::new(EventBus::new(Engine::Sqlite));
        let slot = bus.claim_stream("u").expect("a slot");
        let mut stream = wire(event_stream(bus.clone(), vec![Role::Viewer], None, slot, MAX_STREAM_AGE));
        assert!(next(&mut stream).await.contains("event: ready"));
        let total = super::super::bus::STREAM_BACKLOG + 10;
        for n in 0..total {
            bus.publish(Event::agent_event(&line(&n.to_string())));
        }
        let got = next(&mut stream).await;
        assert!(got.contains("event: reset") && got.contains(&format!("id: {}:{total}", bus.node_id())), "{got}");
        // Then live again.
        bus.publish(Event::agent_event(&line("after")));
        let got = next(&mut stream).await;
        assert!(got.contains("after"), "{got}");
    }
}

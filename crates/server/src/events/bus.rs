//! The in-process bus: one node's events in order, a bounded ring of the
//! recent browser-visible ones for `Last-Event-ID` replays, and the count of
//! open streams per user.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc, watch};
use warden_core::events::{Event, EventKind, StreamPosition};

use crate::db::Engine;

/// Browser-visible events kept for replays, per node.
pub const RING_CAPACITY: usize = 1_000;
/// Events a stream may fall behind by before it gets a `reset`.
pub const STREAM_BACKLOG: usize = 1_024;
/// Events a service subscriber may fall behind by before it sees `Lagged`.
pub const SERVICE_BACKLOG: usize = 16_384;
/// Open streams per user on one node; more is a 429.
pub const MAX_STREAMS_PER_USER: usize = 20;
/// NOTIFYs waiting to be sent; beyond it an event does not reach the other
/// nodes, and they are told to resync once the queue moves again.
const NOTICE_QUEUE: usize = 10_000;

/// An event as this node delivers it.
#[derive(Debug)]
pub struct Delivered {
    /// Its place on this node's stream; `None` for internal events, which
    /// are never streamed.
    pub seq: Option<u64>,
    /// Published on this node; `false`: it came from another node.
    pub local: bool,
    pub event: Event,
}

/// The recent browser-visible events and the numbering of this node's stream.
struct Ring {
    /// The last sequence number handed out (0: none yet).
    last: u64,
    /// Every streamed event from `oldest` on is in `events`: a client that
    /// saw up to `oldest - 1` can be replayed to.
    oldest: u64,
    events: VecDeque<Arc<Delivered>>,
}

/// Where a new stream starts.
pub enum Start {
    /// No `Last-Event-ID`: from now on.
    Fresh(StreamPosition),
    /// The events after the client's `Last-Event-ID`, all still in the ring.
    Replay(Vec<Arc<Delivered>>),
    /// An id from another node, from before the ring, or unreadable.
    Reset(StreamPosition),
}

/// A new stream: where it starts and its subscription, taken together so no
/// event falls between the two.
pub struct Opened {
    pub start: Start,
    pub position: u64,
    pub live: broadcast::Receiver<Arc<Delivered>>,
}

/// One node's event bus. Publish after the commit; `subscribe` to hear every
/// event (from this node and, on PostgreSQL, from the others).
pub struct EventBus {
    node_id: String,
    ring: Mutex<Ring>,
    /// Browser-visible events and resyncs, numbered.
    streamed: broadcast::Sender<Arc<Delivered>>,
    /// Every event, for services.
    services: broadcast::Sender<Arc<Delivered>>,
    /// NOTIFY payloads for the other nodes (PostgreSQL only); taken by `close`.
    notices: Mutex<Option<mpsc::Sender<String>>>,
    notices_inbox: Mutex<Option<mpsc::Receiver<String>>>,
    /// Some event did not reach the other nodes.
    notices_dropped: AtomicBool,
    /// Streams and the listener stop.
    shutdown: watch::Sender<bool>,
    /// No more publishing: the bridge and the NOTIFY sender stop.
    closed: watch::Sender<bool>,
    /// Open streams per user id.
    streams: Mutex<HashMap<String, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can panic halfway; a poisoned lock holds consistent data.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventBus {
    /// A bus for this node; on PostgreSQL its events also go to the other
    /// nodes (see `events::run_background`).
    pub fn new(engine: Engine) -> EventBus {
        let (notices, inbox) = match engine {
            Engine::Postgres => {
                let (sender, inbox) = mpsc::channel(NOTICE_QUEUE);
                (Some(sender), Some(inbox))
            }
            Engine::Sqlite => (None, None),
        };
        EventBus {
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            ring: Mutex::new(Ring { last: 0, oldest: 1, events: VecDeque::new() }),
            streamed: broadcast::channel(STREAM_BACKLOG).0,
            services: broadcast::channel(SERVICE_BACKLOG).0,
            notices: Mutex::new(notices),
            notices_inbox: Mutex::new(inbox),
            notices_dropped: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            closed: watch::channel(false).0,
            streams: Mutex::default(),
        }
    }

    /// This node's id, random per process: the `<node>` of stream ids and the
    /// origin of its NOTIFYs.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Delivers `event` on this node and sends it to the other nodes. Call it
    /// after the commit of what the event reports. Never blocks.
    /// Publishing `Event::resync()` resyncs this node only.
    pub fn publish(&self, event: Event) {
        if event.kind == EventKind::Resync {
            self.resync();
            return;
        }
        if let Some(sender) = lock(&self.notices).as_ref() {
            let notice = super::postgres::encode(&self.node_id, &event);
            if sender.try_send(notice).is_err() {
                self.notices_dropped.store(true, Ordering::Relaxed);
                tracing::warn!(kind = %event.kind.as_str(), "the NOTIFY queue is full: this event does not reach the other nodes");
            }
        }
        self.deliver(event, true);
    }

    /// Delivers on this node only (an event from another node, or local).
    pub(crate) fn deliver(&self, event: Event, local: bool) {
        if event.is_internal() && event.kind != EventKind::Resync {
            let _ = self.services.send(Arc::new(Delivered { seq: None, local, event }));
            return;
        }
        let delivered = {
            let mut ring = lock(&self.ring);
            ring.last += 1;
            let delivered = Arc::new(Delivered { seq: Some(ring.last), local, event });
            if delivered.event.kind == EventKind::Resync {
                // What was missed is not in the ring: nobody replays across a resync.
                ring.events.clear();
                ring.oldest = ring.last + 1;
            } else {
                ring.events.push_back(delivered.clone());
                while ring.events.len() > RING_CAPACITY {
                    if let Some(dropped) = ring.events.pop_front() {
                        ring.oldest = dropped.seq.unwrap_or(ring.oldest) + 1;
                    }
                }
            }
            // Sent under the lock, so subscribers see sequence order and `open_stream` sees no gap.
            let _ = self.streamed.send(delivered.clone());
            delivered
        };
        let _ = self.services.send(delivered);
    }

    /// This node may have missed events: tells services (`EventKind::Resync`)
    /// and every open stream (`reset`), and forgets the ring.
    pub fn resync(&self) {
        tracing::info!("events: resync");
        self.deliver(Event::resync(), true);
    }

    /// Every event delivered on this node from now on, in order: browser-visible
    /// and internal ones, local and from other nodes, and `EventKind::Resync`.
    /// A receiver that falls `SERVICE_BACKLOG` behind gets `Lagged`: treat it
    /// like a resync.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Delivered>> {
        self.services.subscribe()
    }

    /// This node's stream position now.
    pub fn position(&self) -> StreamPosition {
        self.at(lock(&self.ring).last)
    }

    fn at(&self, sequence: u64) -> StreamPosition {
        StreamPosition { node: self.node_id.clone(), sequence }
    }

    /// Subscribes a new stream and says where it starts, given the client's
    /// `Last-Event-ID`.
    pub fn open_stream(&self, last_event_id: Option<&str>) -> Opened {
        let ring = lock(&self.ring);
        let live = self.streamed.subscribe();
        let position = ring.last;
        let start = match last_event_id.map(StreamPosition::parse) {
            None => Start::Fresh(self.at(position)),
            Some(Some(seen)) if seen.node == self.node_id && seen.sequence <= ring.last && seen.sequence + 1 >= ring.oldest => {
                Start::Replay(ring.events.iter().filter(|d| d.seq.is_some_and(|seq| seq > seen.sequence)).cloned().collect())
            }
            Some(_) => Start::Reset(self.at(position)),
        };
        Opened { start, position, live }
    }

    /// A place for one more stream of `user_id`, or `None` if they have
    /// `MAX_STREAMS_PER_USER` open on this node. Dropping it frees the place.
    pub fn claim_stream(self: &Arc<Self>, user_id: &str) -> Option<StreamSlot> {
        let mut streams = lock(&self.streams);
        let open = streams.entry(user_id.to_owned()).or_default();
        if *open >= MAX_STREAMS_PER_USER {
            return None;
        }
        *open += 1;
        Some(StreamSlot { bus: self.clone(), user_id: user_id.to_owned() })
    }

    /// Open streams on this node, all users.
    pub fn open_streams(&self) -> usize {
        lock(&self.streams).values().sum()
    }

    /// Ends every stream and stops listening to the other nodes (the server
    /// is stopping; axum waits for open streams).
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// After the last publish (tasks have stopped): the NOTIFY sender sends
    /// what is queued and ends.
    pub fn close(&self) {
        lock(&self.notices).take();
        let _ = self.closed.send(true);
    }

    pub fn closed_signal(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub(crate) fn take_notices_inbox(&self) -> Option<mpsc::Receiver<String>> {
        lock(&self.notices_inbox).take()
    }

    /// Whether some event failed to reach the other nodes since the last call.
    pub(crate) fn take_notices_dropped(&self) -> bool {
        self.notices_dropped.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn notice_dropped(&self) {
        self.notices_dropped.store(true, Ordering::Relaxed);
    }
}

/// Waits until `signal` is (or already was) true, or its sender is gone.
pub async fn stopped(signal: &mut watch::Receiver<bool>) {
    loop {
        if *signal.borrow_and_update() {
            return;
        }
        if signal.changed().await.is_err() {
            return;
        }
    }
}

/// One open stream of a user; frees its place when dropped.
pub struct StreamSlot {
    bus: Arc<EventBus>,
    user_id: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = lock(&self.bus.streams);
        if let Some(open) = streams.get_mut(&self.user_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use warden_core::fleet_api::{AgentEvent, AgentEventKind};

    use super::*;

    fn line(agent_id: &str) -> Event {
        Event::agent_event(&AgentEvent {
            id: format!("e-{agent_id}"),
            agent_id: agent_id.into(),
            kind: AgentEventKind::Enrolled,
            message: "Enrolled".into(),
            actor: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        })
    }

    fn seqs(start: &Start) -> Vec<u64> {
        match start {
            Start::Replay(events) => events.iter().filter_map(|d| d.seq).collect(),
            _ => panic!("expected a replay"),
        }
    }

    #[test]
    fn last_event_ids_replay_reset_or_start_fresh() {
        let bus = EventBus::new(Engine::Sqlite);
        let node = bus.node_id().to_owned();
        bus.publish(line("a"));
        bus.publish(Event::agent_action_queued("a"));
        bus.publish(line("b"));
        bus.publish(line("c"));
        assert!(matches!(bus.open_stream(None).start, Start::Fresh(p) if p.sequence == 3));
        assert_eq!(seqs(&bus.open_stream(Some(&format!("{node}:0"))).start), [1, 2, 3]);
        assert_eq!(seqs(&bus.open_stream(Some(&format!("{node}:2"))).start), [3]);
        assert_eq!(seqs(&bus.open_stream(Some(&format!("{node}:3"))).start), Vec::<u64>::new());
        for id in [format!("{node}:4"), "elsewhere:1".to_owned(), "garbage".to_owned(), String::new()] {
            assert!(matches!(bus.open_stream(Some(&id)).start, Start::Reset(p) if p.sequence == 3), "{id:?}");
        }
    }

    #[test]
    fn the_ring_keeps_only_the_newest_events() {
        let bus = EventBus::new(Engine::Sqlite);
        let node = bus.node_id().to_owned();
        for n in 0..RING_CAPACITY + 5 {
            bus.publish(line(&n.to_string()));
        }
        let last = (RING_CAPACITY + 5) as u64;
        // Seen up to 5: 6.. are all still there.
        assert_eq!(seqs(&bus.open_stream(Some(&format!("{node}:5"))).start).len(), RING_CAPACITY);
        assert!(matches!(bus.open_stream(Some(&format!("{node}:4"))).start, Start::Reset(p) if p.sequence == last));
    }

    #[test]
    fn a_resync_forgets_the_ring_and_reaches_streams_and_services() {
        let bus = EventBus::new(Engine::Sqlite);
        let node = bus.node_id().to_owned();
        let mut services = bus.subscribe();
        let mut stream = bus.open_stream(None).live;
        bus.publish(line("a"));
        bus.resync();
        bus.publish(line("b"));
        assert!(matches!(bus.open_stream(Some(&format!("{node}:1"))).start, Start::Reset(_)));
        assert_eq!(seqs(&bus.open_stream(Some(&format!("{node}:2"))).start), [3]);
        let kinds: Vec<EventKind> = std::iter::from_fn(|| stream.try_recv().ok()).map(|d| d.event.kind).collect();
        assert_eq!(kinds, [EventKind::AgentEvent, EventKind::Resync, EventKind::AgentEvent]);
        let kinds: Vec<EventKind> = std::iter::from_fn(|| services.try_recv().ok()).map(|d| d.event.kind).collect();
        assert_eq!(kinds, [EventKind::AgentEvent, EventKind::Resync, EventKind::AgentEvent]);
    }

    #[test]
    fn internal_events_reach_services_only() {
        let bus = EventBus::new(Engine::Sqlite);
        let mut services = bus.subscribe();
        let mut stream = bus.open_stream(None).live;
        bus.publish(Event::agent_action_queued("a"));
        let delivered = services.try_recv().ok();
        assert!(delivered.as_ref().is_some_and(|d| d.local && d.seq.is_none() && d.event.kind == EventKind::AgentActionQueued));
        assert!(stream.try_recv().is_err());
        assert_eq!(bus.position().sequence, 0);
    }

    #[test]
    fn streams_per_user_are_bounded_and_freed() {
        let bus = Arc::new(EventBus::new(Engine::Sqlite));
        let slots: Vec<StreamSlot> = (0..MAX_STREAMS_PER_USER).filter_map(|_| bus.claim_stream("u1")).collect();
        assert_eq!(slots.len(), MAX_STREAMS_PER_USER);
        assert!(bus.claim_stream("u1").is_none());
        assert!(bus.claim_stream("u2").is_some());
        drop(slots);
        assert_eq!(bus.open_streams(), 0);
        assert!(bus.claim_stream("u1").is_some());
    }

    #[test]
    fn sqlite_queues_no_notices() {
        let bus = EventBus::new(Engine::Sqlite);
        assert!(bus.take_notices_inbox().is_none());
        let bus = EventBus::new(Engine::Postgres);
        let mut inbox = bus.take_notices_inbox().expect("a NOTIFY queue on PostgreSQL");
        bus.publish(line("a"));
        bus.resync();
        assert!(inbox.try_recv().is_ok_and(|notice| notice.contains(bus.node_id())));
        assert!(inbox.try_recv().is_err(), "a resync stays on its node");
    }
}

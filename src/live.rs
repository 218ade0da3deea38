//! Live pages: the tab's one server-sent-events stream (`paths::EVENTS`),
//! opened while a user is signed in. A page asks for a topic and gets a
//! counter to key its data on: it goes up when an event of that topic
//! arrives, and for every topic when the stream starts (`ready`) or may have
//! missed something (`reset`). Bursts (10,000 agents checking in) are
//! gathered into one refetch per second; response actions into one per
//! 200 ms, so an open console's cancel selector shows a new action well
//! within a second. The browser's `EventSource`
//! reconnects by itself and sends `Last-Event-ID`, so nothing is missed.

use std::time::Duration;

use leptos::prelude::*;
use warden_core::events::{EventKind, READY, RESET};
use warden_core::paths;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// What a page shows, by the events that change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Agents: their list, status, facts and activity.
    Fleet,
    /// Task health.
    Tasks,
    /// Connectors: their list, each one's runs and history.
    Connectors,
    /// Rules, their runs and their alerts.
    Rules,
    /// Cases.
    Cases,
    /// Response actions: the history, each action's state and output, and
    /// an agent's pending actions.
    ResponseActions,
    /// Cloud connectors and their verifications.
    CloudConnectors,
}

/// How many topics there are (the length of the per-topic arrays).
const TOPICS: usize = 7;

impl Topic {
    const ALL: [Topic; TOPICS] =
        [Topic::Fleet, Topic::Tasks, Topic::Connectors, Topic::Rules, Topic::Cases, Topic::ResponseActions, Topic::CloudConnectors];

    /// At most one refetch of the topic this often.
    fn gather(self) -> Duration {
        match self {
            Topic::ResponseActions => Duration::from_millis(200),
            _ => Duration::from_secs(1),
        }
    }

    fn of(kind: EventKind) -> Option<Topic> {
        match kind {
            EventKind::AgentEvent | EventKind::AgentChanged => Some(Topic::Fleet),
            EventKind::TaskChanged => Some(Topic::Tasks),
            EventKind::ConnectorChanged => Some(Topic::Connectors),
            EventKind::RuleChanged => Some(Topic::Rules),
            EventKind::CaseChanged => Some(Topic::Cases),
            EventKind::ResponseActionChanged => Some(Topic::ResponseActions),
            EventKind::CloudConnectorChanged => Some(Topic::CloudConnectors),
            EventKind::AgentActionQueued | EventKind::Resync => None,
        }
    }
}

#[derive(Clone, Copy)]
struct Live {
    versions: [RwSignal<u64>; TOPICS],
    /// Whether a refetch is already due for the topic.
    due: StoredValue<[bool; TOPICS]>,
}

impl Live {
    fn bump_soon(&self, topic: Topic) {
        let index = topic as usize;
        if self.due.with_value(|due| due[index]) {
            return;
        }
        self.due.update_value(|due| due[index] = true);
        let this = *self;
        set_timeout(
            move || {
                this.due.update_value(|due| due[index] = false);
                this.versions[index].update(|v| *v += 1);
            },
            topic.gather(),
        );
    }
}

/// Opens the stream for as long as the calling component (the signed-in
/// layout) lives.
pub fn provide_live() {
    let live = Live { versions: std::array::from_fn(|_| RwSignal::new(0)), due: StoredValue::new([false; TOPICS]) };
    provide_context(live);
    let Ok(source) = web_sys::EventSource::new(paths::EVENTS) else { return };
    let mut listeners = Vec::new();
    for name in [READY, RESET] {
        let listener = Closure::<dyn Fn()>::new(move || Topic::ALL.into_iter().for_each(|topic| live.bump_soon(topic)));
        let _ = source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        listeners.push(listener);
    }
    for kind in EventKind::ALL {
        let Some(topic) = Topic::of(kind) else { continue };
        let listener = Closure::<dyn Fn()>::new(move || live.bump_soon(topic));
        let _ = source.add_event_listener_with_callback(kind.as_str(), listener.as_ref().unchecked_ref());
        listeners.push(listener);
    }
    // Kept (with its listeners) until the layout goes, then closed.
    let kept = StoredValue::new_local((source, listeners));
    on_cleanup(move || kept.with_value(|(source, _)| source.close()));
}

/// A counter that goes up when what `topic` covers may have changed: track
/// it in what should refetch.
///
/// It is the signed-in layout's own signal, not a `Signal` made for the
/// page that asked: a page's resource can run once more after the page was
/// left (another resource still awaiting it keeps it alive), and reading a
/// value the page owned would then panic and stop the app.
#[derive(Clone, Copy)]
pub struct LiveVersion(Option<RwSignal<u64>>);

impl LiveVersion {
    pub fn track(&self) {
        if let Some(version) = self.0 {
            version.track();
        }
    }
}

pub fn use_live(topic: Topic) -> LiveVersion {
    LiveVersion(use_context::<Live>().map(|live| live.versions[topic as usize]))
}

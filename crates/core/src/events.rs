//! Live events: what the server pushes to the browser over its one
//! server-sent-events stream (`paths::EVENTS`), and what Warden's services and
//! nodes tell each other. The set of kinds is closed; each event names its
//! [`Audience`]: the privilege a browser needs to receive it, every signed-in
//! user, or none for internal events (such as a check-in wake-up), which never
//! leave the server.
//!
//! On the stream, an event is `event: <kind>` (see [`EventKind::as_str`]),
//! `id: <node>:<sequence>` and `data: <payload as JSON>`, plus two signals of
//! the stream itself: [`READY`] when a stream starts fresh and [`RESET`] when
//! the client may have missed events (its `Last-Event-ID` is from another node
//! or too old, it read too slowly, or the node lost touch with the others).
//! A client opens the stream first and (re)fetches what it shows on `ready`
//! and on `reset`; in between, the events keep it current, and a reconnect
//! with `Last-Event-ID` (the browser's `EventSource` sends it) replays what it
//! missed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authz::{Privilege, Role, has_privilege};
use crate::fleet_api::AgentEvent;

/// The stream's first event when it starts without a usable `Last-Event-ID`:
/// fetch what you show now. Its `id` is the stream's position.
pub const READY: &str = "ready";
/// You may have missed events: fetch what you show again. Its `id` is the
/// stream's position.
pub const RESET: &str = "reset";

/// What an event is about. Serialized (and named on the stream) in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new line of an agent's activity log; the payload is an [`AgentEvent`].
    AgentEvent,
    /// An action was queued (and committed) for an agent: wake its check-in,
    /// wherever it waits. Internal; the payload is an [`AgentActionQueued`].
    AgentActionQueued,
    /// What an analyst sees of an agent changed without a line in its log
    /// (its check-in status, message or metadata); the payload is an
    /// [`AgentChanged`].
    AgentChanged,
    /// A task started, finished or was asked to run now; the payload is a
    /// [`TaskChanged`].
    TaskChanged,
    /// A connector was created, changed, deleted or run; the payload is a
    /// [`ConnectorChanged`].
    ConnectorChanged,
    /// A case was opened, changed, commented on, given alerts or deleted;
    /// the payload is a [`CaseChanged`].
    CaseChanged,
    /// A rule was saved, enabled, disabled, deleted or ran, or its alerts
    /// changed; the payload is a [`RuleChanged`].
    RuleChanged,
    /// A response action was created or its state changed (an agent
    /// answered, it was cancelled or expired); the payload is a
    /// [`ResponseActionChanged`].
    ResponseActionChanged,
    /// A cloud connector was created, changed or deleted, or a verification
    /// of it started or ended; the payload is a [`CloudConnectorChanged`].
    CloudConnectorChanged,
    /// This node may have missed events (its link to the other nodes was
    /// down): consumers look again at what they keep. Internal and local to a
    /// node; browsers get a [`RESET`] instead. No payload.
    Resync,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::AgentEvent,
        EventKind::AgentActionQueued,
        EventKind::AgentChanged,
        EventKind::TaskChanged,
        EventKind::ConnectorChanged,
        EventKind::CaseChanged,
        EventKind::RuleChanged,
        EventKind::ResponseActionChanged,
        EventKind::CloudConnectorChanged,
        EventKind::Resync,
    ];

    /// The name of the `event:` field on the stream.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AgentEvent => "agent_event",
            EventKind::AgentActionQueued => "agent_action_queued",
            EventKind::AgentChanged => "agent_changed",
            EventKind::TaskChanged => "task_changed",
            EventKind::ConnectorChanged => "connector_changed",
            EventKind::CaseChanged => "case_changed",
            EventKind::RuleChanged => "rule_changed",
            EventKind::ResponseActionChanged => "response_action_changed",
            EventKind::CloudConnectorChanged => "cloud_connector_changed",
            EventKind::Resync => "resync",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Who receives an event in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Nobody: it never leaves the server.
    Internal,
    /// Every signed-in user (what any of them may read, such as task health).
    SignedIn,
    /// Users holding this privilege.
    Privilege(Privilege),
}

/// One event: what it is about, who may see it, and its JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub audience: Audience,
    /// The kind's payload, or `null` when the event came from another node and
    /// was too large to cross between nodes: then refetch what the kind names.
    pub payload: Value,
}

/// The payload of [`EventKind::AgentActionQueued`]: the agent, or `None`
/// for many at once (a bulk action): look in the actions table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentActionQueued {
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// The payload of [`EventKind::AgentChanged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentChanged {
    pub agent_id: String,
}

/// The payload of [`EventKind::TaskChanged`]: the task's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChanged {
    pub id: String,
}

/// The payload of [`EventKind::ConnectorChanged`]: the connector's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorChanged {
    pub id: String,
}

/// The payload of [`EventKind::CaseChanged`]: the case's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseChanged {
    pub id: String,
}

/// The payload of [`EventKind::RuleChanged`]: the rule's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChanged {
    pub id: String,
}

/// The payload of [`EventKind::CloudConnectorChanged`]: the connector's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudConnectorChanged {
    pub id: String,
}

/// The payload of [`EventKind::ResponseActionChanged`]: the action and its
/// target agents (at most 100 listed; more is `[]`, meaning refetch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseActionChanged {
    pub id: String,
    #[serde(default)]
    pub agent_ids: Vec<String>,
}

impl Event {
    pub fn new(kind: EventKind, audience: Audience, payload: &impl Serialize) -> Event {
        Event { kind, audience, payload: serde_json::to_value(payload).unwrap_or(Value::Null) }
    }

    /// A new activity-log line, for whoever may read Fleet.
    pub fn agent_event(line: &AgentEvent) -> Event {
        Event::new(EventKind::AgentEvent, Audience::Privilege(Privilege::FleetRead), line)
    }

    /// An agent's facts changed, for whoever may read Fleet.
    pub fn agent_changed(agent_id: &str) -> Event {
        Event::new(EventKind::AgentChanged, Audience::Privilege(Privilege::FleetRead), &AgentChanged { agent_id: agent_id.to_owned() })
    }

    /// A task's health changed; any signed-in user may read task health.
    pub fn task_changed(id: &str) -> Event {
        Event::new(EventKind::TaskChanged, Audience::SignedIn, &TaskChanged { id: id.to_owned() })
    }

    /// A connector changed or ran, for whoever may read connectors.
    pub fn connector_changed(id: &str) -> Event {
        Event::new(EventKind::ConnectorChanged, Audience::Privilege(Privilege::ActionsRead), &ConnectorChanged { id: id.to_owned() })
    }

    /// A case changed (or was deleted), for whoever may read cases.
    pub fn case_changed(id: &str) -> Event {
        Event::new(EventKind::CaseChanged, Audience::Privilege(Privilege::CasesRead), &CaseChanged { id: id.to_owned() })
    }

    /// A rule or its alerts changed, for whoever may read rules.
    pub fn rule_changed(id: &str) -> Event {
        Event::new(EventKind::RuleChanged, Audience::Privilege(Privilege::RulesRead), &RuleChanged { id: id.to_owned() })
    }

    /// A response action changed, for whoever may read the history.
    pub fn response_action_changed(id: &str, agent_ids: &[String]) -> Event {
        let agent_ids = if agent_ids.len() <= 100 { agent_ids.to_vec() } else { Vec::new() };
        Event::new(
            EventKind::ResponseActionChanged,
            Audience::Privilege(Privilege::ResponseActionsLogRead),
            &ResponseActionChanged { id: id.to_owned(), agent_ids },
        )
    }

    /// A cloud connector or its verification changed, for whoever may read Fleet.
    pub fn cloud_connector_changed(id: &str) -> Event {
        Event::new(EventKind::CloudConnectorChanged, Audience::Privilege(Privilege::FleetRead), &CloudConnectorChanged { id: id.to_owned() })
    }

    /// A check-in wake-up (internal).
    pub fn agent_action_queued(agent_id: &str) -> Event {
        Event::new(EventKind::AgentActionQueued, Audience::Internal, &AgentActionQueued { agent_id: Some(agent_id.to_owned()) })
    }

    /// Check-in wake-ups for many agents at once (internal): one event, not
    /// one per agent.
    pub fn agent_actions_queued() -> Event {
        Event::new(EventKind::AgentActionQueued, Audience::Internal, &AgentActionQueued { agent_id: None })
    }

    /// The local catch-up signal (internal).
    pub fn resync() -> Event {
        Event { kind: EventKind::Resync, audience: Audience::Internal, payload: Value::Null }
    }

    /// Internal events never reach a browser.
    pub fn is_internal(&self) -> bool {
        self.audience == Audience::Internal
    }

    /// Whether a user holding `roles` receives it in the browser.
    pub fn visible_to(&self, roles: &[Role]) -> bool {
        match self.audience {
            Audience::Internal => false,
            Audience::SignedIn => true,
            Audience::Privilege(privilege) => has_privilege(roles, privilege),
        }
    }

    /// The payload as its type, e.g. `event.payload_as::<AgentEvent>()`;
    /// `None` if it is not one (or was left out between nodes).
    pub fn payload_as<T: DeserializeOwned>(&self) -> Option<T> {
        T::deserialize(&self.payload).ok()
    }
}

/// A stream position: `<node>:<sequence>`, the `id` of every event on the
/// stream. Sequences count per node, so a position means something only to
/// the node that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub node: String,
    pub sequence: u64,
}

impl StreamPosition {
    pub fn parse(id: &str) -> Option<StreamPosition> {
        let (node, sequence) = id.trim().rsplit_once(':')?;
        if node.is_empty() {
            return None;
        }
        Some(StreamPosition { node: node.to_owned(), sequence: sequence.parse().ok()? })
    }
}

impl std::fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.node, self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet_api::AgentEventKind;

    fn line() -> AgentEvent {
        AgentEvent {
            id: "e1".into(),
            agent_id: "a1".into(),
            kind: AgentEventKind::Enrolled,
            message: "Enrolled".into(),
            actor: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn who_receives_what() {
        let fleet = Event::agent_event(&line());
        let wake_up = Event::agent_action_queued("a1");
        let admin_only = Event::new(EventKind::AgentEvent, Audience::Privilege(Privilege::UsersAdmin), &line());
        let task = Event::task_changed("sessions_cleanup");
        for (event, roles, expected) in [
            (&task, &[Role::Viewer][..], true),
            (&task, &[][..], true),
            (&Event::agent_changed("a1"), &[Role::Viewer][..], true),
            (&Event::case_changed("c1"), &[Role::Viewer][..], true),
            (&Event::case_changed("c1"), &[Role::PlatformEngineer][..], true),
            (&Event::case_changed("c1"), &[][..], false),
            (&fleet, &[Role::Viewer][..], true),
            (&fleet, &[][..], false),
            (&wake_up, &[Role::Superuser][..], false),
            (&Event::resync(), &[Role::Superuser][..], false),
            (&admin_only, &[Role::Viewer, Role::PlatformEngineer][..], false),
            (&admin_only, &[Role::Viewer, Role::Superuser][..], true),
        ] {
            assert_eq!(event.visible_to(roles), expected, "{event:?} for {roles:?}");
        }
        assert!(wake_up.is_internal());
        assert!(!fleet.is_internal());
    }

    #[test]
    fn payloads_round_trip() {
        assert_eq!(Event::agent_event(&line()).payload_as::<AgentEvent>(), Some(line()));
        assert_eq!(Event::agent_action_queued("a1").payload_as::<AgentActionQueued>(), Some(AgentActionQueued { agent_id: Some("a1".into()) }));
        assert_eq!(Event::resync().payload_as::<AgentActionQueued>(), None);
        let wire = serde_json::to_string(&Event::agent_action_queued("a1")).unwrap_or_default();
        assert_eq!(wire, r#"{"kind":"agent_action_queued","audience":"internal","payload":{"agent_id":"a1"}}"#);
        let wire = serde_json::to_string(&Event::agent_changed("a1")).unwrap_or_default();
        assert_eq!(wire, r#"{"kind":"agent_changed","audience":{"privilege":"fleet:read"},"payload":{"agent_id":"a1"}}"#);
        let wire = serde_json::to_string(&Event::case_changed("c1")).unwrap_or_default();
        assert_eq!(wire, r#"{"kind":"case_changed","audience":{"privilege":"cases:read"},"payload":{"id":"c1"}}"#);
    }

    #[test]
    fn kinds_have_stable_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).ok(), Some(Value::from(kind.as_str())));
        }
    }

    #[test]
    fn positions_parse() {
        for (id, expected) in [
            ("abc:12", Some(("abc", 12))),
            (" abc:0 ", Some(("abc", 0))),
            ("abc", None),
            (":12", None),
            ("abc:", None),
            ("abc:-1", None),
            ("abc:x", None),
            ("", None),
        ] {
            let parsed = StreamPosition::parse(id);
            assert_eq!(parsed.as_ref().map(|p| (p.node.as_str(), p.sequence)), expected, "{id:?}");
        }
        assert_eq!(StreamPosition { node: "n".into(), sequence: 7 }.to_string(), "n:7");
    }
}

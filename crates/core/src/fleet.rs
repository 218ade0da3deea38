//! Fleet: agent status derivation (Kibana's order), the audit reasons an
//! agent may report as its final message, and the `kuery` subset the agent
//! list accepts. Pure: the server and the SPA call the same functions.

use serde::{Deserialize, Serialize};

/// An agent's status, as Kibana's `AgentStatusSchema`, plus `migrated` (the
/// agent reported it was enrolled into another Fleet: the security worry
/// behind the audit API, shown as its own status rather than as offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Online,
    Offline,
    Inactive,
    Enrolling,
    Unenrolling,
    Unenrolled,
    Updating,
    Degraded,
    Error,
    Uninstalled,
    Orphaned,
    Migrated,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 12] = [
        AgentStatus::Online,
        AgentStatus::Offline,
        AgentStatus::Inactive,
        AgentStatus::Enrolling,
        AgentStatus::Unenrolling,
        AgentStatus::Unenrolled,
        AgentStatus::Updating,
        AgentStatus::Degraded,
        AgentStatus::Error,
        AgentStatus::Uninstalled,
        AgentStatus::Orphaned,
        AgentStatus::Migrated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Offline => "offline",
            AgentStatus::Inactive => "inactive",
            AgentStatus::Enrolling => "enrolling",
            AgentStatus::Unenrolling => "unenrolling",
            AgentStatus::Unenrolled => "unenrolled",
            AgentStatus::Updating => "updating",
            AgentStatus::Degraded => "degraded",
            AgentStatus::Error => "error",
            AgentStatus::Uninstalled => "uninstalled",
            AgentStatus::Orphaned => "orphaned",
            AgentStatus::Migrated => "migrated",
        }
    }

    pub fn parse(text: &str) -> Option<AgentStatus> {
        AgentStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The label the UI shows; "Detached Endpoint" is Fleet's name for an
    /// endpoint whose agent is gone.
    pub fn label(self) -> &'static str {
        match self {
            AgentStatus::Orphaned => "Detached Endpoint",
            AgentStatus::Uninstalled => "Uninstalled",
            AgentStatus::Migrated => "Moved to another Fleet",
            AgentStatus::Online => "Online",
            AgentStatus::Offline => "Offline",
            AgentStatus::Inactive => "Inactive",
            AgentStatus::Enrolling => "Enrolling",
            AgentStatus::Unenrolling => "Unenrolling",
            AgentStatus::Unenrolled => "Unenrolled",
            AgentStatus::Updating => "Updating",
            AgentStatus::Degraded => "Degraded",
            AgentStatus::Error => "Error",
        }
    }

    /// Why an analyst should care, for the badge's tooltip.
    pub fn explanation(self) -> &'static str {
        match self {
            AgentStatus::Online => "Checking in normally.",
            AgentStatus::Offline => "Has not checked in recently; it may simply be switched off.",
            AgentStatus::Inactive => "Silent for longer than the policy's inactivity timeout.",
            AgentStatus::Enrolling => "Enrolled but has not checked in yet.",
            AgentStatus::Unenrolling => "Asked to unenroll; waiting for the agent to confirm.",
            AgentStatus::Unenrolled => "Removed from Fleet; its key no longer works.",
            AgentStatus::Updating => "Upgrading or applying a new policy.",
            AgentStatus::Degraded => "Running, but a component reports problems.",
            AgentStatus::Error => "Running, but reports an error.",
            AgentStatus::Uninstalled => "The agent reported that it was uninstalled from the host.",
            AgentStatus::Orphaned => "The endpoint is still running but its agent is gone: it no longer receives policy or actions.",
            AgentStatus::Migrated => "The agent reported that it was enrolled into another Fleet.",
        }
    }

    /// What an analyst must know before sending a response action to a host
    /// in this state (the console asks for a second Enter), or `None` when
    /// the agent should answer.
    pub fn response_warning(self) -> Option<&'static str> {
        match self {
            AgentStatus::Online | AgentStatus::Enrolling | AgentStatus::Updating | AgentStatus::Degraded | AgentStatus::Error => None,
            AgentStatus::Offline => Some("The action waits until the agent checks in again, and fails if it has not by the action's expiry."),
            AgentStatus::Inactive => Some("The agent has been silent for a long time: the action will likely expire unanswered."),
            AgentStatus::Unenrolling | AgentStatus::Unenrolled => Some("The agent is leaving Fleet: it will not answer."),
            AgentStatus::Uninstalled => Some("The agent was uninstalled from the host: nothing will run the action."),
            AgentStatus::Orphaned => Some("Detached Endpoint: the endpoint runs without its agent, so nothing delivers the action."),
            AgentStatus::Migrated => Some("The agent now belongs to another Fleet: it will not answer here."),
        }
    }

    /// Whether the host has lost protection in a way someone should look at
    /// (as opposed to being offline for a holiday).
    pub fn needs_attention(self) -> bool {
        matches!(self, AgentStatus::Uninstalled | AgentStatus::Orphaned | AgentStatus::Migrated | AgentStatus::Error)
    }
}

/// The final message an agent may send (`POST …/audit/unenroll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditReason {
    Uninstall,
    Orphaned,
    KeyRevoked,
    Migrated,
}

impl AuditReason {
    pub const ALL: [AuditReason; 4] = [AuditReason::Uninstall, AuditReason::Orphaned, AuditReason::KeyRevoked, AuditReason::Migrated];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditReason::Uninstall => "uninstall",
            AuditReason::Orphaned => "orphaned",
            AuditReason::KeyRevoked => "key_revoked",
            AuditReason::Migrated => "migrated",
        }
    }

    pub fn parse(text: &str) -> Option<AuditReason> {
        AuditReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The stored facts a status is derived from. Times are milliseconds since
/// the epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentFacts {
    pub active: bool,
    pub enrolled_at: i64,
    pub last_checkin: Option<i64>,
    pub last_checkin_status: Option<String>,
    pub unenrollment_started_at: Option<i64>,
    pub audit_unenrolled_reason: Option<AuditReason>,
    pub policy_revision: Option<i64>,
    pub upgrade_started_at: Option<i64>,
    pub upgraded_at: Option<i64>,
}

/// When silence turns into `offline` and `inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusThresholds {
    pub offline_after_ms: i64,
    pub inactive_after_ms: i64,
}

impl Default for StatusThresholds {
    /// Kibana: offline after 12 × 30 s polling threshold; inactive after the
    /// policy's inactivity timeout (default 14 days).
    fn default() -> Self {
        Self { offline_after_ms: 12 * 30_000, inactive_after_ms: 1_209_600_000 }
    }
}

/// The status of an agent at `now`, checked in Kibana's order: unenrolled,
/// inactive, the audit reasons (which win over offline), offline, updating,
/// enrolling, unenrolling, error, degraded, online.
pub fn derive_status(facts: &AgentFacts, now: i64, thresholds: StatusThresholds) -> AgentStatus {
    if !facts.active {
        return AgentStatus::Unenrolled;
    }
    let last_seen = facts.last_checkin.unwrap_or(facts.enrolled_at);
    let silent_for = now - last_seen;
    if silent_for > thresholds.inactive_after_ms {
        return AgentStatus::Inactive;
    }
    match facts.audit_unenrolled_reason {
        Some(AuditReason::Uninstall) => return AgentStatus::Uninstalled,
        Some(AuditReason::Orphaned) => return AgentStatus::Orphaned,
        Some(AuditReason::Migrated) => return AgentStatus::Migrated,
        Some(AuditReason::KeyRevoked) | None => {}
    }
    if silent_for > thresholds.offline_after_ms || facts.last_checkin_status.as_deref() == Some("disconnected") {
        return AgentStatus::Offline;
    }
    let upgrading = facts.upgrade_started_at.is_some() && facts.upgraded_at.is_none();
    if facts.policy_revision.is_none() || upgrading || facts.last_checkin_status.as_deref() == Some("updating") {
        return AgentStatus::Updating;
    }
    if facts.last_checkin.is_none() {
        return AgentStatus::Enrolling;
    }
    if facts.unenrollment_started_at.is_some() {
        return AgentStatus::Unenrolling;
    }
    match facts.last_checkin_status.as_deref() {
        Some("error") => AgentStatus::Error,
        Some("degraded") => AgentStatus::Degraded,
        _ => AgentStatus::Online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 10_000_000_000;
    const T: StatusThresholds = StatusThresholds { offline_after_ms: 360_000, inactive_after_ms: 1_209_600_000 };

    fn healthy() -> AgentFacts {
        AgentFacts {
            active: true,
            enrolled_at: NOW - 86_400_000,
            last_checkin: Some(NOW - 1_000),
            last_checkin_status: Some("online".into()),
            policy_revision: Some(1),
            ..AgentFacts::default()
        }
    }

    #[test]
    fn a_console_warns_before_sending_to_a_host_that_cannot_answer() {
        let warned: Vec<AgentStatus> = AgentStatus::ALL.into_iter().filter(|s| s.response_warning().is_some()).collect();
        use AgentStatus::*;
        assert_eq!(warned, vec![Offline, Inactive, Unenrolling, Unenrolled, Uninstalled, Orphaned, Migrated]);
        assert!(Orphaned.response_warning().is_some_and(|w| w.starts_with("Detached Endpoint")));
    }

    #[test]
    fn every_status_and_the_order_between_them() {
        let cases: Vec<(&str, AgentFacts, AgentStatus)> = vec![
            ("checking in", healthy(), AgentStatus::Online),
            (
                "inactive flag wins over everything but unenrolled",
                AgentFacts { active: false, last_checkin: Some(NOW - 2_000_000_000), ..healthy() },
                AgentStatus::Unenrolled,
            ),
            ("silent past the inactivity timeout", AgentFacts { last_checkin: Some(NOW - 1_300_000_000), ..healthy() }, AgentStatus::Inactive),
            (
                "inactive wins over uninstalled",
                AgentFacts { last_checkin: Some(NOW - 1_300_000_000), audit_unenrolled_reason: Some(AuditReason::Uninstall), ..healthy() },
                AgentStatus::Inactive,
            ),
            ("uninstalled", AgentFacts { audit_unenrolled_reason: Some(AuditReason::Uninstall), ..healthy() }, AgentStatus::Uninstalled),
            (
                "uninstalled wins over offline",
                AgentFacts { last_checkin: Some(NOW - 3_600_000), audit_unenrolled_reason: Some(AuditReason::Uninstall), ..healthy() },
                AgentStatus::Uninstalled,
            ),
            (
                "orphaned wins over offline",
                AgentFacts { last_checkin: Some(NOW - 3_600_000), audit_unenrolled_reason: Some(AuditReason::Orphaned), ..healthy() },
                AgentStatus::Orphaned,
            ),
            (
                "migrated is its own status, not offline",
                AgentFacts { last_checkin: Some(NOW - 3_600_000), audit_unenrolled_reason: Some(AuditReason::Migrated), ..healthy() },
                AgentStatus::Migrated,
            ),
            (
                "a revoked key alone is not a status",
                AgentFacts { audit_unenrolled_reason: Some(AuditReason::KeyRevoked), ..healthy() },
                AgentStatus::Online,
            ),
            ("silent past the offline threshold", AgentFacts { last_checkin: Some(NOW - 360_001), ..healthy() }, AgentStatus::Offline),
            ("just inside the offline threshold", AgentFacts { last_checkin: Some(NOW - 360_000), ..healthy() }, AgentStatus::Online),
            ("reported disconnected", AgentFacts { last_checkin_status: Some("disconnected".into()), ..healthy() }, AgentStatus::Offline),
            (
                "never checked in, enrolled long ago",
                AgentFacts { last_checkin: None, enrolled_at: NOW - 3_600_000, ..healthy() },
                AgentStatus::Offline,
            ),
            ("no policy revision yet", AgentFacts { policy_revision: None, ..healthy() }, AgentStatus::Updating),
            ("upgrade in progress", AgentFacts { upgrade_started_at: Some(NOW - 5), ..healthy() }, AgentStatus::Updating),
            ("upgrade finished", AgentFacts { upgrade_started_at: Some(NOW - 5), upgraded_at: Some(NOW - 1), ..healthy() }, AgentStatus::Online),
            (
                "never checked in, just enrolled",
                AgentFacts { last_checkin: None, last_checkin_status: None, enrolled_at: NOW - 1_000, ..healthy() },
                AgentStatus::Enrolling,
            ),
            ("unenroll requested", AgentFacts { unenrollment_started_at: Some(NOW - 10), ..healthy() }, AgentStatus::Unenrolling),
            ("reports an error", AgentFacts { last_checkin_status: Some("error".into()), ..healthy() }, AgentStatus::Error),
            ("reports degraded", AgentFacts { last_checkin_status: Some("degraded".into()), ..healthy() }, AgentStatus::Degraded),
            ("starting counts as online", AgentFacts { last_checkin_status: Some("starting".into()), ..healthy() }, AgentStatus::Online),
        ];
        for (name, facts, expected) in cases {
            assert_eq!(derive_status(&facts, NOW, T), expected, "{name}");
        }
    }

    #[test]
    fn names_round_trip() {
        for status in AgentStatus::ALL {
            assert_eq!(AgentStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_string(&status).unwrap_or_default(), format!("\"{}\"", status.as_str()));
        }
        for reason in AuditReason::ALL {
            assert_eq!(AuditReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(AuditReason::parse("deleted"), None);
        assert_eq!(AgentStatus::Orphaned.label(), "Detached Endpoint");
    }
}

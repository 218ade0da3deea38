//! Fleet: agent status derivation (Kibana's order), the audit reasons an
//! agent may report as its final message, and the `kuery` subset the agent
//! list accepts. Pure: the server and the SPA call the same functions.

use serde::{Deserialize, Serialize};

/// An agent's status, as Kibana's `AgentStatusSchema`, plus `migrated` (the
/// agent reported it was enrolled into another Fleet: the security worry
/// behind the audit API, shown as its own status rather than as offline),
/// `replaced` (its host enrolled again as another agent) and `conflict` (a
/// replaced agent still checks in: two agents claim one host).
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
    Replaced,
    Conflict,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 14] = [
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
        AgentStatus::Replaced,
        AgentStatus::Conflict,
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
            AgentStatus::Replaced => "replaced",
            AgentStatus::Conflict => "conflict",
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
            AgentStatus::Replaced => "Replaced",
            AgentStatus::Conflict => "Two agents claim this host",
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
            AgentStatus::Replaced => "Its host enrolled again: the agent that replaced it is the one to watch.",
            AgentStatus::Conflict => {
                "A replaced agent keeps checking in beside the agent that replaced it: one of the two may be an impostor. Unenroll the wrong one."
            }
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
            AgentStatus::Replaced => Some("The host enrolled again as another agent: send the action to that one; this one will not answer."),
            AgentStatus::Conflict => Some("Two agents claim this host: make sure this is the one you mean before the action runs."),
        }
    }

    /// Left out of the Fleet view and of bulk selections by kuery unless
    /// inactive agents are asked for (Kibana's `showInactive`): agents that
    /// no longer stand for a host. A conflict is never among them.
    pub fn hidden_by_default(self) -> bool {
        matches!(self, AgentStatus::Inactive | AgentStatus::Unenrolled | AgentStatus::Replaced)
    }

    /// Whether the host has lost protection in a way someone should look at
    /// (as opposed to being offline for a holiday).
    pub fn needs_attention(self) -> bool {
        matches!(self, AgentStatus::Uninstalled | AgentStatus::Orphaned | AgentStatus::Migrated | AgentStatus::Conflict | AgentStatus::Error)
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

/// What an agent may add to its final message: who ran the command and
/// from which process (the reference's insider case: "the event should
/// contain information about the user and process that ran the command"),
/// and for `migrated` the URL of the Fleet it moved to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditDetails {
    /// The account that ran the command, as the host names it (`root`, `CORP\\alice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<AuditProcess>,
    /// Only with `migrated`: the Fleet the agent enrolled into (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub new_fleet_url: Option<String>,
}

/// The process that ran the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditProcess {
    pub pid: u32,
    /// Its executable's name or path.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub name: String,
    /// Its command line, as the host reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub command_line: Option<String>,
}

const MAX_USER: usize = 256;
const MAX_PROCESS_NAME: usize = 1024;
const MAX_COMMAND_LINE: usize = 4096;
const MAX_URL: usize = 2048;

impl AuditDetails {
    pub fn is_empty(&self) -> bool {
        *self == AuditDetails::default()
    }

    /// The details as Warden keeps them: text trimmed, within bounds, no
    /// control characters (they end up in logs and alert messages), and a
    /// new Fleet URL only for `migrated`. The error names the field.
    pub fn check(mut self, reason: AuditReason) -> Result<AuditDetails, String> {
        self.user = text("user", self.user, MAX_USER)?;
        if let Some(process) = self.process.take() {
            let name = text("process.name", Some(process.name), MAX_PROCESS_NAME)?.ok_or("[request body.process.name]: must not be empty")?;
            let command_line = text("process.command_line", process.command_line, MAX_COMMAND_LINE)?;
            self.process = Some(AuditProcess { pid: process.pid, name, command_line });
        }
        self.new_fleet_url = text("new_fleet_url", self.new_fleet_url, MAX_URL)?;
        if let Some(url) = &self.new_fleet_url {
            if reason != AuditReason::Migrated {
                return Err(format!("[request body.new_fleet_url]: only a migrated agent names a new Fleet, not reason {}", reason.as_str()));
            }
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if !rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace)) {
                return Err(format!("[request body.new_fleet_url]: expected an http or https URL, got `{url}`"));
            }
        }
        Ok(self)
    }

    /// "by root, process elastic-agent (pid 4242), to https://other.example":
    /// what the activity log and the alert's reason add.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(user) = &self.user {
            parts.push(format!("by {user}"));
        }
        if let Some(process) = &self.process {
            parts.push(format!("process {} (pid {})", process.name, process.pid));
        }
        if let Some(url) = &self.new_fleet_url {
            parts.push(format!("to {url}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// A trimmed optional text field, `None` when empty.
fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, String> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.chars().count() > max {
        return Err(format!("[request body.{field}]: at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("[request body.{field}]: must not contain control characters"));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// The longest host fingerprint Warden keeps (a machine id is 32 to 36).
pub const MAX_HOST_ID: usize = 256;

/// The host fingerprint an agent reports at enrollment and check-in:
/// `local_metadata.host.id` (Elastic Agent's machine id), trimmed, or `None`
/// when there is none. It is stored and compared, so it is bounded.
pub fn host_fingerprint(local: &serde_json::Value) -> Result<Option<String>, String> {
    const FIELD: &str = "metadata.local.host.id";
    match local.pointer("/host/id") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(id)) => text(FIELD, Some(id.clone()), MAX_HOST_ID),
        Some(other) => Err(format!("[request body.{FIELD}]: expected a string, got {other}")),
    }
}

/// What an enrollment from a host that already has an active agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reenrollment {
    /// The agent keeps its id and history; only its key changes.
    KeepId,
    /// A new agent; the old one is marked replaced by it.
    Replace,
}

/// The reporter's point 2 ("if the new fleet server is identical to the old
/// server then it should keep its current agent id"), made safe: the id is
/// kept only when the policy allows it, the host enrolls into the agent's own
/// policy, and it proves it is that agent with the replace token it chose
/// when it first enrolled. Anyone else who knows the host's id gets a new
/// agent, and the replacement stays visible.
pub fn reenrollment(keep_id_allowed: bool, same_policy: bool, token_matches: bool) -> Reenrollment {
    if keep_id_allowed && same_policy && token_matches { Reenrollment::KeepId } else { Reenrollment::Replace }
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
    /// A Detached Endpoint's latest report: proof of life that keeps it from
    /// turning inactive while it runs.
    pub last_heard_at: Option<i64>,
    /// When another agent enrolled with this agent's host fingerprint.
    pub replaced_at: Option<i64>,
    /// The agent and another claim one host (a replaced agent checked in
    /// again), until an analyst unenrolls one of them.
    pub host_conflict: bool,
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
/// enrolling, unenrolling, error, degraded, online. Warden's two host
/// statuses come right after unenrolled: a conflict is never hidden (not even
/// by inactivity), and a replaced agent is neither offline nor inactive.
pub fn derive_status(facts: &AgentFacts, now: i64, thresholds: StatusThresholds) -> AgentStatus {
    if !facts.active {
        return AgentStatus::Unenrolled;
    }
    if facts.host_conflict {
        return AgentStatus::Conflict;
    }
    if facts.replaced_at.is_some() {
        return AgentStatus::Replaced;
    }
    let last_seen = facts.last_checkin.unwrap_or(facts.enrolled_at);
    let silent_for = now - last_seen;
    let heard_from = facts.last_heard_at.map_or(last_seen, |heard| heard.max(last_seen));
    if now - heard_from > thresholds.inactive_after_ms {
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

/// Whether the agents cleanup (`fleet:cleanup_agents`) may remove the agent
/// at `now`: it has been inactive, or replaced, for at least `after_ms`.
/// Inactive counts from when the silence passed the inactivity timeout, so a
/// Detached Endpoint that still reports is never removed.
pub fn due_for_cleanup(facts: &AgentFacts, now: i64, thresholds: StatusThresholds, after_ms: i64) -> bool {
    let since = match derive_status(facts, now, thresholds) {
        AgentStatus::Inactive => {
            let last_seen = facts.last_checkin.unwrap_or(facts.enrolled_at);
            let heard_from = facts.last_heard_at.map_or(last_seen, |heard| heard.max(last_seen));
            heard_from.saturating_add(thresholds.inactive_after_ms)
        }
        AgentStatus::Replaced => facts.replaced_at.unwrap_or(now),
        _ => return false,
    };
    since.saturating_add(after_ms) <= now
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
        assert_eq!(warned, vec![Offline, Inactive, Unenrolling, Unenrolled, Uninstalled, Orphaned, Migrated, Replaced, Conflict]);
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
            (
                "a Detached Endpoint that keeps reporting is never inactive",
                AgentFacts {
                    last_checkin: Some(NOW - 1_300_000_000),
                    audit_unenrolled_reason: Some(AuditReason::Orphaned),
                    last_heard_at: Some(NOW - 30_000),
                    ..healthy()
                },
                AgentStatus::Orphaned,
            ),
            (
                "one that stopped reporting long ago is",
                AgentFacts {
                    last_checkin: Some(NOW - 1_400_000_000),
                    audit_unenrolled_reason: Some(AuditReason::Orphaned),
                    last_heard_at: Some(NOW - 1_300_000_000),
                    ..healthy()
                },
                AgentStatus::Inactive,
            ),
            (
                "a replaced agent is neither offline nor inactive",
                AgentFacts { last_checkin: Some(NOW - 1_300_000_000), replaced_at: Some(NOW - 1_200_000_000), ..healthy() },
                AgentStatus::Replaced,
            ),
            (
                "a replaced agent that checks in again is a conflict",
                AgentFacts { replaced_at: Some(NOW - 60_000), host_conflict: true, ..healthy() },
                AgentStatus::Conflict,
            ),
            (
                "a conflict is never hidden as inactive",
                AgentFacts { last_checkin: Some(NOW - 1_300_000_000), host_conflict: true, ..healthy() },
                AgentStatus::Conflict,
            ),
            (
                "an unenrolled agent is no longer part of a conflict",
                AgentFacts { active: false, replaced_at: Some(NOW - 60_000), host_conflict: true, ..healthy() },
                AgentStatus::Unenrolled,
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
    fn audit_details_are_trimmed_bounded_and_a_new_fleet_only_for_migrated() {
        let details = AuditDetails {
            user: Some("  root ".into()),
            process: Some(AuditProcess { pid: 4242, name: "elastic-agent".into(), command_line: Some(" elastic-agent uninstall ".into()) }),
            new_fleet_url: None,
        };
        let checked = details.clone().check(AuditReason::Uninstall);
        assert_eq!(checked.as_ref().ok().and_then(|d| d.user.as_deref()), Some("root"));
        assert_eq!(checked.ok().and_then(|d| d.summary()), Some("by root, process elastic-agent (pid 4242)".to_owned()));
        let moved = AuditDetails { new_fleet_url: Some("https://attacker.example:8220".into()), ..AuditDetails::default() };
        assert_eq!(moved.clone().check(AuditReason::Migrated).ok().and_then(|d| d.summary()), Some("to https://attacker.example:8220".into()));
        let refused = |details: AuditDetails, reason| details.check(reason).err().unwrap_or_default();
        assert!(refused(moved, AuditReason::Uninstall).contains("only a migrated agent names a new Fleet"));
        for url in ["ftp://x", "https://", "https:///path", "https://a b", "other.example"] {
            let bad = AuditDetails { new_fleet_url: Some(url.into()), ..AuditDetails::default() };
            assert!(refused(bad, AuditReason::Migrated).contains("expected an http or https URL"), "{url}");
        }
        let long = AuditDetails { user: Some("u".repeat(257)), ..AuditDetails::default() };
        assert_eq!(refused(long, AuditReason::Uninstall), "[request body.user]: at most 256 characters");
        let control = AuditDetails { user: Some("root\nforged line".into()), ..AuditDetails::default() };
        assert!(refused(control, AuditReason::Uninstall).contains("control characters"));
        let nameless = AuditDetails { process: Some(AuditProcess { pid: 1, name: " ".into(), command_line: None }), ..AuditDetails::default() };
        assert!(refused(nameless, AuditReason::Uninstall).contains("process.name"));
        let blank = AuditDetails { user: Some("  ".into()), ..AuditDetails::default() };
        assert!(blank.check(AuditReason::Uninstall).is_ok_and(|d| d.is_empty()));
    }

    #[test]
    fn only_agents_inactive_or_replaced_for_long_enough_are_cleaned_up() {
        const DAY: i64 = 86_400_000;
        let after = 7 * DAY;
        let silent_for = |ms: i64| AgentFacts { last_checkin: Some(NOW - ms), ..healthy() };
        // Inactive after 14 days of silence; removable 7 days after that.
        assert!(!due_for_cleanup(&silent_for(20 * DAY), NOW, T, after), "inactive for 6 days only");
        assert!(due_for_cleanup(&silent_for(21 * DAY + 1), NOW, T, after));
        assert!(!due_for_cleanup(&AgentFacts { replaced_at: Some(NOW - 6 * DAY), ..healthy() }, NOW, T, after));
        assert!(due_for_cleanup(&AgentFacts { replaced_at: Some(NOW - after), ..healthy() }, NOW, T, after));
        // Never what still stands for a host, however old.
        let conflict = AgentFacts { replaced_at: Some(NOW - 30 * DAY), host_conflict: true, ..silent_for(30 * DAY) };
        assert!(!due_for_cleanup(&conflict, NOW, T, after), "a conflict waits for an analyst");
        let detached = AgentFacts { audit_unenrolled_reason: Some(AuditReason::Orphaned), last_heard_at: Some(NOW - 1_000), ..silent_for(30 * DAY) };
        assert!(!due_for_cleanup(&detached, NOW, T, after), "a Detached Endpoint that reports is alive");
        assert!(!due_for_cleanup(&AgentFacts { active: false, ..silent_for(30 * DAY) }, NOW, T, after), "unenrolled: kept as a record");
        assert!(!due_for_cleanup(&silent_for(3_600_000), NOW, T, after), "offline");
    }

    #[test]
    fn the_host_fingerprint_is_local_metadata_host_id_bounded() {
        use serde_json::json;
        assert_eq!(host_fingerprint(&json!({"host": {"id": " 4c4c4544-0042 "}})), Ok(Some("4c4c4544-0042".into())));
        assert_eq!(host_fingerprint(&json!({"host": {"hostname": "web-1"}})), Ok(None));
        assert_eq!(host_fingerprint(&json!({"host": {"id": "  "}})), Ok(None));
        assert_eq!(host_fingerprint(&json!(null)), Ok(None));
        assert!(host_fingerprint(&json!({"host": {"id": 7}})).is_err_and(|e| e.contains("metadata.local.host.id]: expected a string")));
        assert!(host_fingerprint(&json!({"host": {"id": "x".repeat(257)}})).is_err_and(|e| e.contains("at most 256")));
        assert!(host_fingerprint(&json!({"host": {"id": "a\u{0}b"}})).is_err_and(|e| e.contains("control characters")));
    }

    #[test]
    fn an_agent_keeps_its_id_only_when_allowed_in_its_own_policy_with_its_token() {
        assert_eq!(reenrollment(true, true, true), Reenrollment::KeepId);
        assert_eq!(reenrollment(false, true, true), Reenrollment::Replace, "the policy does not allow it");
        assert_eq!(reenrollment(true, false, true), Reenrollment::Replace, "another policy");
        assert_eq!(reenrollment(true, true, false), Reenrollment::Replace, "someone who only knows the host id");
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
        let hidden: Vec<AgentStatus> = AgentStatus::ALL.into_iter().filter(|s| s.hidden_by_default()).collect();
        assert_eq!(hidden, [AgentStatus::Inactive, AgentStatus::Unenrolled, AgentStatus::Replaced], "never a conflict");
    }
}

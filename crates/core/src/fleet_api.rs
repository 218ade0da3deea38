//! Fleet and Fleet Server request/response bodies (the shapes of
//! `../shared/reference/kibana-api.md` §3), plus Warden's additions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fleet::{AgentStatus, AuditDetails, AuditProcess, AuditReason};
use crate::ids::{ActionId, AgentId, PolicyId};

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInfo {
    pub id: AgentId,
    pub version: String,
}

/// Who force-unenrolled an agent, and when (the FORCE_UNENROLL annotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForceUnenrollAnnotation {
    pub by: String,
    pub at: String,
}

/// Calls refused because the agent was unenrolled or its key revoked: a
/// removed agent that still calls home is a broken unenroll or someone
/// else's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedCalls {
    pub count: i64,
    pub last_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    pub id: AgentId,
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    pub active: bool,
    pub status: AgentStatus,
    pub enrolled_at: String,
    pub unenrolled_at: Option<String>,
    pub unenrollment_started_at: Option<String>,
    pub audit_unenrolled_reason: Option<AuditReason>,
    pub audit_unenrolled_time: Option<String>,
    /// Who and what ran the command the final message reports, and where a
    /// migrated agent went (`None` when the agent sent none).
    pub audit_unenrolled_details: Option<AuditDetails>,
    /// A Detached Endpoint's latest report (it keeps reporting while it runs,
    /// each report after the first answered 409): the host is up.
    pub last_heard_at: Option<String>,
    /// The host fingerprint the agent reports (`local_metadata.host.id`).
    pub host_id: Option<String>,
    /// The agent that enrolled later from the same host, and when.
    pub replaced_by: Option<AgentId>,
    pub replaced_at: Option<String>,
    /// The agent this one replaced when it enrolled.
    pub replaces: Option<AgentId>,
    /// The other agent claiming this host (status `conflict`).
    pub host_conflict_with: Option<AgentId>,
    pub policy_id: PolicyId,
    pub policy_revision: Option<i64>,
    pub last_checkin: Option<String>,
    pub last_checkin_status: Option<String>,
    pub last_checkin_message: Option<String>,
    pub local_metadata: Value,
    pub user_provided_metadata: Value,
    pub tags: Vec<String>,
    pub components: Value,
    pub agent: AgentInfo,
    pub access_api_key_id: String,
    pub force_unenroll: Option<ForceUnenrollAnnotation>,
    pub rejected_calls: Option<RejectedCalls>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<std::collections::BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemResponse<T> {
    pub item: T,
}

/// `GET /api/fleet/agent_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStatusResponse {
    pub results: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentPolicy {
    pub id: PolicyId,
    pub name: String,
    pub namespace: String,
    pub description: Option<String>,
    pub is_managed: bool,
    /// Seconds of silence after which an agent is `inactive`.
    pub inactivity_timeout: i64,
    /// A host that enrolls again into this policy, proving it is the same
    /// agent with its replace token, keeps its agent id.
    #[serde(default)]
    pub keep_agent_id_on_reenroll: bool,
    pub revision: i64,
    pub updated_at: String,
    pub agents: i64,
    /// A permission verifier's policy (Kibana's `is_verifier`): Warden
    /// creates it for one verification and removes it when the results are
    /// in, or at `expires_at`.
    #[serde(default)]
    pub is_verifier: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_connector_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentPolicyRequest {
    /// Not blank (at least one character that is not Unicode white space);
    /// unique among agent policies (409 otherwise).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"))]
    pub name: String,
    /// Lowercase ASCII letters, digits and `_`; `default` when left out.
    #[serde(default = "default_namespace")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = "^[a-z0-9_]+$"))]
    pub namespace: String,
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_managed: bool,
    /// Seconds of silence after which an agent is `inactive`; at least 1
    /// (default 1,209,600: two weeks).
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub inactivity_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub monitoring_enabled: bool,
    /// A host that enrolls again into this policy with the replace token it
    /// first enrolled with keeps its agent id (default: it becomes a new
    /// agent, and the old one is marked replaced).
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_agent_id_on_reenroll: bool,
}

fn default_namespace() -> String {
    "default".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteAgentPolicyRequest {
    pub agent_policy_id: PolicyId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentApiKey {
    pub id: String,
    pub api_key_id: String,
    pub api_key: String,
    pub name: Option<String>,
    pub active: bool,
    pub policy_id: PolicyId,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollmentApiKeyRequest {
    pub name: Option<String>,
    /// An existing agent policy (400 otherwise).
    pub policy_id: PolicyId,
    /// As an API key's: `30m`, `12h`, `7d`…, from one minute to ten years
    /// (`3650d`), as the pattern spells out. None: the key does not expire.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^0*(([1-9][0-9]{0,2}|[12][0-9]{3}|3[0-5][0-9]{2}|36[0-4][0-9]|3650)d|([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-6][0-9]{3}|87[0-5][0-9]{2}|87600)h|([1-9][0-9]{0,5}|[1-4][0-9]{6}|5[01][0-9]{5}|52[0-4][0-9]{4}|525[0-5][0-9]{3}|5256000)m|([6-9][0-9]|[1-9][0-9]{2,7}|[12][0-9]{8}|30[0-9]{7}|31[0-4][0-9]{6}|315[0-2][0-9]{5}|3153[0-5][0-9]{4}|315360000)s)$"
        )
    )]
    pub expiration: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollMetadata {
    #[serde(default)]
    pub local: Value,
    #[serde(default)]
    pub user_provided: Value,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `POST /api/fleet/agents/enroll` (Fleet Server), with `Authorization: ApiKey <enrollment key>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    pub enrollment_id: Option<String>,
    pub shared_id: Option<String>,
    /// Fleet Server's replace token: a secret the agent picks when it first
    /// enrolls. Enrolling again from the same host with the same token, into
    /// a policy with `keep_agent_id_on_reenroll`, keeps the agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub replace_token: Option<String>,
    #[serde(default)]
    pub metadata: EnrollMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolledAgent {
    pub id: AgentId,
    pub active: bool,
    pub policy_id: PolicyId,
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    pub enrolled_at: String,
    pub user_provided_metadata: Value,
    pub local_metadata: Value,
    pub actions: Vec<Value>,
    pub access_api_key_id: String,
    /// `base64(id:secret)`; send as `Authorization: ApiKey <this>`. Shown once.
    pub access_api_key: String,
    pub status: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    pub action: String,
    pub item: EnrolledAgent,
}

/// `POST /api/fleet/agents/{id}/checkin` (Fleet Server long poll).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckinRequest {
    /// The agent's own status.
    pub status: CheckinStatus,
    #[serde(default)]
    pub message: String,
    pub ack_token: Option<String>,
    pub local_metadata: Option<Value>,
    pub components: Option<Value>,
    /// How long the server may hold the request, e.g. `"5m"`, `"5m0s"` or
    /// `"0s"` (a humantime duration; 400 if it is not one); capped at the
    /// server's `agent_poll_timeout`, which is also the default.
    pub poll_timeout: Option<String>,
    pub upgrade_details: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentAction {
    pub agent_id: AgentId,
    pub created_at: String,
    pub data: Value,
    pub id: ActionId,
    #[serde(rename = "type")]
    pub action_type: AgentActionType,
    pub input_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckinResponse {
    pub action: String,
    /// Left out when there is none: Fleet Server's own schema says a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_token: Option<String>,
    pub actions: Vec<AgentAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckEvent {
    pub action_id: ActionId,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// For an `INPUT_ACTION`: the input that ran it (`endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_input_type: Option<String>,
    /// For an endpoint `INPUT_ACTION`: the result (output, error, cancel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_response: Option<crate::response_actions::EndpointActionResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckRequest {
    /// At most 1,000 per request (400 otherwise).
    #[cfg_attr(feature = "openapi", schema(max_items = 1000))]
    pub events: Vec<AckEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckItem {
    pub status: u16,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckResponse {
    pub action: String,
    pub errors: bool,
    pub items: Vec<AckItem>,
}

/// `POST /api/fleet/agents/{id}/audit/unenroll`. The reason is text so an
/// unknown one gets Fleet Server's exact 400 message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditUnenrollRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = AuditReason))]
    pub reason: String,
    /// When it happened, in UTC: `2024-05-01T12:00:00Z`, fractions of a
    /// second allowed.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)?$"))]
    pub timestamp: String,
    /// Warden's additions, optional (Fleet Server ignores them), checked by
    /// `fleet::AuditDetails::check`: who ran the command,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub user: Option<String>,
    /// from which process,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<AuditProcess>,
    /// and, only with `migrated`, the URL of the Fleet the agent moved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub new_fleet_url: Option<String>,
}

impl AuditUnenrollRequest {
    pub fn new(reason: &str, timestamp: String, details: AuditDetails) -> AuditUnenrollRequest {
        AuditUnenrollRequest {
            reason: reason.to_owned(),
            timestamp,
            user: details.user,
            process: details.process,
            new_fleet_url: details.new_fleet_url,
        }
    }

    /// What the message adds, unchecked.
    pub fn details(&self) -> AuditDetails {
        AuditDetails { user: self.user.clone(), process: self.process.clone(), new_fleet_url: self.new_fleet_url.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnenrollRequest {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub revoke: bool,
}

/// `POST /api/fleet/agents/bulk_unenroll`: `agents` is a list of ids or a kuery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkUnenrollRequest {
    pub agents: BulkTarget,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub revoke: bool,
    /// Agents per transaction; default 1,000, clamped to 1–10,000.
    pub batch_size: Option<usize>,
    #[serde(default)]
    pub include_inactive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BulkTarget {
    /// At most 10,000 agent ids.
    Ids(Vec<AgentId>),
    /// A kuery, as `GET /api/fleet/agents` takes it: at most 4,096 bytes,
    /// 32 levels of nesting and 100 comparisons.
    Kuery(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BulkActionResponse {
    pub action_id: ActionId,
}

/// One line of an agent's activity log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentEvent {
    pub id: String,
    pub agent_id: AgentId,
    pub kind: AgentEventKind,
    pub message: String,
    pub actor: Option<String>,
    pub created_at: String,
}

crate::text_enum! {
    /// What a line of an agent's activity log records.
    AgentEventKind {
        Enrolled = "enrolled",
        CheckedInAfterSilence = "checked_in_after_silence",
        WentOffline = "went_offline",
        WentInactive = "went_inactive",
        Uninstalled = "uninstalled",
        Orphaned = "orphaned",
        Migrated = "migrated",
        KeyRevoked = "key_revoked",
        UnenrollRequested = "unenroll_requested",
        Unenrolled = "unenrolled",
        ForceUnenrolled = "force_unenrolled",
        RejectedCall = "rejected_call",
        Reenrolled = "reenrolled",
        Replaced = "replaced",
        HostConflict = "host_conflict",
        HostConflictResolved = "host_conflict_resolved",
        ReplacedAgentRemoved = "replaced_agent_removed",
    }
}

impl AgentEventKind {
    pub fn for_audit_reason(reason: AuditReason) -> AgentEventKind {
        match reason {
            AuditReason::Uninstall => AgentEventKind::Uninstalled,
            AuditReason::Orphaned => AgentEventKind::Orphaned,
            AuditReason::Migrated => AgentEventKind::Migrated,
            AuditReason::KeyRevoked => AgentEventKind::KeyRevoked,
        }
    }
}

/// An unenroll action is never offered for an agent that is already
/// unenrolled; uninstalled and orphaned agents can still be unenrolled
/// (Kibana once could not).
pub fn can_unenroll(agent: &Agent) -> bool {
    agent.active
}

/// What the Fleet list sorts by (`sortField`), with Kibana's names and
/// Warden's short aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSortField {
    EnrolledAt,
    Hostname,
    Status,
    PolicyId,
    LastCheckin,
    Version,
}

impl AgentSortField {
    /// Every name `parse` accepts.
    pub const NAMES: [&'static str; 8] = [
        "enrolled_at",
        "local_metadata.host.hostname",
        "hostname",
        "status",
        "policy_id",
        "last_checkin",
        "local_metadata.elastic.agent.version",
        "agent.version",
    ];

    pub fn parse(name: &str) -> Option<AgentSortField> {
        Some(match name {
            "enrolled_at" => AgentSortField::EnrolledAt,
            "local_metadata.host.hostname" | "hostname" => AgentSortField::Hostname,
            "status" => AgentSortField::Status,
            "policy_id" => AgentSortField::PolicyId,
            "last_checkin" => AgentSortField::LastCheckin,
            "local_metadata.elastic.agent.version" | "agent.version" => AgentSortField::Version,
            _ => return None,
        })
    }

    /// The Kibana name, as the Fleet list's `sortField` (and Warden's URLs) carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentSortField::EnrolledAt => "enrolled_at",
            AgentSortField::Hostname => "local_metadata.host.hostname",
            AgentSortField::Status => "status",
            AgentSortField::PolicyId => "policy_id",
            AgentSortField::LastCheckin => "last_checkin",
            AgentSortField::Version => "local_metadata.elastic.agent.version",
        }
    }
}

impl std::str::FromStr for AgentSortField {
    type Err = UnknownSortField;

    fn from_str(name: &str) -> Result<AgentSortField, UnknownSortField> {
        AgentSortField::parse(name).ok_or(UnknownSortField)
    }
}

/// A `sortField` that is not one of [`AgentSortField::NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSortField;

impl std::fmt::Display for UnknownSortField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown sort field (one of {})", AgentSortField::NAMES.join(", "))
    }
}

impl std::error::Error for UnknownSortField {}

crate::text_enum! {
    /// How an agent was enrolled (Fleet's `type`).
    AgentType { Permanent = "PERMANENT", Ephemeral = "EPHEMERAL", Temporary = "TEMPORARY" }
}

crate::text_enum! {
    /// What an action asks an agent to do (Fleet's action `type`).
    AgentActionType { Unenroll = "UNENROLL", InputAction = "INPUT_ACTION" }
}

// Not derivable: the enum is declared by `text_enum!`.
#[allow(clippy::derivable_impls)]
impl Default for CheckinStatus {
    fn default() -> CheckinStatus {
        CheckinStatus::Online
    }
}

crate::text_enum! {
    /// What an agent says of itself at check-in.
    CheckinStatus {
        Online = "online",
        Error = "error",
        Degraded = "degraded",
        Starting = "starting",
        Updating = "updating",
        Disconnected = "disconnected",
    }
}

#[cfg(test)]
mod tests {
    use super::AgentSortField;

    #[test]
    fn sort_fields_print_their_kibana_name_and_parse_back() {
        for name in AgentSortField::NAMES {
            let field: AgentSortField = name.parse().unwrap_or_else(|_| panic!("{name} parses"));
            assert_eq!(field.as_str().parse::<AgentSortField>(), Ok(field), "{name}");
            assert!(AgentSortField::NAMES.contains(&field.as_str()));
        }
        assert!("hostname desc".parse::<AgentSortField>().is_err());
    }
}

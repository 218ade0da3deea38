//! Rules and alerts: the shapes of Kibana's `/api/alerting` and the pure rules
//! both the server and the rule form apply. One `actions` array travels on
//! the wire; `split_actions` decides which entries are system actions (by
//! looking their connector up), refuses what may not be, and `merge_actions`
//! puts them back together for every response. Alert transitions and the
//! frequency decisions (when an action fires) live here too.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::actions::{ConnectorTypeSpec, connector_type, connector_type_name, may_use, usable_in_rules};
use crate::authz::{Privilege, Role, has_privilege};
use crate::fleet::AgentStatus;

crate::text_enum! {
    /// When an action fires (Kibana's `notify_when`).
    NotifyWhen { OnActionGroupChange = "onActionGroupChange", OnActiveAlert = "onActiveAlert", OnThrottleInterval = "onThrottleInterval" }
}

crate::text_enum! {
    /// An alert's state (`kibana.alert.status`); untracked: its rule was disabled while it was active.
    AlertStatus { Active = "active", Recovered = "recovered", Untracked = "untracked" }
}

crate::text_enum! {
    /// How a rule's last run went (`last_run.outcome`).
    RunOutcome { Succeeded = "succeeded", Warning = "warning", Failed = "failed" }
}

crate::text_enum! {
    /// `execution_status.status`, as Kibana's.
    ExecutionState { Ok = "ok", Active = "active", Error = "error", Pending = "pending", Unknown = "unknown", Warning = "warning" }
}

/// The group ordinary actions fire in while an alert is active.
pub const DEFAULT_GROUP: &str = "default";
/// The group that fires once when an alert recovers.
pub const RECOVERED_GROUP: &str = "recovered";

/// The rule type that watches agents' status.
pub const FLEET_AGENT_STATUS: &str = "fleet.agent_status";

/// A rule type: what it may fire and what its rule's owner must hold for it to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleTypeSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub producer: &'static str,
    pub action_groups: &'static [&'static str],
    /// Held by the rule's owner, checked when the rule is saved and at every run.
    pub required_privilege: Privilege,
}

/// The rule type that watches cloud connectors' permission verifications.
pub const FLEET_CLOUD_CONNECTOR_VERIFICATION: &str = "fleet.cloud_connector_verification";

pub const RULE_TYPES: &[RuleTypeSpec] = &[
    RuleTypeSpec {
        id: FLEET_AGENT_STATUS,
        name: "Fleet agent status",
        producer: "fleet",
        action_groups: &[DEFAULT_GROUP, RECOVERED_GROUP],
        required_privilege: Privilege::FleetRead,
    },
    RuleTypeSpec {
        id: FLEET_CLOUD_CONNECTOR_VERIFICATION,
        name: "Cloud connector verification",
        producer: "fleet",
        action_groups: &[DEFAULT_GROUP, RECOVERED_GROUP],
        required_privilege: Privilege::FleetRead,
    },
];

pub fn rule_type(id: &str) -> Option<&'static RuleTypeSpec> {
    RULE_TYPES.iter().find(|spec| spec.id == id)
}

// ---- Durations ----------------------------------------------------------

/// Kibana's rule durations: `^[1-9][0-9]*[smhd]$` (`30s`, `1m`, `12h`, `7d`)
/// in milliseconds; `field` names the value in the message.
pub fn parse_duration_ms(text: &str, field: &str) -> Result<i64, String> {
    let invalid = || format!("[{field}]: \"{text}\" is not a duration such as 30s, 5m, 12h or 7d");
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.starts_with('0') || digits.len() > 9 {
        return Err(invalid());
    }
    let amount: i64 = digits.parse().map_err(|_| invalid())?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    amount.checked_mul(unit_ms).ok_or_else(invalid)
}

// ---- Wire shapes ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSchedule {
    /// A duration such as `1m`; at least the server's `rules_minimum_interval`.
    pub interval: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionFrequency {
    /// One run for all of a rule run's alerts rather than one per alert.
    pub summary: bool,
    pub notify_when: NotifyWhen,
    pub throttle: Option<String>,
}

/// One entry of a rule's `actions` as clients send it: an ordinary action or
/// a system action, told apart by its connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleActionRequest {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<ActionFrequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub alerts_filter: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_alert_data_for_template: Option<bool>,
}

/// `POST /api/alerting/rule/{id?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRuleRequest {
    pub name: String,
    pub rule_type_id: String,
    pub consumer: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    pub schedule: RuleSchedule,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub throttle: Option<String>,
    #[serde(default)]
    pub notify_when: Option<NotifyWhen>,
    #[serde(default)]
    pub actions: Vec<RuleActionRequest>,
}

fn default_true() -> bool {
    true
}

/// `PUT /api/alerting/rule/{id}`: a create without type and consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRuleRequest {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub schedule: RuleSchedule,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub throttle: Option<String>,
    #[serde(default)]
    pub notify_when: Option<NotifyWhen>,
    #[serde(default)]
    pub actions: Vec<RuleActionRequest>,
}

/// An ordinary action, as the domain keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleAction {
    pub uuid: String,
    pub id: String,
    pub action_type_id: String,
    pub group: String,
    pub params: Map<String, Value>,
    #[serde(default)]
    pub frequency: Option<ActionFrequency>,
    #[serde(default)]
    pub alerts_filter: Option<Value>,
    #[serde(default)]
    pub use_alert_data_for_template: Option<bool>,
}

/// A system action, as the domain keeps it (reference 001): no group,
/// frequency or filter; the framework decides when it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSystemAction {
    pub uuid: String,
    pub id: String,
    pub action_type_id: String,
    pub params: Map<String, Value>,
}

/// An action in a rule response: both kinds, each with its connector type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleActionResponse {
    pub id: String,
    pub uuid: String,
    pub connector_type_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<ActionFrequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub alerts_filter: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_alert_data_for_template: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionError {
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutionStatus {
    pub status: ExecutionState,
    pub last_execution_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertsCount {
    pub active: u64,
    pub new: u64,
    pub recovered: u64,
    pub ignored: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastRun {
    pub outcome: RunOutcome,
    pub outcome_order: u8,
    #[serde(default)]
    pub outcome_msg: Option<Vec<String>>,
    #[serde(default)]
    pub warning: Option<String>,
    pub alerts_count: AlertsCount,
}

/// A rule as every rules route answers it (`transformRuleToRuleResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub name: String,
    pub tags: Vec<String>,
    pub rule_type_id: String,
    pub consumer: String,
    pub schedule: RuleSchedule,
    pub actions: Vec<RuleActionResponse>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_task_id: Option<String>,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub api_key_owner: Option<String>,
    pub api_key_created_by_user: bool,
    pub throttle: Option<String>,
    pub mute_all: bool,
    pub notify_when: Option<NotifyWhen>,
    pub muted_alert_ids: Vec<String>,
    pub execution_status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    pub revision: u64,
    pub running: bool,
}

/// `GET /api/alerting/rules/_find`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindRulesResponse {
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
    pub data: Vec<Rule>,
}

/// `GET /api/alerting/rule_types` (the form's list of types).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleTypeInfo {
    pub id: String,
    pub name: String,
    pub producer: String,
    pub action_groups: Vec<ActionGroup>,
    pub default_action_group_id: String,
    pub recovery_action_group: ActionGroup,
    /// Whether the caller may create rules of this type.
    pub authorized: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionGroup {
    pub id: String,
    pub name: String,
}

impl RuleTypeInfo {
    pub fn of(spec: &RuleTypeSpec, roles: &[Role]) -> RuleTypeInfo {
        let group = |id: &str| ActionGroup { id: id.to_owned(), name: if id == RECOVERED_GROUP { "Recovered".into() } else { "Fires".into() } };
        RuleTypeInfo {
            id: spec.id.to_owned(),
            name: spec.name.to_owned(),
            producer: spec.producer.to_owned(),
            action_groups: spec.action_groups.iter().map(|id| group(id)).collect(),
            default_action_group_id: DEFAULT_GROUP.to_owned(),
            recovery_action_group: group(RECOVERED_GROUP),
            authorized: has_privilege(roles, Privilege::RulesAll) && has_privilege(roles, spec.required_privilege),
        }
    }
}

// ---- Validation -------------------------------------------------------------

/// Why a rule may not be saved: a 400, or a 403 for a privilege the saver lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRefusal {
    BadRequest(String),
    Forbidden(String),
}

impl std::fmt::Display for RuleRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleRefusal::BadRequest(message) | RuleRefusal::Forbidden(message) => f.write_str(message),
        }
    }
}

fn bad(message: impl Into<String>) -> RuleRefusal {
    RuleRefusal::BadRequest(message.into())
}

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_TAGS: usize = 100;
pub const MAX_TAG_CHARS: usize = 256;
pub const MAX_ACTIONS: usize = 50;

/// A rule's name: 1 to 256 characters, not only spaces.
pub fn validate_name(name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("[request body.name]: must be 1 to {MAX_NAME_CHARS} characters"));
    }
    Ok(())
}

/// A rule's tags: at most 100, each 1 to 256 characters.
pub fn validate_tags(tags: &[String]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("[request body.tags]: at most {MAX_TAGS} tags"));
    }
    match tags.iter().find(|tag| tag.trim().is_empty() || tag.chars().count() > MAX_TAG_CHARS) {
        Some(tag) => Err(format!("[request body.tags]: \"{tag}\" must be 1 to {MAX_TAG_CHARS} characters")),
        None => Ok(()),
    }
}

/// A rule's schedule against the server's minimum (Kibana's message; `verb`
/// is `creating` or `updating`); its interval in milliseconds.
pub fn validate_schedule(schedule: &RuleSchedule, minimum_interval_ms: i64, verb: &str) -> Result<i64, String> {
    let interval_ms = parse_duration_ms(&schedule.interval, "request body.schedule.interval")?;
    if interval_ms < minimum_interval_ms {
        return Err(format!(
            "Error {verb} rule: the interval is less than the allowed minimum interval of {}",
            format_duration_ms(minimum_interval_ms)
        ));
    }
    Ok(interval_ms)
}

/// The fields every save checks, whatever the rule type: name, tags, the
/// schedule against `minimum_interval_ms`, and rule-level notify settings.
pub fn validate_common(
    name: &str,
    tags: &[String],
    schedule: &RuleSchedule,
    throttle: Option<&str>,
    minimum_interval_ms: i64,
    verb: &str,
) -> Result<i64, RuleRefusal> {
    validate_name(name).map_err(bad)?;
    validate_tags(tags).map_err(bad)?;
    let interval_ms = validate_schedule(schedule, minimum_interval_ms, verb).map_err(bad)?;
    if let Some(throttle) = throttle {
        parse_duration_ms(throttle, "request body.throttle").map_err(bad)?;
    }
    Ok(interval_ms)
}

/// A duration in the largest whole unit (`60000` → `1m`), as Kibana writes them.
pub fn format_duration_ms(ms: i64) -> String {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// What `split_actions` needs to know of a connector id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRef {
    pub connector_type_id: String,
    pub is_system_action: bool,
}

/// A rule's actions in the domain's two lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitActions {
    pub actions: Vec<RuleAction>,
    pub system_actions: Vec<RuleSystemAction>,
}

/// Splits the wire's one `actions` array into ordinary and system actions,
/// refusing (each message names the action): an unknown connector; a system
/// action with a group, frequency or alerts filter, or twice (unless its type
/// allows several), or one whose required privileges `roles` lack (403); an
/// ordinary action without a group, with a group the rule type lacks, or
/// with a frequency while the rule sets `notify_when`/`throttle` itself.
/// `new_uuid` names actions that come without one.
pub fn split_actions(
    requests: &[RuleActionRequest],
    rule_type: &RuleTypeSpec,
    rule_level_frequency: bool,
    lookup: impl Fn(&str) -> Option<ConnectorRef>,
    roles: &[Role],
    mut new_uuid: impl FnMut() -> String,
) -> Result<SplitActions, RuleRefusal> {
    if requests.len() > MAX_ACTIONS {
        return Err(bad(format!("[request body.actions]: at most {MAX_ACTIONS} actions")));
    }
    let unknown: Vec<&str> = requests.iter().map(|a| a.id.as_str()).filter(|id| lookup(id).is_none()).collect();
    if !unknown.is_empty() {
        return Err(bad(format!("Failed to validate actions due to the following error: Invalid connectors: {}", unknown.join(", "))));
    }
    let mut split = SplitActions::default();
    let mut uuids = BTreeSet::new();
    for request in requests {
        let Some(connector) = lookup(&request.id) else { continue };
        if !usable_in_rules(&connector.connector_type_id) {
            return Err(bad(format!(
                "Action {}: {} connectors are not for rules (they run response actions)",
                request.id,
                connector_type_name(&connector.connector_type_id)
            )));
        }
        let uuid = match &request.uuid {
            Some(uuid) if uuid.is_empty() || uuid.len() > 64 => return Err(bad(format!("Action {} has an invalid uuid", request.id))),
            Some(uuid) => uuid.clone(),
            None => new_uuid(),
        };
        if !uuids.insert(uuid.clone()) {
            return Err(bad(format!("Action {} repeats the uuid {uuid} of another action", request.id)));
        }
        if connector.is_system_action {
            let spec = connector_type(&connector.connector_type_id).ok_or_else(|| bad(format!("Action {} has an unknown type", request.id)))?;
            check_system_action(request, spec, &split.system_actions, roles)?;
            split.system_actions.push(RuleSystemAction {
                uuid,
                id: request.id.clone(),
                action_type_id: connector.connector_type_id,
                params: request.params.clone(),
            });
        } else {
            let group = check_ordinary_action(request, rule_type, rule_level_frequency)?;
            split.actions.push(RuleAction {
                uuid,
                id: request.id.clone(),
                action_type_id: connector.connector_type_id,
                group,
                params: request.params.clone(),
                frequency: request.frequency.clone(),
                alerts_filter: request.alerts_filter.clone(),
                use_alert_data_for_template: request.use_alert_data_for_template,
            });
        }
    }
    Ok(split)
}

fn check_system_action(request: &RuleActionRequest, spec: &ConnectorTypeSpec, added: &[RuleSystemAction], roles: &[Role]) -> Result<(), RuleRefusal> {
    let id = &request.id;
    let mut execution_options = Vec::new();
    if request.group.is_some() {
        execution_options.push("group");
    }
    if request.frequency.is_some() {
        execution_options.push("frequency");
    }
    if request.alerts_filter.is_some() {
        execution_options.push("alerts_filter");
    }
    if !execution_options.is_empty() {
        return Err(bad(format!("System action {id} cannot have {}: the framework decides when system actions run", execution_options.join(", "))));
    }
    if !spec.allow_multiple_system_actions && added.iter().any(|a| a.id == *id) {
        return Err(bad(format!("Cannot use the same system action twice: {id}")));
    }
    if !may_use(spec, roles) {
        let missing: Vec<String> = spec.required_privileges.iter().filter(|p| !has_privilege(roles, **p)).map(|p| p.to_string()).collect();
        return Err(RuleRefusal::Forbidden(format!("Unauthorized to use system action {id}: it requires {}", missing.join(", "))));
    }
    system_action_params_refusal(spec.id, &request.params).map_or(Ok(()), |message| Err(bad(format!("Action {id}: {message}"))))
}

/// What is wrong with a system action's params, or `None`.
pub fn system_action_params_refusal(type_id: &str, params: &Map<String, Value>) -> Option<String> {
    match type_id {
        crate::actions::CASES => crate::cases::validate_cases_action_params(&Value::Object(params.clone())).err(),
        crate::actions::ENDPOINT_RESPONSE => crate::response_actions::validate_endpoint_response_params(params).err(),
        _ => None,
    }
}

fn check_ordinary_action(request: &RuleActionRequest, rule_type: &RuleTypeSpec, rule_level_frequency: bool) -> Result<String, RuleRefusal> {
    let id = &request.id;
    let group = request.group.clone().filter(|g| !g.is_empty()).ok_or_else(|| bad(format!("Group is not defined in action {id}")))?;
    if !rule_type.action_groups.contains(&group.as_str()) {
        return Err(bad(format!("Invalid action groups: {group}")));
    }
    if let Some(frequency) = &request.frequency {
        if rule_level_frequency {
            return Err(bad(format!(
                "Cannot specify per-action frequency params when notify_when or throttle are defined at the rule level (action {id})"
            )));
        }
        match (frequency.notify_when, &frequency.throttle) {
            (NotifyWhen::OnThrottleInterval, None) => {
                return Err(bad(format!("Action {id}: throttle is required when notify_when is onThrottleInterval")));
            }
            (_, Some(throttle)) => {
                parse_duration_ms(throttle, &format!("actions.{id}.frequency.throttle")).map_err(bad)?;
            }
            _ => {}
        }
        if frequency.summary && frequency.notify_when == NotifyWhen::OnActionGroupChange {
            return Err(bad(format!("Action {id}: a summary action fires on every run or per throttle interval, not on action group change")));
        }
    }
    if let Some(filter) = &request.alerts_filter {
        alerts_filter_kuery(filter).map_err(|message| bad(format!("Action {id}: {message}")))?;
    }
    Ok(group)
}

/// Both lists as one `actions` array, each entry with its connector type:
/// what every rule response shows.
pub fn merge_actions(actions: &[RuleAction], system_actions: &[RuleSystemAction]) -> Vec<RuleActionResponse> {
    let ordinary = actions.iter().map(|a| RuleActionResponse {
        id: a.id.clone(),
        uuid: a.uuid.clone(),
        connector_type_id: a.action_type_id.clone(),
        group: Some(a.group.clone()),
        params: a.params.clone(),
        frequency: a.frequency.clone(),
        alerts_filter: a.alerts_filter.clone(),
        use_alert_data_for_template: a.use_alert_data_for_template,
    });
    let system = system_actions.iter().map(|a| RuleActionResponse {
        id: a.id.clone(),
        uuid: a.uuid.clone(),
        connector_type_id: a.action_type_id.clone(),
        group: None,
        params: a.params.clone(),
        frequency: None,
        alerts_filter: None,
        use_alert_data_for_template: None,
    });
    ordinary.chain(system).collect()
}

/// An action's `alerts_filter`: Kibana's `{query: {kql, filters}}` with the
/// kql read by Warden's kuery (status, policy_id, host name, version, tags of
/// the alert's agent); `None` when it filters nothing. `timeframe` (days and
/// hours in a time zone) is refused rather than ignored.
pub fn alerts_filter_kuery(filter: &Value) -> Result<Option<crate::kuery::Query>, String> {
    let Some(object) = filter.as_object() else { return Err("alerts_filter must be an object".into()) };
    if let Some(key) = object.keys().find(|k| k.as_str() != "query" && k.as_str() != "timeframe") {
        return Err(format!("[alerts_filter.{}]: definition for this key is missing", key.chars().take(64).collect::<String>()));
    }
    if object.get("timeframe").is_some_and(|t| !t.is_null()) {
        return Err("[alerts_filter.timeframe]: not supported by Warden; narrow the rule with its kuery or for_at_least instead".into());
    }
    let Some(query) = object.get("query").filter(|q| !q.is_null()) else { return Ok(None) };
    if query.get("filters").and_then(Value::as_array).is_some_and(|f| !f.is_empty()) {
        return Err("[alerts_filter.query.filters]: not supported by Warden; use kql".into());
    }
    let kql = query.get("kql").and_then(Value::as_str).ok_or("[alerts_filter.query.kql]: expected a string")?;
    crate::kuery::parse(kql).map_err(|err| format!("[alerts_filter.query.kql]: {}", err.0))
}

/// Whether an alert of a `fleet.agent_status` rule passes a kuery, read off
/// its context (`context.agent.*`, `context.host.name`).
pub fn agent_alert_matches(query: &crate::kuery::Query, context: &Value) -> bool {
    let text = |pointer: &str| context.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let tags: Vec<String> = context
        .pointer("/agent/tags")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |tags| tags.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    let subject = crate::kuery::Subject {
        status: text("/agent/status"),
        policy_id: text("/agent/policy_id"),
        hostname: text("/host/name"),
        version: text("/agent/version"),
        tags: &tags,
    };
    query.matches(&subject)
}

// ---- fleet.agent_status ------------------------------------------------------

/// The params of a `fleet.agent_status` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentStatusParams {
    pub statuses: Vec<AgentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kuery: Option<String>,
    /// Only agents in one of the statuses for at least this long (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_at_least: Option<String>,
}

impl AgentStatusParams {
    pub fn for_at_least_ms(&self) -> i64 {
        self.for_at_least.as_deref().and_then(|d| parse_duration_ms(d, "").ok()).unwrap_or(0)
    }
}

/// Reads and checks a `fleet.agent_status` rule's params; the message names the field.
pub fn validate_agent_status_params(params: &Map<String, Value>) -> Result<AgentStatusParams, String> {
    let parsed: AgentStatusParams = serde_json::from_value(Value::Object(params.clone())).map_err(|err| format!("[request body.params]: {err}"))?;
    if parsed.statuses.is_empty() {
        return Err("[request body.params.statuses]: pick at least one status".into());
    }
    if parsed.policy_ids.as_ref().is_some_and(|ids| ids.len() > 100 || ids.iter().any(|id| id.is_empty() || id.len() > 256)) {
        return Err("[request body.params.policy_ids]: at most 100 ids of 1 to 256 characters".into());
    }
    if let Some(kuery) = &parsed.kuery {
        crate::kuery::parse(kuery).map_err(|err| format!("[request body.params.kuery]: {}", err.0))?;
    }
    if let Some(duration) = &parsed.for_at_least {
        parse_duration_ms(duration, "request body.params.for_at_least")?;
    }
    Ok(parsed)
}

/// What a `fleet.agent_status` rule's action templates may name, with what
/// each holds: the variables picker's list. The server builds exactly these
/// (`rules::agent_status` on the server; an API test holds the two together).
pub const AGENT_STATUS_VARIABLES: &[(&str, &str)] = &[
    ("rule.id", "The rule's id"),
    ("rule.name", "The rule's name"),
    ("rule.tags", "The rule's tags"),
    ("alert.id", "The alert's instance: the agent's id"),
    ("alert.uuid", "This alert's id"),
    ("alert.actionGroup", "default (firing) or recovered"),
    ("date", "When the rule ran"),
    ("context.agent.id", "The agent's id"),
    ("context.agent.name", "The agent's host name"),
    ("context.agent.version", "The agent's version"),
    ("context.agent.policy_id", "The agent's policy"),
    ("context.agent.last_checkin", "When the agent last checked in"),
    ("context.host.name", "The host's name"),
    ("context.status", "The agent's status (uninstalled, orphaned, offline…)"),
    ("context.reason", "Why the agent is in that status"),
    ("context.since", "Since when (at the latest) it has been"),
    ("context.audit_unenrolled_reason", "What the agent reported as it left (uninstall, orphaned…)"),
    ("context.audit_unenrolled_time", "When it reported it"),
    ("context.audit_unenrolled_user", "Who ran the command, if the agent said"),
    ("context.audit_unenrolled_process.name", "The process that ran it (also .pid and .command_line)"),
    ("context.new_fleet_url", "For a migrated agent: the Fleet it moved to"),
    ("context.last_heard_at", "A Detached Endpoint's latest report: it is still running"),
    ("context.host.id", "The host fingerprint the agent reports"),
    ("context.replaced_by", "For a replaced agent: the agent its host enrolled as since"),
    ("context.host_conflict_with", "For a conflict: the other agent that claims the host"),
];

/// What a summary action's templates may name besides `rule.*` and `date`.
pub const SUMMARY_VARIABLES: &[(&str, &str)] = &[
    ("alerts.new.count", "Alerts that started this run"),
    ("alerts.ongoing.count", "Alerts still active"),
    ("alerts.recovered.count", "Alerts that recovered this run"),
    ("alerts.all.count", "All of them"),
    ("alerts.new.data", "The new alerts (a list: {{#alerts.new.data}}{{context.host.name}} {{/alerts.new.data}})"),
];

/// Kibana's `GET /internal/alerting/_config` (what the rule form needs to know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertingConfig {
    pub minimum_schedule_interval: MinimumScheduleInterval,
    pub is_using_security: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinimumScheduleInterval {
    /// A duration such as `1m`.
    pub value: String,
    /// Always true in Warden: a shorter schedule is refused, not warned about.
    pub enforce: bool,
}

/// Checks a rule type's params; the message names the field.
pub fn validate_rule_params(rule_type_id: &str, params: &Map<String, Value>) -> Result<(), String> {
    match rule_type_id {
        FLEET_AGENT_STATUS => validate_agent_status_params(params).map(|_| ()),
        FLEET_CLOUD_CONNECTOR_VERIFICATION => validate_verification_params(params).map(|_| ()),
        other => Err(format!("Rule type \"{other}\" is not registered.")),
    }
}

/// What a rule type's action templates may name (the variables picker's list).
pub fn rule_type_variables(rule_type_id: &str) -> &'static [(&'static str, &'static str)] {
    match rule_type_id {
        FLEET_CLOUD_CONNECTOR_VERIFICATION => VERIFICATION_VARIABLES,
        _ => AGENT_STATUS_VARIABLES,
    }
}

// ---- fleet.cloud_connector_verification ---------------------------------------

/// The params of a `fleet.cloud_connector_verification` rule: an alert per
/// connector whose last verification failed (`on_failed`) or that lost a
/// permission it had (`on_revoked`), among `connector_ids` (all when left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_ids: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub on_failed: bool,
    #[serde(default = "yes")]
    pub on_revoked: bool,
}

fn yes() -> bool {
    true
}

/// Reads and checks a `fleet.cloud_connector_verification` rule's params.
pub fn validate_verification_params(params: &Map<String, Value>) -> Result<VerificationParams, String> {
    let parsed: VerificationParams = serde_json::from_value(Value::Object(params.clone())).map_err(|err| format!("[request body.params]: {err}"))?;
    if !parsed.on_failed && !parsed.on_revoked {
        return Err("[request body.params]: alert on a failed verification (on_failed), a revoked permission (on_revoked), or both".into());
    }
    if parsed.connector_ids.as_ref().is_some_and(|ids| ids.is_empty() || ids.len() > 100 || ids.iter().any(|id| id.is_empty() || id.len() > 256)) {
        return Err("[request body.params.connector_ids]: 1 to 100 ids of 1 to 256 characters, or leave it out for every connector".into());
    }
    Ok(parsed)
}

/// What a `fleet.cloud_connector_verification` rule's templates may name
/// (the server builds exactly these: `rules::verification`).
pub const VERIFICATION_VARIABLES: &[(&str, &str)] = &[
    ("rule.id", "The rule's id"),
    ("rule.name", "The rule's name"),
    ("rule.tags", "The rule's tags"),
    ("alert.id", "The alert's instance: the cloud connector's id"),
    ("alert.uuid", "This alert's id"),
    ("alert.actionGroup", "default (firing) or recovered"),
    ("date", "When the rule ran"),
    ("context.connector.id", "The cloud connector's id"),
    ("context.connector.name", "The cloud connector's name"),
    ("context.connector.provider", "aws, azure or gcp"),
    ("context.status", "The last verification's status (failed or success)"),
    ("context.reason", "Why: the missing permissions, or the failure"),
    ("context.revoked", "Permissions granted before and not now, comma-separated"),
    ("context.verified_at", "When the last verification ended"),
];

// ---- Alerts ---------------------------------------------------------------

/// An alert as the alerts routes answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// This active span (`kibana.alert.uuid`).
    pub id: String,
    /// What the alert is about, e.g. the agent id (`kibana.alert.instance.id`).
    pub instance_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub status: AlertStatus,
    pub action_group: String,
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Microseconds (`kibana.alert.duration.us`): until now while active.
    pub duration_us: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub context: Map<String, Value>,
    #[serde(default)]
    pub case_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindAlertsResponse {
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
    pub data: Vec<Alert>,
}

/// One run of a rule, for the rule's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleRun {
    pub started_at: String,
    pub duration_ms: u64,
    pub outcome: RunOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub alerts_count: AlertsCount,
    pub actions_scheduled: u64,
    /// `schedule` or `fleet` (run at once because an agent changed status).
    pub trigger: String,
}

/// How this run's alerts relate to the previous run's active ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transitions {
    pub new: Vec<String>,
    pub ongoing: Vec<String>,
    pub recovered: Vec<String>,
}

/// Instances active now versus those active after the previous run.
pub fn transitions(previously_active: &BTreeSet<String>, active_now: &BTreeSet<String>) -> Transitions {
    Transitions {
        new: active_now.difference(previously_active).cloned().collect(),
        ongoing: active_now.intersection(previously_active).cloned().collect(),
        recovered: previously_active.difference(active_now).cloned().collect(),
    }
}

/// When an action last fired for one alert (or, for a summary action, for the rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastScheduled {
    pub group: String,
    pub at: i64,
}

/// An action's effective `notify_when` and throttle: its own frequency, or
/// the rule's (legacy: a throttle without `notify_when` means per interval;
/// neither means every active run).
pub fn effective_frequency(
    action: &RuleAction,
    rule_notify_when: Option<NotifyWhen>,
    rule_throttle: Option<&str>,
) -> (bool, NotifyWhen, Option<i64>) {
    let throttle_ms = |text: Option<&str>| text.and_then(|t| parse_duration_ms(t, "").ok());
    match &action.frequency {
        Some(frequency) => (frequency.summary, frequency.notify_when, throttle_ms(frequency.throttle.as_deref())),
        None => {
            let notify_when =
                rule_notify_when.unwrap_or(if rule_throttle.is_some() { NotifyWhen::OnThrottleInterval } else { NotifyWhen::OnActiveAlert });
            (false, notify_when, throttle_ms(rule_throttle))
        }
    }
}

/// Whether a per-alert action fires for an alert in `group` this run
/// (Kibana's per-alert scheduler): recovery actions always fire once;
/// `onActiveAlert` every run; `onActionGroupChange` when the group differs
/// from the one last scheduled (the first counts); `onThrottleInterval`
/// unless `throttle` has not passed since the last one in the same group.
pub fn should_fire_for_alert(notify_when: NotifyWhen, throttle_ms: Option<i64>, group: &str, last: Option<&LastScheduled>, now: i64) -> bool {
    if group == RECOVERED_GROUP {
        return true;
    }
    match (notify_when, last) {
        (_, None) | (NotifyWhen::OnActiveAlert, _) => true,
        (NotifyWhen::OnActionGroupChange, Some(last)) => last.group != group,
        (NotifyWhen::OnThrottleInterval, Some(last)) => last.group != group || now.saturating_sub(last.at) >= throttle_ms.unwrap_or(0),
    }
}

/// Whether a summary action fires this run: only when the run has alerts
/// (new, ongoing or recovered), and per throttle interval if it asks for one.
pub fn should_fire_summary(notify_when: NotifyWhen, throttle_ms: Option<i64>, alerts_this_run: usize, last_at: Option<i64>, now: i64) -> bool {
    if alerts_this_run == 0 {
        return false;
    }
    match (notify_when, last_at) {
        (NotifyWhen::OnThrottleInterval, Some(at)) => now.saturating_sub(at) >= throttle_ms.unwrap_or(0),
        _ => true,
    }
}

/// Per action uuid, when it last fired: kept with each alert and with the rule.
pub type ScheduleLog = BTreeMap<String, LastScheduled>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{CASES, MICROSOFT_DEFENDER_ENDPOINT, SERVER_LOG, WEBHOOK, system_connector_id};

    fn lookup(id: &str) -> Option<ConnectorRef> {
        match id {
            "hook" => Some(ConnectorRef { connector_type_id: WEBHOOK.into(), is_system_action: false }),
            "log" => Some(ConnectorRef { connector_type_id: SERVER_LOG.into(), is_system_action: false }),
            "mde" => Some(ConnectorRef { connector_type_id: MICROSOFT_DEFENDER_ENDPOINT.into(), is_system_action: false }),
            "system-connector-.cases" => Some(ConnectorRef { connector_type_id: CASES.into(), is_system_action: true }),
            _ => None,
        }
    }

    fn action(id: &str, group: Option<&str>) -> RuleActionRequest {
        RuleActionRequest {
            id: id.into(),
            group: group.map(str::to_owned),
            params: Map::new(),
            frequency: None,
            uuid: None,
            alerts_filter: None,
            use_alert_data_for_template: None,
        }
    }

    fn cases_action() -> RuleActionRequest {
        let mut cases = action(&system_connector_id(CASES), None);
        cases.params = serde_json::json!({"subAction": "run", "subActionParams": {"groupingBy": ["host.name"], "timeWindow": "7d"}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        cases
    }

    fn split(requests: &[RuleActionRequest], roles: &[Role]) -> Result<SplitActions, RuleRefusal> {
        let mut n = 0;
        split_actions(requests, &RULE_TYPES[0], false, lookup, roles, || {
            n += 1;
            format!("uuid-{n}")
        })
    }

    #[test]
    fn split_then_merge_gives_back_the_wire_array_with_types() {
        let requests = [action("hook", Some("default")), cases_action(), action("log", Some("recovered"))];
        let split = split(&requests, &[Role::SocManager]).unwrap_or_default();
        assert_eq!(split.actions.len(), 2);
        assert_eq!(split.system_actions.len(), 1);
        assert_eq!(split.system_actions[0].action_type_id, CASES);
        let merged = merge_actions(&split.actions, &split.system_actions);
        let ids: Vec<&str> = merged.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["hook", "log", "system-connector-.cases"]);
        assert_eq!(merged[2].group, None);
        assert_eq!(merged[2].connector_type_id, CASES);
        assert_eq!(merged[0].connector_type_id, WEBHOOK);
        assert!(merged.iter().all(|a| a.uuid.starts_with("uuid-")));
    }

    #[test]
    fn every_refusal_names_the_action() {
        let soc = [Role::SocManager];
        let with = |f: fn(&mut RuleActionRequest)| {
            let mut a = cases_action();
            f(&mut a);
            a
        };
        let cases: Vec<(Vec<RuleActionRequest>, &[Role], RuleRefusal)> = vec![
            (vec![action("nope", Some("default"))], &soc, bad("Failed to validate actions due to the following error: Invalid connectors: nope")),
            (vec![action("hook", None)], &soc, bad("Group is not defined in action hook")),
            (
                vec![action("mde", Some("default"))],
                &soc,
                bad("Action mde: Microsoft Defender for Endpoint connectors are not for rules (they run response actions)"),
            ),
            (vec![action("hook", Some(""))], &soc, bad("Group is not defined in action hook")),
            (vec![action("hook", Some("breached"))], &soc, bad("Invalid action groups: breached")),
            (
                vec![with(|a| a.group = Some("default".into()))],
                &soc,
                bad("System action system-connector-.cases cannot have group: the framework decides when system actions run"),
            ),
            (
                vec![with(|a| {
                    a.frequency = Some(ActionFrequency { summary: false, notify_when: NotifyWhen::OnActiveAlert, throttle: None });
                    a.alerts_filter = Some(serde_json::json!({}));
                })],
                &soc,
                bad("System action system-connector-.cases cannot have frequency, alerts_filter: the framework decides when system actions run"),
            ),
            (vec![cases_action(), cases_action()], &soc, bad("Cannot use the same system action twice: system-connector-.cases")),
            (
                vec![cases_action()],
                &[Role::PlatformEngineer],
                RuleRefusal::Forbidden("Unauthorized to use system action system-connector-.cases: it requires cases:all".into()),
            ),
        ];
        for (requests, roles, expected) in cases {
            assert_eq!(split(&requests, roles), Err(expected));
        }
    }

    #[test]
    fn system_action_params_are_checked_by_their_type() {
        let mut a = cases_action();
        a.params.insert(
            "subActionParams".into(),
            serde_json::json!({"groupingBy": [], "reopenClosedCases": false, "timeWindow": "7d", "maximumCasesToOpen": 0}),
        );
        let refusal = split(&[a], &[Role::SocManager]).err();
        assert!(
            matches!(refusal, Some(RuleRefusal::BadRequest(m)) if m.starts_with("Action system-connector-.cases: ") && m.contains("maximumCasesToOpen"))
        );
    }

    #[test]
    fn frequency_rules() {
        let mut a = action("hook", Some("default"));
        a.frequency = Some(ActionFrequency { summary: false, notify_when: NotifyWhen::OnThrottleInterval, throttle: None });
        assert!(matches!(split(&[a.clone()], &[]), Err(RuleRefusal::BadRequest(m)) if m.contains("throttle is required")));
        a.frequency = Some(ActionFrequency { summary: false, notify_when: NotifyWhen::OnThrottleInterval, throttle: Some("0m".into()) });
        assert!(matches!(split(&[a.clone()], &[]), Err(RuleRefusal::BadRequest(m)) if m.contains("not a duration")));
        a.frequency = Some(ActionFrequency { summary: true, notify_when: NotifyWhen::OnActionGroupChange, throttle: None });
        assert!(split(&[a.clone()], &[]).is_err());
        a.frequency = Some(ActionFrequency { summary: false, notify_when: NotifyWhen::OnThrottleInterval, throttle: Some("10m".into()) });
        assert!(split(&[a.clone()], &[]).is_ok());
        let at_rule_level = split_actions(&[a], &RULE_TYPES[0], true, lookup, &[], || "u".into());
        assert!(matches!(at_rule_level, Err(RuleRefusal::BadRequest(m)) if m.contains("rule level")));
    }

    #[test]
    fn alerts_filters_are_read_by_the_kuery_or_refused() {
        let context =
            serde_json::json!({"agent": {"status": "orphaned", "policy_id": "p1", "version": "8.15.2", "tags": ["pci"]}, "host": {"name": "pos-7"}});
        let filter = |kql: &str| serde_json::json!({"query": {"kql": kql, "filters": []}});
        let matches = |kql: &str| alerts_filter_kuery(&filter(kql)).ok().flatten().is_some_and(|q| agent_alert_matches(&q, &context));
        assert!(matches("tags:pci and status:orphaned"));
        assert!(matches("local_metadata.host.hostname:pos-*"));
        assert!(!matches("policy_id:p2"));
        assert_eq!(alerts_filter_kuery(&serde_json::json!({})), Ok(None));
        assert!(alerts_filter_kuery(&serde_json::json!({"timeframe": {"days": [1]}})).is_err_and(|m| m.contains("timeframe")));
        assert!(alerts_filter_kuery(&filter("status:(")).is_err_and(|m| m.starts_with("[alerts_filter.query.kql]")));
        let mut a = action("hook", Some("default"));
        a.alerts_filter = Some(serde_json::json!({"timeframe": {"days": [1]}}));
        assert!(matches!(split(&[a], &[]), Err(RuleRefusal::BadRequest(m)) if m.starts_with("Action hook: [alerts_filter.timeframe]")));
    }

    #[test]
    fn a_client_uuid_is_kept_and_must_be_unique() {
        let mut a = action("hook", Some("default"));
        a.uuid = Some("mine".into());
        let kept = split(&[a.clone()], &[]).unwrap_or_default();
        assert_eq!(kept.actions[0].uuid, "mine");
        assert!(matches!(split(&[a.clone(), a], &[]), Err(RuleRefusal::BadRequest(m)) if m.contains("repeats the uuid mine")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s", "x"), Ok(30_000));
        assert_eq!(parse_duration_ms("1m", "x"), Ok(60_000));
        assert_eq!(parse_duration_ms("12h", "x"), Ok(43_200_000));
        assert_eq!(parse_duration_ms("7d", "x"), Ok(604_800_000));
        for bad_text in ["", "m", "0m", "01m", "1", "1w", "1.5m", "-1m", " 1m", "9999999999d"] {
            assert!(parse_duration_ms(bad_text, "x").is_err(), "{bad_text}");
        }
        assert_eq!(format_duration_ms(60_000), "1m");
        assert_eq!(format_duration_ms(90_000), "90s");
        assert_eq!(format_duration_ms(86_400_000), "1d");
    }

    #[test]
    fn the_minimum_interval_is_enforced_with_kibanas_message() {
        let schedule = RuleSchedule { interval: "30s".into() };
        assert_eq!(
            validate_common("r", &[], &schedule, None, 60_000, "creating"),
            Err(bad("Error creating rule: the interval is less than the allowed minimum interval of 1m"))
        );
        assert_eq!(validate_common("r", &[], &RuleSchedule { interval: "1m".into() }, None, 60_000, "creating"), Ok(60_000));
        assert!(validate_common(" ", &[], &schedule, None, 1, "creating").is_err());
        assert!(validate_common("r", &["".into()], &schedule, None, 1, "creating").is_err());
    }

    #[test]
    fn agent_status_params() {
        let params = |v: Value| v.as_object().cloned().unwrap_or_default();
        let ok = validate_agent_status_params(&params(serde_json::json!({"statuses": ["uninstalled", "orphaned"], "for_at_least": "5m"})));
        assert_eq!(
            ok.map(|p| (p.for_at_least_ms(), p.statuses)).map(|(ms, s)| (s, ms)),
            Ok((vec![AgentStatus::Uninstalled, AgentStatus::Orphaned], 300_000))
        );
        for (value, field) in [
            (serde_json::json!({"statuses": []}), "statuses"),
            (serde_json::json!({"statuses": ["asleep"]}), "params"),
            (serde_json::json!({"statuses": ["offline"], "kuery": "status:("}), "kuery"),
            (serde_json::json!({"statuses": ["offline"], "for_at_least": "soon"}), "for_at_least"),
            (serde_json::json!({"statuses": ["offline"], "extra": 1}), "params"),
        ] {
            let err = validate_agent_status_params(&params(value.clone())).err().unwrap_or_default();
            assert!(err.contains(field), "{value}: {err}");
        }
    }

    #[test]
    fn alert_transitions() {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let t = transitions(&set(&["a", "b"]), &set(&["b", "c"]));
        assert_eq!(t.new, ["c"]);
        assert_eq!(t.ongoing, ["b"]);
        assert_eq!(t.recovered, ["a"]);
    }

    #[test]
    fn per_alert_frequency_decisions() {
        let last = |group: &str, at| Some(LastScheduled { group: group.into(), at });
        use NotifyWhen::*;
        let table = [
            (OnActiveAlert, None, "default", last("default", 0), 10, true),
            (OnActionGroupChange, None, "default", None, 10, true),
            (OnActionGroupChange, None, "default", last("default", 0), 10, false),
            (OnActionGroupChange, None, RECOVERED_GROUP, last("default", 0), 10, true),
            (OnThrottleInterval, Some(60), "default", last("default", 0), 59, false),
            (OnThrottleInterval, Some(60), "default", last("default", 0), 60, true),
            (OnThrottleInterval, Some(60), "default", last("other", 50), 59, true),
            (OnThrottleInterval, Some(60), "default", None, 0, true),
        ];
        for (notify_when, throttle, group, last, now, expected) in table {
            assert_eq!(should_fire_for_alert(notify_when, throttle, group, last.as_ref(), now), expected, "{notify_when:?} {group} {last:?} {now}");
        }
    }

    #[test]
    fn summary_frequency_decisions() {
        use NotifyWhen::*;
        assert!(!should_fire_summary(OnActiveAlert, None, 0, None, 0));
        assert!(should_fire_summary(OnActiveAlert, None, 2, Some(0), 1));
        assert!(!should_fire_summary(OnThrottleInterval, Some(100), 2, Some(0), 99));
        assert!(should_fire_summary(OnThrottleInterval, Some(100), 2, Some(0), 100));
    }

    #[test]
    fn legacy_rule_level_frequency() {
        let a = RuleAction {
            uuid: "u".into(),
            id: "hook".into(),
            action_type_id: WEBHOOK.into(),
            group: DEFAULT_GROUP.into(),
            params: Map::new(),
            frequency: None,
            alerts_filter: None,
            use_alert_data_for_template: None,
        };
        assert_eq!(effective_frequency(&a, None, None), (false, NotifyWhen::OnActiveAlert, None));
        assert_eq!(effective_frequency(&a, None, Some("5m")), (false, NotifyWhen::OnThrottleInterval, Some(300_000)));
        assert_eq!(effective_frequency(&a, Some(NotifyWhen::OnActionGroupChange), None), (false, NotifyWhen::OnActionGroupChange, None));
    }
}

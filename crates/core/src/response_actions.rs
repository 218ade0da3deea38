//! Response actions (`kibana-api.md` §1–2): the commands, the request bodies
//! and their validation with Kibana's messages, `ActionDetails` and how its
//! status is derived, the endpoint authz object, and the cancel rule. The
//! server enforces these; the SPA shows the same answers before it sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::License;
use crate::authz::Privilege;

crate::text_enum! {
    /// A response action's `command` (Kibana's RESPONSE_ACTION_API_COMMANDS_NAMES).
    ResponseCommand {
        Isolate = "isolate",
        Unisolate = "unisolate",
        KillProcess = "kill-process",
        SuspendProcess = "suspend-process",
        RunningProcesses = "running-processes",
        GetFile = "get-file",
        Execute = "execute",
        Upload = "upload",
        Scan = "scan",
        Runscript = "runscript",
        Cancel = "cancel",
    }
}

crate::text_enum! {
    /// Which kind of agent runs an action (`agent_type`, default `endpoint`).
    ResponseAgentType {
        Endpoint = "endpoint",
        SentinelOne = "sentinel_one",
        Crowdstrike = "crowdstrike",
        MicrosoftDefenderEndpoint = "microsoft_defender_endpoint",
    }
}

crate::text_enum! {
    /// An action's status, overall or for one agent.
    ActionStatus { Failed = "failed", Pending = "pending", Successful = "successful" }
}

crate::text_enum! {
    /// Sent by a person (`manual`) or by a rule (`automated`).
    ActionOrigin { Automated = "automated", Manual = "manual" }
}

crate::text_enum! {
    /// What an endpoint agent says it can do (`ENDPOINT_CAPABILITIES`), in
    /// its check-in's `local_metadata.elastic.agent.capabilities`.
    EndpointCapability {
        Isolation = "isolation",
        KillProcess = "kill_process",
        SuspendProcess = "suspend_process",
        RunningProcesses = "running_processes",
        GetFile = "get_file",
        Execute = "execute",
        UploadFile = "upload_file",
        Scan = "scan",
        Runscript = "runscript",
        Cancel = "cancel",
    }
}

/// How long an action waits for its agents unless the command has its own
/// timeout: 14 days, as Kibana's.
pub const DEFAULT_EXPIRATION_MS: i64 = 14 * 24 * 3_600_000;
/// `execute`'s default timeout, in seconds (DEFAULT_EXECUTE_ACTION_TIMEOUT).
pub const DEFAULT_EXECUTE_TIMEOUT_S: u64 = 14_400;
/// Targets of one action at most.
pub const MAX_ENDPOINT_IDS: usize = 10_000;
/// A comment's length at most, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// A path's or command line's length at most, in characters.
pub const MAX_TEXT_PARAM_CHARS: usize = 8_192;
/// The get-file download's zip passcode for endpoint agents.
pub const ENDPOINT_ZIP_PASSCODE: &str = "elastic";

impl ResponseCommand {
    /// The last segment of its `POST /api/endpoint/action/…` route.
    pub fn route_segment(self) -> &'static str {
        match self {
            ResponseCommand::Isolate => "isolate",
            ResponseCommand::Unisolate => "unisolate",
            ResponseCommand::KillProcess => "kill_process",
            ResponseCommand::SuspendProcess => "suspend_process",
            ResponseCommand::RunningProcesses => "running_procs",
            ResponseCommand::GetFile => "get_file",
            ResponseCommand::Execute => "execute",
            ResponseCommand::Upload => "upload",
            ResponseCommand::Scan => "scan",
            ResponseCommand::Runscript => "run_script",
            ResponseCommand::Cancel => "cancel",
        }
    }

    /// Its name in the console (`release`, `processes`; the rest as is).
    pub fn console_name(self) -> &'static str {
        match self {
            ResponseCommand::Unisolate => "release",
            ResponseCommand::RunningProcesses => "processes",
            other => other.as_str(),
        }
    }

    /// The capability an endpoint agent must report to run it.
    pub fn capability(self) -> EndpointCapability {
        match self {
            ResponseCommand::Isolate | ResponseCommand::Unisolate => EndpointCapability::Isolation,
            ResponseCommand::KillProcess => EndpointCapability::KillProcess,
            ResponseCommand::SuspendProcess => EndpointCapability::SuspendProcess,
            ResponseCommand::RunningProcesses => EndpointCapability::RunningProcesses,
            ResponseCommand::GetFile => EndpointCapability::GetFile,
            ResponseCommand::Execute => EndpointCapability::Execute,
            ResponseCommand::Upload => EndpointCapability::UploadFile,
            ResponseCommand::Scan => EndpointCapability::Scan,
            ResponseCommand::Runscript => EndpointCapability::Runscript,
            ResponseCommand::Cancel => EndpointCapability::Cancel,
        }
    }

    /// The Warden privilege that lets a user send it; `None` for cancel,
    /// whose rule is [`cancel_refusal`].
    pub fn privilege(self) -> Option<Privilege> {
        Some(match self {
            ResponseCommand::Isolate => Privilege::Isolate,
            ResponseCommand::Unisolate => Privilege::Release,
            ResponseCommand::KillProcess => Privilege::KillProcess,
            ResponseCommand::SuspendProcess => Privilege::SuspendProcess,
            ResponseCommand::RunningProcesses => Privilege::Processes,
            ResponseCommand::GetFile => Privilege::GetFile,
            ResponseCommand::Execute => Privilege::Execute,
            ResponseCommand::Upload => Privilege::Upload,
            ResponseCommand::Scan => Privilege::Scan,
            ResponseCommand::Runscript => Privilege::Runscript,
            ResponseCommand::Cancel => return None,
        })
    }

    /// The licence it needs (§2): isolate Platinum; release and cancel none,
    /// so a downgraded licence can still undo; the rest Enterprise.
    pub fn minimum_license(self) -> License {
        match self {
            ResponseCommand::Isolate => License::Platinum,
            ResponseCommand::Unisolate | ResponseCommand::Cancel => License::Basic,
            _ => License::Enterprise,
        }
    }

    /// isolate and unisolate answer with the legacy top-level `action` too.
    pub fn has_legacy_action_field(self) -> bool {
        matches!(self, ResponseCommand::Isolate | ResponseCommand::Unisolate)
    }

    /// The command behind a route segment.
    pub fn from_route_segment(segment: &str) -> Option<ResponseCommand> {
        ResponseCommand::ALL.iter().copied().find(|c| c.route_segment() == segment)
    }

    /// Whether the agent type can run it in Warden.
    pub fn supported_by(self, agent_type: ResponseAgentType) -> bool {
        match agent_type {
            ResponseAgentType::Endpoint => true,
            ResponseAgentType::MicrosoftDefenderEndpoint => {
                matches!(self, ResponseCommand::Isolate | ResponseCommand::Unisolate | ResponseCommand::Runscript | ResponseCommand::Cancel)
            }
            ResponseAgentType::SentinelOne | ResponseAgentType::Crowdstrike => false,
        }
    }
}

impl ResponseAgentType {
    /// How the UI names it.
    pub fn title(self) -> &'static str {
        match self {
            ResponseAgentType::Endpoint => "Elastic Defend",
            ResponseAgentType::SentinelOne => "SentinelOne",
            ResponseAgentType::Crowdstrike => "CrowdStrike",
            ResponseAgentType::MicrosoftDefenderEndpoint => "Microsoft Defender for Endpoint",
        }
    }
}

// ---- request bodies ----

/// The body every `POST /api/endpoint/action/…` route takes (§1.3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResponseActionRequest {
    /// Agent ids, 1 to 10,000, none blank.
    pub endpoint_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<ResponseAgentType>,
    /// Depends on the command (§1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_ids: Option<Vec<String>>,
}

/// A request that passed [`validate_request`]: targets without repeats,
/// the agent type, and the parameters in their one normal form.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    pub endpoint_ids: Vec<String>,
    pub agent_type: ResponseAgentType,
    pub parameters: Value,
    pub comment: Option<String>,
    pub alert_ids: Vec<String>,
    pub case_ids: Vec<String>,
}

fn number_at_least_one(params: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v >= 1 => Ok(Some(v)),
            _ => Err(format!("[parameters.{key}]: Value must be equal to or greater than [1].")),
        },
        Some(other) => Err(format!("[parameters.{key}]: expected value of type [number] but got [{}]", json_type(other))),
    }
}

fn text_param(params: &serde_json::Map<String, Value>, key: &str, required: bool) -> Result<Option<String>, String> {
    match params.get(key) {
        None | Some(Value::Null) if required => Err(format!("[parameters.{key}]: expected value of type [string] but got [undefined]")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(format!("[parameters.{key}]: value has length [{}] but it must have a minimum length of [1].", s.chars().count()))
        }
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT_PARAM_CHARS => Err(format!(
            "[parameters.{key}]: value has length [{}] but it must have a maximum length of [{MAX_TEXT_PARAM_CHARS}].",
            s.chars().count()
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("[parameters.{key}]: expected value of type [string] but got [{}]", json_type(other))),
    }
}

fn json_type(value: &Value) -> &'static str {
    crate::error::config_schema_type(Some(value))
}

fn only_keys(params: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!("[parameters.{key}]: definition for this key is missing")),
        None => Ok(()),
    }
}

/// Checks a request for `command` and returns it in normal form, or the
/// message of the 400 (Kibana's config-schema wording).
pub fn validate_request(command: ResponseCommand, request: &ResponseActionRequest) -> Result<ValidRequest, String> {
    if request.endpoint_ids.is_empty() {
        return Err("[request body.endpoint_ids]: array size is [0], but cannot be smaller than [1]".into());
    }
    if request.endpoint_ids.len() > MAX_ENDPOINT_IDS {
        return Err(format!(
            "[request body.endpoint_ids]: array size is [{}], but cannot be greater than [{MAX_ENDPOINT_IDS}]",
            request.endpoint_ids.len()
        ));
    }
    if let Some(i) = request.endpoint_ids.iter().position(|id| id.trim().is_empty()) {
        return Err(format!("[request body.endpoint_ids.{i}]: value has length [0] but it must have a minimum length of [1]."));
    }
    for (field, ids) in [("alert_ids", &request.alert_ids), ("case_ids", &request.case_ids)] {
        if ids.as_ref().is_some_and(|ids| ids.is_empty()) {
            return Err(format!("[request body.{field}]: array size is [0], but cannot be smaller than [1]"));
        }
    }
    if let Some(comment) = &request.comment
        && comment.chars().count() > MAX_COMMENT_CHARS
    {
        return Err(format!(
            "[request body.comment]: value has length [{}] but it must have a maximum length of [{MAX_COMMENT_CHARS}].",
            comment.chars().count()
        ));
    }
    let agent_type = request.agent_type.unwrap_or(ResponseAgentType::Endpoint);
    let parameters = parameters_of(command, agent_type, request.parameters.as_ref())?;
    let mut endpoint_ids: Vec<String> = Vec::with_capacity(request.endpoint_ids.len());
    for id in &request.endpoint_ids {
        if !endpoint_ids.contains(id) {
            endpoint_ids.push(id.clone());
        }
    }
    Ok(ValidRequest {
        endpoint_ids,
        agent_type,
        parameters,
        comment: request.comment.clone().filter(|c| !c.trim().is_empty()),
        alert_ids: request.alert_ids.clone().unwrap_or_default(),
        case_ids: request.case_ids.clone().unwrap_or_default(),
    })
}

/// A request's `parameters` (none, `null` or an object) in their normal
/// form for `command`, or the 400's message.
fn parameters_of(command: ResponseCommand, agent_type: ResponseAgentType, parameters: Option<&Value>) -> Result<Value, String> {
    let empty = serde_json::Map::new();
    let params = match parameters {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("[request body.parameters]: expected a plain object value, but found [{}] instead.", json_type(other))),
    };
    validate_parameters(command, agent_type, params)
}

fn validate_parameters(command: ResponseCommand, agent_type: ResponseAgentType, params: &serde_json::Map<String, Value>) -> Result<Value, String> {
    use serde_json::json;
    match command {
        ResponseCommand::Isolate | ResponseCommand::Unisolate | ResponseCommand::RunningProcesses => {
            only_keys(params, &[])?;
            Ok(json!({}))
        }
        ResponseCommand::KillProcess | ResponseCommand::SuspendProcess => {
            if params.contains_key("process_name") {
                if command == ResponseCommand::KillProcess {
                    return Err(format!("[parameters.process_name]: is not valid with agent type of {}", agent_type.as_str()));
                }
                return Err("[parameters.process_name]: definition for this key is missing".into());
            }
            only_keys(params, &["pid", "entity_id"])?;
            let pid = number_at_least_one(params, "pid")?;
            let entity_id = text_param(params, "entity_id", false)?;
            match (pid, entity_id) {
                (Some(pid), None) => Ok(json!({ "pid": pid })),
                (None, Some(entity_id)) => Ok(json!({ "entity_id": entity_id })),
                (Some(_), Some(_)) => Err("[parameters]: requires only one of the following: pid, entity_id".into()),
                (None, None) => Err("[parameters]: requires one of the following: pid, entity_id".into()),
            }
        }
        ResponseCommand::GetFile | ResponseCommand::Scan => {
            only_keys(params, &["path"])?;
            let path = text_param(params, "path", true)?;
            Ok(json!({ "path": path }))
        }
        ResponseCommand::Execute => {
            only_keys(params, &["command", "timeout"])?;
            let line = match params.get("command") {
                Some(Value::String(s)) if s.trim().is_empty() => return Err("[parameters.command]: command cannot be an empty string".into()),
                _ => text_param(params, "command", true)?,
            };
            let timeout = number_at_least_one(params, "timeout")?.unwrap_or(DEFAULT_EXECUTE_TIMEOUT_S);
            Ok(json!({ "command": line, "timeout": timeout }))
        }
        ResponseCommand::Upload => {
            only_keys(params, &["overwrite"])?;
            match params.get("overwrite") {
                None | Some(Value::Null) => Ok(json!({ "overwrite": false })),
                Some(Value::Bool(b)) => Ok(json!({ "overwrite": b })),
                Some(other) => Err(format!("[parameters.overwrite]: expected value of type [boolean] but got [{}]", json_type(other))),
            }
        }
        ResponseCommand::Runscript => match agent_type {
            ResponseAgentType::MicrosoftDefenderEndpoint => {
                only_keys(params, &["scriptName", "args"])?;
                let name = text_param(params, "scriptName", true)?;
                let args = text_param(params, "args", false)?;
                Ok(json!({ "scriptName": name, "args": args }))
            }
            _ => {
                only_keys(params, &["scriptId", "scriptInput", "timeout"])?;
                let script_id = text_param(params, "scriptId", true)?;
                let input = match params.get("scriptInput") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.chars().count() > MAX_TEXT_PARAM_CHARS => {
                        return Err(format!(
                            "[parameters.scriptInput]: value has length [{}] but it must have a maximum length of [{MAX_TEXT_PARAM_CHARS}].",
                            s.chars().count()
                        ));
                    }
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => return Err(format!("[parameters.scriptInput]: expected value of type [string] but got [{}]", json_type(other))),
                };
                let timeout = number_at_least_one(params, "timeout")?.unwrap_or(DEFAULT_EXECUTE_TIMEOUT_S);
                Ok(json!({ "scriptId": script_id, "scriptInput": input, "timeout": timeout }))
            }
        },
        ResponseCommand::Cancel => {
            only_keys(params, &["id"])?;
            match params.get("id") {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(json!({ "id": s })),
                _ => Err("[parameters.id]: id is required in parameters for cancel action".into()),
            }
        }
    }
}

/// How long an action waits before it expires, from its creation: its own
/// timeout for `execute` and `runscript` (plus a minute for the agent to
/// report), 14 days for the rest.
pub fn expiration_ms(command: ResponseCommand, parameters: &Value) -> i64 {
    match command {
        ResponseCommand::Execute | ResponseCommand::Runscript => {
            let timeout_s = parameters.get("timeout").and_then(Value::as_u64).unwrap_or(DEFAULT_EXECUTE_TIMEOUT_S);
            i64::try_from(timeout_s).ok().and_then(|s| s.checked_mul(1000)).and_then(|ms| ms.checked_add(60_000)).unwrap_or(DEFAULT_EXPIRATION_MS)
        }
        _ => DEFAULT_EXPIRATION_MS,
    }
}

// ---- what an action is ----

/// One target agent's progress (`agentState`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub is_completed: bool,
    pub was_successful: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub was_canceled: bool,
    /// Warden: who cancelled it for this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    /// Warden: the cancel action that ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_action_id: Option<String>,
    /// Warden: it passed its expiry before the agent answered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_expired: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A target host as the action shows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionHost {
    pub name: String,
    /// Warden: whether the agent could cancel when the action was sent
    /// (it reported the `cancel` capability).
    #[serde(default)]
    pub cancel_supported: bool,
}

/// One agent's output (`outputs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionOutput {
    #[serde(rename = "type")]
    pub output_type: OutputType,
    pub content: Value,
}

crate::text_enum! {
    /// How an output's `content` reads.
    OutputType { Json = "json", Text = "text" }
}

/// A response action as the API returns it (§1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionDetails {
    pub id: String,
    pub agents: Vec<String>,
    pub hosts: BTreeMap<String, ActionHost>,
    pub command: ResponseCommand,
    pub agent_type: ResponseAgentType,
    pub is_expired: bool,
    pub is_completed: bool,
    pub was_successful: bool,
    #[serde(default)]
    pub was_canceled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub status: ActionStatus,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<BTreeMap<String, ActionOutput>>,
    pub agent_state: BTreeMap<String, AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Warden: when it expires if its agents have not answered (ISO).
    pub expiration: String,
}

/// The overall state of an action, from its agents' states (`getActionStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overall {
    pub is_completed: bool,
    pub was_successful: bool,
    pub was_canceled: bool,
    pub is_expired: bool,
    pub status: ActionStatus,
}

/// Completed when every agent has answered; successful when every one
/// succeeded; expired when unfinished past its expiry (`past_expiry`), and
/// then failed. A cancelled agent is a failed one, whatever was cancelled.
pub fn overall<'a>(states: impl IntoIterator<Item = &'a AgentState>, past_expiry: bool) -> Overall {
    let (mut any, mut completed, mut successful, mut canceled, mut expired) = (false, true, true, false, false);
    for state in states {
        any = true;
        completed &= state.is_completed;
        successful &= state.is_completed && state.was_successful;
        canceled |= state.was_canceled;
        expired |= state.is_expired;
    }
    let completed = any && completed;
    let is_expired = expired || (!completed && past_expiry);
    let status = if is_expired {
        ActionStatus::Failed
    } else if completed {
        if successful { ActionStatus::Successful } else { ActionStatus::Failed }
    } else {
        ActionStatus::Pending
    };
    Overall {
        is_completed: completed || is_expired,
        was_successful: completed && successful && !is_expired,
        was_canceled: canceled,
        is_expired,
        status,
    }
}

crate::text_enum! {
    /// How an action (or one host's part of it) stands, as every view shows
    /// it: the console, the history and the agent page read it from
    /// [`outcome`] and [`host_outcome`], so they never disagree (Kibana bug
    /// #275346: the console said "Action failed." where the history said
    /// "Canceled"). Cancelled and expired are failures with their own name.
    Outcome { Pending = "pending", Successful = "successful", Failed = "failed", Canceled = "canceled", Expired = "expired" }
}

impl Outcome {
    /// The badge's word.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pending => "Pending",
            Outcome::Successful => "Successful",
            Outcome::Failed => "Failed",
            Outcome::Canceled => "Cancelled",
            Outcome::Expired => "Expired",
        }
    }

    /// The console's result title (`mde-and-console.md` §3).
    pub fn console_title(self, command: ResponseCommand) -> &'static str {
        match (self, command) {
            (Outcome::Pending, ResponseCommand::Cancel) => "Cancel action in progress.",
            (Outcome::Pending, _) => "Action pending.",
            (Outcome::Successful, ResponseCommand::Runscript) => "RunScript was successful.",
            (Outcome::Successful, _) => "Action completed.",
            (Outcome::Failed, _) => "Action failed.",
            (Outcome::Canceled, _) => "Action canceled.",
            (Outcome::Expired, _) => "Action failed: action expired.",
        }
    }

    /// What a console says of an action it was about to name that is no
    /// longer pending ("already completed", …).
    pub fn already(self) -> &'static str {
        match self {
            Outcome::Pending => "still pending",
            Outcome::Successful => "already completed",
            Outcome::Failed => "already failed",
            Outcome::Canceled => "already been cancelled",
            Outcome::Expired => "already expired",
        }
    }
}

/// The action's outcome over all its hosts: cancelled if any host's part
/// was cancelled, expired if it expired, else its status.
pub fn outcome(action: &ActionDetails) -> Outcome {
    if action.was_canceled && action.status != ActionStatus::Pending {
        Outcome::Canceled
    } else if action.is_expired {
        Outcome::Expired
    } else {
        match action.status {
            ActionStatus::Pending => Outcome::Pending,
            ActionStatus::Successful => Outcome::Successful,
            ActionStatus::Failed => Outcome::Failed,
        }
    }
}

/// One host's outcome within an action (a console shows its own host's).
pub fn host_outcome(action: &ActionDetails, agent_id: &str) -> Outcome {
    match action.agent_state.get(agent_id) {
        Some(s) if s.was_canceled => Outcome::Canceled,
        Some(s) if s.is_expired => Outcome::Expired,
        Some(s) if s.is_completed && s.was_successful => Outcome::Successful,
        Some(s) if s.is_completed => Outcome::Failed,
        _ if action.is_expired => Outcome::Expired,
        _ => Outcome::Pending,
    }
}

impl ActionDetails {
    /// The agents this action still waits for.
    pub fn pending_agents(&self) -> Vec<&str> {
        if self.status != ActionStatus::Pending {
            return Vec::new();
        }
        self.agents.iter().filter(|a| self.agent_state.get(*a).is_none_or(|s| !s.is_completed)).map(String::as_str).collect()
    }

    /// The host name of an agent, or its id.
    pub fn host_name<'a>(&'a self, agent_id: &'a str) -> &'a str {
        self.hosts.get(agent_id).map(|h| h.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(agent_id)
    }

    /// The action a cancel action names (`parameters.id`).
    pub fn cancelled_action_id(&self) -> Option<&str> {
        (self.command == ResponseCommand::Cancel).then(|| self.parameters.get("id").and_then(Value::as_str)).flatten()
    }
}

/// `POST` answers: `{data}`, plus the legacy `action` for isolate/unisolate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub data: ActionDetails,
}

/// `GET /api/endpoint/action` (§1.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionListResponse {
    pub page: u64,
    pub page_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_types: Option<Vec<ResponseAgentType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elastic_agent_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<ResponseCommand>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<ActionStatus>>,
    pub data: Vec<ActionDetails>,
    pub total: u64,
}

/// `{data}` around one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionDetailsResponse {
    pub data: ActionDetails,
}

/// One agent's pending actions by command (`GET /api/endpoint/action_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentPendingActions {
    pub agent_id: String,
    pub pending_actions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionStatusResponse {
    pub data: Vec<AgentPendingActions>,
}

/// The list's filters, as the SPA sends them and the server reads them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActionListQuery {
    pub agent_ids: Vec<String>,
    pub agent_types: Vec<ResponseAgentType>,
    pub commands: Vec<ResponseCommand>,
    pub statuses: Vec<ActionStatus>,
    pub user_ids: Vec<String>,
    pub types: Vec<ActionOrigin>,
    pub with_outputs: Vec<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub page: u64,
    pub page_size: u64,
}

pub const DEFAULT_PAGE_SIZE: u64 = 10;
pub const MAX_PAGE_SIZE: u64 = 10_000;

impl ActionListQuery {
    /// Reads `key=value` pairs (a key may repeat, or carry a comma-separated
    /// list), with the 400 message for a bad one.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ActionListQuery, String> {
        let mut query = ActionListQuery { page: 1, page_size: DEFAULT_PAGE_SIZE, ..ActionListQuery::default() };
        fn parts(value: &str) -> impl Iterator<Item = &str> {
            value.split(',').map(str::trim).filter(|v| !v.is_empty())
        }
        fn enum_of<T: Copy>(key: &str, text: &str, parse: fn(&str) -> Option<T>, names: &[&str]) -> Result<T, String> {
            parse(text).ok_or_else(|| {
                format!("[request query.{key}]: types that failed validation: expected one of [{}] but got [{text}]", names.join(", "))
            })
        }
        for (key, value) in pairs {
            match key {
                "agentIds" => query.agent_ids.extend(parts(value).map(str::to_owned)),
                "userIds" => query.user_ids.extend(parts(value).map(str::to_owned)),
                "withOutputs" => query.with_outputs.extend(parts(value).map(str::to_owned)),
                "agentTypes" => {
                    let names: Vec<&str> = ResponseAgentType::ALL.iter().map(|t| t.as_str()).collect();
                    for part in parts(value) {
                        query.agent_types.push(enum_of(key, part, ResponseAgentType::parse, &names)?);
                    }
                }
                "commands" => {
                    let names: Vec<&str> = ResponseCommand::ALL.iter().map(|t| t.as_str()).collect();
                    for part in parts(value) {
                        query.commands.push(enum_of(key, part, ResponseCommand::parse, &names)?);
                    }
                }
                "statuses" => {
                    let names: Vec<&str> = ActionStatus::ALL.iter().map(|t| t.as_str()).collect();
                    for part in parts(value) {
                        query.statuses.push(enum_of(key, part, ActionStatus::parse, &names)?);
                    }
                }
                "types" => {
                    let names: Vec<&str> = ActionOrigin::ALL.iter().map(|t| t.as_str()).collect();
                    for part in parts(value) {
                        query.types.push(enum_of(key, part, ActionOrigin::parse, &names)?);
                    }
                }
                "startDate" => query.start_date = Some(value.to_owned()).filter(|v| !v.trim().is_empty()),
                "endDate" => query.end_date = Some(value.to_owned()).filter(|v| !v.trim().is_empty()),
                "page" => query.page = page_param(value)?,
                "pageSize" => query.page_size = page_size_param(value, MAX_PAGE_SIZE)?,
                other => return Err(format!("[request query.{other}]: definition for this key is missing")),
            }
        }
        if query.statuses.len() > 3 {
            return Err("[request query.statuses]: array size is [4], but cannot be greater than [3]".into());
        }
        for list in [&mut query.agent_ids, &mut query.user_ids, &mut query.with_outputs] {
            list.sort();
            list.dedup();
        }
        Ok(query)
    }

    /// The query string for this query (`paths::with_query`'s pairs).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let join = |items: Vec<&str>| items.join(",");
        if !self.agent_ids.is_empty() {
            pairs.push(("agentIds", join(self.agent_ids.iter().map(String::as_str).collect())));
        }
        if !self.agent_types.is_empty() {
            pairs.push(("agentTypes", join(self.agent_types.iter().map(|t| t.as_str()).collect())));
        }
        if !self.commands.is_empty() {
            pairs.push(("commands", join(self.commands.iter().map(|t| t.as_str()).collect())));
        }
        if !self.statuses.is_empty() {
            pairs.push(("statuses", join(self.statuses.iter().map(|t| t.as_str()).collect())));
        }
        if !self.user_ids.is_empty() {
            pairs.push(("userIds", join(self.user_ids.iter().map(String::as_str).collect())));
        }
        if !self.types.is_empty() {
            pairs.push(("types", join(self.types.iter().map(|t| t.as_str()).collect())));
        }
        if !self.with_outputs.is_empty() {
            pairs.push(("withOutputs", join(self.with_outputs.iter().map(String::as_str).collect())));
        }
        if let Some(d) = &self.start_date {
            pairs.push(("startDate", d.clone()));
        }
        if let Some(d) = &self.end_date {
            pairs.push(("endDate", d.clone()));
        }
        if self.page != 1 {
            pairs.push(("page", self.page.to_string()));
        }
        if self.page_size != DEFAULT_PAGE_SIZE {
            pairs.push(("pageSize", self.page_size.to_string()));
        }
        pairs
    }
}

/// A query's `page`: 1 or more, with Kibana's message otherwise.
pub(crate) fn page_param(value: &str) -> Result<u64, String> {
    value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| "[request query.page]: Value must be equal to or greater than [1].".to_owned())
}

/// A query's `pageSize`: 1 to `max`, with Kibana's message otherwise.
pub(crate) fn page_size_param(value: &str, max: u64) -> Result<u64, String> {
    value.parse().ok().filter(|p| (1..=max).contains(p)).ok_or_else(|| format!("[request query.pageSize]: Value must be between [1] and [{max}]."))
}

// ---- dates: ISO 8601 or date math ----

/// Reads a list filter's date: an ISO 8601 time (`2026-11-24T08:00:00Z`, or
/// a day `2026-11-24`, meaning its start) or date math (`now`, `now-7d`,
/// `now-1d/d`; units s m h d w M y), in milliseconds since the epoch. A
/// rounded `end` bound reaches the end of its unit, as Kibana's `roundUp`.
pub fn resolve_date(text: &str, now_ms: i64, end: bool) -> Result<i64, String> {
    let text = text.trim();
    let bad = || format!("Invalid date: [{text}]; expected an ISO 8601 time or date math such as now-7d");
    if let Some(math) = text.strip_prefix("now") {
        let (offset, rounding) = match math.split_once('/') {
            Some((offset, unit)) => (offset, Some(unit)),
            None => (math, None),
        };
        let mut at = now_ms;
        if !offset.is_empty() {
            let (sign, amount) = offset.split_at(1);
            let sign = match sign {
                "-" => -1,
                "+" => 1,
                _ => return Err(bad()),
            };
            let split = amount.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (count, unit) = amount.split_at(split);
            let count: i64 = count.parse().map_err(|_| bad())?;
            let unit_ms = unit_ms(unit).ok_or_else(bad)?;
            at = count.checked_mul(unit_ms).and_then(|d| d.checked_mul(sign)).and_then(|d| at.checked_add(d)).ok_or_else(bad)?;
        }
        if let Some(unit) = rounding {
            let unit_ms = unit_ms(unit).ok_or_else(bad)?;
            let start = at.div_euclid(unit_ms) * unit_ms;
            at = if end { start + unit_ms - 1 } else { start };
        }
        return Ok(at);
    }
    parse_iso(text).ok_or_else(bad)
}

/// Milliseconds in a date-math unit; months and years as 30 and 365 days.
fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    })
}

/// `YYYY-MM-DD`, optionally `THH:MM[:SS[.fff]]` and `Z` or `±HH:MM`.
fn parse_iso(text: &str) -> Option<i64> {
    let num = |s: &str| -> Option<i64> { (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten() };
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = (num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let mut ms = days.checked_mul(86_400_000)?;
    if let Some(time) = time {
        let (clock, offset_ms) = if let Some(clock) = time.strip_suffix('Z') {
            (clock, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (clock, zone) = time.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            (clock, sign * (num(h)? * 3_600_000 + num(m)? * 60_000))
        } else {
            (time, 0)
        };
        let mut fields = clock.splitn(3, ':');
        let hours = num(fields.next()?)?;
        let minutes = num(fields.next()?)?;
        let (seconds, millis) = match fields.next() {
            None => (0, 0),
            Some(s) => match s.split_once('.') {
                Some((s, frac)) => (num(s)?, num(&format!("{:0<3}", frac.get(..3.min(frac.len()))?))?),
                None => (num(s)?, 0),
            },
        };
        if hours > 23 || minutes > 59 || seconds > 60 {
            return None;
        }
        ms += hours * 3_600_000 + minutes * 60_000 + seconds * 1000 + millis - offset_ms;
    }
    Some(ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---- endpoint authz (§2) ----

/// What a user may do with endpoints, as Kibana's `EndpointAuthz` (the
/// keys Warden has a meaning for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EndpointAuthz {
    pub can_read_security_solution: bool,
    pub can_access_fleet: bool,
    pub can_read_fleet_agents: bool,
    pub can_write_fleet_agents: bool,
    pub can_access_endpoint_management: bool,
    pub can_read_actions_log_management: bool,
    pub can_access_endpoint_actions_log_management: bool,
    pub can_isolate_host: bool,
    pub can_un_isolate_host: bool,
    pub can_kill_process: bool,
    pub can_suspend_process: bool,
    pub can_get_running_processes: bool,
    pub can_write_file_operations: bool,
    pub can_write_execute_operations: bool,
    pub can_write_scan_operations: bool,
    pub can_access_response_console: bool,
    pub can_cancel_action: bool,
    pub can_read_scripts_library: bool,
    pub can_write_scripts_library: bool,
}

/// `GET /internal/endpoint/authz`: the caller's endpoint authz and what the
/// SPA needs to apply the same rules ([`cancel_refusal`], [`command_refusal`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EndpointAuthzResponse {
    pub authz: EndpointAuthz,
    pub username: String,
    pub privileges: Vec<Privilege>,
    pub license: License,
    /// The `mde_cancel` feature flag.
    pub mde_cancel_enabled: bool,
}

impl EndpointAuthzResponse {
    /// The caller, as [`cancel_refusal`] takes it.
    pub fn canceller(&self) -> Canceller<'_> {
        Canceller { username: &self.username, privileges: &self.privileges, license: self.license, mde_cancel_enabled: self.mde_cancel_enabled }
    }
}

/// Kibana's `calculateEndpointAuthz` over Warden's privileges and licence.
pub fn endpoint_authz(privileges: &[Privilege], license: License) -> EndpointAuthz {
    let has = |p: Privilege| privileges.contains(&p);
    let platinum = license.allows(License::Platinum);
    let enterprise = license.allows(License::Enterprise);
    let mut authz = EndpointAuthz {
        can_read_security_solution: !privileges.is_empty(),
        can_access_fleet: has(Privilege::FleetAll),
        can_read_fleet_agents: has(Privilege::FleetRead),
        can_write_fleet_agents: has(Privilege::FleetAll),
        can_access_endpoint_management: has(Privilege::UsersAdmin),
        can_read_actions_log_management: has(Privilege::ResponseActionsLogRead) && enterprise,
        can_access_endpoint_actions_log_management: has(Privilege::ResponseActionsLogRead) && platinum,
        can_isolate_host: has(Privilege::Isolate) && platinum,
        can_un_isolate_host: has(Privilege::Release),
        can_kill_process: has(Privilege::KillProcess) && enterprise,
        can_suspend_process: has(Privilege::SuspendProcess) && enterprise,
        can_get_running_processes: has(Privilege::Processes) && enterprise,
        can_write_file_operations: (has(Privilege::GetFile) || has(Privilege::Upload)) && enterprise,
        can_write_execute_operations: (has(Privilege::Execute) || has(Privilege::Runscript)) && enterprise,
        can_write_scan_operations: has(Privilege::Scan) && enterprise,
        can_access_response_console: false,
        can_cancel_action: false,
        can_read_scripts_library: (has(Privilege::ScriptsLibraryRead) || has(Privilege::ScriptsLibraryAll)) && enterprise,
        can_write_scripts_library: has(Privilege::ScriptsLibraryAll) && enterprise,
    };
    // Cancel is open to whoever may send any command it can cancel, release
    // included, with no licence of its own (a reviewer's finding: cancel must
    // work after a downgrade).
    authz.can_cancel_action =
        ResponseCommand::ALL.iter().any(|c| *c != ResponseCommand::Cancel && command_refusal(privileges, license, *c).is_none());
    authz.can_access_response_console = enterprise
        && ResponseCommand::ALL
            .iter()
            .filter(|c| !matches!(c, ResponseCommand::Unisolate | ResponseCommand::Cancel))
            .any(|c| command_refusal(privileges, license, *c).is_none());
    authz
}

/// Why a user may not send `command` (privilege or licence), or `None`.
/// Cancel's own rule is [`cancel_refusal`].
pub fn command_refusal(privileges: &[Privilege], license: License, command: ResponseCommand) -> Option<String> {
    let privilege = command.privilege()?;
    if !privileges.contains(&privilege) {
        return Some(format!("{} requires the {privilege} privilege", command.console_name()));
    }
    let minimum = command.minimum_license();
    if !license.allows(minimum) {
        return Some(format!("{} requires a {} licence (this Warden has {})", command.console_name(), minimum.as_str(), license.as_str()));
    }
    None
}

/// The licence an agent type's actions need on top of the command's: the
/// Microsoft Defender for Endpoint connector needs Enterprise, as Kibana's.
pub fn agent_type_license_refusal(agent_type: ResponseAgentType, license: License) -> Option<String> {
    (agent_type == ResponseAgentType::MicrosoftDefenderEndpoint && !license.allows(License::Enterprise))
        .then(|| format!("{} response actions require an enterprise licence (this Warden has {})", agent_type.title(), license.as_str()))
}

/// Why an agent may not run `command` (its type, or the capabilities it
/// reported), or `None`.
pub fn agent_refusal(command: ResponseCommand, agent_type: ResponseAgentType, capabilities: &[EndpointCapability], host: &str) -> Option<String> {
    if !command.supported_by(agent_type) {
        return Some(format!("The {} command is not currently available for {}", command.console_name(), agent_type.title()));
    }
    if agent_type == ResponseAgentType::Endpoint && !capabilities.contains(&command.capability()) {
        return Some(format!(
            "The {} command is not supported by the agent on {host}: it does not report the {} capability (upgrade the agent)",
            command.console_name(),
            command.capability().as_str()
        ));
    }
    None
}

/// What the server knows of an endpoint agent when it decides whether the
/// agent can receive a command now.
#[derive(Debug, Clone, Copy)]
pub struct EndpointHost<'a> {
    pub id: &'a str,
    pub host_name: &'a str,
    /// Still enrolled (not unenrolled).
    pub active: bool,
    pub status: crate::fleet::AgentStatus,
    pub capabilities: &'a [EndpointCapability],
}

/// Why an endpoint agent cannot receive `command` now, or `None`: it is
/// unenrolled or uninstalled, or does not report the command's capability.
/// An offline agent can (the action waits for it). One rule for the
/// single-host routes and for a bulk action's preview and split.
pub fn endpoint_refusal(command: ResponseCommand, host: &EndpointHost<'_>) -> Option<String> {
    use crate::fleet::AgentStatus;
    if !host.active || matches!(host.status, AgentStatus::Unenrolled | AgentStatus::Uninstalled) {
        return Some(format!("Endpoint '{}' ({}) is {}: it can no longer receive actions", host.host_name, host.id, host.status.as_str()));
    }
    agent_refusal(command, ResponseAgentType::Endpoint, host.capabilities, host.host_name)
}

// ---- cancel ----

/// A refusal with the status the API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
}

/// The message of a 403 from the endpoint routes.
pub const AUTHZ_FAILURE: &str = "Endpoint authorization failure";

/// Who asks to cancel, and with which settings.
#[derive(Debug, Clone, Copy)]
pub struct Canceller<'a> {
    pub username: &'a str,
    pub privileges: &'a [Privilege],
    pub license: License,
    /// The `mde_cancel` feature flag.
    pub mde_cancel_enabled: bool,
}

/// Why `who` may not cancel `action` for `endpoint_ids` (empty: every host
/// still pending), or `None`. `cancelled` is the action a cancel action
/// names, when `action` is one. One rule for the route, the history page and
/// the console; the order is Kibana's: authz, agent type and flag, the
/// original command's authz, then the action's state.
pub fn cancel_refusal(who: &Canceller<'_>, action: &ActionDetails, endpoint_ids: &[String]) -> Option<Refusal> {
    let authz = endpoint_authz(who.privileges, who.license);
    if !authz.can_cancel_action {
        return Some(Refusal::new(403, AUTHZ_FAILURE));
    }
    match action.agent_type {
        ResponseAgentType::Endpoint => {}
        ResponseAgentType::MicrosoftDefenderEndpoint if !who.mde_cancel_enabled => {
            return Some(Refusal::new(400, "Cancel operation is not enabled for Microsoft Defender for Endpoint"));
        }
        ResponseAgentType::MicrosoftDefenderEndpoint => {
            if let Some(reason) = agent_type_license_refusal(action.agent_type, who.license) {
                return Some(Refusal::new(403, format!("{AUTHZ_FAILURE}: {reason}")));
            }
        }
        other => return Some(Refusal::new(400, format!("Cancel is not currently available for {}", other.title()))),
    }
    if action.command == ResponseCommand::Cancel {
        // MDE cancels at once: there is no pending cancel there to undo.
        if action.agent_type == ResponseAgentType::MicrosoftDefenderEndpoint {
            return Some(Refusal::new(400, "Cannot cancel a cancel action."));
        }
        if action.created_by != who.username {
            return Some(Refusal::new(
                403,
                format!("{AUTHZ_FAILURE}: only {}, who sent cancel action [{}], may cancel it", action.created_by, action.id),
            ));
        }
    } else if let Some(reason) = command_refusal(who.privileges, who.license, action.command) {
        return Some(Refusal::new(403, format!("{AUTHZ_FAILURE}: you may not cancel this action because {reason}")));
    }
    if action.status != ActionStatus::Pending {
        let how = if action.status == ActionStatus::Successful { "completed successfully" } else { "failed" };
        return Some(Refusal::new(400, format!("Cannot cancel action [{}] because it has already {how}.", action.id)));
    }
    for endpoint in endpoint_ids {
        let Some(state) = action.agents.contains(endpoint).then(|| action.agent_state.get(endpoint)).flatten() else {
            return Some(Refusal::new(400, format!("Endpoint '{endpoint}' is not associated with action '{}'", action.id)));
        };
        if state.is_completed {
            let how = if state.was_successful { "completed successfully" } else { "failed" };
            return Some(Refusal::new(
                400,
                format!("Cannot cancel action [{}] on {} because it has already {how}.", action.id, action.host_name(endpoint)),
            ));
        }
    }
    let chosen: Vec<&str> = if endpoint_ids.is_empty() { action.pending_agents() } else { endpoint_ids.iter().map(String::as_str).collect() };
    if action.agent_type == ResponseAgentType::Endpoint
        && let Some(agent) = chosen.iter().find(|a| action.hosts.get(**a).is_none_or(|h| !h.cancel_supported))
    {
        return Some(Refusal::new(
            400,
            format!("The agent on {} cannot cancel actions: it does not report the cancel capability (upgrade the agent)", action.host_name(agent)),
        ));
    }
    None
}

// ---- Microsoft Defender for Endpoint hosts ----

/// A host Microsoft Defender for Endpoint knows, as the Fleet view lists it
/// (read through the MDE connector's `GET /api/machines`). Its `id` is what
/// an action's `endpoint_ids` names with `agent_type: microsoft_defender_endpoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MdeHost {
    pub id: String,
    pub name: String,
    pub os_platform: Option<String>,
    pub health_status: Option<String>,
    pub last_seen: Option<String>,
    pub last_ip_address: Option<String>,
    pub risk_score: Option<String>,
}

impl From<&crate::mde::Machine> for MdeHost {
    fn from(machine: &crate::mde::Machine) -> MdeHost {
        MdeHost {
            id: machine.id.clone(),
            name: machine.computer_dns_name.clone().unwrap_or_else(|| machine.id.clone()),
            os_platform: machine.os_platform.clone(),
            health_status: machine.health_status.clone(),
            last_seen: machine.last_seen.clone(),
            last_ip_address: machine.last_ip_address.clone(),
            risk_score: machine.risk_score.clone(),
        }
    }
}

/// `GET /internal/endpoint/mde/hosts`: `configured` is false (and `data`
/// empty) when Warden has no MDE connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MdeHostsResponse {
    pub configured: bool,
    pub data: Vec<MdeHost>,
}

// ---- the `.endpoint-response` system action ----

/// What a rule's `.endpoint-response` action does to the hosts its alerts
/// are about: `{"command": "isolate", "comment": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointResponseParams {
    pub command: ResponseCommand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The commands a rule may send (Kibana lets automated response isolate;
/// Warden starts there).
pub const AUTOMATED_COMMANDS: &[ResponseCommand] = &[ResponseCommand::Isolate];

pub fn validate_endpoint_response_params(params: &serde_json::Map<String, Value>) -> Result<EndpointResponseParams, String> {
    if let Some(key) = params.keys().find(|k| !matches!(k.as_str(), "command" | "comment")) {
        return Err(format!("[{key}]: definition for this key is missing"));
    }
    let command = match params.get("command") {
        Some(Value::String(text)) => ResponseCommand::parse(text).filter(|c| AUTOMATED_COMMANDS.contains(c)).ok_or_else(|| {
            format!("[command]: expected one of [{}] but got [{text}]", AUTOMATED_COMMANDS.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))
        })?,
        other => return Err(format!("[command]: expected value of type [string] but got [{}]", crate::error::config_schema_type(other))),
    };
    let comment = match params.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() > MAX_COMMENT_CHARS => {
            return Err(format!(
                "[comment]: value has length [{}] but it must have a maximum length of [{MAX_COMMENT_CHARS}].",
                text.chars().count()
            ));
        }
        Some(Value::String(text)) => Some(text.clone()).filter(|t| !t.trim().is_empty()),
        Some(other) => return Err(format!("[comment]: expected value of type [string] but got [{}]", crate::error::config_schema_type(Some(other)))),
    };
    Ok(EndpointResponseParams { command, comment })
}

// ---- the scripts library ----

/// A script of the library `runscript` picks from (Kibana 9.4's EndpointScript).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EndpointScript {
    pub id: String,
    pub name: String,
    pub description: String,
    /// How to give it input (`scriptInput`), shown in the console's help.
    pub instructions: String,
    pub example: String,
    pub platform: Vec<String>,
    pub requires_input: bool,
    pub file_name: String,
    pub file_size: i64,
    pub file_hash: String,
    /// Relative to Warden's base path.
    pub download_uri: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_by: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScriptsListResponse {
    pub data: Vec<EndpointScript>,
    pub total: u64,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScriptResponse {
    pub data: EndpointScript,
}

/// A script's fields as a form sends them (multipart text fields).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScriptFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub instructions: Option<String>,
    pub example: Option<String>,
    pub platform: Option<Vec<String>>,
    pub requires_input: Option<bool>,
}

/// Platforms a script may name.
pub const SCRIPT_PLATFORMS: &[&str] = &["linux", "macos", "windows"];

impl ScriptFields {
    /// Sets a field from its form name; the 400 message for a bad one.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), String> {
        let text = |max: usize| -> Result<String, String> {
            let value = value.trim();
            if value.chars().count() > max {
                return Err(format!(
                    "[request body.{field}]: value has length [{}] but it must have a maximum length of [{max}].",
                    value.chars().count()
                ));
            }
            Ok(value.to_owned())
        };
        match field {
            "name" => {
                let name = text(256)?;
                if name.is_empty() {
                    return Err("[request body.name]: value has length [0] but it must have a minimum length of [1].".into());
                }
                self.name = Some(name);
            }
            "description" => self.description = Some(text(4_096)?),
            "instructions" => self.instructions = Some(text(4_096)?),
            "example" => self.example = Some(text(1_024)?),
            "platform" => {
                let mut platforms = self.platform.take().unwrap_or_default();
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if !SCRIPT_PLATFORMS.contains(&p) {
                        return Err(format!("[request body.platform]: expected one of [{}] but got [{p}]", SCRIPT_PLATFORMS.join(", ")));
                    }
                    if !platforms.iter().any(|x| x == p) {
                        platforms.push(p.to_owned());
                    }
                }
                self.platform = Some(platforms);
            }
            "requiresInput" => {
                self.requires_input = Some(match value.trim() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("[request body.requiresInput]: expected value of type [boolean] but got [{other}]")),
                })
            }
            other => return Err(format!("[request body.{other}]: definition for this key is missing")),
        }
        Ok(())
    }
}

// ---- what travels to and from the agent ----

/// The `data` of an `INPUT_ACTION` for an endpoint agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointActionData {
    pub command: ResponseCommand,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub parameters: Value,
    /// When the agent should give up on it (ISO).
    pub expiration: String,
}

/// What the agent reports about one action, in its ack (`action_response`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointActionResult {
    /// The command's output, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ActionOutput>,
    /// Why it failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The agent stopped it because a cancel action asked (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by_action: Option<String>,
}

/// One process of a `running-processes` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessEntry {
    pub command: String,
    pub pid: u64,
    pub entity_id: String,
    pub user: String,
}

/// What an endpoint agent reports of itself at check-in, under
/// `local_metadata.endpoint`: its capabilities and whether it is isolated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EndpointMetadata {
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub isolated: bool,
}

impl EndpointMetadata {
    /// Read from an agent's `local_metadata` (nothing there: no capability).
    pub fn of(local_metadata: &Value) -> EndpointMetadata {
        local_metadata.get("endpoint").and_then(|e| EndpointMetadata::deserialize(e).ok()).unwrap_or_default()
    }

    /// The capabilities Warden knows, in the order reported.
    pub fn known_capabilities(&self) -> Vec<EndpointCapability> {
        self.capabilities.iter().filter_map(|c| EndpointCapability::parse(c)).collect()
    }
}

pub mod bulk;

#[cfg(test)]
pub(crate) mod tests;

//! Microsoft Defender for Endpoint (MDE): Kibana's
//! `.microsoft_defender_endpoint` connector (its config, secret, sub-actions
//! and their params, with config-schema's messages) and MDE's own wire types
//! with MDE's field names. The server's client (`actions/mde.rs`) and the
//! connector form both validate with these functions.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::config_schema_type;

/// The connector form's defaults, as Kibana's.
pub const DEFAULT_OAUTH_SERVER_URL: &str = "https://login.microsoftonline.com";
pub const DEFAULT_OAUTH_SCOPE: &str = "https://securitycenter.onmicrosoft.com/windowsatpservice/.default";
pub const DEFAULT_API_URL: &str = "https://api.securitycenter.windows.com";

/// The config's fields, in the form's order, with their labels.
pub const CONFIG_FIELDS: [(&str, &str); 5] = [
    ("clientId", "Application client ID"),
    ("tenantId", "Tenant ID"),
    ("oAuthServerUrl", "OAuth server URL"),
    ("oAuthScope", "OAuth scope"),
    ("apiUrl", "API URL"),
];
pub const CLIENT_SECRET: &str = "clientSecret";

/// The default of a config field, if it has one.
pub fn config_default(field: &str) -> Option<&'static str> {
    match field {
        "oAuthServerUrl" => Some(DEFAULT_OAUTH_SERVER_URL),
        "oAuthScope" => Some(DEFAULT_OAUTH_SCOPE),
        "apiUrl" => Some(DEFAULT_API_URL),
        _ => None,
    }
}

/// A connector's config, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MdeConfig {
    #[serde(rename = "clientId")]
    pub client_id: String,
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    #[serde(rename = "oAuthServerUrl")]
    pub oauth_server_url: String,
    #[serde(rename = "oAuthScope")]
    pub oauth_scope: String,
    #[serde(rename = "apiUrl")]
    pub api_url: String,
}

/// The first thing wrong with a field, as config-schema words it
/// (`[clientId]: expected value of type [string] but got [undefined]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]: {}", self.field, self.message)
    }
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), message: message.into() }
}

/// A required string of at least one character, not only spaces; trimmed.
fn required_text(fields: &Map<String, Value>, prefix: &str, key: &str) -> Result<String, FieldError> {
    let name = format!("{prefix}{key}");
    match fields.get(key) {
        Some(Value::String(text)) if text.is_empty() => Err(field_error(&name, "value has length [0] but it must have a minimum length of [1].")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(field_error(&name, "value must not be blank")),
        Some(Value::String(text)) => Ok(text.trim().to_owned()),
        other => Err(field_error(&name, format!("expected value of type [string] but got [{}]", config_schema_type(other)))),
    }
}

fn only_keys(fields: &Map<String, Value>, prefix: &str, allowed: &[&str]) -> Result<(), FieldError> {
    match fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(field_error(&format!("{prefix}{key}"), "definition for this key is missing")),
        None => Ok(()),
    }
}

/// An http(s) URL with a host: the shape only (the server parses it fully and
/// applies the outbound guard).
fn http_url(field: &str, url: &str) -> Result<(), FieldError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(field_error(field, format!("\"{url}\" is not an http or https URL with a host"))),
    }
}

/// The connector's config: the five fields, each a non-blank string; the URLs http(s).
pub fn validate_config(config: &Map<String, Value>) -> Result<MdeConfig, FieldError> {
    only_keys(config, "", &CONFIG_FIELDS.map(|(key, _)| key))?;
    let checked = MdeConfig {
        client_id: required_text(config, "", "clientId")?,
        tenant_id: required_text(config, "", "tenantId")?,
        oauth_server_url: required_text(config, "", "oAuthServerUrl")?,
        oauth_scope: required_text(config, "", "oAuthScope")?,
        api_url: required_text(config, "", "apiUrl")?,
    };
    http_url("oAuthServerUrl", &checked.oauth_server_url)?;
    http_url("apiUrl", &checked.api_url)?;
    Ok(checked)
}

/// The connector's secrets: `clientSecret`, a non-blank string (kept as sent).
pub fn validate_secrets(secrets: &Map<String, Value>) -> Result<String, FieldError> {
    only_keys(secrets, "", &[CLIENT_SECRET])?;
    required_text(secrets, "", CLIENT_SECRET)?;
    Ok(secrets.get(CLIENT_SECRET).and_then(Value::as_str).unwrap_or_default().to_owned())
}

crate::text_enum! {
    /// What the connector can be asked to do (`params.subAction`), as Kibana's `SUB_ACTION`.
    SubAction {
        TestConnector = "testConnector",
        GetAgentDetails = "getAgentDetails",
        GetAgentList = "getAgentList",
        IsolateHost = "isolateHost",
        ReleaseHost = "releaseHost",
        GetActions = "getActions",
        GetLibraryFiles = "getLibraryFiles",
        RunScript = "runScript",
        GetActionResults = "getActionResults",
        CancelAction = "cancelAction",
    }
}

/// An OData filter value: one text or a list of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    One(String),
    Any(Vec<String>),
}

/// A list query (`getAgentList`, `getActions`): filters by field, paging, order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// By MDE's field name, in the order given.
    pub filters: Vec<(String, FilterValue)>,
    /// From 1.
    pub page: u32,
    /// 1 to 1,000; 20 when not given.
    pub page_size: u32,
    /// `(field, descending)`.
    pub sort: Option<(String, bool)>,
}

/// The largest page a list sub-action asks for.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 20;

impl ListQuery {
    /// OData's query parameters, as Kibana builds them: `$count=true`,
    /// `$top`, `$skip` after the first page, `$orderby`, and the filters
    /// joined with ` AND ` (`key eq 'v'`, `key in ('a','b')`; quotes doubled).
    pub fn odata(&self) -> Vec<(String, String)> {
        let mut params = vec![("$count".to_owned(), "true".to_owned()), ("$top".to_owned(), self.page_size.to_string())];
        if self.page > 1 {
            params.push(("$skip".to_owned(), (u64::from(self.page - 1) * u64::from(self.page_size)).to_string()));
        }
        if let Some((field, descending)) = &self.sort {
            params.push(("$orderby".to_owned(), format!("{field} {}", if *descending { "desc" } else { "asc" })));
        }
        if !self.filters.is_empty() {
            let clauses: Vec<String> = self.filters.iter().map(|(key, value)| odata_clause(key, value)).collect();
            params.push(("$filter".to_owned(), clauses.join(" AND ")));
        }
        params
    }
}

fn odata_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One OData filter clause: `key eq 'v'` or `key in ('a','b')`.
pub fn odata_clause(key: &str, value: &FilterValue) -> String {
    match value {
        FilterValue::One(text) => format!("{key} eq {}", odata_literal(text)),
        FilterValue::Any(texts) => format!("{key} in ({})", texts.iter().map(|t| odata_literal(t)).collect::<Vec<_>>().join(",")),
    }
}

/// A sub-action with its params, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubActionRequest {
    TestConnector,
    GetAgentDetails { id: String },
    GetAgentList(ListQuery),
    IsolateHost { id: String, comment: String },
    ReleaseHost { id: String, comment: String },
    GetActions(ListQuery),
    GetLibraryFiles,
    RunScript { id: String, comment: Option<String>, script_name: String, args: Option<String> },
    GetActionResults { id: String },
    CancelAction { action_id: String, comment: String },
}

impl SubActionRequest {
    pub fn sub_action(&self) -> SubAction {
        match self {
            SubActionRequest::TestConnector => SubAction::TestConnector,
            SubActionRequest::GetAgentDetails { .. } => SubAction::GetAgentDetails,
            SubActionRequest::GetAgentList(_) => SubAction::GetAgentList,
            SubActionRequest::IsolateHost { .. } => SubAction::IsolateHost,
            SubActionRequest::ReleaseHost { .. } => SubAction::ReleaseHost,
            SubActionRequest::GetActions(_) => SubAction::GetActions,
            SubActionRequest::GetLibraryFiles => SubAction::GetLibraryFiles,
            SubActionRequest::RunScript { .. } => SubAction::RunScript,
            SubActionRequest::GetActionResults { .. } => SubAction::GetActionResults,
            SubActionRequest::CancelAction { .. } => SubAction::CancelAction,
        }
    }
}

/// `getActions`' filter fields (MDE's `$filter` on machine actions).
pub const ACTION_FILTERS: [&str; 6] = ["id", "status", "machineId", "type", "requestor", "creationDateTimeUtc"];
/// `getAgentList`'s filter fields (MDE's `$filter` on machines; `aaDeviceId` is
/// Kibana's spelling of MDE's `aadDeviceId`).
pub const MACHINE_FILTERS: [&str; 14] = [
    "computerDnsName",
    "id",
    "version",
    "deviceValue",
    "aaDeviceId",
    "machineTags",
    "lastSeen",
    "exposureLevel",
    "onboardingStatus",
    "lastIpAddress",
    "healthStatus",
    "osPlatform",
    "riskScore",
    "rbacGroupId",
];

const SUB: &str = "subActionParams.";

fn optional_text(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        other => Err(field_error(&format!("{SUB}{key}"), format!("expected value of type [string] but got [{}]", config_schema_type(other)))),
    }
}

fn filter_value(key: &str, value: &Value) -> Result<FilterValue, FieldError> {
    let name = format!("{SUB}{key}");
    match value {
        Value::String(text) => Ok(FilterValue::One(text.clone())),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| field_error(&name, "types that failed validation: a string, or a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(FilterValue::Any),
        Value::Array(_) => Err(field_error(&name, "an empty list matches nothing")),
        other => Err(field_error(&name, format!("expected value of type [string] or [Array] but got [{}]", config_schema_type(Some(other))))),
    }
}

fn number(fields: &Map<String, Value>, key: &str, min: u32, max: u32) -> Result<Option<u32>, FieldError> {
    let name = format!("{SUB}{key}");
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v < u64::from(min) => Err(field_error(&name, format!("Value must be equal to or greater than [{min}]."))),
            Some(v) if v > u64::from(max) => Err(field_error(&name, format!("Value must be equal to or lower than [{max}]."))),
            Some(v) => Ok(u32::try_from(v).ok()),
            None => Err(field_error(&name, "expected a whole number")),
        },
        other => Err(field_error(&name, format!("expected value of type [number] but got [{}]", config_schema_type(other)))),
    }
}

fn list_query(fields: &Map<String, Value>, filters: &[&str], sortable: bool) -> Result<ListQuery, FieldError> {
    let mut allowed: Vec<&str> = filters.to_vec();
    allowed.extend(["page", "pageSize"]);
    if sortable {
        allowed.extend(["sortField", "sortDirection"]);
    }
    only_keys(fields, SUB, &allowed)?;
    let mut query = ListQuery {
        filters: Vec::new(),
        page: number(fields, "page", 1, u32::MAX)?.unwrap_or(1),
        page_size: number(fields, "pageSize", 1, MAX_PAGE_SIZE)?.unwrap_or(DEFAULT_PAGE_SIZE),
        sort: None,
    };
    for key in filters {
        match fields.get(*key) {
            None | Some(Value::Null) => {}
            Some(value) => {
                // MDE's own name for the field Kibana calls aaDeviceId.
                let name = if *key == "aaDeviceId" { "aadDeviceId" } else { key };
                query.filters.push((name.to_owned(), filter_value(key, value)?));
            }
        }
    }
    if sortable && let Some(field) = optional_text(fields, "sortField")? {
        let descending = match optional_text(fields, "sortDirection")?.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(field_error(&format!("{SUB}sortDirection"), format!("expected one of asc, desc but got [{other}]"))),
        };
        query.sort = Some((field, descending));
    }
    Ok(query)
}

fn required(fields: &Map<String, Value>, key: &str) -> Result<String, FieldError> {
    required_text(fields, SUB, key)
}

/// An execution's params, `{subAction, subActionParams}`, checked as Kibana's
/// sub-action schemas do. The messages name the field as
/// `[subActionParams.id]: …`.
pub fn validate_params(params: &Map<String, Value>) -> Result<SubActionRequest, FieldError> {
    only_keys(params, "", &["subAction", "subActionParams"])?;
    let name = match params.get("subAction") {
        Some(Value::String(name)) => name.as_str(),
        other => return Err(field_error("subAction", format!("expected value of type [string] but got [{}]", config_schema_type(other)))),
    };
    let Some(sub_action) = SubAction::parse(name) else {
        let known: Vec<&str> = SubAction::ALL.iter().map(|s| s.as_str()).collect();
        return Err(field_error("subAction", format!("Sub action \"{name}\" is not registered (one of {})", known.join(", "))));
    };
    let empty = Map::new();
    let fields = match params.get("subActionParams") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(fields)) => fields,
        other => {
            return Err(field_error("subActionParams", format!("expected value of type [Object] but got [{}]", config_schema_type(other))));
        }
    };
    Ok(match sub_action {
        // Kibana ignores whatever the test is given.
        SubAction::TestConnector => SubActionRequest::TestConnector,
        SubAction::GetLibraryFiles => {
            only_keys(fields, SUB, &[])?;
            SubActionRequest::GetLibraryFiles
        }
        SubAction::GetAgentDetails => {
            only_keys(fields, SUB, &["id"])?;
            SubActionRequest::GetAgentDetails { id: required(fields, "id")? }
        }
        SubAction::GetActionResults => {
            only_keys(fields, SUB, &["id"])?;
            SubActionRequest::GetActionResults { id: required(fields, "id")? }
        }
        SubAction::IsolateHost | SubAction::ReleaseHost => {
            only_keys(fields, SUB, &["id", "comment"])?;
            let (id, comment) = (required(fields, "id")?, required(fields, "comment")?);
            if sub_action == SubAction::IsolateHost {
                SubActionRequest::IsolateHost { id, comment }
            } else {
                SubActionRequest::ReleaseHost { id, comment }
            }
        }
        SubAction::CancelAction => {
            only_keys(fields, SUB, &["actionId", "comment"])?;
            SubActionRequest::CancelAction { action_id: required(fields, "actionId")?, comment: required(fields, "comment")? }
        }
        SubAction::RunScript => {
            only_keys(fields, SUB, &["id", "comment", "parameters"])?;
            let id = required(fields, "id")?;
            let comment = optional_text(fields, "comment")?;
            let parameters = match fields.get("parameters") {
                Some(Value::Object(parameters)) => parameters,
                other => {
                    return Err(field_error(
                        &format!("{SUB}parameters"),
                        format!("expected value of type [Object] but got [{}]", config_schema_type(other)),
                    ));
                }
            };
            only_keys(parameters, &format!("{SUB}parameters."), &["scriptName", "args"])?;
            let script_name = required_text(parameters, &format!("{SUB}parameters."), "scriptName")?;
            let args = match parameters.get("args") {
                None | Some(Value::Null) => None,
                Some(Value::String(args)) => Some(args.clone()),
                other => {
                    return Err(field_error(
                        &format!("{SUB}parameters.args"),
                        format!("expected value of type [string] but got [{}]", config_schema_type(other)),
                    ));
                }
            };
            SubActionRequest::RunScript { id, comment, script_name, args }
        }
        SubAction::GetAgentList => SubActionRequest::GetAgentList(list_query(fields, &MACHINE_FILTERS, false)?),
        SubAction::GetActions => SubActionRequest::GetActions(list_query(fields, &ACTION_FILTERS, true)?),
    })
}

// ---- MDE's wire types ----

/// An OData collection: `{"@odata.context": …, "value": [...]}`, with
/// `@odata.count` when `$count=true` was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ODataList<T> {
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub value: Vec<T>,
}

/// A machine's network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpAddress {
    pub ip_address: Option<String>,
    pub mac_address: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub operational_status: Option<String>,
}

/// A device MDE knows (`GET /api/machines/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Machine {
    pub id: String,
    pub computer_dns_name: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub os_platform: Option<String>,
    /// MDE's documents spell it `onboardingStatus`, Kibana's types `onboardingstatus`.
    #[serde(alias = "onboardingstatus")]
    pub onboarding_status: Option<String>,
    pub os_processor: Option<String>,
    pub version: Option<String>,
    pub os_build: Option<u64>,
    pub last_ip_address: Option<String>,
    pub last_external_ip_address: Option<String>,
    /// Active, Inactive, ImpairedCommunication, NoSensorData, NoSensorDataImpairedCommunication, Unknown.
    pub health_status: Option<String>,
    pub rbac_group_name: Option<String>,
    pub rbac_group_id: Option<u64>,
    /// None, Informational, Low, Medium, High.
    pub risk_score: Option<String>,
    pub aad_device_id: Option<String>,
    pub machine_tags: Vec<String>,
    pub exposure_level: Option<String>,
    pub device_value: Option<String>,
    pub ip_addresses: Vec<IpAddress>,
    pub os_architecture: Option<String>,
}

crate::text_enum! {
    /// Where a machine action is (MDE's `status`).
    MachineActionStatus {
        Pending = "Pending",
        InProgress = "InProgress",
        Succeeded = "Succeeded",
        Failed = "Failed",
        TimeOut = "TimeOut",
        Cancelled = "Cancelled",
    }
}

impl MachineActionStatus {
    /// Pending and InProgress are not final; every other status is.
    pub fn is_final(self) -> bool {
        !matches!(self, MachineActionStatus::Pending | MachineActionStatus::InProgress)
    }
}

/// What a machine action does (MDE's `type`); a type MDE adds later reads as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MachineActionType {
    RunAntiVirusScan,
    Offboard,
    LiveResponse,
    CollectInvestigationPackage,
    Isolate,
    Unisolate,
    StopAndQuarantineFile,
    RestrictCodeExecution,
    UnrestrictCodeExecution,
    #[serde(other)]
    Other,
}

/// `{key, value}` of a live response command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandParam {
    pub key: String,
    pub value: String,
}

/// A live response command as sent and as MDE reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Command {
    /// PutFile, RunScript, GetFile.
    #[serde(rename = "type")]
    pub kind: String,
    pub params: Vec<CommandParam>,
}

/// One command of a live response action, with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CommandEntry {
    pub index: u32,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Created, Completed, Failed.
    pub command_status: Option<String>,
    pub errors: Vec<String>,
    pub command: Command,
}

/// The file a machine action is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RelatedFileInfo {
    pub file_identifier: Option<String>,
    /// Sha1, Sha256, Md5.
    pub file_identifier_type: Option<String>,
}

/// An action MDE runs on a machine (`GET /api/machineactions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineAction {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: MachineActionType,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub requestor: Option<String>,
    #[serde(rename = "externalID", default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub request_source: Option<String>,
    #[serde(default)]
    pub commands: Vec<CommandEntry>,
    #[serde(default)]
    pub cancellation_requestor: Option<String>,
    #[serde(default)]
    pub requestor_comment: Option<String>,
    #[serde(default)]
    pub cancellation_comment: Option<String>,
    pub status: MachineActionStatus,
    #[serde(default)]
    pub machine_id: Option<String>,
    #[serde(default)]
    pub computer_dns_name: Option<String>,
    #[serde(default)]
    pub creation_date_time_utc: Option<String>,
    #[serde(default)]
    pub cancellation_date_time_utc: Option<String>,
    /// MDE's collection documents spell it `lastUpdateTimeUtc`.
    #[serde(default, alias = "lastUpdateTimeUtc")]
    pub last_update_date_time_utc: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub related_file_info: Option<RelatedFileInfo>,
    #[serde(default)]
    pub error_result: Option<i64>,
    #[serde(default)]
    pub troubleshoot_info: Option<String>,
}

impl MachineAction {
    /// The `ScriptName` of its first RunScript command, if it has one.
    pub fn script_name(&self) -> Option<&str> {
        self.commands
            .iter()
            .filter(|entry| entry.command.kind == "RunScript")
            .flat_map(|entry| entry.command.params.iter())
            .find(|param| param.key == "ScriptName")
            .map(|param| param.value.as_str())
    }

    /// Its commands' errors, one per line (what Kibana shows for a failure).
    pub fn errors(&self) -> String {
        self.commands.iter().flat_map(|entry| entry.errors.iter().map(String::as_str)).collect::<Vec<_>>().join("\n")
    }
}

/// A script in MDE's live response library (`GET /api/libraryfiles`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LibraryFile {
    pub file_name: String,
    pub sha256: Option<String>,
    pub description: Option<String>,
    pub creation_time: Option<String>,
    pub last_updated_time: Option<String>,
    pub created_by: Option<String>,
    pub has_parameters: bool,
    pub parameters_description: Option<String>,
}

/// What a RunScript left behind: the JSON behind its download link.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveResponseTranscript {
    pub script_name: String,
    pub exit_code: i64,
    pub script_output: String,
    pub script_errors: String,
}

/// MDE's error body: `{"error": {"code", "message", "target"}}` (`target`: the correlation id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdeErrorBody {
    pub error: MdeErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MdeErrorDetail {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

/// The token endpoint's answer (client credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token_type: Option<String>,
    pub expires_in: u64,
    pub access_token: String,
}

/// The token endpoint's error (`{"error": "invalid_client", "error_description": "AADSTS7000215: …"}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenError {
    pub error: String,
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn good_config() -> Value {
        json!({
            "clientId": "c", "tenantId": "t", "oAuthServerUrl": DEFAULT_OAUTH_SERVER_URL,
            "oAuthScope": DEFAULT_OAUTH_SCOPE, "apiUrl": DEFAULT_API_URL,
        })
    }

    #[test]
    fn configs_need_every_field_non_blank_with_config_schema_messages() {
        assert_eq!(validate_config(&object(good_config())).map(|c| c.tenant_id), Ok("t".to_owned()));
        let cases = [
            ("clientId", None, "[clientId]: expected value of type [string] but got [undefined]"),
            ("clientId", Some(json!(1)), "[clientId]: expected value of type [string] but got [number]"),
            ("clientId", Some(json!("")), "[clientId]: value has length [0] but it must have a minimum length of [1]."),
            ("clientId", Some(json!("  ")), "[clientId]: value must not be blank"),
            ("tenantId", Some(Value::Null), "[tenantId]: expected value of type [string] but got [null]"),
            ("apiUrl", Some(json!("ftp://x")), "[apiUrl]: \"ftp://x\" is not an http or https URL with a host"),
            ("oAuthServerUrl", Some(json!("https://")), "[oAuthServerUrl]: \"https://\" is not an http or https URL with a host"),
            ("extra", Some(json!("x")), "[extra]: definition for this key is missing"),
        ];
        for (key, value, expected) in cases {
            let mut config = object(good_config());
            match value {
                Some(value) => config.insert(key.to_owned(), value),
                None => config.remove(key),
            };
            assert_eq!(validate_config(&config).map_err(|e| e.to_string()), Err(expected.to_owned()), "{key}");
        }
        assert_eq!(validate_secrets(&object(json!({"clientSecret": "s3"}))), Ok("s3".to_owned()));
        assert_eq!(
            validate_secrets(&Map::new()).map_err(|e| e.to_string()),
            Err("[clientSecret]: expected value of type [string] but got [undefined]".to_owned())
        );
        assert!(CONFIG_FIELDS.iter().all(|(key, _)| key.starts_with(['c', 't']) == config_default(key).is_none()));
    }

    #[test]
    fn params_are_checked_per_sub_action() {
        let ok = |value: Value| validate_params(&object(value));
        assert_eq!(ok(json!({"subAction": "testConnector", "subActionParams": {}})), Ok(SubActionRequest::TestConnector));
        assert_eq!(
            ok(json!({"subAction": "isolateHost", "subActionParams": {"id": "m1", "comment": "c"}})),
            Ok(SubActionRequest::IsolateHost { id: "m1".into(), comment: "c".into() })
        );
        assert_eq!(
            ok(json!({"subAction": "runScript", "subActionParams": {"id": "m1", "parameters": {"scriptName": "a.ps1"}}})),
            Ok(SubActionRequest::RunScript { id: "m1".into(), comment: None, script_name: "a.ps1".into(), args: None })
        );
        assert_eq!(
            ok(json!({"subAction": "cancelAction", "subActionParams": {"actionId": "a", "comment": "stop"}})),
            Ok(SubActionRequest::CancelAction { action_id: "a".into(), comment: "stop".into() })
        );
        let errors = [
            (json!({}), "[subAction]: expected value of type [string] but got [undefined]"),
            (json!({"subAction": "nope"}), "[subAction]: Sub action \"nope\" is not registered"),
            (json!({"subAction": "isolateHost", "subActionParams": {"id": "m1"}}), "[subActionParams.comment]: expected value of type [string]"),
            (json!({"subAction": "releaseHost", "subActionParams": {"id": "", "comment": "c"}}), "[subActionParams.id]: value has length [0]"),
            (
                json!({"subAction": "getAgentDetails", "subActionParams": {"id": "m", "x": 1}}),
                "[subActionParams.x]: definition for this key is missing",
            ),
            (json!({"subAction": "runScript", "subActionParams": {"id": "m"}}), "[subActionParams.parameters]: expected value of type [Object]"),
            (
                json!({"subAction": "runScript", "subActionParams": {"id": "m", "parameters": {}}}),
                "[subActionParams.parameters.scriptName]: expected value of type [string]",
            ),
            (
                json!({"subAction": "getActions", "subActionParams": {"pageSize": 1001}}),
                "[subActionParams.pageSize]: Value must be equal to or lower than [1000].",
            ),
            (
                json!({"subAction": "getActions", "subActionParams": {"page": 0}}),
                "[subActionParams.page]: Value must be equal to or greater than [1].",
            ),
            (
                json!({"subAction": "getActions", "subActionParams": {"status": 3}}),
                "[subActionParams.status]: expected value of type [string] or [Array]",
            ),
            (json!({"subAction": "getActions", "subActionParams": {"sortField": "id", "sortDirection": "up"}}), "[subActionParams.sortDirection]"),
            (json!({"subAction": "getLibraryFiles", "subActionParams": {"x": 1}}), "[subActionParams.x]: definition for this key is missing"),
            (json!({"subAction": "getAgentList", "subActionParams": {"sortField": "id"}}), "[subActionParams.sortField]: definition"),
        ];
        for (params, expected) in errors {
            let got = ok(params.clone()).map_err(|e| e.to_string());
            assert!(got.as_ref().is_err_and(|e| e.starts_with(expected)), "{params}: {got:?}");
        }
    }

    #[test]
    fn list_queries_become_kibanas_odata() {
        let Ok(SubActionRequest::GetActions(query)) = validate_params(&object(json!({
            "subAction": "getActions",
            "subActionParams": {"id": ["a", "b'c"], "status": "Pending", "page": 3, "pageSize": 10, "sortField": "creationDateTimeUtc", "sortDirection": "desc"},
        }))) else {
            panic!("valid params")
        };
        let odata: Vec<(String, String)> = query.odata();
        let find = |key: &str| odata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(find("$count"), Some("true"));
        assert_eq!(find("$top"), Some("10"));
        assert_eq!(find("$skip"), Some("20"));
        assert_eq!(find("$orderby"), Some("creationDateTimeUtc desc"));
        assert_eq!(find("$filter"), Some("id in ('a','b''c') AND status eq 'Pending'"));
        let Ok(SubActionRequest::GetAgentList(machines)) =
            validate_params(&object(json!({"subAction": "getAgentList", "subActionParams": {"aaDeviceId": "d"}})))
        else {
            panic!("valid params")
        };
        assert_eq!(machines.page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(machines.odata().iter().find(|(k, _)| k == "$skip"), None);
        assert_eq!(machines.filters, vec![("aadDeviceId".to_owned(), FilterValue::One("d".into()))]);
    }

    #[test]
    fn machine_actions_read_mdes_documents() {
        let action: MachineAction = serde_json::from_value(json!({
            "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#MachineActions/$entity",
            "id": "5382f7ea-7557-4ab7-9782-d50480024a4e",
            "type": "LiveResponse",
            "requestor": "analyst@contoso.com",
            "requestorComment": "Run a script",
            "status": "Succeeded",
            "machineId": "1e5bc9d7e413ddd7902c2932e418702b84d0cc07",
            "computerDnsName": "host.contoso.com",
            "creationDateTimeUtc": "2019-01-02T14:39:38.2262283Z",
            "lastUpdateTimeUtc": "2019-01-02T14:40:44.6596267Z",
            "relatedFileInfo": null,
            "commands": [{"index": 0, "startTime": null, "endTime": null, "commandStatus": "Completed", "errors": [],
                "command": {"type": "RunScript", "params": [{"key": "ScriptName", "value": "hello.sh"}]}}],
        }))
        .unwrap();
        assert_eq!(action.kind, MachineActionType::LiveResponse);
        assert_eq!(action.status, MachineActionStatus::Succeeded);
        assert!(action.status.is_final() && !MachineActionStatus::InProgress.is_final());
        assert_eq!(action.last_update_date_time_utc.as_deref(), Some("2019-01-02T14:40:44.6596267Z"), "the collection's spelling");
        assert_eq!(action.script_name(), Some("hello.sh"));
        let serialized = serde_json::to_value(&action).unwrap();
        assert_eq!(serialized["lastUpdateDateTimeUtc"], "2019-01-02T14:40:44.6596267Z");
        assert_eq!(serialized["type"], "LiveResponse");
        let newer: MachineAction =
            serde_json::from_value(json!({"id": "x", "type": "SomethingNew", "status": "TimeOut", "lastUpdateDateTimeUtc": "t"})).unwrap();
        assert_eq!((newer.kind, newer.last_update_date_time_utc.as_deref()), (MachineActionType::Other, Some("t")));

        let machine: Machine =
            serde_json::from_value(json!({"id": "m1", "computerDnsName": "h", "onboardingstatus": "Onboarded", "machineTags": ["a"]})).unwrap();
        assert_eq!((machine.onboarding_status.as_deref(), machine.machine_tags.len()), (Some("Onboarded"), 1));
        let error: MdeErrorBody =
            serde_json::from_value(json!({"error": {"code": "ResourceNotFound", "message": "Machine 1 was not found", "target": "43f4"}})).unwrap();
        assert_eq!(error.error.code, "ResourceNotFound");
        let transcript: LiveResponseTranscript =
            serde_json::from_value(json!({"script_name": "a.sh", "exit_code": 0, "script_output": "hi", "script_errors": ""})).unwrap();
        assert_eq!(transcript.script_output, "hi");
    }
}

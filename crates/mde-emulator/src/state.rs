//! The emulated tenant: its tokens, machines, machine actions, result blobs,
//! injected faults and counters, in memory behind one mutex (never held
//! across an await).
//!
//! Nothing runs in the background: a machine action's status follows from
//! its creation time, the machine's outcome and `action_delay`, and is
//! settled (with its side effects, such as the machine's isolation) at the
//! start of every call that reads or writes actions. Pending for the first
//! half of the delay, InProgress for the second, then Succeeded or Failed;
//! a `hang` machine's actions stay InProgress until cancelled.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Config, MachineConfig, Outcome};
use crate::error::{AadError, MdeError};
use crate::odata::ListQuery;

/// How long a live-response result link stays valid (MDE: 30 minutes).
pub const BLOB_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The window of MDE's live-response rate limit.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Live tokens kept at most (expired ones are dropped first).
const MAX_TOKENS: usize = 10_000;
/// Live result links kept at most.
const MAX_BLOBS: usize = 10_000;
/// How far `/_emulator/advance` may move the clock in total: timestamps stay
/// printable (RFC 3339 years up to 9999).
pub const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Commands in one live-response request.
pub const MAX_COMMANDS: usize = 25;
/// MDE's `errorResult` for an action that failed (E_FAIL).
const E_FAIL: i64 = -2147467259;

/// The properties `$filter` and `$orderby` may name on machines.
pub const MACHINE_FIELDS: &[&str] = &[
    "id",
    "computerDnsName",
    "osPlatform",
    "healthStatus",
    "onboardingStatus",
    "lastIpAddress",
    "riskScore",
    "machineTags",
    "exposureLevel",
    "version",
    "rbacGroupId",
    "deviceValue",
    "aadDeviceId",
    "lastSeen",
    "firstSeen",
];

/// The properties `$filter` and `$orderby` may name on machine actions.
pub const ACTION_FIELDS: &[&str] =
    &["id", "status", "machineId", "type", "requestor", "computerDnsName", "creationDateTimeUtc", "lastUpdateDateTimeUtc"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ActionType {
    Isolate,
    Unisolate,
    LiveResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ActionStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    TimeOut,
    Cancelled,
}

impl ActionStatus {
    pub fn is_final(self) -> bool {
        matches!(self, ActionStatus::Succeeded | ActionStatus::Failed | ActionStatus::TimeOut | ActionStatus::Cancelled)
    }
}

/// `IsolationType` of an isolate request; the action's `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationType {
    Full,
    Selective,
    UnManagedDevice,
}

/// A live-response command as MDE spells it, in requests and in
/// `commands[].command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    #[serde(rename = "type")]
    pub command_type: String,
    #[serde(default)]
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl Command {
    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|p| p.key == key).map(|p| p.value.as_str())
    }
}

/// One entry of a machine action's `commands`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandEntry {
    pub index: usize,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Created, Completed or Failed.
    pub command_status: &'static str,
    pub errors: Vec<String>,
    pub command: Command,
}

/// A machine action with MDE's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineAction {
    pub id: String,
    #[serde(rename = "type")]
    pub action_type: ActionType,
    pub title: String,
    pub scope: Option<IsolationType>,
    pub requestor: String,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    pub request_source: &'static str,
    pub requestor_comment: String,
    pub status: ActionStatus,
    pub machine_id: String,
    pub computer_dns_name: String,
    pub creation_date_time_utc: String,
    pub last_update_date_time_utc: String,
    pub cancellation_requestor: Option<String>,
    pub cancellation_comment: Option<String>,
    pub cancellation_date_time_utc: Option<String>,
    pub error_result: i64,
    pub commands: Vec<CommandEntry>,
    pub related_file_info: Option<Value>,
    pub troubleshoot_info: Option<Value>,
}

/// An action and what the emulator needs to settle it.
#[derive(Debug)]
struct Action {
    public: MachineAction,
    created: SystemTime,
    outcome: Outcome,
    /// A command that fails whatever the outcome (a script not in the
    /// library): its index and error.
    doomed: Option<(usize, String)>,
    /// What each command's result link downloads, once Completed.
    results: Vec<Value>,
}

#[derive(Debug)]
struct Machine {
    config: MachineConfig,
    isolated: bool,
}

#[derive(Debug)]
struct IssuedToken {
    client_id: String,
    expires: SystemTime,
}

#[derive(Debug)]
struct Blob {
    content: Value,
    expires: SystemTime,
}

/// Injected by `POST /_emulator/fail-next`: the next `remaining` API calls
/// answer `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: StatusCode,
    pub remaining: u32,
    pub retry_after: Option<u64>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub tokens_issued: u64,
    pub api_calls: u64,
    pub by_route: BTreeMap<String, u64>,
}

/// Who called: the client the bearer token was issued to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
}

/// A successful token answer, as Entra ID sends it.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub token_type: &'static str,
    pub expires_in: u64,
    pub ext_expires_in: u64,
    pub access_token: String,
}

#[derive(Debug, Default)]
struct Inner {
    clock_offset: Duration,
    tokens: HashMap<String, IssuedToken>,
    machines: Vec<Machine>,
    actions: Vec<Action>,
    action_index: HashMap<String, usize>,
    blobs: HashMap<String, Blob>,
    fault: Option<Fault>,
    live_response_calls: VecDeque<SystemTime>,
    stats: Stats,
}

/// The emulated tenant.
#[derive(Debug)]
pub struct Emulator {
    config: Config,
    /// When the emulator started: machines were first seen, and library files
    /// created, some time before it.
    started: SystemTime,
    inner: Mutex<Inner>,
}

fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

fn later(time: SystemTime, by: Duration) -> SystemTime {
    time.checked_add(by).unwrap_or(time)
}

fn earlier(time: SystemTime, by: Duration) -> SystemTime {
    time.checked_sub(by).unwrap_or(time)
}

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Inner {
    fn now(&self) -> SystemTime {
        later(SystemTime::now(), self.clock_offset)
    }

    fn machine(&self, id: &str) -> Result<&Machine, MdeError> {
        self.machines.iter().find(|m| m.config.id == id).ok_or_else(|| MdeError::machine_not_found(id))
    }

    fn action(&self, id: &str) -> Result<&Action, MdeError> {
        self.action_index.get(id).and_then(|&i| self.actions.get(i)).ok_or_else(|| MdeError::action_not_found(id))
    }

    fn action_mut(&mut self, id: &str) -> Result<&mut Action, MdeError> {
        self.action_index.get(id).and_then(|&i| self.actions.get_mut(i)).ok_or_else(|| MdeError::action_not_found(id))
    }

    /// Moves every open action on to the status its age gives it, and applies
    /// the effects of the ones that end (isolation).
    fn settle(&mut self, delay: Duration) {
        let now = self.now();
        let mut isolation = Vec::new();
        for action in self.actions.iter_mut().filter(|a| !a.public.status.is_final()) {
            let age = now.duration_since(action.created).unwrap_or(Duration::ZERO);
            let started = later(action.created, delay / 2);
            let ends = action.outcome != Outcome::Hang || action.doomed.is_some();
            if ends && age >= delay {
                let ended = later(action.created, delay);
                action.end(started, ended);
                if action.public.status == ActionStatus::Succeeded {
                    match action.public.action_type {
                        ActionType::Isolate => isolation.push((action.public.machine_id.clone(), true)),
                        ActionType::Unisolate => isolation.push((action.public.machine_id.clone(), false)),
                        ActionType::LiveResponse => {}
                    }
                }
            } else if age >= delay / 2 && action.public.status == ActionStatus::Pending {
                action.public.status = ActionStatus::InProgress;
                action.public.last_update_date_time_utc = timestamp(started);
                for entry in &mut action.public.commands {
                    entry.start_time = Some(timestamp(started));
                }
            }
        }
        for (machine_id, isolated) in isolation {
            if let Some(machine) = self.machines.iter_mut().find(|m| m.config.id == machine_id) {
                machine.isolated = isolated;
            }
        }
    }

    fn open_action(&self, machine_id: &str, types: &[ActionType]) -> bool {
        self.actions.iter().any(|a| a.public.machine_id == machine_id && types.contains(&a.public.action_type) && !a.public.status.is_final())
    }

    fn insert(&mut self, action: Action) -> MachineAction {
        let public = action.public.clone();
        self.action_index.insert(public.id.clone(), self.actions.len());
        self.actions.push(action);
        public
    }

    fn drop_expired(&mut self, now: SystemTime) {
        self.tokens.retain(|_, token| token.expires > now);
        self.blobs.retain(|_, blob| blob.expires > now);
    }
}

impl Action {
    fn end(&mut self, started: SystemTime, ended: SystemTime) {
        let failure = match (&self.doomed, self.outcome) {
            (Some((index, error)), _) => Some((*index, error.clone())),
            (None, Outcome::Fail) => Some((0, "The command failed on the device (emulated failure).".to_owned())),
            (None, _) => None,
        };
        let public = &mut self.public;
        public.last_update_date_time_utc = timestamp(ended);
        public.status = if failure.is_some() { ActionStatus::Failed } else { ActionStatus::Succeeded };
        if failure.is_some() && public.action_type != ActionType::LiveResponse {
            public.error_result = E_FAIL;
        }
        for entry in &mut public.commands {
            entry.start_time = Some(timestamp(started));
            match &failure {
                Some((index, _)) if entry.index > *index => continue,
                Some((index, error)) if entry.index == *index => {
                    entry.command_status = "Failed";
                    entry.errors.push(error.clone());
                }
                _ => entry.command_status = "Completed",
            }
            entry.end_time = Some(timestamp(ended));
        }
    }
}

impl Emulator {
    pub fn new(config: Config) -> Self {
        let machines = config.machines.iter().map(|m| Machine { config: m.clone(), isolated: false }).collect();
        Emulator { config, started: SystemTime::now(), inner: Mutex::new(Inner { machines, ..Inner::default() }) }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A poisoned lock still holds consistent state (no call panics midway
    /// by design), so it is used as is.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settled(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        inner.settle(self.config.action_delay);
        inner
    }

    // --- Entra ID ---

    /// The client-credentials grant of `POST /{tenant}/oauth2/v2.0/token`,
    /// with Entra ID's checks and error codes.
    pub fn issue_token(&self, tenant: &str, form: &HashMap<String, String>) -> Result<TokenResponse, AadError> {
        let config = &self.config;
        if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            ));
        }
        let required = |name: &str| {
            form.get(name).filter(|v| !v.is_empty()).map(String::as_str).ok_or_else(|| {
                AadError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    900144,
                    format!("The request body must contain the following parameter: '{name}'."),
                )
            })
        };
        let grant_type = required("grant_type")?;
        if grant_type != "client_credentials" {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
        let client_id = required("client_id")?;
        if !client_id.eq_ignore_ascii_case(&config.client_id) {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ));
        }
        let Some(secret) = form.get("client_secret").filter(|v| !v.is_empty()) else {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            ));
        };
        if secret != config.client_secret.expose() {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    config.client_id
                ),
            ));
        }
        let scope = required("scope")?;
        if !scope.ends_with("/.default") {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        }

        let mut inner = self.lock();
        let now = inner.now();
        inner.drop_expired(now);
        if inner.tokens.len() >= MAX_TOKENS
            && let Some(oldest) = inner.tokens.iter().min_by_key(|(_, t)| t.expires).map(|(k, _)| k.clone())
        {
            inner.tokens.remove(&oldest);
        }
        let access_token = random_token();
        inner.tokens.insert(access_token.clone(), IssuedToken { client_id: config.client_id.clone(), expires: later(now, config.token_lifetime) });
        inner.stats.tokens_issued += 1;
        Ok(TokenResponse { token_type: "Bearer", expires_in: config.token_lifetime.as_secs().max(1), ext_expires_in: 0, access_token })
    }

    /// Checks a bearer token from `Authorization`.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, MdeError> {
        let Some(bearer) = bearer else { return Err(MdeError::unauthorized("Authorization has been denied for this request.")) };
        let inner = self.lock();
        match inner.tokens.get(bearer) {
            Some(token) if token.expires > inner.now() => Ok(Caller { client_id: token.client_id.clone() }),
            Some(_) => Err(MdeError::unauthorized("Authorization has been denied for this request: the access token has expired.")),
            None => Err(MdeError::unauthorized("Authorization has been denied for this request.")),
        }
    }

    // --- Counters and faults ---

    /// Counts a call to `route`; for an API call, answers the next injected
    /// fault if one is queued.
    pub fn record_call(&self, route: &str, api: bool) -> Result<(), MdeError> {
        let mut inner = self.lock();
        *inner.stats.by_route.entry(route.to_owned()).or_default() += 1;
        if !api {
            return Ok(());
        }
        inner.stats.api_calls += 1;
        let Some(fault) = inner.fault.as_mut() else { return Ok(()) };
        fault.remaining = fault.remaining.saturating_sub(1);
        let error = MdeError::for_status(fault.status, fault.retry_after);
        if fault.remaining == 0 {
            inner.fault = None;
        }
        Err(error)
    }

    pub fn fail_next(&self, fault: Fault) {
        self.lock().fault = (fault.remaining > 0).then_some(fault);
    }

    pub fn stats(&self) -> Value {
        let inner = self.lock();
        json!({
            "tokens_issued": inner.stats.tokens_issued,
            "api_calls": inner.stats.api_calls,
            "by_route": inner.stats.by_route,
            "actions": inner.actions.len(),
            "faults_pending": inner.fault.map_or(0, |f| f.remaining),
        })
    }

    /// Forgets actions, result links, faults, the rate-limit window, counters
    /// and isolation; keeps tokens (a client's cached token stays good) and
    /// the clock.
    pub fn reset(&self) {
        let mut inner = self.lock();
        let machines = self.config.machines.iter().map(|m| Machine { config: m.clone(), isolated: false }).collect();
        *inner = Inner { clock_offset: inner.clock_offset, tokens: std::mem::take(&mut inner.tokens), machines, ..Inner::default() };
    }

    /// Moves the emulator's clock forward (token expiry, action delays and
    /// rate-limit windows without sleeping). Returns the new offset.
    pub fn advance(&self, by: Duration) -> Result<Duration, String> {
        let mut inner = self.lock();
        match inner.clock_offset.checked_add(by) {
            Some(offset) if offset <= MAX_CLOCK_OFFSET => {
                inner.clock_offset = offset;
                Ok(offset)
            }
            _ => Err(format!("the clock may move at most {} in total", humantime::format_duration(MAX_CLOCK_OFFSET))),
        }
    }

    // --- Machines ---

    fn machine_json(&self, machine: &Machine, now: SystemTime) -> Value {
        let config = &machine.config;
        let last_seen = if config.health_status == "Active" {
            earlier(now, Duration::from_secs(300))
        } else {
            earlier(self.started, Duration::from_secs(3 * 86400))
        };
        let version = match config.os_platform.as_str() {
            "Windows11" => "23H2",
            "Windows10" => "22H2",
            _ => "1809",
        };
        let mac = {
            let digest = Sha256::digest(config.id.as_bytes());
            hex::encode_upper(&digest[..6])
        };
        json!({
            "id": config.id,
            "computerDnsName": config.computer_dns_name,
            "firstSeen": timestamp(earlier(self.started, Duration::from_secs(30 * 86400))),
            "lastSeen": timestamp(last_seen),
            "osPlatform": config.os_platform,
            "onboardingStatus": "Onboarded",
            "osProcessor": "x64",
            "version": version,
            "osBuild": 22631,
            "lastIpAddress": config.last_ip_address,
            "lastExternalIpAddress": "203.0.113.10",
            "healthStatus": config.health_status,
            "rbacGroupName": "Warden demo",
            "rbacGroupId": 42,
            "riskScore": config.risk_score,
            "exposureLevel": "Medium",
            "aadDeviceId": null,
            "machineTags": config.machine_tags,
            "deviceValue": "Normal",
            "ipAddresses": [{"ipAddress": config.last_ip_address, "macAddress": mac, "type": "Ethernet", "operationalStatus": "Up"}],
            "osArchitecture": "64-bit",
            "isolated": machine.isolated,
        })
    }

    pub fn machines(&self, query: &ListQuery) -> (usize, Vec<Value>) {
        let inner = self.settled();
        let now = inner.now();
        query.apply(inner.machines.iter().map(|m| self.machine_json(m, now)).collect())
    }

    pub fn machine(&self, id: &str) -> Result<Value, MdeError> {
        let inner = self.settled();
        let machine = inner.machine(id)?;
        Ok(self.machine_json(machine, inner.now()))
    }

    // --- Machine actions ---

    fn new_action(&self, inner: &Inner, caller: &Caller, machine: &MachineConfig, action_type: ActionType, comment: &str) -> Action {
        let created = inner.now();
        let title = match action_type {
            ActionType::Isolate => "Isolate device",
            ActionType::Unisolate => "Release device from isolation",
            ActionType::LiveResponse => "Live response",
        };
        Action {
            public: MachineAction {
                id: uuid::Uuid::new_v4().to_string(),
                action_type,
                title: title.to_owned(),
                scope: None,
                requestor: caller.client_id.clone(),
                external_id: None,
                request_source: "PublicApi",
                requestor_comment: comment.to_owned(),
                status: ActionStatus::Pending,
                machine_id: machine.id.clone(),
                computer_dns_name: machine.computer_dns_name.clone(),
                creation_date_time_utc: timestamp(created),
                last_update_date_time_utc: timestamp(created),
                cancellation_requestor: None,
                cancellation_comment: None,
                cancellation_date_time_utc: None,
                error_result: 0,
                commands: Vec::new(),
                related_file_info: None,
                troubleshoot_info: None,
            },
            created,
            outcome: machine.outcome,
            doomed: None,
            results: Vec::new(),
        }
    }

    /// Isolate (`Some(type)`) or release (`None`) a machine.
    pub fn isolation(&self, caller: &Caller, machine_id: &str, comment: &str, isolate: Option<IsolationType>) -> Result<MachineAction, MdeError> {
        let mut inner = self.settled();
        let machine = inner.machine(machine_id)?.config.clone();
        if inner.open_action(machine_id, &[ActionType::Isolate, ActionType::Unisolate]) {
            return Err(MdeError::already_in_progress());
        }
        let action_type = if isolate.is_some() { ActionType::Isolate } else { ActionType::Unisolate };
        let mut action = self.new_action(&inner, caller, &machine, action_type, comment);
        action.public.scope = isolate;
        Ok(inner.insert(action))
    }

    /// `runliveresponse`: MDE's rate limit, then the commands' checks, then
    /// one open session per machine.
    pub fn run_live_response(&self, caller: &Caller, machine_id: &str, comment: &str, commands: Vec<Command>) -> Result<MachineAction, MdeError> {
        let mut inner = self.settled();
        let now = inner.now();
        while inner.live_response_calls.front().is_some_and(|&t| now.duration_since(t).unwrap_or(Duration::ZERO) >= RATE_WINDOW) {
            inner.live_response_calls.pop_front();
        }
        let limit = self.config.live_response_rate_per_minute as usize;
        if inner.live_response_calls.len() >= limit {
            let oldest = inner.live_response_calls.front().copied().unwrap_or(now);
            let waited = now.duration_since(oldest).unwrap_or(Duration::ZERO);
            let retry_after = RATE_WINDOW.saturating_sub(waited).as_secs_f64().ceil().max(1.0) as u64;
            return Err(MdeError::too_many_requests(
                format!("Rate limit is exceeded: {limit} live response calls per minute. Try again in {retry_after} seconds."),
                retry_after,
            ));
        }
        inner.live_response_calls.push_back(now);

        let machine = inner.machine(machine_id)?.config.clone();
        check_commands(&commands)?;
        if inner.open_action(machine_id, &[ActionType::LiveResponse]) {
            return Err(MdeError::already_in_progress());
        }
        let mut action = self.new_action(&inner, caller, &machine, ActionType::LiveResponse, comment);
        for (index, command) in commands.into_iter().enumerate() {
            let (result, error) = self.command_result(&command);
            if let (Some(error), None) = (error, &action.doomed) {
                action.doomed = Some((index, error));
            }
            action.results.push(result);
            action.public.commands.push(CommandEntry {
                index,
                start_time: None,
                end_time: None,
                command_status: "Created",
                errors: Vec::new(),
                command,
            });
        }
        Ok(inner.insert(action))
    }

    /// What a command's result link will download, or why it fails.
    fn command_result(&self, command: &Command) -> (Value, Option<String>) {
        let library = |name: &str| self.config.scripts.iter().find(|s| s.file_name.eq_ignore_ascii_case(name));
        let missing = |name: &str| format!("File '{name}' was not found in the live response library.");
        match command.command_type.as_str() {
            "RunScript" => {
                let name = command.param("ScriptName").unwrap_or_default();
                match library(name) {
                    Some(script) => (
                        json!({"script_name": script.file_name, "exit_code": script.exit_code, "script_output": script.output, "script_errors": script.script_errors}),
                        None,
                    ),
                    None => (Value::Null, Some(missing(name))),
                }
            }
            "PutFile" => {
                let name = command.param("FileName").unwrap_or_default();
                match library(name) {
                    Some(file) => (json!({"file_name": file.file_name, "status": "Uploaded"}), None),
                    None => (Value::Null, Some(missing(name))),
                }
            }
            _ => {
                let path = command.param("Path").unwrap_or_default();
                (json!({"path": path, "content": format!("Emulated content of {path}")}), None)
            }
        }
    }

    pub fn action(&self, id: &str) -> Result<MachineAction, MdeError> {
        Ok(self.settled().action(id)?.public.clone())
    }

    pub fn actions(&self, query: &ListQuery) -> (usize, Vec<Value>) {
        let inner = self.settled();
        query.apply(inner.actions.iter().filter_map(|a| serde_json::to_value(&a.public).ok()).collect())
    }

    pub fn cancel(&self, caller: &Caller, id: &str, comment: &str) -> Result<MachineAction, MdeError> {
        let mut inner = self.settled();
        let now = timestamp(inner.now());
        let action = &mut inner.action_mut(id)?.public;
        if action.status.is_final() {
            return Err(MdeError::bad_request(format!("Action {id} is already in final state {:?}", action.status)));
        }
        action.status = ActionStatus::Cancelled;
        action.cancellation_requestor = Some(caller.client_id.clone());
        action.cancellation_comment = Some(comment.to_owned());
        action.cancellation_date_time_utc = Some(now.clone());
        action.last_update_date_time_utc = now;
        Ok(action.clone())
    }

    /// `GetLiveResponseResultDownloadLink(index=n)`: a new link (valid
    /// [`BLOB_LIFETIME`]) to a completed command's result; returns its token.
    pub fn result_link(&self, id: &str, index: usize) -> Result<String, MdeError> {
        let mut inner = self.settled();
        let now = inner.now();
        let action = inner.action(id)?;
        if action.public.action_type != ActionType::LiveResponse {
            return Err(MdeError::bad_request(format!("Action {id} is not a live response action")));
        }
        if action.public.status != ActionStatus::Succeeded {
            return Err(MdeError::bad_request(format!("Action {id} has no results: its status is {:?}", action.public.status)));
        }
        let Some(content) = action.results.get(index).cloned() else {
            return Err(MdeError::bad_request(format!("Action {id} has no command at index {index}")));
        };
        inner.drop_expired(now);
        if inner.blobs.len() >= MAX_BLOBS {
            return Err(MdeError::too_many_requests("Too many open result links. Try again later.", 60));
        }
        let token = random_token();
        inner.blobs.insert(token.clone(), Blob { content, expires: later(now, BLOB_LIFETIME) });
        Ok(token)
    }

    /// A result link's content, while the link is valid.
    pub fn blob(&self, token: &str) -> Option<Value> {
        let inner = self.lock();
        inner.blobs.get(token).filter(|b| b.expires > inner.now()).map(|b| b.content.clone())
    }

    // --- Library ---

    pub fn library_files(&self) -> Vec<Value> {
        let created = timestamp(earlier(self.started, Duration::from_secs(14 * 86400)));
        let updated = timestamp(earlier(self.started, Duration::from_secs(2 * 86400)));
        self.config
            .scripts
            .iter()
            .map(|s| {
                json!({
                    "fileName": s.file_name,
                    "sha256": hex::encode(Sha256::digest(s.output.as_bytes())),
                    "description": s.description,
                    "creationTime": created,
                    "lastUpdatedTime": updated,
                    "createdBy": format!("admin@{}", self.config.tenant_id),
                    "hasParameters": s.has_parameters,
                    "parametersDescription": s.parameters_description,
                })
            })
            .collect()
    }
}

/// MDE's rules for a live-response request: 1 to [`MAX_COMMANDS`] commands,
/// PutFile then RunScript then GetFile, each with its parameter.
fn check_commands(commands: &[Command]) -> Result<(), MdeError> {
    if commands.is_empty() {
        return Err(MdeError::invalid_body("Commands must contain at least one command"));
    }
    if commands.len() > MAX_COMMANDS {
        return Err(MdeError::invalid_body(format!("Commands may contain at most {MAX_COMMANDS} commands")));
    }
    let mut last_rank = 0;
    for (index, command) in commands.iter().enumerate() {
        let (rank, key) = match command.command_type.as_str() {
            "PutFile" => (1, "FileName"),
            "RunScript" => (2, "ScriptName"),
            "GetFile" => (3, "Path"),
            other => return Err(MdeError::invalid_body(format!("Command {index}: unsupported type '{other}' (PutFile, RunScript, GetFile)"))),
        };
        if rank < last_rank {
            return Err(MdeError::invalid_body("Commands must be in this order: PutFile, RunScript, GetFile"));
        }
        last_rank = rank;
        if command.param(key).is_none_or(|v| v.trim().is_empty()) {
            return Err(MdeError::invalid_body(format!("Command {index} ({}): the parameter '{key}' is required", command.command_type)));
        }
    }
    Ok(())
}

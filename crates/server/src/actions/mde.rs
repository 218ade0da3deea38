//! Microsoft Defender for Endpoint's client: what the `.microsoft_defender_endpoint`
//! connector runs (`_execute` with `{subAction, subActionParams}`) and what
//! the response-actions service calls (`client_for`, `default_client`).
//!
//! - A token from the OAuth server (client credentials), cached per connector
//!   and config until 5 s before it expires, one refresh at a time; a 401
//!   from the API gets a new token once and the call is tried again.
//! - 429 and 5xx are tried again after `Retry-After` seconds: at most
//!   `MAX_ATTEMPTS` attempts per request and `MAX_WAITING` of waiting in all.
//! - Every request goes through the outbound guard (allowed hosts, checked
//!   address, timeout), the script output's download link included.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use warden_core::actions::{ConnectorOperation, ExecuteConnectorResponse, MICROSOFT_DEFENDER_ENDPOINT};
use warden_core::mde::{
    LibraryFile, ListQuery, LiveResponseTranscript, Machine, MachineAction, MdeConfig, MdeErrorBody, ODataList, SubActionRequest, TokenError,
    TokenResponse, validate_config, validate_params, validate_secrets,
};

use super::{OutboundGuard, Target};
use crate::AppState;

/// Attempts per request when MDE answers 429 or 5xx.
pub const MAX_ATTEMPTS: u32 = 3;
/// The most one request waits between its attempts, in all.
pub const MAX_WAITING: Duration = Duration::from_secs(30);
/// A token is renewed this long before it expires, as Kibana's.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// The largest answer read (a page of 1,000 machine actions fits).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The machine id the connector test asks for: not found is a success.
const TEST_MACHINE_ID: &str = "elastic-connector-test";

#[derive(Debug, thiserror::Error)]
pub enum MdeError {
    /// No usable connector: none, not this type, not in the licence, secrets lost.
    #[error("{0}")]
    NotConfigured(String),
    /// MDE (or its OAuth server) answered with an error.
    #[error("Microsoft Defender for Endpoint: {message} ({status} {code})")]
    Api { status: u16, code: String, message: String },
    /// No answer: the host cannot be reached, or it did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The request cannot be made (the guard refused it, a bad URL) or MDE's answer cannot be read.
    #[error("{0}")]
    Invalid(String),
}

impl MdeError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            MdeError::Unreachable(_) => true,
            MdeError::Api { status, .. } => *status == 429 || *status >= 500,
            MdeError::NotConfigured(_) | MdeError::Invalid(_) => false,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, MdeError::Api { code, .. } if code == "ResourceNotFound")
    }
}

type Result<T, E = MdeError> = std::result::Result<T, E>;

// ---- tokens ----

#[derive(Clone)]
struct Token {
    access_token: String,
    /// When it stops being used: its expiry less the margin.
    renew_at: Instant,
}

/// One connector's token: the lock makes concurrent callers wait for one refresh.
type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Tokens by connector id and a hash of its config and secret: an edited
/// connector starts afresh, and the slot of its old config is dropped.
static TOKENS: LazyLock<Mutex<HashMap<String, (String, TokenSlot)>>> = LazyLock::new(Mutex::default);

fn token_slot(connector_id: &str, config: &MdeConfig, secret: &str) -> TokenSlot {
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(config).unwrap_or_default());
    hash.update([0]);
    hash.update(secret.as_bytes());
    let fingerprint = format!("{:x}", hash.finalize());
    let mut tokens = TOKENS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match tokens.get(connector_id) {
        Some((known, slot)) if *known == fingerprint => slot.clone(),
        _ => {
            let slot = TokenSlot::default();
            tokens.insert(connector_id.to_owned(), (fingerprint, slot.clone()));
            slot
        }
    }
}

// ---- the client ----

/// A client for one MDE connector.
#[derive(Clone)]
pub struct MdeClient {
    connector_id: String,
    config: MdeConfig,
    secret: String,
    guard: OutboundGuard,
    token: TokenSlot,
}

/// A request's body.
enum Body<'a> {
    Empty,
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

/// An answer, read whole (bounded).
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

/// The client for connector `connector_id` (stored or preconfigured): its
/// secret decrypted, its type checked, and within the licence.
pub async fn client_for(state: &AppState, connector_id: &str) -> Result<MdeClient> {
    let target = super::resolve(state, connector_id).await.map_err(|err| match err {
        super::ActionsError::NotFound(_) => MdeError::NotConfigured(format!("Connector {connector_id} not found")),
        other => MdeError::NotConfigured(format!("Connector {connector_id} cannot be read: {other}")),
    })?;
    if target.type_id() != MICROSOFT_DEFENDER_ENDPOINT {
        return Err(MdeError::NotConfigured(format!("Connector {connector_id} is not a Microsoft Defender for Endpoint connector")));
    }
    super::usable_type(state, target.type_id(), ConnectorOperation::Execute).map_err(|err| MdeError::NotConfigured(err.to_string()))?;
    let (config, secrets) = match target {
        Target::Preconfigured(_, connector) => (connector.config, connector.secrets),
        Target::Stored(_, None) => {
            return Err(MdeError::NotConfigured(format!(
                "The secrets of connector {connector_id} cannot be decrypted (was the encryption key changed?); enter them again"
            )));
        }
        Target::Stored(row, Some(secrets)) => (serde_json::from_str(&row.config).unwrap_or_default(), secrets),
    };
    MdeClient::new(connector_id, &config, &secrets, state.outbound_guard())
}

/// The one MDE connector Warden uses for response actions: the only one, or
/// with several the first by name.
pub async fn default_client(state: &AppState) -> Result<MdeClient> {
    let stored =
        crate::store::connectors::all(&state.db).await.map_err(|err| MdeError::NotConfigured(format!("Connectors cannot be read: {err}")))?;
    let preconfigured = &state.config.actions_preconfigured.0;
    let mut candidates: Vec<(String, String)> = stored
        .into_iter()
        .filter(|row| row.connector_type_id == MICROSOFT_DEFENDER_ENDPOINT && !preconfigured.contains_key(&row.id))
        .map(|row| (row.name, row.id))
        .chain(
            preconfigured
                .iter()
                .filter(|(_, connector)| connector.connector_type_id == MICROSOFT_DEFENDER_ENDPOINT)
                .map(|(id, connector)| (connector.name.clone(), id.clone())),
        )
        .collect();
    candidates.sort_by_cached_key(|(name, id)| (name.to_lowercase(), id.clone()));
    let (_, id) =
        candidates.into_iter().next().ok_or_else(|| MdeError::NotConfigured("No Microsoft Defender for Endpoint connector is configured".into()))?;
    client_for(state, &id).await
}

impl MdeClient {
    fn new(connector_id: &str, config: &Map<String, Value>, secrets: &Map<String, Value>, guard: OutboundGuard) -> Result<MdeClient> {
        let config = validate_config(config).map_err(|err| MdeError::NotConfigured(format!("Connector {connector_id}: config {err}")))?;
        let secret = validate_secrets(secrets).map_err(|err| MdeError::NotConfigured(format!("Connector {connector_id}: secrets {err}")))?;
        let token = token_slot(connector_id, &config, &secret);
        Ok(MdeClient { connector_id: connector_id.to_owned(), config, secret, guard, token })
    }

    pub fn connector_id(&self) -> &str {
        &self.connector_id
    }

    /// Gets a token, then asks for a machine that does not exist: "not found" proves the API answers.
    pub async fn test(&self) -> Result<()> {
        match self.machine(TEST_MACHINE_ID).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Machines: those named by `ids` (all when empty), at most `top`.
    pub async fn machines(&self, ids: &[String], top: u32) -> Result<Vec<Machine>> {
        let mut query = ListQuery { page: 1, page_size: top.max(1), ..ListQuery::default() };
        if !ids.is_empty() {
            query.filters.push(("id".into(), warden_core::mde::FilterValue::Any(ids.to_vec())));
        }
        Ok(self.query_machines(&query).await?.value)
    }

    /// Machines by Kibana's list query (`getAgentList`).
    pub async fn query_machines(&self, query: &ListQuery) -> Result<ODataList<Machine>> {
        self.get_json(self.api_url(&["machines"], &query.odata())?).await
    }

    pub async fn machine(&self, id: &str) -> Result<Machine> {
        self.get_json(self.api_url(&["machines", id], &[])?).await
    }

    /// Isolates the machine fully, as Kibana does.
    pub async fn isolate(&self, machine_id: &str, comment: &str) -> Result<MachineAction> {
        let body = json!({"Comment": comment, "IsolationType": "Full"});
        self.post_json(self.api_url(&["machines", machine_id, "isolate"], &[])?, &body).await
    }

    pub async fn release(&self, machine_id: &str, comment: &str) -> Result<MachineAction> {
        self.post_json(self.api_url(&["machines", machine_id, "unisolate"], &[])?, &json!({"Comment": comment})).await
    }

    /// One RunScript live response command; `Args` is `--noargs` when not given, as Kibana sends.
    pub async fn run_script(&self, machine_id: &str, script_name: &str, args: Option<&str>, comment: &str) -> Result<MachineAction> {
        let body = json!({
            "Commands": [{"type": "RunScript", "params": [
                {"key": "ScriptName", "value": script_name},
                {"key": "Args", "value": args.unwrap_or("--noargs")},
            ]}],
            "Comment": comment,
        });
        self.post_json(self.api_url(&["machines", machine_id, "runliveresponse"], &[])?, &body).await
    }

    pub async fn action(&self, id: &str) -> Result<MachineAction> {
        self.get_json(self.api_url(&["machineactions", id], &[])?).await
    }

    /// The machine actions with these ids, in one call.
    pub async fn actions(&self, ids: &[String]) -> Result<Vec<MachineAction>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let size = u32::try_from(ids.len()).unwrap_or(u32::MAX).min(10_000);
        let query =
            ListQuery { filters: vec![("id".into(), warden_core::mde::FilterValue::Any(ids.to_vec()))], page: 1, page_size: size, sort: None };
        Ok(self.query_actions(&query).await?.value)
    }

    /// Machine actions by Kibana's list query (`getActions`).
    pub async fn query_actions(&self, query: &ListQuery) -> Result<ODataList<MachineAction>> {
        self.get_json(self.api_url(&["machineactions"], &query.odata())?).await
    }

    pub async fn cancel(&self, action_id: &str, comment: &str) -> Result<MachineAction> {
        self.post_json(self.api_url(&["machineactions", action_id, "cancel"], &[])?, &json!({"Comment": comment})).await
    }

    /// The live response library's scripts.
    pub async fn library_files(&self) -> Result<Vec<LibraryFile>> {
        let list: ODataList<LibraryFile> = self.get_json(self.api_url(&["libraryfiles"], &[])?).await?;
        Ok(list.value)
    }

    /// What a RunScript action left: its download link (command 0), then the
    /// transcript behind it, fetched without the bearer token (the link is signed).
    pub async fn script_result(&self, action_id: &str) -> Result<LiveResponseTranscript> {
        #[derive(serde::Deserialize)]
        struct Link {
            value: String,
        }
        let link: Link = self.get_json(self.api_url(&["machineactions", action_id, "GetLiveResponseResultDownloadLink(index=0)"], &[])?).await?;
        let url = Url::parse(&link.value).map_err(|_| MdeError::Invalid(format!("MDE gave a download link that is not a URL: {}", link.value)))?;
        let answer = self.send_retrying(&Method::GET, &url, None, &Body::Empty).await?;
        let answer = api_result(&Method::GET, &url, answer)?;
        parse(&url, &answer.body)
    }

    // ---- plumbing ----

    /// `{apiUrl}/api/<segments…>?<query>`, each segment encoded.
    fn api_url(&self, segments: &[&str], query: &[(String, String)]) -> Result<Url> {
        let mut url = Url::parse(&self.config.api_url).map_err(|_| MdeError::Invalid(format!("apiUrl \"{}\" is not a URL", self.config.api_url)))?;
        url.path_segments_mut()
            .map_err(|()| MdeError::Invalid(format!("apiUrl \"{}\" cannot have a path", self.config.api_url)))?
            .pop_if_empty()
            .push("api")
            .extend(segments);
        if !query.is_empty() {
            let text: Vec<String> = query.iter().map(|(key, value)| format!("{key}={}", encode_query_value(value))).collect();
            url.set_query(Some(&text.join("&")));
        }
        Ok(url)
    }

    /// `{oAuthServerUrl}/{tenantId}/oauth2/v2.0/token` (the server URL's own path replaced, as Kibana's).
    fn token_url(&self) -> Result<Url> {
        let server = &self.config.oauth_server_url;
        let mut url = Url::parse(server).map_err(|_| MdeError::Invalid(format!("oAuthServerUrl \"{server}\" is not a URL")))?;
        url.set_query(None);
        url.path_segments_mut().map_err(|()| MdeError::Invalid(format!("oAuthServerUrl \"{server}\" cannot have a path")))?.clear().extend([
            self.config.tenant_id.as_str(),
            "oauth2",
            "v2.0",
            "token",
        ]);
        Ok(url)
    }

    /// A valid token: the cached one, or a new one (one refresh at a time;
    /// who waited for it uses it). `stale`: a token the API refused, not to be used again.
    async fn token(&self, stale: Option<&str>) -> Result<String> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref()
            && Instant::now() < token.renew_at
            && Some(token.access_token.as_str()) != stale
        {
            return Ok(token.access_token.clone());
        }
        *slot = None;
        let url = self.token_url()?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("scope", self.config.oauth_scope.as_str()),
            ("client_secret", self.secret.as_str()),
        ];
        let answer = self.send_retrying(&Method::POST, &url, None, &Body::Form(&form)).await?;
        if !answer.status.is_success() {
            let refused: TokenError = serde_json::from_slice(&answer.body).unwrap_or_default();
            let code = if refused.error.is_empty() { reason(answer.status) } else { refused.error };
            let detail = refused.error_description.unwrap_or_else(|| truncate(&String::from_utf8_lossy(&answer.body), 500));
            return Err(MdeError::Api {
                status: answer.status.as_u16(),
                code,
                message: format!("the OAuth server refused the connector's credentials at POST {url}: {detail}"),
            });
        }
        let token: TokenResponse = parse(&url, &answer.body)?;
        let lifetime = Duration::from_secs(token.expires_in);
        let now = Instant::now();
        let renew_at = now.checked_add(lifetime.saturating_sub(EXPIRY_MARGIN)).unwrap_or(now);
        *slot = Some(Token { access_token: token.access_token.clone(), renew_at });
        Ok(token.access_token)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T> {
        let answer = self.call(Method::GET, &url, &Body::Empty).await?;
        parse(&url, &answer.body)
    }

    async fn post_json<T: DeserializeOwned>(&self, url: Url, body: &Value) -> Result<T> {
        let answer = self.call(Method::POST, &url, &Body::Json(body)).await?;
        parse(&url, &answer.body)
    }

    /// An API call with the bearer token; on a 401, once more with a new token.
    async fn call(&self, method: Method, url: &Url, body: &Body<'_>) -> Result<Answer> {
        let token = self.token(None).await?;
        let answer = self.send_retrying(&method, url, Some(&token), body).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            tracing::info!(connector = %self.connector_id, "MDE refused the token; getting a new one");
            let token = self.token(Some(&token)).await?;
            let answer = self.send_retrying(&method, url, Some(&token), body).await?;
            return api_result(&method, url, answer);
        }
        api_result(&method, url, answer)
    }

    /// Sends, and on 429 or 5xx sends again after `Retry-After` (or 1 s, then
    /// 2 s), within `MAX_ATTEMPTS` and `MAX_WAITING`; the last answer is returned.
    async fn send_retrying(&self, method: &Method, url: &Url, bearer: Option<&str>, body: &Body<'_>) -> Result<Answer> {
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        loop {
            let (answer, retry_after) = self.send(method, url, bearer, body).await?;
            let busy = answer.status == StatusCode::TOO_MANY_REQUESTS || answer.status.is_server_error();
            let wait = retry_after.unwrap_or(Duration::from_secs(u64::from(attempt)));
            if !busy || attempt >= MAX_ATTEMPTS || waited + wait > MAX_WAITING {
                return Ok(answer);
            }
            tracing::info!(connector = %self.connector_id, status = answer.status.as_u16(), wait = ?wait, attempt, "MDE is busy; trying again");
            tokio::time::sleep(wait).await;
            waited += wait;
            attempt += 1;
        }
    }

    /// One request through the outbound guard; the answer and its `Retry-After`.
    async fn send(&self, method: &Method, url: &Url, bearer: Option<&str>, body: &Body<'_>) -> Result<(Answer, Option<Duration>)> {
        let client = self.guard.pinned_client(url).await.map_err(|refusal| MdeError::Invalid(format!("{method} {url}: {refusal}")))?;
        let mut request = client.request(method.clone(), url.clone()).header("accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(value),
            Body::Form(fields) => request.form(fields),
        };
        let unreachable = |err: reqwest::Error| {
            let cause = root_cause(&err);
            if err.is_timeout() {
                MdeError::Unreachable(format!("{method} {url} did not answer within {}", humantime::format_duration(self.guard.timeout)))
            } else {
                MdeError::Unreachable(format!("{method} {url} cannot be reached: {cause}"))
            }
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(MdeError::Invalid(format!("{method} {url}: the answer is larger than {} MiB", MAX_BODY_BYTES >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((Answer { status, body }, retry_after))
    }

    /// Runs one sub-action of `_execute`; the data Kibana's connector answers.
    async fn run(&self, request: SubActionRequest) -> Result<Value> {
        let data = match request {
            SubActionRequest::TestConnector => {
                self.test().await?;
                json!({})
            }
            SubActionRequest::GetAgentDetails { id } => to_value(self.machine(&id).await?),
            SubActionRequest::GetAgentList(query) => paged(&query, to_value(self.query_machines(&query).await?)),
            SubActionRequest::IsolateHost { id, comment } => to_value(self.isolate(&id, &comment).await?),
            SubActionRequest::ReleaseHost { id, comment } => to_value(self.release(&id, &comment).await?),
            SubActionRequest::GetActions(query) => paged(&query, to_value(self.query_actions(&query).await?)),
            SubActionRequest::GetLibraryFiles => json!({ "value": self.library_files().await? }),
            SubActionRequest::RunScript { id, comment, script_name, args } => {
                to_value(self.run_script(&id, &script_name, args.as_deref(), comment.as_deref().unwrap_or_default()).await?)
            }
            SubActionRequest::GetActionResults { id } => to_value(self.script_result(&id).await?),
            SubActionRequest::CancelAction { action_id, comment } => to_value(self.cancel(&action_id, &comment).await?),
        };
        Ok(data)
    }
}

/// `_execute` for an MDE connector: `{subAction, subActionParams}` (validated before).
pub(super) async fn execute(
    id: &str,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
    params: &Map<String, Value>,
    guard: &OutboundGuard,
) -> ExecuteConnectorResponse {
    let request = match validate_params(params) {
        Ok(request) => request,
        Err(err) => return ExecuteConnectorResponse::failed(id, &format!("error validating action params: {err}"), None, false),
    };
    let sub_action = request.sub_action();
    let result = match MdeClient::new(id, config, secrets, guard.clone()) {
        Ok(client) => client.run(request).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(data) => ExecuteConnectorResponse::ok(id, Some(data)),
        Err(err) => {
            let service_message = match &err {
                MdeError::Api { code, .. } => Some(format!("{} failed: {code}", sub_action.as_str())),
                _ => Some(format!("{} failed", sub_action.as_str())),
            };
            ExecuteConnectorResponse::failed(id, &err.to_string(), service_message, err.is_retryable())
        }
    }
}

/// A list's OData answer with Kibana's `page`, `pageSize` and `total` (`-1` when MDE did not count).
fn paged(query: &ListQuery, mut list: Value) -> Value {
    let total = list.get("@odata.count").cloned().unwrap_or(json!(-1));
    if let Some(fields) = list.as_object_mut() {
        fields.insert("page".into(), json!(query.page));
        fields.insert("pageSize".into(), json!(query.page_size));
        fields.insert("total".into(), total);
    }
    list
}

fn to_value(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A successful answer, or MDE's error body as an error.
fn api_result(method: &Method, url: &Url, answer: Answer) -> Result<Answer> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    let (code, message) = match serde_json::from_slice::<MdeErrorBody>(&answer.body) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (reason(answer.status), format!("{method} {url} answered: {}", truncate(&String::from_utf8_lossy(&answer.body), 500))),
    };
    Err(MdeError::Api { status: answer.status.as_u16(), code, message })
}

fn parse<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|err| MdeError::Invalid(format!("unexpected answer from {url}: {err}")))
}

/// The status's reason without spaces, as MDE's codes read (`TooManyRequests`).
fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").replace(' ', "")
}

/// The innermost error: "Connection refused (os error 111)" rather than reqwest's wrapping.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A query value percent-encoded (spaces as `%20`), keeping OData's
/// parentheses and commas readable (quotes are encoded, as the URL standard does).
fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~(),".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(api_url: &str) -> MdeClient {
        let config = json!({"clientId": "c", "tenantId": "tenant 1", "oAuthServerUrl": "https://login.example.com/ignored/path?x=1",
            "oAuthScope": "s", "apiUrl": api_url});
        let secrets = json!({"clientSecret": "x"});
        let guard = OutboundGuard { allowed_hosts: warden_core::actions::AllowedHosts::default(), timeout: Duration::from_secs(1) };
        MdeClient::new("c1", config.as_object().unwrap(), secrets.as_object().unwrap(), guard).unwrap()
    }

    #[test]
    fn urls_are_built_as_kibanas_with_each_part_encoded() {
        let mde = client("https://api.example.com/");
        assert_eq!(mde.token_url().unwrap().as_str(), "https://login.example.com/tenant%201/oauth2/v2.0/token");
        let url = mde.api_url(&["machines", "a/b", "isolate"], &[]).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/api/machines/a%2Fb/isolate");
        let link = mde.api_url(&["machineactions", "x", "GetLiveResponseResultDownloadLink(index=0)"], &[]).unwrap();
        assert_eq!(link.path(), "/api/machineactions/x/GetLiveResponseResultDownloadLink(index=0)");
        let query = ListQuery {
            filters: vec![("id".into(), warden_core::mde::FilterValue::Any(vec!["a".into(), "b&c".into()]))],
            page: 1,
            page_size: 2,
            sort: None,
        };
        let listed = mde.api_url(&["machineactions"], &query.odata()).unwrap();
        assert_eq!(
            listed.query(),
            Some("$count=true&$top=2&$filter=id%20in%20(%27a%27,%27b%26c%27)"),
            "quotes as the URL standard encodes them in a query"
        );
        let prefixed = client("https://proxy.example.com/mde");
        assert_eq!(prefixed.api_url(&["libraryfiles"], &[]).unwrap().path(), "/mde/api/libraryfiles");
    }

    #[test]
    fn a_changed_config_or_secret_gets_its_own_token_slot() {
        let config = validate_config(
            json!({"clientId": "c", "tenantId": "t", "oAuthServerUrl": "https://l", "oAuthScope": "s", "apiUrl": "https://a"}).as_object().unwrap(),
        )
        .unwrap();
        let first = token_slot("slot-test", &config, "one");
        assert!(Arc::ptr_eq(&first, &token_slot("slot-test", &config, "one")));
        assert!(!Arc::ptr_eq(&first, &token_slot("slot-test", &config, "two")));
    }

    #[test]
    fn errors_say_whether_to_try_again() {
        let api = |status| MdeError::Api { status, code: "X".into(), message: "m".into() };
        assert!(api(429).is_retryable() && api(503).is_retryable() && !api(400).is_retryable());
        assert!(MdeError::Unreachable("u".into()).is_retryable());
        assert!(MdeError::Api { status: 404, code: "ResourceNotFound".into(), message: "m".into() }.is_not_found());
        assert_eq!(api(403).to_string(), "Microsoft Defender for Endpoint: m (403 X)");
    }
}

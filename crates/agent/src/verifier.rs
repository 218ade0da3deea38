//! `warden-agent verifier`: the cloud connector permission verifier Warden
//! starts for one verification (Kibana's `verifier_otel`, as a process).
//!
//! Warden writes one [`VerifierDeployment`] on its standard input and closes
//! it. The verifier enrolls with the deployment's one-time token (identity in
//! memory only), asks the cloud's policy simulator
//! (`POST {cloud_url}/iam/simulate-principal-policy`, the API of
//! `warden-cloud-emulator`) whether the connector's principal holds each
//! permission, and posts one [`VerificationRecord`] per check to
//! `api/fleet/agents/{id}/verification_results` with its agent API key, in
//! parts of at most [`MAX_RECORDS`]. It exits 0 once Warden took every part.
//!
//! Each distinct action is asked once, in calls of at most [`BATCH`] actions
//! (following `Marker` when the cloud pages), a few calls at a time, each
//! bounded by `--timeout`; its answer goes to every check naming it.
//! `allowed` → granted; `implicitDeny` / `explicitDeny` → denied (the
//! decision as `error_code`); a 403 → error `AccessDenied` with the cloud's
//! message; no answer, another error status or an unreadable answer → error
//! with what went wrong. The principal and proof are never logged (an Azure
//! client id and tenant are secrets to Warden).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use warden_core::cloud_connectors::{MAX_RECORDS, PermissionCheck, PermissionStatus, VerificationRecord, VerificationReport, VerifierDeployment};
use warden_core::fleet_api::AgentType;
use warden_core::paths;
use warden_core::response_actions::EndpointMetadata;

use crate::{Enrollment, Identity, enroll, error_text, url};

/// The largest deployment read from stdin.
pub const MAX_DEPLOYMENT_BYTES: u64 = 1024 * 1024;
/// The most actions asked in one call to the cloud (IAM's default page).
pub const BATCH: usize = 100;
/// The policy simulator, relative to `cloud_url`.
pub const SIMULATE_PATH: &str = "iam/simulate-principal-policy";
/// The largest answer read from the cloud (100 results are a few KiB).
const MAX_CLOUD_ANSWER_BYTES: usize = 1024 * 1024;
/// The longest message kept in a record: a cloud's error text is clipped.
const MESSAGE_MAX: usize = 1000;
/// How many times each part of the report is sent, with doubling backoff.
const REPORT_TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait a `Retry-After` may ask for between report tries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// `verifier`'s flags.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Each HTTP call's bound (the cloud's and Warden's).
    pub timeout: Duration,
    /// Calls to the cloud in flight at once.
    pub concurrency: usize,
}

/// Reads the deployment Warden writes on stdin: at most
/// [`MAX_DEPLOYMENT_BYTES`], one JSON document.
pub async fn read_deployment<R: AsyncRead + Unpin>(input: R) -> anyhow::Result<VerifierDeployment> {
    let mut bytes = Vec::new();
    input.take(MAX_DEPLOYMENT_BYTES + 1).read_to_end(&mut bytes).await.context("reading the deployment from stdin")?;
    if bytes.len() as u64 > MAX_DEPLOYMENT_BYTES {
        bail!("the deployment on stdin is larger than {MAX_DEPLOYMENT_BYTES} bytes");
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        bail!("no deployment on stdin: Warden writes one VerifierDeployment JSON document and closes stdin");
    }
    let deployment: VerifierDeployment =
        serde_json::from_slice(&bytes).context("the deployment on stdin is not a VerifierDeployment JSON document")?;
    for (name, value) in [("fleet_url", &deployment.fleet_url), ("cloud_url", &deployment.cloud_url)] {
        if !(value.starts_with("http://") || value.starts_with("https://")) {
            bail!("the deployment's {name} must be an http:// or https:// URL, not {value:?}");
        }
    }
    for (name, value) in [("enrollment_token", &deployment.enrollment_token), ("verification_id", &deployment.verification_id)] {
        if value.trim().is_empty() {
            bail!("the deployment's {name} is empty");
        }
    }
    Ok(deployment)
}

/// The host name the verifier enrolls with: `verifier-` and the first 8
/// characters of the verification id.
pub fn hostname(verification_id: &str) -> String {
    format!("verifier-{}", verification_id.chars().take(8).collect::<String>())
}

/// What one verification came to, printed on stdout at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub verification_id: String,
    pub agent_id: String,
    pub granted: usize,
    pub denied: usize,
    pub errors: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verification {}: {} granted, {} denied, {} could not be checked; reported to Warden as agent {}",
            self.verification_id, self.granted, self.denied, self.errors, self.agent_id
        )
    }
}

/// Enrolls, checks every permission, reports. An error means Warden did not
/// get the whole report (or the verifier could not enroll).
pub async fn run(deployment: VerifierDeployment, options: Options) -> anyhow::Result<Summary> {
    let http = reqwest::Client::builder().timeout(options.timeout).connect_timeout(options.timeout.min(Duration::from_secs(10))).build()?;
    tracing::info!(
        verification_id = %deployment.verification_id,
        connector_id = %deployment.connector_id,
        provider = deployment.provider.as_str(),
        checks = deployment.checks.len(),
        "verifier starting"
    );
    let who = Enrollment {
        hostname: &hostname(&deployment.verification_id),
        host_id: "",
        replace_token: None,
        tags: vec!["verifier".to_owned()],
        agent_type: AgentType::Ephemeral,
        endpoint: &EndpointMetadata::default(),
    };
    let identity = enroll(&http, &deployment.fleet_url, &deployment.enrollment_token, who).await.context("enrolling with Warden")?;
    tracing::info!(agent_id = %identity.agent_id, "enrolled");

    let started = Instant::now();
    let records = check_permissions(&http, &deployment, options).await;
    let count = |status: PermissionStatus| records.iter().filter(|r| r.status == status).count();
    let summary = Summary {
        verification_id: deployment.verification_id.clone(),
        agent_id: identity.agent_id.clone(),
        granted: count(PermissionStatus::Granted),
        denied: count(PermissionStatus::Denied),
        errors: count(PermissionStatus::Error),
    };
    tracing::info!(
        granted = summary.granted,
        denied = summary.denied,
        errors = summary.errors,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "permissions checked"
    );
    report(&http, &identity, &deployment.verification_id, &records).await?;
    Ok(summary)
}

// --- The cloud ---

/// What the cloud said of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// IAM's `EvalDecision`: `allowed`, `implicitDeny` or `explicitDeny`.
    Decision(String),
    /// HTTP 403, with the cloud's message: the credentials were refused.
    AccessDenied(String),
    /// No usable answer: `code` names why (`Timeout`, the cloud's error code, ...).
    Failed { code: String, message: String },
}

impl Outcome {
    fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome::Failed { code: code.into(), message: clip(message.into()) }
    }
}

/// One check's record, from what the cloud said of its action.
pub fn record(check: &PermissionCheck, outcome: &Outcome, duration_ms: u64) -> VerificationRecord {
    let action = &check.action;
    let (status, error_code, message) = match outcome {
        Outcome::Decision(decision) if decision.eq_ignore_ascii_case("allowed") => (PermissionStatus::Granted, None, None),
        Outcome::Decision(decision) if decision.eq_ignore_ascii_case("implicitDeny") => {
            (PermissionStatus::Denied, Some("implicitDeny".to_owned()), Some(format!("implicitDeny: no policy allows {action}")))
        }
        Outcome::Decision(decision) if decision.eq_ignore_ascii_case("explicitDeny") => {
            (PermissionStatus::Denied, Some("explicitDeny".to_owned()), Some(format!("explicitDeny: a policy explicitly denies {action}")))
        }
        Outcome::Decision(other) => (
            PermissionStatus::Error,
            Some("UnknownDecision".to_owned()),
            Some(clip(format!("The cloud answered {other:?} for {action}, not a decision"))),
        ),
        Outcome::AccessDenied(message) => (PermissionStatus::Error, Some("AccessDenied".to_owned()), Some(message.clone())),
        Outcome::Failed { code, message } => (PermissionStatus::Error, Some(code.clone()), Some(message.clone())),
    };
    VerificationRecord {
        package_policy_id: check.package_policy_id.clone(),
        policy_template: check.policy_template.clone(),
        package_name: check.package_name.clone(),
        action: action.clone(),
        status,
        required: check.required,
        error_code,
        message,
        method: Some("api_call".to_owned()),
        duration_ms: Some(duration_ms),
    }
}

/// The calls to make: each distinct action once, in the order first named,
/// at most [`BATCH`] a call.
pub fn batches(checks: &[PermissionCheck]) -> Vec<Vec<String>> {
    let mut distinct: Vec<&str> = Vec::new();
    for check in checks {
        if !distinct.contains(&check.action.as_str()) {
            distinct.push(&check.action);
        }
    }
    distinct.chunks(BATCH).map(|chunk| chunk.iter().map(|a| (*a).to_owned()).collect()).collect()
}

/// Checks every permission of the deployment: one record per check, in
/// the checks' order.
pub async fn check_permissions(http: &reqwest::Client, deployment: &VerifierDeployment, options: Options) -> Vec<VerificationRecord> {
    let batches = batches(&deployment.checks);
    tracing::info!(actions = batches.iter().map(Vec::len).sum::<usize>(), calls = batches.len(), "asking the cloud");
    let cloud = Arc::new(Cloud {
        http: http.clone(),
        url: url(&deployment.cloud_url, SIMULATE_PATH),
        principal: deployment.principal.clone(),
        proof: deployment.proof.clone(),
        timeout: options.timeout,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut calls = tokio::task::JoinSet::new();
    for batch in batches {
        let (cloud, permits) = (cloud.clone(), permits.clone());
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await;
            cloud.check(batch).await
        });
    }
    let mut outcomes: HashMap<String, (Outcome, u64)> = HashMap::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(answers) => outcomes.extend(answers),
            // Its actions have no outcome: recorded as errors below.
            Err(error) => tracing::warn!(%error, "a call to the cloud failed to run"),
        }
    }
    let unchecked = Outcome::failed("NotChecked", "The verifier could not check this permission");
    deployment
        .checks
        .iter()
        .map(|check| match outcomes.get(&check.action) {
            Some((outcome, duration_ms)) => record(check, outcome, *duration_ms),
            None => record(check, &unchecked, 0),
        })
        .collect()
}

/// The policy simulator, as the connector's principal.
struct Cloud {
    http: reqwest::Client,
    url: String,
    principal: String,
    proof: String,
    timeout: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SimulateRequest<'a> {
    policy_source_arn: &'a str,
    external_id: &'a str,
    action_names: &'a [String],
    max_items: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    marker: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SimulateAnswer {
    evaluation_results: Vec<EvaluationResult>,
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EvaluationResult {
    eval_action_name: String,
    eval_decision: String,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(rename = "Error")]
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "Code", default)]
    code: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

impl Cloud {
    /// Asks for one batch, page after page; each action's outcome with the
    /// duration of the call that decided it. A failing call fails the actions
    /// it left undecided.
    async fn check(&self, actions: Vec<String>) -> Vec<(String, (Outcome, u64))> {
        let mut decided: HashMap<String, (Outcome, u64)> = HashMap::new();
        let mut marker: Option<String> = None;
        let mut failure: Option<(Outcome, u64)> = None;
        // A cloud paging one result at a time still ends; a looping Marker does not loop here.
        for page in 0..=actions.len() {
            let started = Instant::now();
            let answer = self.call(&actions, marker.as_deref()).await;
            let duration_ms = started.elapsed().as_millis() as u64;
            let answer = match answer {
                Ok(answer) => answer,
                Err(outcome) => {
                    failure = Some((outcome, duration_ms));
                    break;
                }
            };
            for result in answer.evaluation_results {
                decided.entry(result.eval_action_name).or_insert((Outcome::Decision(result.eval_decision), duration_ms));
            }
            match (answer.is_truncated, answer.marker) {
                (false, _) => break,
                (true, Some(next)) if marker.as_deref() != Some(next.as_str()) && page < actions.len() => marker = Some(next),
                (true, _) => {
                    let why = "The cloud's answer goes on without a new Marker: the rest of the actions were not checked";
                    failure = Some((Outcome::failed("BadMarker", why), duration_ms));
                    break;
                }
            }
        }
        actions
            .into_iter()
            .map(|action| {
                let found = decided.get(&action).or_else(|| decided.iter().find(|(name, _)| name.eq_ignore_ascii_case(&action)).map(|(_, v)| v));
                let outcome = match (found, &failure) {
                    (Some(found), _) => found.clone(),
                    (None, Some(failure)) => failure.clone(),
                    (None, None) => (Outcome::failed("MissingResult", format!("The cloud's answer has no result for {action}")), 0),
                };
                (action, outcome)
            })
            .collect()
    }

    /// One call: the page, or the outcome every action of the call gets.
    async fn call(&self, actions: &[String], marker: Option<&str>) -> Result<SimulateAnswer, Outcome> {
        let request =
            SimulateRequest { policy_source_arn: &self.principal, external_id: &self.proof, action_names: actions, max_items: BATCH, marker };
        let response = self.http.post(&self.url).json(&request).send().await.map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        let body = read_bounded(response, MAX_CLOUD_ANSWER_BYTES).await.map_err(|e| match e {
            Bounded::TooLarge => Outcome::failed("UnreadableResponse", format!("The cloud's answer is larger than {MAX_CLOUD_ANSWER_BYTES} bytes")),
            Bounded::Failed(e) => self.transport_failure(&e),
        })?;
        if status == reqwest::StatusCode::FORBIDDEN {
            let message = error_detail(&body)
                .and_then(|d| d.message)
                .unwrap_or_else(|| format!("The cloud refused the credentials (HTTP 403): {}", snippet(&body)));
            return Err(Outcome::AccessDenied(clip(message)));
        }
        if !status.is_success() {
            let detail = error_detail(&body);
            let code = detail.as_ref().and_then(|d| d.code.clone()).unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
            let message = match detail.and_then(|d| d.message) {
                Some(message) => format!("The cloud answered HTTP {status}: {message}"),
                None => format!("The cloud answered HTTP {status}: {}", snippet(&body)),
            };
            return Err(Outcome::failed(code, message));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Outcome::failed("UnreadableResponse", format!("The cloud's answer is not a policy simulation result: {e}: {}", snippet(&body)))
        })
    }

    fn transport_failure(&self, error: &reqwest::Error) -> Outcome {
        if error.is_timeout() {
            Outcome::failed("Timeout", format!("The cloud did not answer within {} ({})", humantime::format_duration(self.timeout), self.url))
        } else if error.is_connect() {
            Outcome::failed("ConnectionError", format!("Cannot reach the cloud at {}: {}", self.url, error_chain(error)))
        } else {
            Outcome::failed("RequestFailed", format!("The call to the cloud at {} failed: {}", self.url, error_chain(error)))
        }
    }
}

fn error_detail(body: &[u8]) -> Option<ErrorDetail> {
    serde_json::from_slice::<ErrorAnswer>(body).ok().map(|answer| answer.error)
}

/// A reqwest error with its causes (the cause says what the connection hit).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() { "(empty body)".to_owned() } else { text.chars().take(200).collect() }
}

fn clip(text: String) -> String {
    if text.chars().count() <= MESSAGE_MAX { text } else { text.chars().take(MESSAGE_MAX - 1).chain(['…']).collect() }
}

enum Bounded {
    TooLarge,
    Failed(reqwest::Error),
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Bounded> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Bounded::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Bounded::Failed)? {
        if body.len() + chunk.len() > limit {
            return Err(Bounded::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

// --- Warden ---

/// The parts of the report: at most [`MAX_RECORDS`] records each, and one
/// (empty) part when there is nothing to report, so Warden still hears back.
pub fn report_parts(records: &[VerificationRecord]) -> Vec<&[VerificationRecord]> {
    if records.is_empty() { vec![records] } else { records.chunks(MAX_RECORDS).collect() }
}

/// Whether a report refused with this status is worth sending again.
pub fn retryable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Sends the report, part after part; each part retried on 429/502/503/504
/// and connection errors.
async fn report(http: &reqwest::Client, identity: &Identity, verification_id: &str, records: &[VerificationRecord]) -> anyhow::Result<()> {
    let parts = report_parts(records);
    let count = parts.len();
    for (n, part) in parts.into_iter().enumerate() {
        let body = VerificationReport { verification_id: verification_id.to_owned(), records: part.to_vec() };
        post_report(http, identity, &body).await.with_context(|| format!("reporting the results to Warden (part {} of {count})", n + 1))?;
        tracing::info!(part = n + 1, parts = count, records = part.len(), "results reported");
    }
    Ok(())
}

async fn post_report(http: &reqwest::Client, identity: &Identity, body: &VerificationReport) -> anyhow::Result<()> {
    let target = url(&identity.url, &paths::agent_verification_results(&identity.agent_id));
    let mut backoff = FIRST_BACKOFF;
    let mut last_error = String::new();
    for attempt in 1..=REPORT_TRIES {
        let sent = http.post(&target).header("Authorization", format!("ApiKey {}", identity.api_key)).json(body).send().await;
        let wait = match sent {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if retryable(response.status()) => {
                let wait = retry_after(&response).unwrap_or(backoff).min(MAX_RETRY_AFTER);
                last_error = error_text(response).await;
                wait
            }
            Ok(response) => bail!("Warden refused the report: {}", error_text(response).await),
            Err(error) => {
                last_error = error_chain(&error);
                backoff
            }
        };
        if attempt < REPORT_TRIES {
            tracing::warn!(attempt, error = %last_error, retry_in_ms = wait.as_millis() as u64, "report not taken; trying again");
            tokio::time::sleep(wait).await;
            backoff *= 2;
        }
    }
    bail!("Warden did not take the report after {REPORT_TRIES} tries: {last_error}")
}

/// A `Retry-After` in seconds.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests;

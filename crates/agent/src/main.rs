//! `warden-agent`: a simulated Elastic Agent. It speaks the Fleet Server API
//! (enroll, long-poll check-in, acks, audit/unenroll) with the same
//! `warden_core` types as the server, for demos, tests and load tests. It
//! also runs Elastic Defend response actions for real on its host, confined
//! to a sandbox folder (`respond`), and is the cloud connector permission
//! verifier Warden starts for each verification (`verifier`).

mod exec;
mod files;
mod fleet;
mod processes;
mod respond;
mod sandbox;
mod verifier;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_core::fleet::{AuditDetails, AuditProcess};
use warden_core::fleet_api::{
    AckEvent, AckRequest, AgentActionType, AgentType, AuditUnenrollRequest, CheckinRequest, CheckinResponse, CheckinStatus, EnrollMetadata,
    EnrollRequest, EnrollResponse,
};
use warden_core::paths;
use warden_core::response_actions::{EndpointCapability, EndpointMetadata};

use crate::fleet::{AckOutcome, Fleet};
use crate::respond::{Responder, Settings};

/// A simulated Elastic Agent for Warden.
#[derive(Debug, Parser)]
#[command(name = "warden-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive webhooks: a SOC's endpoint for Warden's webhook connector (for
    /// demos), printing each request it gets and answering 200.
    Receive {
        /// Where to listen
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: std::net::SocketAddr,
    },
    /// Enroll with an enrollment token and save the agent's identity.
    ///
    /// The host keeps one machine id (reported as `local_metadata.host.id`)
    /// across enrollments. With --reenroll an enrolled host enrolls again:
    /// into the same Warden, Warden marks the old agent replaced by the new
    /// one (or, where the policy allows it, the agent keeps its id); into
    /// another, the old Warden is first told where the agent went
    /// (`audit/unenroll`, reason migrated, with the new URL).
    Enroll {
        /// Warden's URL, e.g. http://127.0.0.1:8080 (with its base path, if any)
        #[arg(long)]
        url: String,
        #[arg(long)]
        enrollment_token: String,
        /// Host name to report (default: this machine's)
        #[arg(long)]
        hostname: Option<String>,
        /// Tags, comma-separated
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        #[arg(long, default_value = "warden-agent.json")]
        state: PathBuf,
        /// Enroll again a host whose state file holds an agent
        #[arg(long)]
        reenroll: bool,
        /// The machine id to report (default: the state file's, else a new one)
        #[arg(long)]
        host_id: Option<String>,
        /// Who ran the command, for the final message to the old Fleet (default: $USER)
        #[arg(long)]
        user: Option<String>,
    },
    /// Check in until told to unenroll (or stopped), acknowledging actions
    /// and running Elastic Defend response actions on this host.
    ///
    /// Response actions touch only the sandbox folder: get-file, scan,
    /// upload, execute and runscript refuse any path outside it. execute runs
    /// an allow-listed program (no shell) in the sandbox with only PATH set;
    /// kill-process and suspend-process reach only processes this agent
    /// started (two `sleep 86400` decoys, and running execute/runscript
    /// children). Isolation is a state saved in the state file and reported at
    /// every check-in; the allow-list has no network tool, so it blocks
    /// nothing else.
    Run {
        /// The agent's identity (from `enroll`); isolation is saved here too
        #[arg(long, default_value = "warden-agent.json")]
        state: PathBuf,
        #[command(flatten)]
        respond: RespondArgs,
        /// Decoy children (`sleep 86400`) to start, so running-processes and kill-process have something to act on
        #[arg(long, default_value_t = 2)]
        decoys: usize,
        /// Pause between check-ins
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// How long Warden may hold each check-in
        #[arg(long, default_value = "5m")]
        poll_timeout: String,
        /// Health to report: online, degraded or error
        #[arg(long, default_value = "online")]
        status: String,
    },
    /// Send the final "uninstalled" message (best effort, bounded retries), then exit either way.
    ///
    /// The message says who ran the command and from which process (this
    /// one: its pid, name and command line), so an unexpected uninstall can
    /// be traced to an account.
    Uninstall {
        #[arg(long, default_value = "warden-agent.json")]
        state: PathBuf,
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// Who ran the command (default: $USER, or $USERNAME)
        #[arg(long)]
        user: Option<String>,
    },
    /// Report that the endpoint keeps running without its agent (Detached Endpoint).
    ///
    /// With --every it keeps reporting until stopped, as a detached Elastic
    /// Defend does: Warden answers each report after the first with Fleet
    /// Server's 409, and shows when the host was last heard from.
    Orphan {
        #[arg(long, default_value = "warden-agent.json")]
        state: PathBuf,
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// Report again at this interval until stopped, e.g. 30s
        #[arg(long, value_parser = humantime::parse_duration)]
        every: Option<Duration>,
    },
    /// Verify a cloud connector's permissions: what Warden runs for each verification.
    ///
    /// Reads one VerifierDeployment JSON document (warden_core::cloud_connectors)
    /// from stdin, at most 1 MiB, until stdin closes: fleet_url,
    /// enrollment_token, verification_id, connector_id, connector_name,
    /// provider, account_type, cloud_url, principal, proof, checks[]. Then:
    ///
    /// 1. enrolls with the one-time token as an EPHEMERAL agent, host name
    ///    verifier-<first 8 characters of verification_id>, tag "verifier"
    ///    (the identity stays in memory: no state file);
    ///
    /// 2. asks the cloud's policy simulator (POST <cloud_url>/iam/simulate-principal-policy,
    ///    as warden-cloud-emulator serves it) whether the principal, with the
    ///    proof as ExternalId, may perform each check's action: each distinct
    ///    action once, at most 100 a call, following Marker pages, --concurrency
    ///    calls at a time;
    ///
    /// 3. posts one record per check (granted, denied with the decision as
    ///    error_code, or error: AccessDenied on a 403, Timeout, the cloud's error
    ///    code, ...; method api_call, duration_ms) to
    ///    api/fleet/agents/<id>/verification_results with its agent API key, at
    ///    most 1000 records a request, retrying 429/502/503/504 and connection
    ///    errors.
    ///
    /// Prints one summary line on stdout and exits 0 once Warden took the
    /// whole report; otherwise exits 1 with the reason on stderr. Progress is
    /// logged on stderr; the principal and proof never are.
    Verifier {
        /// Each HTTP call's limit (to the cloud and to Warden)
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Calls to the cloud in flight at once
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Enroll and run many agents from one process.
    Swarm {
        #[arg(long)]
        url: String,
        #[arg(long)]
        enrollment_token: String,
        #[arg(long, default_value_t = 25)]
        count: usize,
        /// How many of them report `uninstall`. They and the `--orphaned` ones
        /// check in once, wait for each other, then all send their final
        /// message at once; the swarm prints how long Warden took to record them.
        #[arg(long, default_value_t = 0)]
        uninstalled: usize,
        /// How many report `orphaned`
        #[arg(long, default_value_t = 0)]
        orphaned: usize,
        /// How many check in once and then go silent
        #[arg(long, default_value_t = 0)]
        silent: usize,
        /// How many report degraded health
        #[arg(long, default_value_t = 0)]
        degraded: usize,
        #[arg(long, default_value = "5m")]
        poll_timeout: String,
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        interval: Duration,
        /// Stop after this long and print check-in figures (default: run until stopped)
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Concurrent enrollments
        #[arg(long, default_value_t = 64)]
        enroll_concurrency: usize,
        /// Keep the swarm's identities here and reuse them next time, instead of enrolling new agents
        #[arg(long)]
        state: Option<PathBuf>,
        /// Folder holding one sandbox subfolder per agent, created when an action first needs it
        /// (default: warden-agent-swarm in the system's temporary folder)
        #[arg(long)]
        sandbox: Option<PathBuf>,
        #[command(flatten)]
        capabilities: CapabilityArgs,
    },
}

/// The response-action flags of `run`.
#[derive(Debug, Args)]
struct RespondArgs {
    /// The folder response actions may touch (created if missing; default:
    /// `<state file stem>-sandbox` next to the state file)
    #[arg(long)]
    sandbox: Option<PathBuf>,
    #[command(flatten)]
    capabilities: CapabilityArgs,
}

/// Which response actions the agent says it supports.
#[derive(Debug, Args)]
struct CapabilityArgs {
    /// Capabilities to report, comma-separated (default: all): isolation, kill_process,
    /// suspend_process, running_processes, get_file, execute, upload_file, scan, runscript, cancel.
    /// An action whose capability is missing is answered "The agent does not support <command>".
    #[arg(long, value_delimiter = ',', value_parser = parse_capability)]
    capabilities: Option<Vec<EndpointCapability>>,
    /// Leave out `cancel` (an older agent)
    #[arg(long)]
    no_cancel: bool,
}

fn parse_capability(text: &str) -> Result<EndpointCapability, String> {
    EndpointCapability::parse(text.trim()).ok_or_else(|| {
        let names: Vec<&str> = EndpointCapability::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown capability `{text}`: use {}", names.join(", "))
    })
}

impl CapabilityArgs {
    fn list(&self) -> Vec<EndpointCapability> {
        let mut list = self.capabilities.clone().unwrap_or_else(|| EndpointCapability::ALL.to_vec());
        list.dedup();
        list.retain(|c| !(self.no_cancel && *c == EndpointCapability::Cancel));
        list
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Identity {
    url: String,
    agent_id: String,
    api_key: String,
    hostname: String,
    /// The machine's fingerprint, reported as `local_metadata.host.id`: a
    /// real host's machine id survives re-enrollment, so it is kept here and
    /// reused by `enroll --reenroll` (empty in state files from before).
    #[serde(default)]
    host_id: String,
    /// The secret this agent chose when it enrolled (Fleet Server's
    /// replace token): re-enrolling with it proves it is the same agent.
    #[serde(default)]
    replace_token: Option<String>,
    /// Isolated by a response action (kept across restarts).
    #[serde(default)]
    isolated: bool,
}

/// Who enrolls: the host, how it names itself, and what it runs.
struct Enrollment<'a> {
    hostname: &'a str,
    /// Empty: the agent reports no host fingerprint (a verifier, which is
    /// one of many short-lived agents on one machine).
    host_id: &'a str,
    replace_token: Option<&'a str>,
    tags: Vec<String>,
    agent_type: AgentType,
    /// What the agent says of Elastic Defend (a verifier: nothing, so no
    /// response action targets it).
    endpoint: &'a EndpointMetadata,
}

const VERSION: &str = "8.15.2";

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(20_000).timeout(Duration::from_secs(600)).build()?)
}

fn url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path)
}

async fn error_text(response: reqwest::Response) -> String {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    format!("{status}: {body}")
}

/// Enrolls with an enrollment token.
async fn enroll(client: &reqwest::Client, base: &str, token: &str, who: Enrollment<'_>) -> anyhow::Result<Identity> {
    let request = EnrollRequest {
        agent_type: who.agent_type,
        enrollment_id: None,
        shared_id: None,
        replace_token: who.replace_token.map(str::to_owned),
        metadata: EnrollMetadata { local: local_metadata(who.hostname, who.host_id, who.endpoint), user_provided: json!({}), tags: who.tags },
    };
    let response = client
        .post(url(base, paths::AGENT_ENROLL))
        .header("Authorization", format!("ApiKey {token}"))
        .header("User-Agent", format!("elastic agent {VERSION}"))
        .json(&request)
        .send()
        .await
        .context("enrolling")?;
    if !response.status().is_success() {
        bail!("enroll refused: {}", error_text(response).await);
    }
    let body: EnrollResponse = response.json().await?;
    Ok(Identity {
        url: base.to_owned(),
        agent_id: body.item.id.into_string(),
        api_key: body.item.access_api_key,
        hostname: who.hostname.to_owned(),
        host_id: who.host_id.to_owned(),
        replace_token: who.replace_token.map(str::to_owned),
        isolated: false,
    })
}

/// A random machine id or replace token.
fn new_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Elastic Defend with every capability, not isolated: what `enroll` and
/// `swarm` agents report when they enroll.
fn defend_endpoint() -> EndpointMetadata {
    EndpointMetadata { capabilities: EndpointCapability::ALL.iter().map(|c| c.as_str().to_owned()).collect(), isolated: false }
}

/// What the agent says of its host, at enrollment and at every check-in;
/// `endpoint` is Elastic Defend's part (capabilities, isolation).
fn local_metadata(hostname: &str, host_id: &str, endpoint: &EndpointMetadata) -> Value {
    let host = if host_id.is_empty() {
        json!({"hostname": hostname, "name": hostname})
    } else {
        json!({"hostname": hostname, "name": hostname, "id": host_id})
    };
    json!({
        "host": host,
        "os": {"name": std::env::consts::OS, "platform": std::env::consts::OS},
        "elastic": {"agent": {"version": VERSION, "snapshot": false}},
        "endpoint": endpoint,
    })
}

/// One check-in; returns the actions it received.
async fn checkin(
    client: &reqwest::Client,
    id: &Identity,
    status: &str,
    poll_timeout: &str,
    metadata: Option<Value>,
) -> anyhow::Result<CheckinResponse> {
    let reported = CheckinStatus::parse(status).ok_or_else(|| anyhow::anyhow!("unknown health `{status}`: use online, degraded or error"))?;
    let request = CheckinRequest {
        status: reported,
        message: if status == "online" { "Running".into() } else { format!("Reporting {status}") },
        poll_timeout: Some(poll_timeout.to_owned()),
        local_metadata: metadata,
        ..CheckinRequest::default()
    };
    let response = client
        .post(url(&id.url, &paths::agent_checkin(&id.agent_id)))
        .header("Authorization", format!("ApiKey {}", id.api_key))
        .json(&request)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("check-in refused: {}", error_text(response).await);
    }
    Ok(response.json().await?)
}

async fn ack(client: &reqwest::Client, id: &Identity, action_ids: &[String]) -> anyhow::Result<()> {
    let events = action_ids
        .iter()
        .map(|action_id| AckEvent {
            action_id: action_id.clone().into(),
            agent_id: Some(id.agent_id.clone()),
            event_type: Some("ACTION_RESULT".into()),
            subtype: Some("ACKNOWLEDGED".into()),
            timestamp: None,
            message: None,
            error: None,
            action_input_type: None,
            action_response: None,
        })
        .collect();
    let response = client
        .post(url(&id.url, &paths::agent_acks(&id.agent_id)))
        .header("Authorization", format!("ApiKey {}", id.api_key))
        .json(&AckRequest { events })
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("ack refused: {}", error_text(response).await);
    }
    Ok(())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// What the final message says of the command that sent it: this process,
/// run by `user`.
fn audit_details(user: Option<String>) -> AuditDetails {
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    AuditDetails {
        user: user.or_else(|| std::env::var("USER").ok()).or_else(|| std::env::var("USERNAME").ok()),
        process: Some(AuditProcess { pid: std::process::id(), name: "warden-agent".to_owned(), command_line: Some(command_line) }),
        new_fleet_url: None,
    }
}

/// How the final message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audited {
    Recorded,
    /// 409: Warden already had a final message (for an orphaned endpoint's
    /// repeat: it was heard from).
    AlreadyRecorded,
    NotDelivered,
}

/// The final message: best effort, `retries` more tries with doubling backoff.
async fn audit(client: &reqwest::Client, id: &Identity, reason: &str, details: &AuditDetails, retries: u32) -> Audited {
    let mut backoff = Duration::from_millis(250);
    for attempt in 0..=retries {
        let result = client
            .post(url(&id.url, &paths::agent_audit_unenroll(&id.agent_id)))
            .header("Authorization", format!("ApiKey {}", id.api_key))
            .json(&AuditUnenrollRequest::new(reason, now_rfc3339(), details.clone()))
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                tracing::info!(agent_id = %id.agent_id, reason, "Warden recorded the final message");
                return Audited::Recorded;
            }
            // 409: already recorded; retrying cannot help.
            Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                tracing::debug!(agent_id = %id.agent_id, "Warden already has a final message for this agent");
                return Audited::AlreadyRecorded;
            }
            Ok(r) => {
                let status = r.status();
                tracing::warn!(attempt, %status, "final message refused: {}", error_text(r).await);
            }
            Err(err) => tracing::warn!(attempt, error = %err, "final message not delivered"),
        }
        if attempt < retries {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::warn!(agent_id = %id.agent_id, "giving up on the final message; exiting anyway");
    Audited::NotDelivered
}

/// The agent's connection to Fleet Server for response actions.
fn fleet_of(client: &reqwest::Client, id: &Identity) -> Fleet {
    Fleet { http: client.clone(), url: id.url.clone(), agent_id: id.agent_id.clone(), api_key: id.api_key.clone() }
}

/// A responder for `id`, with its acks delivered by a task of its own.
fn start_responder(client: &reqwest::Client, id: &Identity, settings: Settings, stats: Option<Arc<Stats>>) -> Arc<Responder> {
    let fleet = fleet_of(client, id);
    let (responder, acks) = Responder::new(fleet.clone(), settings);
    let weak = Arc::downgrade(&responder);
    tokio::spawn(respond::deliver_acks(fleet, weak, acks, move |outcome| {
        if let Some(stats) = &stats
            && *outcome == AckOutcome::Recorded
        {
            stats.actions_acked.fetch_add(1, Ordering::Relaxed);
            stats.last_action_ack_ms.fetch_max(epoch_ms(), Ordering::Relaxed);
        }
    }));
    responder
}

/// Checks in until an UNENROLL action arrives (acked, then stop) or the key
/// is refused. Elastic Defend actions go to `responder`, which runs them
/// while the check-ins go on; other actions are acked at once.
#[allow(clippy::too_many_arguments)]
async fn run_agent(
    client: reqwest::Client,
    id: Identity,
    status: String,
    poll_timeout: String,
    interval: Duration,
    stats: Option<Arc<Stats>>,
    until: Option<Instant>,
    responder: Arc<Responder>,
) {
    loop {
        if until.is_some_and(|u| Instant::now() >= u) {
            return;
        }
        let started = Instant::now();
        let metadata = local_metadata(&id.hostname, &id.host_id, &responder.endpoint_metadata());
        match checkin(&client, &id, &status, &poll_timeout, Some(metadata)).await {
            Ok(response) => {
                // Delivery is when the answer arrived, not when the ack finished.
                let received_ms = epoch_ms();
                if let Some(stats) = &stats {
                    stats.record(started.elapsed());
                }
                let (endpoint, others): (Vec<_>, Vec<_>) =
                    response.actions.into_iter().partition(|a| a.action_type == AgentActionType::InputAction && a.input_type == "endpoint");
                if !endpoint.is_empty() {
                    responder.handle(endpoint);
                }
                let response = CheckinResponse { actions: others, ..response };
                let ids: Vec<String> = response.actions.iter().map(|a| a.id.to_string()).collect();
                let unenroll = response.actions.iter().any(|a| a.action_type == AgentActionType::Unenroll);
                if !ids.is_empty()
                    && let Err(err) = ack(&client, &id, &ids).await
                {
                    tracing::warn!(agent_id = %id.agent_id, error = %err, "ack failed");
                }
                if unenroll {
                    if let Some(stats) = &stats {
                        stats.unenrolled.fetch_add(1, Ordering::Relaxed);
                        stats.last_unenroll_ms.fetch_max(received_ms, Ordering::Relaxed);
                        stats.last_ack_ms.fetch_max(epoch_ms(), Ordering::Relaxed);
                    }
                    tracing::info!(agent_id = %id.agent_id, "unenrolled by Fleet; stopping");
                    return;
                }
            }
            Err(err) => {
                if let Some(stats) = &stats {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(agent_id = %id.agent_id, error = %err, "check-in failed");
                if err.to_string().contains("401") {
                    return;
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Check-in latencies, for load figures.
#[derive(Default)]
struct Stats {
    latencies_us: std::sync::Mutex<Vec<u64>>,
    errors: AtomicU64,
    unenrolled: AtomicU64,
    last_unenroll_ms: AtomicU64,
    /// When the last of those agents had its ack answered (Warden recorded the unenroll).
    last_ack_ms: AtomicU64,
    /// Response actions whose result Warden recorded, and when the last was.
    actions_acked: AtomicU64,
    last_action_ack_ms: AtomicU64,
}

/// The swarm's final messages, sent all at once (reference 003's scale
/// test of audit/unenroll): each agent waits at the barrier after its one
/// check-in, so the messages leave together.
struct FinalMessages {
    ready: tokio::sync::Barrier,
    latencies_us: std::sync::Mutex<Vec<u64>>,
    not_recorded: AtomicU64,
    started: std::sync::OnceLock<Instant>,
    last_done: std::sync::Mutex<Option<Instant>>,
}

impl FinalMessages {
    fn new(senders: usize) -> FinalMessages {
        FinalMessages {
            ready: tokio::sync::Barrier::new(senders.max(1)),
            latencies_us: std::sync::Mutex::default(),
            not_recorded: AtomicU64::new(0),
            started: std::sync::OnceLock::new(),
            last_done: std::sync::Mutex::default(),
        }
    }

    async fn send(&self, http: &reqwest::Client, id: &Identity, reason: &str) {
        self.ready.wait().await;
        let sent = Instant::now();
        self.started.get_or_init(|| sent);
        // No retries: a refusal is counted, not hidden.
        if audit(http, id, reason, &audit_details(None), 0).await != Audited::Recorded {
            self.not_recorded.fetch_add(1, Ordering::Relaxed);
        }
        let done = Instant::now();
        if let Ok(mut l) = self.latencies_us.lock() {
            l.push(done.duration_since(sent).as_micros() as u64);
        }
        if let Ok(mut last) = self.last_done.lock() {
            *last = Some(last.map_or(done, |t| t.max(done)));
        }
    }

    fn report(&self) -> String {
        let mut l = self.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
        l.sort_unstable();
        let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0;
        let span = match (self.started.get(), self.last_done.lock().ok().and_then(|t| *t)) {
            (Some(start), Some(end)) => end.duration_since(*start).as_secs_f64(),
            _ => 0.0,
        };
        format!(
            "final messages: {} sent at once, all answered in {span:.2} s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; not recorded {}",
            l.len(),
            pct(0.50),
            pct(0.99),
            l.last().copied().unwrap_or(0) as f64 / 1000.0,
            self.not_recorded.load(Ordering::Relaxed)
        )
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Stats {
    fn record(&self, elapsed: Duration) {
        if let Ok(mut l) = self.latencies_us.lock() {
            l.push(elapsed.as_micros() as u64);
        }
    }

    fn report(&self, over: Duration) -> String {
        let mut l = self.latencies_us.lock().map(|l| l.clone()).unwrap_or_default();
        l.sort_unstable();
        let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0;
        format!(
            "check-ins: {} in {:.1} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; errors {}",
            l.len(),
            over.as_secs_f64(),
            l.len() as f64 / over.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            l.last().copied().unwrap_or(0) as f64 / 1000.0,
            self.errors.load(Ordering::Relaxed)
        )
    }
}

fn load(path: &PathBuf) -> anyhow::Result<Identity> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {} (run `warden-agent enroll` first)", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// `<state file stem>-sandbox`, next to the state file.
fn default_sandbox(state: &Path) -> PathBuf {
    let stem = state.file_stem().map_or_else(|| "warden-agent".into(), |s| s.to_string_lossy().into_owned());
    state.with_file_name(format!("{stem}-sandbox"))
}

fn local_hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "warden-agent".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: Warden keeps a verifier's stderr in its logs.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let http = client()?;
    match cli.command {
        Command::Receive { listen } => receive(listen).await?,
        Command::Enroll { url, enrollment_token, hostname, tags, state, reenroll, host_id, user } => {
            let previous = if state.exists() { Some(load(&state)?) } else { None };
            match (&previous, reenroll) {
                (Some(old), false) => {
                    bail!("this host is already enrolled as agent {} ({}): pass --reenroll to enroll it again", old.agent_id, state.display())
                }
                (None, true) => bail!("--reenroll: no agent is enrolled in {}", state.display()),
                _ => {}
            }
            // Reference 003, point 3: enrolling into another Fleet first tells the old one where the agent went.
            if let Some(old) = previous.as_ref().filter(|old| old.url.trim_end_matches('/') != url.trim_end_matches('/')) {
                let details = AuditDetails { new_fleet_url: Some(url.clone()), ..audit_details(user) };
                let told = match audit(&http, old, "migrated", &details, 3).await {
                    Audited::Recorded => "told",
                    Audited::AlreadyRecorded => "already had a final message",
                    Audited::NotDelivered => "could not be told",
                };
                println!("the previous Fleet ({}) {told} that agent {} moved here", old.url, old.agent_id);
            }
            let hostname = hostname.or_else(|| previous.as_ref().map(|old| old.hostname.clone())).unwrap_or_else(local_hostname);
            let host_id = host_id.or_else(|| previous.as_ref().map(|old| old.host_id.clone()).filter(|id| !id.is_empty())).unwrap_or_else(new_secret);
            let replace_token = previous.as_ref().and_then(|old| old.replace_token.clone()).unwrap_or_else(new_secret);
            let who = Enrollment {
                hostname: &hostname,
                host_id: &host_id,
                replace_token: Some(&replace_token),
                tags,
                agent_type: AgentType::Permanent,
                endpoint: &defend_endpoint(),
            };
            let id = enroll(&http, &url, &enrollment_token, who).await?;
            std::fs::write(&state, serde_json::to_string_pretty(&id)?)?;
            let how = match &previous {
                Some(old) if old.agent_id == id.agent_id => " again, keeping its id".to_owned(),
                Some(old) if old.url == id.url => format!(", replacing agent {}", old.agent_id),
                Some(old) => format!(" (it was agent {} at {})", old.agent_id, old.url),
                None => String::new(),
            };
            println!("enrolled as agent {}{how} (identity saved in {})", id.agent_id, state.display());
        }
        Command::Run { state, respond, decoys, interval, poll_timeout, status } => {
            let id = load(&state)?;
            let settings = Settings {
                capabilities: respond.capabilities.list(),
                sandbox: respond.sandbox.unwrap_or_else(|| default_sandbox(&state)),
                state_file: Some(state.clone()),
                isolated: id.isolated,
            };
            let responder = start_responder(&http, &id, settings, None);
            let root = responder.sandbox().root().map_err(anyhow::Error::msg)?.to_path_buf();
            for _ in 0..decoys {
                responder.processes().spawn_decoy().context("starting a decoy process")?;
            }
            tracing::info!(agent_id = %id.agent_id, sandbox = %root.display(), isolated = id.isolated, "running");
            // Stopping returns from main, and the runtime's end kills the
            // decoys and any running child (kill_on_drop).
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                () = run_agent(http, id, status, poll_timeout, interval, None, None, responder) => {}
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
                _ = terminate.recv() => tracing::info!("terminated; stopping"),
            }
        }
        Command::Verifier { timeout, concurrency } => {
            let verified = async {
                let deployment = verifier::read_deployment(tokio::io::stdin()).await?;
                verifier::run(deployment, verifier::Options { timeout, concurrency }).await
            };
            match verified.await {
                Ok(summary) => println!("{summary}"),
                // One line for Warden's log, whatever RUST_BACKTRACE says.
                Err(error) => {
                    eprintln!("warden-agent verifier: {error:#}");
                    std::process::exit(1);
                }
            }
        }
        Command::Uninstall { state, retries, user } => {
            let id = load(&state)?;
            let details = audit_details(user);
            let told = match audit(&http, &id, "uninstall", &details, retries).await {
                Audited::Recorded => "was told",
                Audited::AlreadyRecorded => "already had a final message",
                Audited::NotDelivered => "could not be told",
            };
            let _ = std::fs::remove_file(&state);
            println!("uninstalled by {}; Warden {told}", details.user.as_deref().unwrap_or("an unknown user"));
        }
        Command::Orphan { state, retries, every } => {
            let id = load(&state)?;
            let details = audit_details(None);
            loop {
                let said = match audit(&http, &id, "orphaned", &details, retries).await {
                    Audited::Recorded => "recorded",
                    Audited::AlreadyRecorded => "heard (already recorded)",
                    Audited::NotDelivered => "not delivered",
                };
                println!("reported the endpoint as orphaned: {said}");
                let Some(every) = every else { break };
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
        Command::Swarm {
            url,
            enrollment_token,
            count,
            uninstalled,
            orphaned,
            silent,
            degraded,
            poll_timeout,
            interval,
            duration,
            enroll_concurrency,
            state,
            sandbox,
            capabilities,
        } => {
            let sandboxes = sandbox.unwrap_or_else(|| std::env::temp_dir().join("warden-agent-swarm"));
            let capabilities = capabilities.list();
            if uninstalled + orphaned + silent + degraded > count {
                bail!("--uninstalled, --orphaned, --silent and --degraded add up to more than --count");
            }
            let saved: Vec<Identity> = state
                .as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .and_then(|text| serde_json::from_str(&text).ok())
                .filter(|ids: &Vec<Identity>| ids.len() == count && ids.iter().all(|id| id.url == url))
                .unwrap_or_default();
            let started = Instant::now();
            let semaphore = Arc::new(tokio::sync::Semaphore::new(enroll_concurrency.max(1)));
            let mut enrolling = tokio::task::JoinSet::new();
            for i in (0..count).filter(|_| saved.is_empty()) {
                let (http, url, token, semaphore) = (http.clone(), url.clone(), enrollment_token.clone(), semaphore.clone());
                enrolling.spawn(async move {
                    let _permit = semaphore.acquire().await;
                    let tags = vec![if i % 3 == 0 { "servers" } else { "laptops" }.to_owned(), "simulated".to_owned()];
                    let (hostname, host_id, replace_token) = (format!("host-{i:05}"), new_secret(), new_secret());
                    let who = Enrollment {
                        hostname: &hostname,
                        host_id: &host_id,
                        replace_token: Some(&replace_token),
                        tags,
                        agent_type: AgentType::Permanent,
                        endpoint: &defend_endpoint(),
                    };
                    enroll(&http, &url, &token, who).await.map(|id| (i, id))
                });
            }
            let mut agents: Vec<(usize, Identity)> = saved.into_iter().enumerate().collect();
            if agents.is_empty() {
                while let Some(result) = enrolling.join_next().await {
                    agents.push(result??);
                }
                agents.sort_by_key(|(i, _)| *i);
                println!("enrolled {count} agents in {:.1} s", started.elapsed().as_secs_f64());
                if let Some(path) = &state {
                    let ids: Vec<&Identity> = agents.iter().map(|(_, id)| id).collect();
                    std::fs::write(path, serde_json::to_string(&ids)?)?;
                }
            } else {
                println!("reusing {count} agents from {}", state.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
            }

            let stats = Arc::new(Stats::default());
            let final_messages = Arc::new(FinalMessages::new(uninstalled + orphaned));
            let until = duration.map(|d| Instant::now() + d);
            let mut running = tokio::task::JoinSet::new();
            for (i, id) in agents {
                let (http, poll_timeout, stats, final_messages) = (http.clone(), poll_timeout.clone(), stats.clone(), final_messages.clone());
                // In memory only: the swarm's state file is shared by all its agents.
                let settings =
                    Settings { capabilities: capabilities.clone(), sandbox: sandboxes.join(&id.agent_id), state_file: None, isolated: id.isolated };
                running.spawn(async move {
                    if i < uninstalled + orphaned + silent {
                        // One check-in so the host is known, then its fate.
                        let _ = checkin(&http, &id, "online", "0s", None).await;
                        if i < uninstalled + orphaned {
                            let reason = if i < uninstalled { "uninstall" } else { "orphaned" };
                            final_messages.send(&http, &id, reason).await;
                        }
                        return;
                    }
                    let status = if i < uninstalled + orphaned + silent + degraded { "degraded" } else { "online" };
                    // Spread the first check-ins over one interval, as real agents
                    // are spread by when they booted: not a herd every interval.
                    tokio::time::sleep(interval.mul_f64(i as f64 / count.max(1) as f64)).await;
                    let responder = start_responder(&http, &id, settings, Some(stats.clone()));
                    run_agent(http, id, status.into(), poll_timeout, interval, Some(stats), until, responder).await;
                });
            }
            let run_started = Instant::now();
            while running.join_next().await.is_some() {}
            if uninstalled + orphaned > 0 {
                println!("{}", final_messages.report());
            }
            if duration.is_some() {
                println!("{}", stats.report(run_started.elapsed()));
            }
            let unenrolled = stats.unenrolled.load(Ordering::Relaxed);
            let actions_acked = stats.actions_acked.load(Ordering::Relaxed);
            if actions_acked > 0 {
                println!(
                    "response actions acknowledged: {actions_acked}; the last ack was answered at {} (epoch ms)",
                    stats.last_action_ack_ms.load(Ordering::Relaxed)
                );
            }
            if unenrolled > 0 {
                println!(
                    "unenrolled by Fleet: {unenrolled} agents; the last received its UNENROLL at {} (epoch ms); the last ack was answered at {} (epoch ms)",
                    stats.last_unenroll_ms.load(Ordering::Relaxed),
                    stats.last_ack_ms.load(Ordering::Relaxed)
                );
            }
        }
    }
    Ok(())
}

/// Prints every request (when, in Unix milliseconds; method, path, body) on one line and answers
/// `{"received": n}`: enough for the demo's webhook connector to have a real
/// destination whose calls a user can watch.
async fn receive(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let count = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
        let count = count.clone();
        async move {
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            let at_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            println!("webhook #{n} at {at_ms}: {method} {uri} {body}");
            axum::Json(json!({ "received": n }))
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    println!("receiving webhooks on http://{listen}/");
    axum::serve(listener, app).await?;
    Ok(())
}

//! The `fleet:verify_permissions` task and the verifier it deploys.
//!
//! One run: (1) cleanup: verifier policies past their expiry are removed and
//! their verification fails ("did not report"); (2) gate: while a verifier
//! policy exists, nothing else starts (a unique index makes that hold across
//! nodes); (3) pre-filter: the connectors some package policy uses, with
//! their enabled templates; (4) verify the first eligible connector: one
//! transaction creates the verifier agent policy, its `verifier_otel` package
//! policy, a single-use enrollment key and the verification's plan, and
//! stamps the connector; then Warden starts `warden-agent verifier`, which
//! enrolls through Fleet's API, checks each permission against the cloud and
//! reports. If any step fails, nothing it created remains and the connector
//! is marked failed with the reason (Kibana leaks the agent policy until the
//! TTL sweep). When every result has arrived the verification rolls up to
//! success or failed and the verifier policy is removed at once.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use warden_core::cloud_connectors::{
    AccountType, MAX_RECORDS, PermissionCheck, VERIFICATION_TTL_MS, VERIFIER_PACKAGE, VerificationReport, VerificationStatus, VerifierDeployment,
    enabled_templates, pick, plan_checks, roll_up,
};
use warden_core::events::Event;

use super::{CloudError, Result, facts, provider_of, unseal, windows};
use crate::AppState;
use crate::db::now_ms;
use crate::store::cloud_connectors::{self as store, ConnectorRow, PackagePolicyRow, PermissionRow, VerificationRow};
use crate::store::fleet::{self as fleet_store, AgentRow, EnrollmentKeyRow};
use crate::tasks::{RunOutput, TaskDefinition};

/// Kibana's task type (and, as a recurring task, its id).
pub const TASK_TYPE: &str = "fleet:verify_permissions";
/// Finished verifications kept per connector: the last (shown) and the one
/// before it (what the rule compares with).
const KEPT_VERIFICATIONS: usize = 2;

pub fn definition(state: &AppState) -> TaskDefinition {
    let task_state = state.clone();
    let mut definition = TaskDefinition::new(TASK_TYPE, "Cloud connector permission verifier", move |_ctx| {
        let state = task_state.clone();
        async move {
            let summary = run(&state, &NoFaults).await.map_err(|err| anyhow::anyhow!(err.to_string()))?;
            Ok(RunOutput { state: None, summary: Some(summary) })
        }
    });
    definition.every = Some(state.config.verify_permissions_interval);
    definition.timeout = Duration::from_secs(300);
    definition
}

/// The steps of starting a verification, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    AgentPolicy,
    PackagePolicy,
    EnrollmentKey,
    Plan,
    Stamp,
    Deploy,
}

impl Step {
    pub const ALL: [Step; 6] = [Step::AgentPolicy, Step::PackagePolicy, Step::EnrollmentKey, Step::Plan, Step::Stamp, Step::Deploy];
}

/// Where a test makes a step fail; the task passes [`NoFaults`].
pub trait Faults: Send + Sync {
    fn after(&self, step: Step) -> anyhow::Result<()>;
}

pub struct NoFaults;

impl Faults for NoFaults {
    fn after(&self, _step: Step) -> anyhow::Result<()> {
        Ok(())
    }
}

/// One run of the task; returns its summary line.
pub async fn run(state: &AppState, faults: &dyn Faults) -> Result<String> {
    if !state.config.enable_otel_verifier {
        return Ok("the permission verifier is off (enable_otel_verifier)".into());
    }
    let now = now_ms();
    // 1. Cleanup.
    let mut expired = 0;
    let mut active = Vec::new();
    for policy in store::verifier_policies(&state.db).await? {
        let expires_at = policy.expires_at.unwrap_or(policy.created_at.saturating_add(VERIFICATION_TTL_MS));
        if expires_at <= now {
            expire(state, &policy.id, None).await?;
            expired += 1;
        } else {
            active.push(policy);
        }
    }
    let cleaned = if expired > 0 { format!("{expired} expired verifier policies removed; ") } else { String::new() };
    // 2. Gate: one verification at a time.
    if let Some(policy) = active.first() {
        return Ok(format!("{cleaned}verification in flight (verifier policy {}); nothing started", policy.id));
    }
    // 3. Pre-filter: connector → its package policies' enabled templates.
    let mut templates: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for policy in store::package_policies_with_connector(&state.db).await? {
        let inputs: Vec<warden_core::cloud_connectors::PackagePolicyInput> = serde_json::from_str(&policy.inputs).unwrap_or_default();
        let Some(connector) = policy.cloud_connector_id.clone() else { continue };
        if policy.enabled == 0 {
            continue;
        }
        for template in enabled_templates(&inputs) {
            templates.entry(connector.clone()).or_default().push((policy.id.clone(), policy.package_name.clone(), template));
        }
    }
    let connectors: Vec<ConnectorRow> = store::connectors_in_use(&state.db).await?.into_iter().filter(|c| templates.contains_key(&c.id)).collect();
    // 4. Verify the first eligible one.
    let Some((connector, why)) = pick(connectors.iter().map(|c| (c, facts(c))), now, windows(state)) else {
        return Ok(format!("{cleaned}{} connectors in use, none due", connectors.len()));
    };
    let plan = templates.remove(&connector.id).unwrap_or_default();
    match start(state, connector, &plan, faults).await {
        Ok(Started::Deployed { verification_id }) => {
            Ok(format!("{cleaned}verifying \"{}\" ({}): verification {verification_id}", connector.name, why.label()))
        }
        Ok(Started::GateClosed) => Ok(format!("{cleaned}another node started a verification; nothing started")),
        Err(reason) => Ok(format!("{cleaned}verification of \"{}\" failed to start: {reason}", connector.name)),
    }
}

enum Started {
    Deployed { verification_id: String },
    GateClosed,
}

/// Starts one verification: everything or nothing. Returns the failure's
/// reason (already written to the connector) as the error.
async fn start(
    state: &AppState,
    connector: &ConnectorRow,
    templates: &[(String, String, String)],
    faults: &dyn Faults,
) -> std::result::Result<Started, String> {
    let prepared = match prepare(state, connector, templates, faults).await {
        Ok(Some(prepared)) => prepared,
        Ok(None) => return Ok(Started::GateClosed),
        Err(err) => {
            let reason = format!("Could not start the verification: {err}");
            fail_connector(state, &connector.id, &reason).await;
            return Err(reason);
        }
    };
    let deployed = faults.after(Step::Deploy).map_err(|e| e.to_string()).and(Ok(()));
    let deployed = match deployed {
        Ok(()) => deploy(state, &prepared.policy_id, &prepared.deployment).await.map_err(|err| format!("{err:#}")),
        Err(err) => Err(err),
    };
    match deployed {
        Ok(()) => Ok(Started::Deployed { verification_id: prepared.deployment.verification_id }),
        Err(err) => {
            let reason = format!("Could not deploy the verifier: {err}");
            if let Err(cleanup) = remove_failed(state, &prepared.policy_id, &prepared.deployment.verification_id, &connector.id, &reason).await {
                // The TTL sweep removes it at the next run.
                tracing::error!(error = %cleanup, policy = %prepared.policy_id, "could not remove a verifier policy whose deploy failed");
            }
            Err(reason)
        }
    }
}

struct Prepared {
    policy_id: String,
    deployment: VerifierDeployment,
}

/// Steps 1–5 in one transaction. `None`: another verifier policy exists
/// (the gate, held by the unique index).
async fn prepare(
    state: &AppState,
    connector: &ConnectorRow,
    templates: &[(String, String, String)],
    faults: &dyn Faults,
) -> anyhow::Result<Option<Prepared>> {
    let provider = provider_of(connector).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let checks = plan_checks(provider, templates);
    anyhow::ensure!(!checks.is_empty(), "no enabled policy template Warden can verify");
    let text: BTreeMap<String, String> = serde_json::from_str(&connector.vars).unwrap_or_default();
    let secrets = unseal(state, connector).map_err(|e| anyhow::anyhow!("the connector's secrets cannot be read: {e}"))?;
    let var = |name: &str| text.get(name).or_else(|| secrets.get(name)).cloned();
    let principal = var(provider.principal_var()).ok_or_else(|| anyhow::anyhow!("the connector has no {}", provider.principal_var()))?;
    let proof = var(provider.proof_var()).ok_or_else(|| anyhow::anyhow!("the connector has no {}", provider.proof_var()))?;
    let cloud_url = state.config.verifier_cloud_url.trim_end_matches('/').to_owned();
    anyhow::ensure!(!cloud_url.is_empty(), "verifier_cloud_url is not set: the verifier has no cloud API to ask");

    let now = now_ms();
    let expires_at = now.saturating_add(VERIFICATION_TTL_MS);
    let short = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let policy_id = uuid::Uuid::new_v4().to_string();
    let verification_id = uuid::Uuid::new_v4().to_string();
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let inserted = store::insert_verifier_policy(
        &mut *tx,
        &policy_id,
        &format!("Verifier-Agent-Policy-{}-{short}", connector.name),
        &format!("OTel permission verifier for cloud connector {}", connector.id),
        &connector.id,
        3600,
        now,
        expires_at,
    )
    .await;
    match inserted {
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(None),
        other => other?,
    }
    faults.after(Step::AgentPolicy)?;
    let template_names: Vec<&str> = templates.iter().map(|(_, _, t)| t.as_str()).collect();
    let stream_vars = json!({
        "identity_federation_id": connector.id,
        "identity_federation_name": connector.name,
        "verification_id": verification_id,
        "verification_type": "scheduled",
        "provider": provider.as_str(),
        "account_type": connector.account_type,
        "policy_id": policy_id,
        "policy_templates": template_names,
        "package_name": provider.as_str(),
    });
    let inputs = json!([{
        "type": "otelcol",
        "policy_template": "verifierreceiver",
        "enabled": true,
        "streams": [{"data_stream": {"type": "logs", "dataset": "verifier_otel.verifierreceiver"}, "vars": stream_vars}],
    }]);
    store::insert_package_policy(
        &mut *tx,
        &PackagePolicyRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("verifier-{}-{short}", connector.name),
            description: None,
            namespace: "default".into(),
            policy_id: policy_id.clone(),
            package_name: VERIFIER_PACKAGE.into(),
            package_title: Some("Permission Verifier".into()),
            package_version: env!("CARGO_PKG_VERSION").into(),
            inputs: inputs.to_string(),
            enabled: 1,
            cloud_connector_id: Some(connector.id.clone()),
            revision: 1,
            created_at: now,
            created_by: "warden".into(),
            updated_at: now,
            updated_by: "warden".into(),
        },
    )
    .await?;
    faults.after(Step::PackagePolicy)?;
    let credentials = crate::api_keys::Credentials::generate();
    let key = EnrollmentKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: Some(format!("verifier {verification_id}")),
        api_key_id: credentials.id.clone(),
        api_key: credentials.encoded(),
        secret_hash: crate::auth::sha256_hex(credentials.secret.as_bytes()),
        policy_id: policy_id.clone(),
        active: 1,
        created_at: now,
        expires_at: Some(expires_at),
    };
    fleet_store::insert_enrollment_key(&mut *tx, &key).await?;
    store::make_single_use(&mut *tx, &key.id).await?;
    faults.after(Step::EnrollmentKey)?;
    store::insert_verification(
        &mut *tx,
        &VerificationRow {
            id: verification_id.clone(),
            connector_id: connector.id.clone(),
            agent_policy_id: Some(policy_id.clone()),
            checks: serde_json::to_string(&checks)?,
            started_at: now,
            finished_at: None,
            status: None,
            reason: None,
        },
    )
    .await?;
    faults.after(Step::Plan)?;
    store::mark_started(&mut *tx, &connector.id, now).await?;
    faults.after(Step::Stamp)?;
    tx.commit().await?;
    state.events.publish(Event::cloud_connector_changed(&connector.id));
    tracing::info!(connector = %connector.id, verification = %verification_id, policy = %policy_id, checks = checks.len(), "verification started");
    Ok(Some(Prepared {
        policy_id,
        deployment: VerifierDeployment {
            fleet_url: state.fleet_url.clone(),
            enrollment_token: key.api_key,
            verification_id,
            connector_id: connector.id.clone(),
            connector_name: connector.name.clone(),
            provider,
            account_type: AccountType::parse(&connector.account_type).unwrap_or(AccountType::SingleAccount),
            cloud_url,
            principal,
            proof,
            checks,
        },
    }))
}

/// Warden's agentless deployment: starts `warden-agent verifier` with the
/// deployment on its standard input. Its output goes to Warden's log; it is
/// stopped if it outlives the verification.
async fn deploy(state: &AppState, policy_id: &str, deployment: &VerifierDeployment) -> anyhow::Result<()> {
    let program = verifier_program(state);
    let mut child = tokio::process::Command::new(&program)
        .arg("verifier")
        // Each call's limit: retries must fit well inside the verification's TTL.
        .args(["--timeout", "20s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| anyhow::anyhow!("could not start {}: {err}", program.display()))?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("the verifier has no standard input"))?;
    stdin.write_all(&serde_json::to_vec(deployment)?).await?;
    stdin.shutdown().await?;
    drop(stdin);
    let verification = deployment.verification_id.clone();
    for stream in
        [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>), child.stderr.take().map(|s| Box::new(s) as _)]
            .into_iter()
            .flatten()
    {
        let verification = verification.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(verification = %verification, "verifier: {line}");
            }
        });
    }
    let lifetime = Duration::from_millis(u64::try_from(VERIFICATION_TTL_MS).unwrap_or(u64::MAX));
    let (state, policy_id) = (state.clone(), policy_id.to_owned());
    tokio::spawn(async move {
        let ended = match tokio::time::timeout(lifetime, child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                tracing::info!(verification = %verification, "verifier exited");
                format!("The verifier exited ({status}) before reporting every result")
            }
            Ok(Ok(status)) => {
                tracing::warn!(verification = %verification, %status, "verifier failed");
                format!("The verifier failed ({status}) before reporting every result; its log is Warden's")
            }
            Ok(Err(err)) => {
                tracing::warn!(verification = %verification, error = %err, "verifier could not be waited on");
                format!("The verifier could not be waited on: {err}")
            }
            Err(_) => {
                tracing::warn!(verification = %verification, "verifier outlived its verification; stopping it");
                let _ = child.kill().await;
                format!("The verifier did not report within {} minutes", VERIFICATION_TTL_MS / 60_000)
            }
        };
        // A verifier that is gone frees the gate now, not at the TTL sweep;
        // after a complete report there is nothing left to end.
        if let Err(err) = expire(&state, &policy_id, Some(ended)).await {
            tracing::error!(error = %err, policy = %policy_id, "could not end a verification whose verifier is gone");
        }
    });
    Ok(())
}

/// The verifier program: `verifier_program`, or `warden-agent` beside `warden`.
fn verifier_program(state: &AppState) -> std::path::PathBuf {
    if !state.config.verifier_program.is_empty() {
        return state.config.verifier_program.clone().into();
    }
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("warden-agent")));
    beside.filter(|path| path.exists()).unwrap_or_else(|| "warden-agent".into())
}

async fn fail_connector(state: &AppState, connector_id: &str, reason: &str) {
    tracing::warn!(connector = %connector_id, "{reason}");
    if let Err(err) = store::mark_start_failed(&state.db, connector_id, reason, now_ms()).await {
        tracing::error!(error = %err, connector = %connector_id, "could not mark the connector failed");
    }
    state.events.publish(Event::cloud_connector_changed(connector_id));
}

/// Undoes a started verification whose deploy failed.
async fn remove_failed(state: &AppState, policy_id: &str, verification_id: &str, connector_id: &str, reason: &str) -> Result<()> {
    let now = now_ms();
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    store::delete_verifier_policy(&mut tx, policy_id).await?;
    store::finish_verification(&mut *tx, verification_id, VerificationStatus::Failed.as_str(), Some(reason), now).await?;
    store::mark_start_failed(&mut *tx, connector_id, reason, now).await?;
    store::prune_verifications(&mut tx, connector_id, KEPT_VERIFICATIONS).await?;
    tx.commit().await?;
    state.events.publish(Event::cloud_connector_changed(connector_id));
    Ok(())
}

/// Removes a verifier policy whose verifier is gone (`why`) or that expired
/// (`None`); its verification fails with what arrived so far. A verification
/// a report has ended meanwhile stays as the report left it.
async fn expire(state: &AppState, policy_id: &str, why: Option<String>) -> Result<()> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let verification = store::verification_of_policy(&mut *tx, policy_id).await?;
    store::delete_verifier_policy(&mut tx, policy_id).await?;
    let mut changed = None;
    if let Some(verification) = verification {
        let checks: Vec<PermissionCheck> = serde_json::from_str(&verification.checks).unwrap_or_default();
        let arrived = store::count_permissions(&mut *tx, &verification.id).await?;
        let why = why.unwrap_or_else(|| format!("The verifier did not report within {} minutes", VERIFICATION_TTL_MS / 60_000));
        let reason = format!("{why} ({arrived} of {} results arrived)", checks.len());
        let now = now_ms();
        if store::finish_verification(&mut *tx, &verification.id, VerificationStatus::Failed.as_str(), Some(&reason), now).await? {
            store::mark_finished(&mut *tx, &verification.connector_id, VerificationStatus::Failed.as_str(), Some(&reason), now).await?;
            store::prune_verifications(&mut tx, &verification.connector_id, KEPT_VERIFICATIONS).await?;
            changed = Some(verification.connector_id);
        }
    }
    tx.commit().await?;
    let Some(connector) = changed else { return Ok(()) };
    tracing::warn!(policy = %policy_id, connector = %connector, "verifier policy removed before every result arrived");
    state.events.publish(Event::cloud_connector_changed(&connector));
    after_verification(state).await;
    Ok(())
}

/// What a verifier reports. Only the agent enrolled in that verification's
/// policy may report for it; records outside its plan are refused. When
/// every check has a result, the verification ends: rolled up, its
/// connector's status written, its verifier policy removed.
pub async fn report(state: &AppState, agent: &AgentRow, report: VerificationReport) -> Result<usize> {
    if report.records.len() > MAX_RECORDS {
        return Err(CloudError::Invalid(format!("[records]: at most {MAX_RECORDS} per report")));
    }
    let now = now_ms();
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let verification = store::verification(&mut *tx, &report.verification_id)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("Verification {} not found", report.verification_id)))?;
    if verification.agent_policy_id.as_deref() != Some(agent.policy_id.as_str()) || verification.finished_at.is_some() {
        return Err(CloudError::Forbidden(format!("Agent {} does not run verification {}", agent.id, report.verification_id)));
    }
    let checks: Vec<PermissionCheck> = serde_json::from_str(&verification.checks).unwrap_or_default();
    let mut accepted = 0;
    for record in &report.records {
        let planned = checks
            .iter()
            .find(|c| c.action == record.action && c.package_policy_id == record.package_policy_id && c.policy_template == record.policy_template);
        let Some(check) = planned else {
            return Err(CloudError::Invalid(format!(
                "Record for {} ({}, package policy {}) is not part of verification {}",
                record.action, record.policy_template, record.package_policy_id, verification.id
            )));
        };
        let bounded = |text: &Option<String>| text.as_ref().map(|t| t.chars().take(1000).collect::<String>());
        let row = PermissionRow {
            verification_id: verification.id.clone(),
            package_policy_id: check.package_policy_id.clone(),
            policy_template: check.policy_template.clone(),
            package_name: check.package_name.clone(),
            action: check.action.clone(),
            status: record.status.as_str().to_owned(),
            // The plan says what is required, not the reporter.
            required: i64::from(check.required),
            error_code: bounded(&record.error_code),
            message: bounded(&record.message),
            method: bounded(&record.method),
            duration_ms: record.duration_ms.and_then(|ms| i64::try_from(ms).ok()),
            received_at: now,
        };
        if store::insert_permission(&mut *tx, &row).await? {
            accepted += 1;
        }
    }
    let arrived = store::count_permissions(&mut *tx, &verification.id).await?;
    let complete = usize::try_from(arrived).unwrap_or(0) >= checks.len();
    if complete {
        finish(&mut tx, &verification, &checks, now).await?;
    }
    tx.commit().await?;
    state.events.publish(Event::cloud_connector_changed(&verification.connector_id));
    if complete {
        after_verification(state).await;
    }
    Ok(accepted)
}

/// A verification ended: the rules that watch verifications run, and so does
/// the task, since the gate is open for a connector waiting behind it.
async fn after_verification(state: &AppState) {
    crate::rules::request_verification_rules(state).await;
    if let Err(err) = state.tasks.request_run(TASK_TYPE).await {
        tracing::warn!(error = %err, "could not ask for the next verification");
    }
}

/// Ends a verification whose results are all in, inside `tx`.
async fn finish(tx: &mut sqlx::Transaction<'static, sqlx::Any>, verification: &VerificationRow, checks: &[PermissionCheck], now: i64) -> Result<()> {
    let records = super::to_records(store::permissions(&mut **tx, &verification.id).await?);
    let (status, reason) = roll_up(checks, &records);
    if !store::finish_verification(&mut **tx, &verification.id, status.as_str(), reason.as_deref(), now).await? {
        // Ended meanwhile (expired on another node): that outcome stands.
        return Ok(());
    }
    store::mark_finished(&mut **tx, &verification.connector_id, status.as_str(), reason.as_deref(), now).await?;
    if let Some(policy) = &verification.agent_policy_id {
        store::delete_verifier_policy(tx, policy).await?;
    }
    store::prune_verifications(tx, &verification.connector_id, KEPT_VERIFICATIONS).await?;
    tracing::info!(connector = %verification.connector_id, verification = %verification.id, status = status.as_str(), "verification finished");
    Ok(())
}

#[cfg(test)]
mod tests;

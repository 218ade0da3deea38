//! Cloud connectors, package policies and the permission verifier: the API
//! shapes, the rules a connector's variables follow per provider, which cloud
//! permissions each policy template needs, which connector the
//! `fleet:verify_permissions` task verifies next, and how one verification's
//! per-permission results roll up to a connector's status.
//!
//! Kibana's shapes (`fleet-cloud-connector`, `verifier_otel`) with the gaps
//! its review left closed: a verification ends in `success` or `failed`
//! (Kibana never writes `success`), a verifier that never reports fails its
//! connector instead of leaving it pending, and a connector changed after its
//! last verification started is verified again rather than every connector
//! created in the last five minutes over and over.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kuery::{KueryError, KueryField, Query, Record, parse_fields};

crate::text_enum! {
    /// The cloud a connector reaches (`cloudProvider`); also the name of the
    /// integration package whose policies use it.
    CloudProvider { Aws = "aws", Azure = "azure", Gcp = "gcp" }
}

crate::text_enum! {
    /// Kibana's `accountType`.
    AccountType { SingleAccount = "single-account", OrganizationAccount = "organization-account" }
}

crate::text_enum! {
    /// A connector's verification state (`verification_status`).
    VerificationStatus { Pending = "pending", Success = "success", Failed = "failed" }
}

crate::text_enum! {
    /// One permission's result (`permission.status` of the verifier's records).
    PermissionStatus { Granted = "granted", Denied = "denied", Error = "error", Skipped = "skipped" }
}

impl CloudProvider {
    pub fn label(self) -> &'static str {
        match self {
            CloudProvider::Aws => "AWS",
            CloudProvider::Azure => "Azure",
            CloudProvider::Gcp => "Google Cloud",
        }
    }

    /// The connector variables of this provider, in the order forms show them.
    pub fn vars(self) -> &'static [VarSpec] {
        match self {
            CloudProvider::Aws => AWS_VARS,
            CloudProvider::Azure => AZURE_VARS,
            CloudProvider::Gcp => GCP_VARS,
        }
    }

    /// The variable naming who is checked (the IAM principal).
    pub fn principal_var(self) -> &'static str {
        match self {
            CloudProvider::Aws => "role_arn",
            CloudProvider::Azure => "client_id",
            CloudProvider::Gcp => "service_account",
        }
    }

    /// The variable that proves the caller may act as that principal.
    pub fn proof_var(self) -> &'static str {
        match self {
            CloudProvider::Aws => "external_id",
            CloudProvider::Azure => "tenant_id",
            CloudProvider::Gcp => "audience",
        }
    }
}

/// A connector variable: its name, whether it is a secret (write-only,
/// encrypted at rest) and whether it must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub secret: bool,
    pub required: bool,
}

const AWS_VARS: &[VarSpec] = &[
    VarSpec { name: "role_arn", label: "Role ARN", secret: false, required: true },
    VarSpec { name: "external_id", label: "External ID", secret: true, required: true },
];
const AZURE_VARS: &[VarSpec] = &[
    VarSpec { name: "tenant_id", label: "Tenant ID", secret: true, required: true },
    VarSpec { name: "client_id", label: "Client ID", secret: true, required: true },
    VarSpec { name: "azure_credentials_cloud_connector_id", label: "Credentials connector ID", secret: false, required: false },
];
const GCP_VARS: &[VarSpec] = &[
    VarSpec { name: "service_account", label: "Service account", secret: false, required: true },
    VarSpec { name: "audience", label: "Audience", secret: false, required: true },
    VarSpec { name: "gcp_credentials_cloud_connector_id", label: "Credentials connector ID", secret: true, required: false },
];

/// Kibana's bounds on a connector's name and variables.
pub const NAME_MAX: usize = 255;
pub const VAR_VALUE_MAX: usize = 1000;

/// How long a verifier policy may live before the cleanup removes it
/// (Kibana's `VERIFICATION_TTL_MS`).
pub const VERIFICATION_TTL_MS: i64 = 5 * 60 * 1000;

/// A variable as the API shows it: text as is; a secret only as a
/// reference (`{isSecretRef: true, id}`), never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorVar {
    #[serde(rename = "type")]
    pub var_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
}

/// A variable in a request: a bare string (text), `{type: "text", value}`,
/// `{type: "password", value: "<new secret>"}`, or the reference the API
/// showed (`{type: "password", value: {isSecretRef: true, id}}`), which keeps
/// the stored secret.
#[derive(Debug, Clone, PartialEq)]
pub enum VarInput {
    Text(String),
    NewSecret(String),
    KeepSecret,
}

/// The variables of a create or update, checked against the provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedVars {
    pub text: BTreeMap<String, String>,
    pub new_secrets: BTreeMap<String, String>,
    /// Secrets the request keeps as they are (by reference).
    pub kept_secrets: Vec<String>,
}

/// Reads one request variable; `None` when its shape is none of the four.
pub fn read_var(value: &serde_json::Value) -> Option<VarInput> {
    match value {
        serde_json::Value::String(text) => Some(VarInput::Text(text.clone())),
        serde_json::Value::Object(map) => {
            let kind = map.get("type").and_then(|t| t.as_str()).unwrap_or("text");
            match (kind, map.get("value")?) {
                ("text", serde_json::Value::String(text)) => Some(VarInput::Text(text.clone())),
                ("password", serde_json::Value::String(secret)) => Some(VarInput::NewSecret(secret.clone())),
                ("password", serde_json::Value::Object(reference)) if reference.get("isSecretRef").and_then(|v| v.as_bool()) == Some(true) => {
                    Some(VarInput::KeepSecret)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Checks a request's variables for `provider`. `stored_secrets` names the
/// secrets the connector already has (empty on create), so a reference to
/// one is kept and a reference to a missing one is refused. `partial`: an
/// update may leave variables out (they stay as they are).
pub fn check_vars(
    provider: CloudProvider,
    vars: &BTreeMap<String, serde_json::Value>,
    stored_secrets: &[String],
    stored_text: &BTreeMap<String, String>,
    partial: bool,
) -> Result<CheckedVars, String> {
    if vars.is_empty() && !partial {
        return Err("vars must not be empty".into());
    }
    let specs = provider.vars();
    let mut checked = CheckedVars::default();
    for (name, value) in vars {
        let Some(spec) = specs.iter().find(|spec| spec.name == name) else {
            let known: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
            return Err(format!("Unknown variable [{name}] for {}: expected one of {}", provider.as_str(), known.join(", ")));
        };
        let input = read_var(value).ok_or_else(|| {
            format!("[vars.{name}]: expected a string, {{type: \"text\", value}}, {{type: \"password\", value}} or a secret reference")
        })?;
        match input {
            VarInput::Text(text) if spec.secret => {
                // A bare string for a secret is a new secret: scripts send them so.
                checked.new_secrets.insert(name.clone(), bounded(name, text)?);
            }
            VarInput::Text(text) => {
                checked.text.insert(name.clone(), bounded(name, text)?);
            }
            VarInput::NewSecret(_) if !spec.secret => return Err(format!("[vars.{name}] is not a secret: send it as text")),
            VarInput::NewSecret(secret) => {
                checked.new_secrets.insert(name.clone(), bounded(name, secret)?);
            }
            VarInput::KeepSecret if !spec.secret => return Err(format!("[vars.{name}] is not a secret: send its value")),
            VarInput::KeepSecret if !stored_secrets.iter().any(|s| s == name) => {
                return Err(format!("[vars.{name}] refers to a secret this connector does not have: send its value"));
            }
            VarInput::KeepSecret => checked.kept_secrets.push(name.clone()),
        }
    }
    for spec in specs.iter().filter(|spec| spec.required) {
        let given = checked.text.contains_key(spec.name)
            || checked.new_secrets.contains_key(spec.name)
            || checked.kept_secrets.iter().any(|s| s == spec.name);
        let stored = partial && (stored_text.contains_key(spec.name) || stored_secrets.iter().any(|s| s == spec.name));
        if !given && !stored {
            return Err(format!("{} connectors need [vars.{}] ({})", provider.label(), spec.name, spec.label));
        }
    }
    if let Some(arn) = checked.text.get("role_arn") {
        check_role_arn(arn)?;
    }
    if let Some(account) = checked.text.get("service_account")
        && !account.contains('@')
    {
        return Err("[vars.service_account] must be a service account's email, e.g. warden@project.iam.gserviceaccount.com".into());
    }
    Ok(checked)
}

fn bounded(name: &str, value: String) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("[vars.{name}] must not be blank"));
    }
    if trimmed.chars().count() > VAR_VALUE_MAX {
        return Err(format!("[vars.{name}] is longer than {VAR_VALUE_MAX} characters"));
    }
    Ok(trimmed.to_owned())
}

/// An IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path and name>`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let invalid = || format!("[vars.role_arn] must be an IAM role ARN (arn:aws:iam::123456789012:role/name), not \"{arn}\"");
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let role = resource.strip_prefix("role/").unwrap_or("");
    let partition_ok = partition.starts_with("aws") && partition.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let role_ok = !role.is_empty() && role.len() <= 512 && role.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if partition_ok && account_ok && role_ok { Ok(()) } else { Err(invalid()) }
}

/// A connector's name as stored: trimmed, runs of white space as one space
/// (Kibana's rule); names compare without case.
pub fn normalize_name(name: &str) -> Result<String, String> {
    let normalized = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if normalized.is_empty() {
        return Err("[name]: must not be blank".into());
    }
    if normalized.chars().count() > NAME_MAX {
        return Err(format!("[name]: must be at most {NAME_MAX} characters"));
    }
    Ok(normalized)
}

/// One cloud permission a policy template needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredPermission {
    pub action: &'static str,
    /// Without it the integration does not work; an optional one denied is
    /// only `skipped`.
    pub required: bool,
}

const fn need(action: &'static str) -> RequiredPermission {
    RequiredPermission { action, required: true }
}

const fn may(action: &'static str) -> RequiredPermission {
    RequiredPermission { action, required: false }
}

/// The policy templates Warden can verify, per provider package, with the
/// permissions each needs (those of the `verifier_otel` receiver's table).
pub fn policy_templates(provider: CloudProvider) -> &'static [(&'static str, &'static [RequiredPermission])] {
    match provider {
        CloudProvider::Aws => AWS_TEMPLATES,
        CloudProvider::Azure => AZURE_TEMPLATES,
        CloudProvider::Gcp => GCP_TEMPLATES,
    }
}

type Templates = &'static [(&'static str, &'static [RequiredPermission])];

const AWS_TEMPLATES: Templates = &[
    (
        "cloudtrail",
        &[need("cloudtrail:LookupEvents"), need("cloudtrail:DescribeTrails"), need("s3:GetObject"), need("s3:ListBucket"), may("sqs:ReceiveMessage")],
    ),
    ("guardduty", &[need("guardduty:ListDetectors"), need("guardduty:GetFindings"), need("guardduty:ListFindings")]),
    ("cspm", &[need("iam:GetAccountSummary"), need("securityhub:GetFindings"), may("config:DescribeConfigRules")]),
];
const AZURE_TEMPLATES: Templates = &[
    ("activitylogs", &[need("Microsoft.Insights/eventtypes/values/Read")]),
    ("cspm", &[need("Microsoft.Resources/subscriptions/resources/read"), may("Microsoft.Security/assessments/read")]),
];
const GCP_TEMPLATES: Templates =
    &[("audit", &[need("logging.logEntries.list")]), ("cspm", &[need("cloudasset.assets.listResource"), need("resourcemanager.projects.get")])];

/// The permissions of one policy template, or `None` when Warden cannot
/// verify it.
pub fn template_permissions(provider: CloudProvider, template: &str) -> Option<&'static [RequiredPermission]> {
    policy_templates(provider).iter().find(|(name, _)| *name == template).map(|(_, permissions)| *permissions)
}

/// The package a cloud connector's package policies name: its provider.
pub fn provider_of_package(package: &str) -> Option<CloudProvider> {
    CloudProvider::parse(package)
}

/// The package of verifier policies (Kibana's `VERIFIER_PKG_NAME`).
pub const VERIFIER_PACKAGE: &str = "verifier_otel";

/// What the verification task knows of a connector when it picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectorFacts {
    pub created_at: i64,
    pub updated_at: i64,
    pub status: Option<VerificationStatus>,
    pub started_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// "Verify now" asked at this time.
    pub requested_at: Option<i64>,
}

/// The windows of the eligibility rules, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// A change this recent makes a connector eligible (Kibana: 5 min).
    pub recent: i64,
    /// A connector verified this long ago is due again.
    pub reverify_after: i64,
    /// A failed connector waits this long before the next try (Kibana: 5 min).
    pub failure_cooldown: i64,
}

impl Default for Windows {
    fn default() -> Windows {
        Windows { recent: 5 * 60 * 1000, reverify_after: 60 * 60 * 1000, failure_cooldown: 5 * 60 * 1000 }
    }
}

/// Why a connector is verified now (Kibana's six criteria, plus "Verify now").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Eligibility {
    /// Asked by an analyst; skips the cooldowns, not the one-at-a-time gate.
    Requested,
    NeverVerified,
    RecentlyCreated,
    RecentlyUpdated,
    Due,
    CooldownExpired,
    NoStatus,
}

impl Eligibility {
    pub fn label(self) -> &'static str {
        match self {
            Eligibility::Requested => "verification requested",
            Eligibility::NeverVerified => "never verified",
            Eligibility::RecentlyCreated => "recently created",
            Eligibility::RecentlyUpdated => "changed since its last verification",
            Eligibility::Due => "due for re-verification",
            Eligibility::CooldownExpired => "failed, cooldown over",
            Eligibility::NoStatus => "no verification status",
        }
    }
}

/// Whether the connector is verified on this run, and why. A change counts
/// only when no verification started after it: Kibana's "created or updated
/// in the last five minutes" re-verifies a connector on every run of those
/// five minutes.
pub fn eligibility(facts: &ConnectorFacts, now: i64, windows: Windows) -> Option<Eligibility> {
    let started = facts.started_at;
    let after_start = |at: i64| started.is_none_or(|s| at > s);
    if facts.requested_at.is_some_and(after_start) {
        return Some(Eligibility::Requested);
    }
    // A failure waits out its cooldown whatever else holds: a connector whose
    // verification cannot even start (never verified) must not be picked on
    // every run, ahead of every other one.
    let cooling = facts.failed_at.is_some_and(|failed| failed > now.saturating_sub(windows.failure_cooldown));
    if facts.status == Some(VerificationStatus::Failed) && cooling {
        return None;
    }
    if started.is_none() {
        return Some(Eligibility::NeverVerified);
    }
    let recent_cutoff = now.saturating_sub(windows.recent);
    if facts.created_at >= recent_cutoff && after_start(facts.created_at) {
        return Some(Eligibility::RecentlyCreated);
    }
    if facts.updated_at >= recent_cutoff && after_start(facts.updated_at) {
        return Some(Eligibility::RecentlyUpdated);
    }
    match facts.status {
        None => Some(Eligibility::NoStatus),
        // Past the cooldown (checked above), or failed without a time.
        Some(VerificationStatus::Failed) => Some(Eligibility::CooldownExpired),
        Some(_) => match started {
            Some(at) if at <= now.saturating_sub(windows.reverify_after) => Some(Eligibility::Due),
            _ => None,
        },
    }
}

/// When the task will next verify a connector left as it is (for the page's
/// "next verification"); `None` when it is eligible now.
pub fn next_verification(facts: &ConnectorFacts, now: i64, windows: Windows) -> Option<i64> {
    if eligibility(facts, now, windows).is_some() {
        return None;
    }
    match facts.status {
        Some(VerificationStatus::Failed) => facts.failed_at.map(|at| at.saturating_add(windows.failure_cooldown)),
        _ => facts.started_at.map(|at| at.saturating_add(windows.reverify_after)),
    }
}

/// Orders the eligible connectors: requested first, then by criterion, then
/// the longest unverified.
pub fn pick<'a, T>(candidates: impl IntoIterator<Item = (&'a T, ConnectorFacts)>, now: i64, windows: Windows) -> Option<(&'a T, Eligibility)> {
    candidates
        .into_iter()
        .filter_map(|(item, facts)| eligibility(&facts, now, windows).map(|why| (item, why, facts.started_at.unwrap_or(i64::MIN))))
        .min_by_key(|(_, why, started)| (*why, *started))
        .map(|(item, why, _)| (item, why))
}

/// One permission check the verifier makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionCheck {
    pub package_policy_id: String,
    pub policy_template: String,
    pub package_name: String,
    pub action: String,
    pub required: bool,
}

/// The checks of a verification: every enabled template of every package
/// policy of the connector, each template's permissions once.
pub fn plan_checks(provider: CloudProvider, templates: &[(String, String, String)]) -> Vec<PermissionCheck> {
    let mut checks = Vec::new();
    for (package_policy_id, package_name, template) in templates {
        for permission in template_permissions(provider, template).unwrap_or(&[]) {
            let check = PermissionCheck {
                package_policy_id: package_policy_id.clone(),
                policy_template: template.clone(),
                package_name: package_name.clone(),
                action: permission.action.to_owned(),
                required: permission.required,
            };
            if !checks.contains(&check) {
                checks.push(check);
            }
        }
    }
    checks
}

/// What Warden hands the verifier it starts (on its standard input): where
/// to enroll, what to check and with which credentials. Kibana's verifier
/// package policy carries the same in its stream variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierDeployment {
    /// Warden's Fleet URL (with its base path).
    pub fleet_url: String,
    /// A one-time enrollment token of the verifier policy.
    pub enrollment_token: String,
    pub verification_id: String,
    pub connector_id: String,
    pub connector_name: String,
    pub provider: CloudProvider,
    pub account_type: AccountType,
    /// The cloud's permission-check API (the emulator in demos and tests).
    pub cloud_url: String,
    /// Who is checked (role ARN, client id, service account).
    pub principal: String,
    /// What proves the caller may act as it (external id, tenant, audience).
    pub proof: String,
    pub checks: Vec<PermissionCheck>,
}

/// The most records one report may carry.
pub const MAX_RECORDS: usize = 1000;

/// One permission's result, as the verifier reports it (the attributes of
/// `verifier_otel`'s log records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationRecord {
    pub package_policy_id: String,
    pub policy_template: String,
    pub package_name: String,
    pub action: String,
    pub status: PermissionStatus,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `api_call`, `dry_run` or `policy_attachment_check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `POST /api/fleet/agents/{id}/verification_results`: a verifier's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerificationReport {
    pub verification_id: String,
    pub records: Vec<VerificationRecord>,
}

/// How a denied optional permission is shown: Kibana's status mapping
/// (denied and not required → skipped).
pub fn effective_status(record_status: PermissionStatus, required: bool) -> PermissionStatus {
    match record_status {
        PermissionStatus::Denied if !required => PermissionStatus::Skipped,
        other => other,
    }
}

/// A verification's outcome: `Success` when every required permission of
/// every template is granted; otherwise `Failed`, with a reason naming the
/// first missing ones. Checks the verifier did not report count as errors.
pub fn roll_up(checks: &[PermissionCheck], records: &[VerificationRecord]) -> (VerificationStatus, Option<String>) {
    let mut problems: Vec<String> = Vec::new();
    for check in checks.iter().filter(|check| check.required) {
        let found = records
            .iter()
            .find(|r| r.action == check.action && r.package_policy_id == check.package_policy_id && r.policy_template == check.policy_template);
        match found.map(|r| r.status) {
            Some(PermissionStatus::Granted) => {}
            Some(PermissionStatus::Denied) => problems.push(format!("{} denied ({})", check.action, check.policy_template)),
            Some(PermissionStatus::Error) | Some(PermissionStatus::Skipped) => {
                problems.push(format!("{} could not be checked ({})", check.action, check.policy_template))
            }
            None => problems.push(format!("{} not reported ({})", check.action, check.policy_template)),
        }
    }
    if checks.is_empty() {
        return (VerificationStatus::Failed, Some("No permissions to verify: no enabled policy template Warden can check".into()));
    }
    if problems.is_empty() {
        return (VerificationStatus::Success, None);
    }
    let total = checks.iter().filter(|check| check.required).count();
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    (VerificationStatus::Failed, Some(format!("{} of {total} required permissions missing: {}{tail}", problems.len(), shown.join(", "))))
}

/// Permissions that were granted in the previous verification and are
/// denied now (what `fleet.cloud_connector_verification` alerts on).
pub fn newly_denied<'a>(previous: &[VerificationRecord], current: &'a [VerificationRecord]) -> Vec<&'a VerificationRecord> {
    current
        .iter()
        // Denied by the cloud: an error or a skip says nothing about a revoke.
        .filter(|now| now.status == PermissionStatus::Denied)
        .filter(|now| {
            previous.iter().any(|before| {
                before.status == PermissionStatus::Granted
                    && before.action == now.action
                    && before.package_policy_id == now.package_policy_id
                    && before.policy_template == now.policy_template
            })
        })
        .collect()
}

/// A cloud connector as the API shows it (Kibana's `CloudConnector` with the
/// verification fields, and Warden's results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudConnector {
    pub id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "cloudProvider")]
    pub cloud_provider: CloudProvider,
    #[serde(rename = "accountType")]
    pub account_type: AccountType,
    pub vars: BTreeMap<String, ConnectorVar>,
    #[serde(rename = "packagePolicyCount")]
    pub package_policy_count: i64,
    pub created_at: String,
    pub updated_at: String,
    pub verification_status: Option<VerificationStatus>,
    pub verification_started_at: Option<String>,
    pub verification_failed_at: Option<String>,
    /// Why the last verification failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_failed_reason: Option<String>,
    /// When the last verification ended (success or failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_finished_at: Option<String>,
    /// When the task will next verify it, left as it is (none: at its next run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_verification_at: Option<String>,
    /// A verification of it is in flight (its verifier policy exists).
    #[serde(default)]
    pub verification_in_flight: bool,
    /// The last finished verification's results, per package policy and template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_permissions: Vec<TemplateResult>,
}

/// One template's results in a verification (Kibana's later
/// `PackagePolicyPermissionSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateResult {
    pub package_policy_id: String,
    pub package_policy_name: String,
    pub package_name: String,
    pub policy_template: String,
    pub status: VerificationStatus,
    pub last_verified_at: String,
    pub permissions: Vec<PermissionResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionResult {
    pub action: String,
    pub status: PermissionStatus,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Groups a verification's records by package policy and template.
pub fn template_results(records: &[VerificationRecord], policy_name: impl Fn(&str) -> String, verified_at: &str) -> Vec<TemplateResult> {
    let mut groups: BTreeMap<(String, String), TemplateResult> = BTreeMap::new();
    for record in records {
        let key = (record.package_policy_id.clone(), record.policy_template.clone());
        let group = groups.entry(key).or_insert_with(|| TemplateResult {
            package_policy_id: record.package_policy_id.clone(),
            package_policy_name: policy_name(&record.package_policy_id),
            package_name: record.package_name.clone(),
            policy_template: record.policy_template.clone(),
            status: VerificationStatus::Success,
            last_verified_at: verified_at.to_owned(),
            permissions: Vec::new(),
        });
        let status = effective_status(record.status, record.required);
        if record.required && status != PermissionStatus::Granted {
            group.status = VerificationStatus::Failed;
        }
        group.permissions.push(PermissionResult {
            action: record.action.clone(),
            status,
            required: record.required,
            error_code: record.error_code.clone(),
            message: record.message.clone(),
        });
    }
    groups.into_values().collect()
}

/// What `GET /api/fleet/cloud_connectors?kuery=` filters on: Kibana's
/// saved-object attributes, named bare or as
/// `fleet-cloud-connector.attributes.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorField {
    Name,
    CloudProvider,
    AccountType,
    Namespace,
    VerificationStatus,
}

impl KueryField for ConnectorField {
    const KNOWN: &'static str = "name, cloudProvider, accountType, namespace or verification_status";

    fn parse(name: &str) -> Option<ConnectorField> {
        match name.strip_prefix("fleet-cloud-connector.attributes.").unwrap_or(name) {
            "name" => Some(ConnectorField::Name),
            "cloudProvider" => Some(ConnectorField::CloudProvider),
            "accountType" => Some(ConnectorField::AccountType),
            "namespace" => Some(ConnectorField::Namespace),
            "verification_status" => Some(ConnectorField::VerificationStatus),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ConnectorField::Name => "name",
            ConnectorField::CloudProvider => "cloudProvider",
            ConnectorField::AccountType => "accountType",
            ConnectorField::Namespace => "namespace",
            ConnectorField::VerificationStatus => "verification_status",
        }
    }
}

/// A connector's filterable fields, as stored.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorSubject<'a> {
    pub name: &'a str,
    pub cloud_provider: &'a str,
    pub account_type: &'a str,
    pub namespace: &'a str,
    pub verification_status: Option<&'a str>,
}

impl Record<ConnectorField> for ConnectorSubject<'_> {
    fn values(&self, field: ConnectorField) -> impl Iterator<Item = &str> {
        match field {
            ConnectorField::Name => Some(self.name),
            ConnectorField::CloudProvider => Some(self.cloud_provider),
            ConnectorField::AccountType => Some(self.account_type),
            ConnectorField::Namespace => Some(self.namespace),
            ConnectorField::VerificationStatus => self.verification_status,
        }
        .into_iter()
    }
}

/// Parses a cloud connector kuery (bounded as every kuery is).
pub fn parse_connector_kuery(text: &str) -> Result<Option<Query<ConnectorField>>, KueryError> {
    parse_fields(text)
}

/// `POST /api/fleet/cloud_connectors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCloudConnector {
    /// 1 to 255 characters; unique without case.
    pub name: String,
    #[serde(rename = "cloudProvider")]
    pub cloud_provider: CloudProvider,
    #[serde(default, rename = "accountType")]
    pub account_type: Option<AccountType>,
    /// `default` when left out (Kibana: `*`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Per provider: aws role_arn + external_id (secret); azure tenant_id +
    /// client_id (secrets); gcp service_account + audience.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// `PUT /api/fleet/cloud_connectors/{id}`: what is left out stays.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCloudConnector {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "accountType")]
    pub account_type: Option<AccountType>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub vars: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudConnectorItem {
    pub item: CloudConnector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloudConnectorList {
    pub items: Vec<CloudConnector>,
    pub total: i64,
    pub page: i64,
    #[serde(rename = "perPage")]
    pub per_page: i64,
}

/// A package policy's package (`{name, title, version}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub version: String,
}

/// One input of a package policy (the full format's array item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePolicyInput {
    #[serde(rename = "type")]
    pub input_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_template: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub streams: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub vars: Option<serde_json::Value>,
}

/// A package policy as the API shows it (Fleet's, as small as the verifier needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePolicy {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    pub policy_id: String,
    pub policy_ids: Vec<String>,
    pub package: PackageRef,
    pub inputs: Vec<PackagePolicyInput>,
    pub enabled: bool,
    pub cloud_connector_id: Option<String>,
    pub supports_cloud_connector: bool,
    pub revision: i64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// `POST /api/fleet/package_policies` and `PUT …/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePolicyRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Deprecated in Fleet for `policy_ids`; either names the agent policy.
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub policy_ids: Vec<String>,
    pub package: PackageRef,
    #[serde(default)]
    pub inputs: Vec<PackagePolicyInput>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(default)]
    pub cloud_connector_id: Option<String>,
    #[serde(default)]
    pub supports_cloud_connector: Option<bool>,
}

fn enabled_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePolicyItem {
    pub item: PackagePolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackagePolicyList {
    pub items: Vec<PackagePolicy>,
    pub total: i64,
    pub page: i64,
    #[serde(rename = "perPage")]
    pub per_page: i64,
}

/// The longest package policy name and the most inputs one may have.
pub const PACKAGE_POLICY_NAME_MAX: usize = 255;
pub const MAX_INPUTS: usize = 100;

/// Checks a package policy request; `connector` is the provider of the cloud
/// connector it references, if any. Returns the agent policy id.
pub fn check_package_policy(request: &PackagePolicyRequest, connector: Option<CloudProvider>) -> Result<String, String> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err("[name]: must not be blank".into());
    }
    if name.chars().count() > PACKAGE_POLICY_NAME_MAX {
        return Err(format!("[name]: must be at most {PACKAGE_POLICY_NAME_MAX} characters"));
    }
    if request.package.name.trim().is_empty() || request.package.version.trim().is_empty() {
        return Err("Package is required: [package.name] and [package.version]".into());
    }
    if request.inputs.len() > MAX_INPUTS {
        return Err(format!("[inputs]: at most {MAX_INPUTS} inputs"));
    }
    let policy_id = match (request.policy_id.as_deref(), request.policy_ids.as_slice()) {
        (Some(id), []) => id.to_owned(),
        (None, [id]) => id.clone(),
        (Some(id), [other]) if id == other => id.to_owned(),
        (None, []) => return Err("[policy_ids]: name the agent policy this package policy belongs to".into()),
        _ => return Err("[policy_ids]: Warden's package policies belong to exactly one agent policy".into()),
    };
    if let Some(provider) = connector {
        if request.package.name != provider.as_str() {
            return Err(format!(
                "Package {} cannot use a {} cloud connector: a cloud connector serves its provider's package ({})",
                request.package.name,
                provider.label(),
                provider.as_str()
            ));
        }
        for input in request.inputs.iter().filter(|input| input.enabled) {
            let template = input.policy_template.as_deref().unwrap_or_default();
            if template_permissions(provider, template).is_none() {
                let known: Vec<&str> = policy_templates(provider).iter().map(|(name, _)| *name).collect();
                return Err(format!(
                    "Input {} names policy template \"{template}\", which Warden cannot verify for {}: expected one of {}",
                    input.input_type,
                    provider.as_str(),
                    known.join(", ")
                ));
            }
        }
    }
    Ok(policy_id)
}

/// The enabled policy templates of a package policy's inputs, each once.
pub fn enabled_templates(inputs: &[PackagePolicyInput]) -> Vec<String> {
    let mut templates: Vec<String> = Vec::new();
    for input in inputs.iter().filter(|input| input.enabled) {
        if let Some(template) = &input.policy_template
            && !templates.contains(template)
        {
            templates.push(template.clone());
        }
    }
    templates
}

#[cfg(test)]
mod tests;

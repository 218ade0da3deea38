//! Cloud connectors (Fleet's `/api/fleet/cloud_connectors`) and the package
//! policies that use them (`/api/fleet/package_policies`, as small as the
//! verifier needs). Secrets are encrypted at rest and never leave: the API
//! shows them as references. `verifier` is the `fleet:verify_permissions`
//! task and what the verifier it starts reports.

pub mod verifier;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};
use warden_core::cloud_connectors::{
    AccountType, CloudConnector, CloudConnectorList, CloudProvider, ConnectorFacts, ConnectorField, ConnectorSubject, ConnectorVar,
    CreateCloudConnector, PackagePolicy, PackagePolicyInput, PackagePolicyList, PackagePolicyRequest, PackageRef, UpdateCloudConnector,
    VERIFIER_PACKAGE, VerificationRecord, VerificationStatus, check_package_policy, check_vars, next_verification, normalize_name, template_results,
};
use warden_core::events::Event;
use warden_core::kuery::Query;

use crate::AppState;
use crate::db::now_ms;
use crate::error::ApiError;
use crate::fleet::rfc3339;
use crate::store::cloud_connectors::{self as store, ConnectorRow, PackagePolicyRow};
use crate::store::fleet as fleet_store;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// An agent's key that is not the verifier's (403).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<CloudError> for ApiError {
    fn from(err: CloudError) -> ApiError {
        match err {
            CloudError::Invalid(message) => ApiError::BadRequest(message),
            CloudError::NotFound(message) => ApiError::NotFound(message),
            CloudError::Conflict(message) => ApiError::Conflict(message),
            CloudError::Forbidden(message) => ApiError::Coded { status: StatusCode::FORBIDDEN, code: "Forbidden", message },
            CloudError::Database(err) => ApiError::Database(err),
            CloudError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = CloudError> = std::result::Result<T, E>;

/// Kibana's default page size for cloud connectors.
pub const DEFAULT_PER_PAGE: i64 = 20;
/// Kibana's `maxSize` of the list.
pub const MAX_PER_PAGE: i64 = 10_000;

fn not_found(id: &str) -> CloudError {
    CloudError::NotFound(format!("Cloud connector {id} not found"))
}

fn name_taken(err: sqlx::Error) -> CloudError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => CloudError::Conflict("A cloud connector with this name already exists".into()),
        _ => CloudError::Database(err),
    }
}

fn parse_text_map(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn provider_of(row: &ConnectorRow) -> Result<CloudProvider> {
    CloudProvider::parse(&row.cloud_provider)
        .ok_or_else(|| CloudError::Internal(anyhow::anyhow!("stored provider {} is unknown", row.cloud_provider)))
}

/// The windows of the eligibility rules, from the settings.
pub fn windows(state: &AppState) -> warden_core::cloud_connectors::Windows {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    warden_core::cloud_connectors::Windows {
        recent: warden_core::cloud_connectors::Windows::default().recent,
        reverify_after: ms(state.config.cloud_connector_reverify_after),
        failure_cooldown: ms(state.config.cloud_connector_failure_cooldown),
    }
}

pub fn facts(row: &ConnectorRow) -> ConnectorFacts {
    ConnectorFacts {
        created_at: row.created_at,
        updated_at: row.updated_at,
        status: row.verification_status.as_deref().and_then(VerificationStatus::parse),
        started_at: row.verification_started_at,
        failed_at: row.verification_failed_at,
        requested_at: row.verification_requested_at,
    }
}

/// The connector as the API shows it, with its last results (in lists too:
/// the page shows them; three indexed reads a connector).
async fn to_api(state: &AppState, row: ConnectorRow) -> Result<CloudConnector> {
    let provider = provider_of(&row)?;
    let mut vars: BTreeMap<String, ConnectorVar> = parse_text_map(&row.vars)
        .into_iter()
        .map(|(name, value)| (name, ConnectorVar { var_type: "text".into(), value: Value::String(value) }))
        .collect();
    let secret_names: Vec<String> = serde_json::from_str(&row.secret_names).unwrap_or_default();
    for name in secret_names {
        let reference = json!({"isSecretRef": true, "id": format!("{}-{name}", row.id)});
        vars.insert(name, ConnectorVar { var_type: "password".into(), value: reference });
    }
    let now = now_ms();
    let enabled = state.config.enable_otel_verifier && row.package_policy_count > 0;
    let next = if enabled { next_verification(&facts(&row), now, windows(state)).map(rfc3339) } else { None };
    let verification_permissions = last_results(state, &row.id).await?;
    Ok(CloudConnector {
        name: row.name,
        namespace: row.namespace,
        cloud_provider: provider,
        account_type: AccountType::parse(&row.account_type).unwrap_or(AccountType::SingleAccount),
        vars,
        package_policy_count: row.package_policy_count,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        verification_status: row.verification_status.as_deref().and_then(VerificationStatus::parse),
        verification_started_at: row.verification_started_at.map(rfc3339),
        verification_failed_at: row.verification_failed_at.map(rfc3339),
        verification_failed_reason: row.verification_failed_reason,
        verification_finished_at: row.verification_finished_at.map(rfc3339),
        next_verification_at: next,
        verification_in_flight: row.in_flight > 0,
        verification_permissions,
        id: row.id,
    })
}

/// The last finished verification's records, grouped per template.
async fn last_results(state: &AppState, connector_id: &str) -> Result<Vec<warden_core::cloud_connectors::TemplateResult>> {
    let Some(last) = store::finished_verifications(&state.db, connector_id, 1).await?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let records = records_of(state, &last.id).await?;
    let names: BTreeMap<String, String> =
        store::package_policies_of_connector(&state.db, connector_id).await?.into_iter().map(|p| (p.id, p.name)).collect();
    let at = rfc3339(last.finished_at.unwrap_or(last.started_at));
    Ok(template_results(&records, |id| names.get(id).cloned().unwrap_or_else(|| format!("{id} (deleted)")), &at))
}

pub async fn records_of(state: &AppState, verification_id: &str) -> Result<Vec<VerificationRecord>> {
    Ok(to_records(store::permissions(&state.db, verification_id).await?))
}

pub fn to_records(rows: Vec<store::PermissionRow>) -> Vec<VerificationRecord> {
    rows.into_iter()
        .filter_map(|row| {
            Some(VerificationRecord {
                status: warden_core::cloud_connectors::PermissionStatus::parse(&row.status)?,
                package_policy_id: row.package_policy_id,
                policy_template: row.policy_template,
                package_name: row.package_name,
                action: row.action,
                required: row.required != 0,
                error_code: row.error_code,
                message: row.message,
                method: row.method,
                duration_ms: row.duration_ms.and_then(|ms| u64::try_from(ms).ok()),
            })
        })
        .collect()
}

/// Where a page starts; `page` ≥ 1 and `perPage` 1 to 10,000, checked.
fn page_offset(page: i64, per_page: i64) -> Result<i64> {
    if page < 1 || !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(CloudError::Invalid(format!("[page] must be 1 or more and [perPage] 1 to {MAX_PER_PAGE}")));
    }
    (page - 1).checked_mul(per_page).ok_or_else(|| CloudError::Invalid("[page] is too large".into()))
}

/// One page of the connectors `filter` matches, newest first. The filter
/// runs over every row's stored fields (a few thousand connectors at most)
/// before the page is read out in full.
pub async fn list(state: &AppState, filter: Option<&Query<ConnectorField>>, page: i64, per_page: i64) -> Result<CloudConnectorList> {
    let offset = page_offset(page, per_page)?;
    let rows: Vec<ConnectorRow> =
        store::connectors(&state.db).await?.into_iter().filter(|row| filter.is_none_or(|q| q.matches(&subject(row)))).collect();
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut items = Vec::new();
    for row in rows.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(usize::try_from(per_page).unwrap_or(0)) {
        items.push(to_api(state, row).await?);
    }
    Ok(CloudConnectorList { items, total, page, per_page })
}

fn subject(row: &ConnectorRow) -> ConnectorSubject<'_> {
    ConnectorSubject {
        name: &row.name,
        cloud_provider: &row.cloud_provider,
        account_type: &row.account_type,
        namespace: &row.namespace,
        verification_status: row.verification_status.as_deref(),
    }
}

pub async fn get(state: &AppState, id: &str) -> Result<CloudConnector> {
    let row = store::connector(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    to_api(state, row).await
}

fn seal(state: &AppState, secrets: &BTreeMap<String, String>, id: &str) -> Result<String> {
    Ok(state.cipher.encrypt(&serde_json::to_string(secrets).map_err(anyhow::Error::from)?, id)?)
}

fn unseal(state: &AppState, row: &ConnectorRow) -> Result<BTreeMap<String, String>> {
    let text = state.cipher.decrypt(&row.secrets, &row.id)?;
    Ok(serde_json::from_str(&text).map_err(anyhow::Error::from)?)
}

pub async fn create(state: &AppState, request: CreateCloudConnector, username: &str) -> Result<CloudConnector> {
    let name = normalize_name(&request.name).map_err(CloudError::Invalid)?;
    let checked = check_vars(request.cloud_provider, &request.vars, &[], &BTreeMap::new(), false).map_err(CloudError::Invalid)?;
    let namespace = request.namespace.unwrap_or_else(|| "default".into());
    if namespace.is_empty() || !namespace.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '*') {
        return Err(CloudError::Invalid("[namespace]: lowercase ASCII letters, digits and _ only".into()));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let row = ConnectorRow {
        secrets: seal(state, &checked.new_secrets, &id)?,
        secret_names: serde_json::to_string(&checked.new_secrets.keys().collect::<Vec<_>>()).map_err(anyhow::Error::from)?,
        vars: serde_json::to_string(&checked.text).map_err(anyhow::Error::from)?,
        id: id.clone(),
        name,
        namespace,
        cloud_provider: request.cloud_provider.as_str().to_owned(),
        account_type: request.account_type.unwrap_or(AccountType::SingleAccount).as_str().to_owned(),
        verification_status: Some(VerificationStatus::Pending.as_str().to_owned()),
        verification_started_at: None,
        verification_failed_at: None,
        verification_failed_reason: None,
        verification_finished_at: None,
        verification_requested_at: None,
        created_at: now,
        created_by: username.to_owned(),
        updated_at: now,
        updated_by: username.to_owned(),
        package_policy_count: 0,
        in_flight: 0,
    };
    store::insert_connector(&state.db, &row).await.map_err(name_taken)?;
    tracing::info!(connector = %id, provider = %row.cloud_provider, "cloud connector created");
    state.events.publish(Event::cloud_connector_changed(&id));
    get(state, &id).await
}

/// Updates name, account type and variables. New credentials reset the
/// status to pending and ask the verifier task to run soon.
pub async fn update(state: &AppState, id: &str, request: UpdateCloudConnector, username: &str) -> Result<CloudConnector> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let mut row = store::connector(&mut *tx, id).await?.ok_or_else(|| not_found(id))?;
    let provider = provider_of(&row)?;
    let mut credentials_changed = false;
    if let Some(name) = &request.name {
        row.name = normalize_name(name).map_err(CloudError::Invalid)?;
    }
    if let Some(account_type) = request.account_type {
        row.account_type = account_type.as_str().to_owned();
    }
    if let Some(vars) = &request.vars {
        let mut text = parse_text_map(&row.vars);
        let mut secrets = unseal(state, &row)?;
        let stored_secrets: Vec<String> = secrets.keys().cloned().collect();
        let checked = check_vars(provider, vars, &stored_secrets, &text, true).map_err(CloudError::Invalid)?;
        for (name, value) in checked.text {
            credentials_changed |= text.get(&name) != Some(&value);
            text.insert(name, value);
        }
        for (name, value) in checked.new_secrets {
            credentials_changed |= secrets.get(&name) != Some(&value);
            secrets.insert(name, value);
        }
        row.vars = serde_json::to_string(&text).map_err(anyhow::Error::from)?;
        row.secret_names = serde_json::to_string(&secrets.keys().collect::<Vec<_>>()).map_err(anyhow::Error::from)?;
        row.secrets = seal(state, &secrets, id)?;
    }
    row.updated_at = now_ms();
    row.updated_by = username.to_owned();
    store::update_connector(&mut *tx, &row, credentials_changed).await.map_err(name_taken)?;
    tx.commit().await?;
    state.events.publish(Event::cloud_connector_changed(id));
    if credentials_changed {
        // Kibana's open #292515: new credentials are verified soon, not at the next interval.
        verify_soon(state).await;
    }
    get(state, id).await
}

/// Asks the verifier task to run soon (when the verifier is on): it picks
/// what is eligible, one at a time as always.
async fn verify_soon(state: &AppState) {
    if !state.config.enable_otel_verifier {
        return;
    }
    if let Err(err) = state.tasks.request_run(verifier::TASK_TYPE).await {
        tracing::warn!(error = %err, "could not ask the verifier task to run soon; it runs on its schedule");
    }
}

/// Deletes a connector; one in use needs `force` (Kibana's rule), which
/// detaches its package policies.
pub async fn delete(state: &AppState, id: &str, force: bool) -> Result<()> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let row = store::connector(&mut *tx, id).await?.ok_or_else(|| not_found(id))?;
    if row.package_policy_count > 0 && !force {
        return Err(CloudError::Invalid(format!(
            "Cannot delete cloud connector \"{}\" as it is being used by {} package policies",
            row.name, row.package_policy_count
        )));
    }
    if row.in_flight > 0 {
        return Err(CloudError::Conflict(format!("Cloud connector \"{}\" is being verified; delete it once the verification ends", row.name)));
    }
    store::detach_package_policies(&mut *tx, id).await?;
    store::delete_connector(&mut tx, id).await?;
    tx.commit().await?;
    state.events.publish(Event::cloud_connector_changed(id));
    Ok(())
}

/// "Verify now": the next run takes this connector first, cooldown or not
/// (never two verifications at once), and the task runs soon.
pub async fn request_verification(state: &AppState, id: &str) -> Result<CloudConnector> {
    if !state.config.enable_otel_verifier {
        return Err(CloudError::Invalid("The permission verifier is off on this Warden (enable_otel_verifier)".into()));
    }
    let row = store::connector(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    if row.package_policy_count == 0 {
        return Err(CloudError::Invalid(format!("Cloud connector \"{}\" has no package policy: there are no permissions to verify", row.name)));
    }
    store::request_verification(&state.db, id, now_ms()).await?;
    // A run in progress is followed by one more: the request is never lost.
    state.tasks.request_run(verifier::TASK_TYPE).await?;
    state.events.publish(Event::cloud_connector_changed(id));
    get(state, id).await
}

/// Kibana's `/usage`: the package policies that use a connector.
pub async fn usage(state: &AppState, id: &str, page: i64, per_page: i64) -> Result<Value> {
    store::connector(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let start = usize::try_from(page_offset(page, per_page)?).unwrap_or(usize::MAX);
    let all = store::package_policies_of_connector(&state.db, id).await?;
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(usize::try_from(per_page).unwrap_or(0))
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "package": {"name": p.package_name, "title": p.package_title, "version": p.package_version},
                "policy_ids": [p.policy_id],
                "created_at": rfc3339(p.created_at),
                "updated_at": rfc3339(p.updated_at),
            })
        })
        .collect();
    Ok(json!({"items": items, "total": total, "page": page, "perPage": per_page}))
}

// --- package policies ---

fn package_policy_not_found(id: &str) -> CloudError {
    CloudError::NotFound(format!("Package policy {id} not found"))
}

fn package_name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> CloudError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            CloudError::Conflict(format!("An integration policy with the name {name} already exists. Please rename it or choose a different name."))
        }
        _ => CloudError::Database(err),
    }
}

pub fn to_package_policy(row: PackagePolicyRow) -> PackagePolicy {
    let inputs: Vec<PackagePolicyInput> = serde_json::from_str(&row.inputs).unwrap_or_default();
    PackagePolicy {
        supports_cloud_connector: row.cloud_connector_id.is_some(),
        policy_ids: vec![row.policy_id.clone()],
        id: row.id,
        name: row.name,
        description: row.description,
        namespace: row.namespace,
        policy_id: row.policy_id,
        package: PackageRef { name: row.package_name, title: row.package_title, version: row.package_version },
        inputs,
        enabled: row.enabled != 0,
        cloud_connector_id: row.cloud_connector_id,
        revision: row.revision,
        created_at: rfc3339(row.created_at),
        created_by: row.created_by,
        updated_at: rfc3339(row.updated_at),
        updated_by: row.updated_by,
    }
}

pub async fn list_package_policies(state: &AppState, page: i64, per_page: i64) -> Result<PackagePolicyList> {
    let offset = page_offset(page, per_page)?;
    let items = store::package_policies(&state.db, per_page, offset).await?.into_iter().map(to_package_policy).collect();
    Ok(PackagePolicyList { items, total: store::count_package_policies(&state.db).await?, page, per_page })
}

pub async fn get_package_policy(state: &AppState, id: &str) -> Result<PackagePolicy> {
    store::package_policy(&state.db, id).await?.map(to_package_policy).ok_or_else(|| package_policy_not_found(id))
}

/// Checks a request inside `tx`: the agent policy exists and is not a
/// verifier's, the connector exists and suits the package.
async fn checked_package_policy(tx: &mut sqlx::AnyConnection, request: &PackagePolicyRequest) -> Result<String> {
    if request.package.name == VERIFIER_PACKAGE {
        return Err(CloudError::Invalid(format!("{VERIFIER_PACKAGE} package policies are Warden's own: the verifier task creates them")));
    }
    let provider = match request.cloud_connector_id.as_deref() {
        Some(connector_id) => {
            let connector = store::connector(&mut *tx, connector_id)
                .await?
                .ok_or_else(|| CloudError::Invalid(format!("[cloud_connector_id]: cloud connector {connector_id} not found")))?;
            Some(provider_of(&connector)?)
        }
        None => None,
    };
    let policy_id = check_package_policy(request, provider).map_err(CloudError::Invalid)?;
    let policy =
        fleet_store::policy(&mut *tx, &policy_id).await?.ok_or_else(|| CloudError::NotFound(format!("Agent policy {policy_id} not found")))?;
    if store::is_verifier_policy(&mut *tx, &policy.id).await? {
        return Err(CloudError::Invalid(format!("Agent policy {policy_id} is a verifier policy: Warden manages it")));
    }
    Ok(policy_id)
}

pub async fn create_package_policy(state: &AppState, request: PackagePolicyRequest, username: &str) -> Result<PackagePolicy> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let policy_id = checked_package_policy(&mut tx, &request).await?;
    let now = now_ms();
    let name = request.name.trim().to_owned();
    let row = PackagePolicyRow {
        id: uuid::Uuid::new_v4().to_string(),
        description: request.description,
        namespace: request.namespace.unwrap_or_else(|| "default".into()),
        policy_id: policy_id.clone(),
        package_name: request.package.name,
        package_title: request.package.title,
        package_version: request.package.version,
        inputs: serde_json::to_string(&request.inputs).map_err(anyhow::Error::from)?,
        enabled: i64::from(request.enabled),
        cloud_connector_id: request.cloud_connector_id,
        revision: 1,
        created_at: now,
        created_by: username.to_owned(),
        updated_at: now,
        updated_by: username.to_owned(),
        name: name.clone(),
    };
    store::insert_package_policy(&mut *tx, &row).await.map_err(package_name_taken(&name))?;
    store::bump_policy_revision(&mut *tx, &policy_id, now).await?;
    if let Some(connector) = &row.cloud_connector_id {
        // Its templates join the connector's plan: verified first, even when
        // the connector's last verification is recent.
        store::request_verification(&mut *tx, connector, now).await?;
    }
    tx.commit().await?;
    if let Some(connector) = &row.cloud_connector_id {
        state.events.publish(Event::cloud_connector_changed(connector));
        // A connector that has just been put to use is verified soon.
        verify_soon(state).await;
    }
    Ok(to_package_policy(row))
}

pub async fn update_package_policy(state: &AppState, id: &str, request: PackagePolicyRequest, username: &str) -> Result<PackagePolicy> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let old = store::package_policy(&mut *tx, id).await?.ok_or_else(|| package_policy_not_found(id))?;
    if old.package_name == VERIFIER_PACKAGE {
        return Err(CloudError::Invalid(format!("{VERIFIER_PACKAGE} package policies are Warden's own: the verifier task manages them")));
    }
    let policy_id = checked_package_policy(&mut tx, &request).await?;
    let now = now_ms();
    let name = request.name.trim().to_owned();
    let row = PackagePolicyRow {
        id: id.to_owned(),
        description: request.description,
        namespace: request.namespace.unwrap_or(old.namespace),
        policy_id: policy_id.clone(),
        package_name: request.package.name,
        package_title: request.package.title,
        package_version: request.package.version,
        inputs: serde_json::to_string(&request.inputs).map_err(anyhow::Error::from)?,
        enabled: i64::from(request.enabled),
        cloud_connector_id: request.cloud_connector_id,
        revision: old.revision + 1,
        created_at: old.created_at,
        created_by: old.created_by,
        updated_at: now,
        updated_by: username.to_owned(),
        name: name.clone(),
    };
    store::update_package_policy(&mut *tx, &row).await.map_err(package_name_taken(&name))?;
    store::bump_policy_revision(&mut *tx, &policy_id, now).await?;
    if let Some(connector) = &row.cloud_connector_id {
        // Its templates may have changed: the connector's plan with them is verified first.
        store::request_verification(&mut *tx, connector, now).await?;
    }
    tx.commit().await?;
    for connector in [old.cloud_connector_id.as_ref(), row.cloud_connector_id.as_ref()].into_iter().flatten() {
        state.events.publish(Event::cloud_connector_changed(connector));
    }
    if row.cloud_connector_id.is_some() {
        verify_soon(state).await;
    }
    Ok(to_package_policy(row))
}

/// Deletes one package policy; `false` when it did not exist (Fleet's
/// DELETE ignores a 404).
/// Fleet's bulk delete: each id on its own (its own transaction), each with
/// its outcome in Fleet's shape; at most 1,000.
pub async fn delete_package_policies(state: &AppState, ids: Vec<String>) -> Result<Vec<Value>> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(CloudError::Invalid("[request body.packagePolicyIds]: 1 to 1,000 ids".into()));
    }
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        results.push(match delete_package_policy(state, &id).await {
            Ok(Some(policy)) => json!({"id": id, "success": true, "name": policy.name, "policy_ids": policy.policy_ids, "package": policy.package}),
            Ok(None) => json!({"id": id, "success": false, "statusCode": 404, "body": {"message": format!("Package policy {id} not found")}}),
            Err(CloudError::Invalid(message)) => json!({"id": id, "success": false, "statusCode": 400, "body": {"message": message}}),
            Err(err) => return Err(err),
        });
    }
    Ok(results)
}

pub async fn delete_package_policy(state: &AppState, id: &str) -> Result<Option<PackagePolicy>> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let Some(old) = store::package_policy(&mut *tx, id).await? else {
        return Ok(None);
    };
    if old.package_name == VERIFIER_PACKAGE {
        return Err(CloudError::Invalid(format!("{VERIFIER_PACKAGE} package policies are Warden's own: the verifier task removes them")));
    }
    store::delete_package_policy(&mut *tx, id).await?;
    store::bump_policy_revision(&mut *tx, &old.policy_id, now_ms()).await?;
    tx.commit().await?;
    if let Some(connector) = &old.cloud_connector_id {
        state.events.publish(Event::cloud_connector_changed(connector));
    }
    Ok(Some(to_package_policy(old)))
}

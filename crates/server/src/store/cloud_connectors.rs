//! Cloud connectors, package policies, verifier policies and the
//! verifications with their per-permission records.

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ConnectorRow {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub cloud_provider: String,
    pub account_type: String,
    pub vars: String,
    pub secrets: String,
    pub secret_names: String,
    pub verification_status: Option<String>,
    pub verification_started_at: Option<i64>,
    pub verification_failed_at: Option<i64>,
    pub verification_failed_reason: Option<String>,
    pub verification_finished_at: Option<i64>,
    pub verification_requested_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    /// Package policies that use it (verifier policies not counted).
    pub package_policy_count: i64,
    /// Its verifier policy exists: a verification is in flight.
    pub in_flight: i64,
}

const CONNECTOR_SELECT: &str = "select c.id, c.name, c.namespace, c.cloud_provider, c.account_type, c.vars, c.secrets, c.secret_names,
        c.verification_status, c.verification_started_at, c.verification_failed_at, c.verification_failed_reason,
        c.verification_finished_at, c.verification_requested_at, c.created_at, c.created_by, c.updated_at, c.updated_by,
        (select count(*) from package_policies p where p.cloud_connector_id = c.id and p.package_name <> 'verifier_otel') as package_policy_count,
        (select count(*) from agent_policies a where a.is_verifier = 1 and a.cloud_connector_id = c.id) as in_flight
     from cloud_connectors c";

/// Every connector, newest first.
pub async fn connectors<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ConnectorRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{CONNECTOR_SELECT} order by c.created_at desc, c.id"))).fetch_all(db).await
}

pub async fn connector<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ConnectorRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{CONNECTOR_SELECT} where c.id = $1"))).bind(id).fetch_optional(db).await
}

/// The connectors some package policy uses: the task's candidates.
pub async fn connectors_in_use<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ConnectorRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONNECTOR_SELECT} where exists (select 1 from package_policies p where p.cloud_connector_id = c.id and p.package_name <> 'verifier_otel')
         order by c.created_at, c.id"
    )))
    .fetch_all(db)
    .await
}

pub async fn insert_connector<'e>(db: impl Executor<'e, Database = Any>, row: &ConnectorRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into cloud_connectors (id, name, name_key, namespace, cloud_provider, account_type, vars, secrets, secret_names,
            verification_status, created_at, created_by, updated_at, updated_by)
         values ($1, $2, $14, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.namespace)
    .bind(&row.cloud_provider)
    .bind(&row.account_type)
    .bind(&row.vars)
    .bind(&row.secrets)
    .bind(&row.secret_names)
    .bind(&row.verification_status)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(name_key(&row.name))
    .execute(db)
    .await?;
    Ok(())
}

/// Names are unique without case, the same on both engines (SQLite's
/// `lower` folds ASCII only, PostgreSQL's all of Unicode).
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Writes what an update may change; `reset` (credentials changed) sets the
/// status back to pending and asks for a verification, so the new
/// credentials are checked first however long the gate is closed.
pub async fn update_connector<'e>(db: impl Executor<'e, Database = Any>, row: &ConnectorRow, reset: bool) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update cloud_connectors set name = $2, name_key = $10, account_type = $3, vars = $4, secrets = $5, secret_names = $6,
            updated_at = $7, updated_by = $8,
            verification_status = case when $9 = 1 then 'pending' else verification_status end,
            verification_requested_at = case when $9 = 1 then $7 else verification_requested_at end
         where id = $1",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.account_type)
    .bind(&row.vars)
    .bind(&row.secrets)
    .bind(&row.secret_names)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(i64::from(reset))
    .bind(name_key(&row.name))
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete_connector(tx: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<bool> {
    sqlx::query(
        "delete from cloud_connector_permissions where verification_id in (select id from cloud_connector_verifications where connector_id = $1)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from cloud_connector_verifications where connector_id = $1").bind(id).execute(&mut *tx).await?;
    let result = sqlx::query("delete from cloud_connectors where id = $1").bind(id).execute(&mut *tx).await?;
    Ok(result.rows_affected() == 1)
}

pub async fn request_verification<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("update cloud_connectors set verification_requested_at = $2 where id = $1").bind(id).bind(at).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

/// A verification started: pending, with its start time (Kibana's stamp).
pub async fn mark_started<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("update cloud_connectors set verification_status = 'pending', verification_started_at = $2 where id = $1")
        .bind(id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// A verification ended: success, or failed with why.
pub async fn mark_finished<'e>(db: impl Executor<'e, Database = Any>, id: &str, status: &str, reason: Option<&str>, at: i64) -> sqlx::Result<()> {
    sqlx::query(
        "update cloud_connectors set verification_status = $2, verification_finished_at = $4,
            verification_failed_at = case when $2 = 'failed' then $4 else verification_failed_at end,
            verification_failed_reason = $3
         where id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// A verification could not start: failed with why, and a "Verify now"
/// that asked for it is spent (else it would be picked again on every run,
/// ahead of every other connector).
pub async fn mark_start_failed<'e>(db: impl Executor<'e, Database = Any>, id: &str, reason: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query(
        "update cloud_connectors set verification_status = 'failed', verification_finished_at = $3, verification_failed_at = $3,
            verification_failed_reason = $2, verification_requested_at = null
         where id = $1",
    )
    .bind(id)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct PackagePolicyRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    pub policy_id: String,
    pub package_name: String,
    pub package_title: Option<String>,
    pub package_version: String,
    pub inputs: String,
    pub enabled: i64,
    pub cloud_connector_id: Option<String>,
    pub revision: i64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

const PACKAGE_POLICY_COLUMNS: &str = "id, name, description, namespace, policy_id, package_name, package_title, package_version, inputs, enabled,
    cloud_connector_id, revision, created_at, created_by, updated_at, updated_by";

pub async fn package_policies<'e>(db: impl Executor<'e, Database = Any>, limit: i64, offset: i64) -> sqlx::Result<Vec<PackagePolicyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PACKAGE_POLICY_COLUMNS} from package_policies order by created_at desc, id limit $1 offset $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn count_package_policies<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from package_policies").fetch_one(db).await
}

pub async fn package_policy<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<PackagePolicyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {PACKAGE_POLICY_COLUMNS} from package_policies where id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The package policies that use a connector (verifier policies not included).
pub async fn package_policies_of_connector<'e>(db: impl Executor<'e, Database = Any>, connector_id: &str) -> sqlx::Result<Vec<PackagePolicyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PACKAGE_POLICY_COLUMNS} from package_policies where cloud_connector_id = $1 and package_name <> 'verifier_otel' order by created_at, id"
    )))
    .bind(connector_id)
    .fetch_all(db)
    .await
}

/// Every package policy that uses a connector: the task's pre-filter.
pub async fn package_policies_with_connector<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<PackagePolicyRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PACKAGE_POLICY_COLUMNS} from package_policies where cloud_connector_id is not null and package_name <> 'verifier_otel' order by created_at, id"
    )))
    .fetch_all(db)
    .await
}

pub async fn insert_package_policy<'e>(db: impl Executor<'e, Database = Any>, row: &PackagePolicyRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into package_policies (id, name, description, namespace, policy_id, package_name, package_title, package_version, inputs,
            enabled, cloud_connector_id, revision, created_at, created_by, updated_at, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.namespace)
    .bind(&row.policy_id)
    .bind(&row.package_name)
    .bind(&row.package_title)
    .bind(&row.package_version)
    .bind(&row.inputs)
    .bind(row.enabled)
    .bind(&row.cloud_connector_id)
    .bind(row.revision)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_package_policy<'e>(db: impl Executor<'e, Database = Any>, row: &PackagePolicyRow) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update package_policies set name = $2, description = $3, namespace = $4, policy_id = $5, package_name = $6, package_title = $7,
            package_version = $8, inputs = $9, enabled = $10, cloud_connector_id = $11, revision = revision + 1, updated_at = $12, updated_by = $13
         where id = $1",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.namespace)
    .bind(&row.policy_id)
    .bind(&row.package_name)
    .bind(&row.package_title)
    .bind(&row.package_version)
    .bind(&row.inputs)
    .bind(row.enabled)
    .bind(&row.cloud_connector_id)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete_package_policy<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("delete from package_policies where id = $1").bind(id).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

pub async fn bump_policy_revision<'e>(db: impl Executor<'e, Database = Any>, policy_id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("update agent_policies set revision = revision + 1, updated_at = $2 where id = $1").bind(policy_id).bind(at).execute(db).await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct VerifierPolicyRow {
    pub id: String,
    pub cloud_connector_id: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub async fn verifier_policies<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<VerifierPolicyRow>> {
    sqlx::query_as("select id, cloud_connector_id, created_at, expires_at from agent_policies where is_verifier = 1 order by created_at")
        .fetch_all(db)
        .await
}

/// A verifier agent policy; fails (unique violation) while another exists.
#[allow(clippy::too_many_arguments)]
pub async fn insert_verifier_policy<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    name: &str,
    description: &str,
    connector_id: &str,
    inactivity_timeout: i64,
    now: i64,
    expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into agent_policies (id, name, namespace, description, is_managed, inactivity_timeout, revision, created_at, updated_at,
            is_verifier, cloud_connector_id, expires_at)
         values ($1, $2, 'default', $3, 1, $4, 1, $5, $5, 1, $6, $7)",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(inactivity_timeout)
    .bind(now)
    .bind(connector_id)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Removes a verifier policy and everything under it: its package policy,
/// enrollment keys, and its agents with their actions and activity log.
/// `false` when it was already gone.
pub async fn delete_verifier_policy(tx: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<bool> {
    let in_policy = "(select a.id from agents a where a.policy_id = $1)";
    for table in ["agent_actions", "agent_events"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("delete from {table} where agent_id in {in_policy}"))).bind(id).execute(&mut *tx).await?;
    }
    sqlx::query("delete from agents where policy_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("delete from package_policies where policy_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("delete from enrollment_api_keys where policy_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("update cloud_connector_verifications set agent_policy_id = null where agent_policy_id = $1").bind(id).execute(&mut *tx).await?;
    let result = sqlx::query("delete from agent_policies where id = $1 and is_verifier = 1").bind(id).execute(&mut *tx).await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct VerificationRow {
    pub id: String,
    pub connector_id: String,
    pub agent_policy_id: Option<String>,
    pub checks: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: Option<String>,
    pub reason: Option<String>,
}

const VERIFICATION_COLUMNS: &str = "id, connector_id, agent_policy_id, checks, started_at, finished_at, status, reason";

pub async fn insert_verification<'e>(db: impl Executor<'e, Database = Any>, row: &VerificationRow) -> sqlx::Result<()> {
    sqlx::query("insert into cloud_connector_verifications (id, connector_id, agent_policy_id, checks, started_at) values ($1, $2, $3, $4, $5)")
        .bind(&row.id)
        .bind(&row.connector_id)
        .bind(&row.agent_policy_id)
        .bind(&row.checks)
        .bind(row.started_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn verification<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<VerificationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {VERIFICATION_COLUMNS} from cloud_connector_verifications where id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The unfinished verification run by a verifier policy.
pub async fn verification_of_policy<'e>(db: impl Executor<'e, Database = Any>, policy_id: &str) -> sqlx::Result<Option<VerificationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {VERIFICATION_COLUMNS} from cloud_connector_verifications where agent_policy_id = $1 and finished_at is null"
    )))
    .bind(policy_id)
    .fetch_optional(db)
    .await
}

/// A connector's finished verifications, newest first.
pub async fn finished_verifications<'e>(db: impl Executor<'e, Database = Any>, connector_id: &str, limit: i64) -> sqlx::Result<Vec<VerificationRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {VERIFICATION_COLUMNS} from cloud_connector_verifications v where connector_id = $1 and finished_at is not null
            and exists (select 1 from cloud_connector_permissions p where p.verification_id = v.id)
         order by finished_at desc, id limit $2"
    )))
    .bind(connector_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Ends a verification once (`false` when it had already ended).
pub async fn finish_verification<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    status: &str,
    reason: Option<&str>,
    at: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update cloud_connector_verifications set finished_at = $2, status = $3, reason = $4, agent_policy_id = null
         where id = $1 and finished_at is null",
    )
    .bind(id)
    .bind(at)
    .bind(status)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Keeps a connector's newest `keep` finished verifications (the page shows
/// the last; the rule compares it with the one before).
/// Keeps a connector's newest `keep` verifications that have results (what
/// the page and the rule compare) and its newest one of all; removes the
/// rest, so failures without results cannot push the last results out.
pub async fn prune_verifications(tx: &mut sqlx::AnyConnection, connector_id: &str, keep: usize) -> sqlx::Result<()> {
    let finished: Vec<(String, i64)> = sqlx::query_as(
        "select v.id, cast(case when exists (select 1 from cloud_connector_permissions p where p.verification_id = v.id) then 1 else 0 end as bigint)
         from cloud_connector_verifications v where connector_id = $1 and finished_at is not null order by finished_at desc, id",
    )
    .bind(connector_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut with_results = 0;
    for (position, (id, has_results)) in finished.iter().enumerate() {
        if *has_results == 1 {
            with_results += 1;
        }
        let kept = position == 0 || (*has_results == 1 && with_results <= keep);
        if !kept {
            sqlx::query("delete from cloud_connector_permissions where verification_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("delete from cloud_connector_verifications where id = $1").bind(id).execute(&mut *tx).await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct PermissionRow {
    pub verification_id: String,
    pub package_policy_id: String,
    pub policy_template: String,
    pub package_name: String,
    pub action: String,
    pub status: String,
    pub required: i64,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub method: Option<String>,
    pub duration_ms: Option<i64>,
    pub received_at: i64,
}

/// Records one permission's result; a repeat of the same check is ignored
/// (the verifier may retry a report). Returns whether it was new.
pub async fn insert_permission<'e>(db: impl Executor<'e, Database = Any>, row: &PermissionRow) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "insert into cloud_connector_permissions (verification_id, package_policy_id, policy_template, package_name, action, status, required,
            error_code, message, method, duration_ms, received_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (verification_id, package_policy_id, policy_template, action) do nothing",
    )
    .bind(&row.verification_id)
    .bind(&row.package_policy_id)
    .bind(&row.policy_template)
    .bind(&row.package_name)
    .bind(&row.action)
    .bind(&row.status)
    .bind(row.required)
    .bind(&row.error_code)
    .bind(&row.message)
    .bind(&row.method)
    .bind(row.duration_ms)
    .bind(row.received_at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn permissions<'e>(db: impl Executor<'e, Database = Any>, verification_id: &str) -> sqlx::Result<Vec<PermissionRow>> {
    sqlx::query_as(
        "select verification_id, package_policy_id, policy_template, package_name, action, status, required, error_code, message, method,
            duration_ms, received_at
         from cloud_connector_permissions where verification_id = $1 order by package_policy_id, policy_template, action",
    )
    .bind(verification_id)
    .fetch_all(db)
    .await
}

pub async fn count_permissions<'e>(db: impl Executor<'e, Database = Any>, verification_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from cloud_connector_permissions where verification_id = $1").bind(verification_id).fetch_one(db).await
}

/// Marks an enrollment key single-use.
pub async fn make_single_use<'e>(db: impl Executor<'e, Database = Any>, key_id: &str) -> sqlx::Result<()> {
    sqlx::query("update enrollment_api_keys set single_use = 1 where id = $1").bind(key_id).execute(db).await?;
    Ok(())
}

/// A deleted connector's package policies stay, without it.
pub async fn detach_package_policies<'e>(db: impl Executor<'e, Database = Any>, connector_id: &str) -> sqlx::Result<()> {
    sqlx::query("update package_policies set cloud_connector_id = null where cloud_connector_id = $1").bind(connector_id).execute(db).await?;
    Ok(())
}

pub async fn is_verifier_policy<'e>(db: impl Executor<'e, Database = Any>, policy_id: &str) -> sqlx::Result<bool> {
    let flag: Option<i64> = sqlx::query_scalar("select is_verifier from agent_policies where id = $1").bind(policy_id).fetch_optional(db).await?;
    Ok(flag.unwrap_or(0) != 0)
}

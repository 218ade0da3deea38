//! Rules, their runs and their alerts.

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub rule_type_id: String,
    pub consumer: String,
    pub enabled: i64,
    pub tags: String,
    pub schedule_interval: String,
    pub params: String,
    pub throttle: Option<String>,
    pub notify_when: Option<String>,
    pub actions: String,
    pub system_actions: String,
    pub mute_all: i64,
    pub muted_alert_ids: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
    pub api_key_owner: Option<String>,
    pub api_key_id: Option<String>,
    /// Encrypted (`crypto::Cipher`), bound to the rule's id.
    pub api_key_secret: Option<String>,
    pub revision: i64,
    pub execution_status: String,
    pub last_execution_date: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub execution_error_reason: Option<String>,
    pub execution_error_message: Option<String>,
    pub last_run: Option<String>,
    pub schedule_log: String,
}

const COLUMNS: &str = "id, name, rule_type_id, consumer, enabled, tags, schedule_interval, params, throttle, notify_when, actions, system_actions,
    mute_all, muted_alert_ids, created_by, created_at, updated_by, updated_at, api_key_owner, api_key_id, api_key_secret, revision,
    execution_status, last_execution_date, last_duration_ms, execution_error_reason, execution_error_message, last_run, schedule_log";

pub async fn by_id<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<RuleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from rules where id = $1"))).bind(id).fetch_optional(db).await
}

/// Inserts; `false` when the id is taken.
pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, row: &RuleRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into rules (id, name, rule_type_id, consumer, enabled, tags, schedule_interval, params, throttle, notify_when, actions,
             system_actions, mute_all, muted_alert_ids, created_by, created_at, updated_by, updated_at, api_key_owner, api_key_id,
             api_key_secret, revision, execution_status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
         on conflict (id) do nothing",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.rule_type_id)
    .bind(&row.consumer)
    .bind(row.enabled)
    .bind(&row.tags)
    .bind(&row.schedule_interval)
    .bind(&row.params)
    .bind(&row.throttle)
    .bind(&row.notify_when)
    .bind(&row.actions)
    .bind(&row.system_actions)
    .bind(row.mute_all)
    .bind(&row.muted_alert_ids)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(&row.updated_by)
    .bind(row.updated_at)
    .bind(&row.api_key_owner)
    .bind(&row.api_key_id)
    .bind(&row.api_key_secret)
    .bind(row.revision)
    .bind(&row.execution_status)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Saves what a PUT, `_enable`/`_disable` or `_mute_all` changes, and the key.
pub async fn update<'e>(db: impl Executor<'e, Database = Any>, row: &RuleRow) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update rules set name = $2, enabled = $3, tags = $4, schedule_interval = $5, params = $6, throttle = $7, notify_when = $8,
             actions = $9, system_actions = $10, mute_all = $11, muted_alert_ids = $12, updated_by = $13, updated_at = $14,
             api_key_owner = $15, api_key_id = $16, api_key_secret = $17, revision = $18, execution_status = $19
         where id = $1",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(row.enabled)
    .bind(&row.tags)
    .bind(&row.schedule_interval)
    .bind(&row.params)
    .bind(&row.throttle)
    .bind(&row.notify_when)
    .bind(&row.actions)
    .bind(&row.system_actions)
    .bind(row.mute_all)
    .bind(&row.muted_alert_ids)
    .bind(&row.updated_by)
    .bind(row.updated_at)
    .bind(&row.api_key_owner)
    .bind(&row.api_key_id)
    .bind(&row.api_key_secret)
    .bind(row.revision)
    .bind(&row.execution_status)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Deletes a rule with its runs and alerts.
pub async fn delete(tx: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<bool> {
    sqlx::query("delete from rule_runs where rule_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query("delete from alerts where rule_id = $1").bind(id).execute(&mut *tx).await?;
    Ok(sqlx::query("delete from rules where id = $1").bind(id).execute(&mut *tx).await?.rows_affected() == 1)
}

/// What `_find` may sort by, mapped to columns (never client text in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    CreatedAt,
    UpdatedAt,
    Enabled,
    LastExecution,
}

impl SortColumn {
    fn sql(self) -> &'static str {
        match self {
            SortColumn::Name => "lower(name)",
            SortColumn::CreatedAt => "created_at",
            SortColumn::UpdatedAt => "updated_at",
            SortColumn::Enabled => "enabled",
            SortColumn::LastExecution => "coalesce(last_execution_date, 0)",
        }
    }
}

pub struct FindRules<'a> {
    /// Lower-cased; matched as a substring of the name or a tag.
    pub search: Option<&'a str>,
    pub rule_type_id: Option<&'a str>,
    pub sort: SortColumn,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One page of rules, and how many match.
pub async fn find(db: &crate::db::Db, query: &FindRules<'_>) -> sqlx::Result<(Vec<RuleRow>, i64)> {
    let pattern = query.search.map(|s| format!("%{}%", escape_like(s)));
    let filter = "($1 is null or lower(name) like $1 escape '\\' or lower(tags) like $1 escape '\\') and ($2 is null or rule_type_id = $2)";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from rules where {filter}")))
        .bind(&pattern)
        .bind(query.rule_type_id)
        .fetch_one(db)
        .await?;
    let order = if query.descending { "desc" } else { "asc" };
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from rules where {filter} order by {} {order}, id limit $3 offset $4",
        query.sort.sql()
    )))
    .bind(&pattern)
    .bind(query.rule_type_id)
    .bind(query.limit)
    .bind(query.offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// Every rule's id, name and ordinary actions (system actions name no stored connector).
pub async fn all_actions<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as("select id, name, actions from rules order by lower(name), id").fetch_all(db).await
}

/// The enabled rules of one type (the ones a Fleet status change wakes).
pub async fn enabled_of_type<'e>(db: impl Executor<'e, Database = Any>, rule_type_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select id from rules where enabled = 1 and rule_type_id = $1").bind(rule_type_id).fetch_all(db).await
}

/// How a run ended, written to the rule.
pub struct RunRecord<'a> {
    pub execution_status: &'a str,
    pub last_execution_date: i64,
    pub last_duration_ms: i64,
    pub error_reason: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub last_run: &'a str,
}

pub async fn record_run<'e>(db: impl Executor<'e, Database = Any>, id: &str, run: &RunRecord<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "update rules set execution_status = $2, last_execution_date = $3, last_duration_ms = $4, execution_error_reason = $5,
             execution_error_message = $6, last_run = $7
         where id = $1",
    )
    .bind(id)
    .bind(run.execution_status)
    .bind(run.last_execution_date)
    .bind(run.last_duration_ms)
    .bind(run.error_reason)
    .bind(run.error_message)
    .bind(run.last_run)
    .execute(db)
    .await?;
    Ok(())
}

/// When each of the rule's summary and system actions last fired.
pub async fn set_schedule_log<'e>(db: impl Executor<'e, Database = Any>, id: &str, schedule_log: &str) -> sqlx::Result<()> {
    sqlx::query("update rules set schedule_log = $2 where id = $1").bind(id).bind(schedule_log).execute(db).await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct RunRow {
    pub id: String,
    pub rule_id: String,
    pub started_at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub message: Option<String>,
    pub new_alerts: i64,
    pub ongoing_alerts: i64,
    pub recovered_alerts: i64,
    pub actions_scheduled: i64,
    pub run_trigger: String,
}

/// How many runs of one rule the history keeps.
pub const RUNS_KEPT: i64 = 200;

pub async fn insert_run(tx: &mut sqlx::AnyConnection, row: &RunRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into rule_runs (id, rule_id, started_at, duration_ms, outcome, message, new_alerts, ongoing_alerts, recovered_alerts,
             actions_scheduled, run_trigger)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.id)
    .bind(&row.rule_id)
    .bind(row.started_at)
    .bind(row.duration_ms)
    .bind(&row.outcome)
    .bind(&row.message)
    .bind(row.new_alerts)
    .bind(row.ongoing_alerts)
    .bind(row.recovered_alerts)
    .bind(row.actions_scheduled)
    .bind(&row.run_trigger)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "delete from rule_runs where rule_id = $1 and id not in
           (select id from rule_runs where rule_id = $1 order by started_at desc, id desc limit $2)",
    )
    .bind(&row.rule_id)
    .bind(RUNS_KEPT)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn runs<'e>(db: impl Executor<'e, Database = Any>, rule_id: &str) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as(
        "select id, rule_id, started_at, duration_ms, outcome, message, new_alerts, ongoing_alerts, recovered_alerts, actions_scheduled,
             run_trigger
         from rule_runs where rule_id = $1 order by started_at desc, id desc",
    )
    .bind(rule_id)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertRow {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub instance_id: String,
    pub status: String,
    pub action_group: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub context: String,
    pub schedule_log: String,
    pub updated_at: i64,
}

const ALERT_COLUMNS: &str = "a.id, a.rule_id, r.name as rule_name, a.instance_id, a.status, a.action_group, a.started_at, a.ended_at, a.context,
    a.schedule_log, a.updated_at";

pub async fn active_alerts<'e>(db: impl Executor<'e, Database = Any>, rule_id: &str) -> sqlx::Result<Vec<AlertRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ALERT_COLUMNS} from alerts a join rules r on r.id = a.rule_id where a.rule_id = $1 and a.status = 'active'"
    )))
    .bind(rule_id)
    .fetch_all(db)
    .await
}

pub async fn alert_by_id<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<AlertRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {ALERT_COLUMNS} from alerts a join rules r on r.id = a.rule_id where a.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn insert_alert<'e>(db: impl Executor<'e, Database = Any>, row: &AlertRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into alerts (id, rule_id, instance_id, status, action_group, started_at, ended_at, context, schedule_log, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id)
    .bind(&row.rule_id)
    .bind(&row.instance_id)
    .bind(&row.status)
    .bind(&row.action_group)
    .bind(row.started_at)
    .bind(row.ended_at)
    .bind(&row.context)
    .bind(&row.schedule_log)
    .bind(row.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes an alert's state after a run (still active, or recovered).
pub async fn update_alert<'e>(db: impl Executor<'e, Database = Any>, row: &AlertRow) -> sqlx::Result<()> {
    sqlx::query("update alerts set status = $2, action_group = $3, ended_at = $4, context = $5, schedule_log = $6, updated_at = $7 where id = $1")
        .bind(&row.id)
        .bind(&row.status)
        .bind(&row.action_group)
        .bind(row.ended_at)
        .bind(&row.context)
        .bind(&row.schedule_log)
        .bind(row.updated_at)
        .execute(db)
        .await?;
    Ok(())
}

pub struct FindAlerts<'a> {
    pub rule_id: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Lower-cased substring of the instance (agent id) or the context (host name…).
    pub search: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of alerts, newest first, and how many match.
pub async fn find_alerts(db: &crate::db::Db, query: &FindAlerts<'_>) -> sqlx::Result<(Vec<AlertRow>, i64)> {
    let pattern = query.search.map(|s| format!("%{}%", escape_like(s)));
    let filter = "($1 is null or a.rule_id = $1) and ($2 is null or a.status = $2)
        and ($3 is null or lower(a.instance_id) like $3 escape '\\' or lower(a.context) like $3 escape '\\')";
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from alerts a where {filter}")))
        .bind(query.rule_id)
        .bind(query.status)
        .bind(&pattern)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {ALERT_COLUMNS} from alerts a join rules r on r.id = a.rule_id where {filter}
         order by a.status, a.started_at desc, a.id limit $4 offset $5"
    )))
    .bind(query.rule_id)
    .bind(query.status)
    .bind(&pattern)
    .bind(query.limit)
    .bind(query.offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// The cases an alert is attached to.
pub async fn case_ids_of_alert<'e>(db: impl Executor<'e, Database = Any>, alert_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select case_id from case_alerts where alert_id = $1 order by case_id").bind(alert_id).fetch_all(db).await
}

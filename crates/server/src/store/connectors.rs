//! Connectors and their execution log (their change history is in `changes`).

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ConnectorRow {
    pub id: String,
    pub name: String,
    pub connector_type_id: String,
    pub config: String,
    /// Encrypted (`crypto::Cipher`), bound to the id.
    pub secrets: String,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
}

const COLUMNS: &str = "id, name, connector_type_id, config, secrets, created_at, created_by, updated_at, updated_by";

pub async fn all<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ConnectorRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from connectors order by lower(name), id"))).fetch_all(db).await
}

pub async fn by_id<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ConnectorRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from connectors where id = $1"))).bind(id).fetch_optional(db).await
}

/// Inserts; `false` when the id is taken.
pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, row: &ConnectorRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into connectors (id, name, connector_type_id, config, secrets, created_at, created_by, updated_at, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict (id) do nothing",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.connector_type_id)
    .bind(&row.config)
    .bind(&row.secrets)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn update<'e>(db: impl Executor<'e, Database = Any>, row: &ConnectorRow) -> sqlx::Result<bool> {
    let updated = sqlx::query("update connectors set name = $2, config = $3, secrets = $4, updated_at = $5, updated_by = $6 where id = $1")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.config)
        .bind(&row.secrets)
        .bind(row.updated_at)
        .bind(&row.updated_by)
        .execute(db)
        .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn delete<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query("delete from connectors where id = $1").bind(id).execute(db).await?.rows_affected() == 1)
}

/// A deleted connector's runs go with it (its change history stays).
pub async fn delete_executions<'e>(db: impl Executor<'e, Database = Any>, connector_id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from connector_executions where connector_id = $1").bind(connector_id).execute(db).await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct ExecutionRow {
    pub id: String,
    pub connector_id: String,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status: String,
    pub message: Option<String>,
    pub service_message: Option<String>,
    /// 1 or 0; null when the run did not say.
    pub retry: Option<i64>,
    pub actor: String,
    pub source: String,
    /// Set when a rule scheduled the run.
    pub rule_id: Option<String>,
}

/// How many runs of one connector the log keeps.
pub const EXECUTIONS_KEPT: i64 = 200;

/// Records a run and drops the connector's runs beyond the newest `EXECUTIONS_KEPT`.
pub async fn insert_execution(tx: &mut sqlx::AnyConnection, row: &ExecutionRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into connector_executions (id, connector_id, started_at, duration_ms, status, message, service_message, retry, actor, source, rule_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.id)
    .bind(&row.connector_id)
    .bind(row.started_at)
    .bind(row.duration_ms)
    .bind(&row.status)
    .bind(&row.message)
    .bind(&row.service_message)
    .bind(row.retry)
    .bind(&row.actor)
    .bind(&row.source)
    .bind(&row.rule_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "delete from connector_executions where connector_id = $1 and id not in
           (select id from connector_executions where connector_id = $1 order by started_at desc, id desc limit $2)",
    )
    .bind(&row.connector_id)
    .bind(EXECUTIONS_KEPT)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A connector's runs, newest first.
pub async fn executions<'e>(db: impl Executor<'e, Database = Any>, connector_id: &str) -> sqlx::Result<Vec<ExecutionRow>> {
    sqlx::query_as(
        "select id, connector_id, started_at, duration_ms, status, message, service_message, retry, actor, source, rule_id
         from connector_executions where connector_id = $1 order by started_at desc, id desc",
    )
    .bind(connector_id)
    .fetch_all(db)
    .await
}

/// The runs a rule scheduled, newest first (at most `limit`).
pub async fn executions_for_rule<'e>(db: impl Executor<'e, Database = Any>, rule_id: &str, limit: i64) -> sqlx::Result<Vec<ExecutionRow>> {
    sqlx::query_as(
        "select id, connector_id, started_at, duration_ms, status, message, service_message, retry, actor, source, rule_id
         from connector_executions where rule_id = $1 order by started_at desc, id desc limit $2",
    )
    .bind(rule_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

//! API keys, the invalidation queue and the action parameters that hold a
//! key's secret.

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub username: String,
    pub key_type: String,
    pub rule_id: Option<String>,
    pub roles: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub invalidated_at: Option<i64>,
}

macro_rules! key_columns {
    () => {
        "k.id, k.name, k.user_id, u.username, k.key_type, k.rule_id, k.roles, k.secret_hash, k.created_at, k.expires_at, k.invalidated_at"
    };
}

pub struct NewKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub user_id: &'a str,
    pub key_type: &'a str,
    pub rule_id: Option<&'a str>,
    pub roles: &'a str,
    pub secret_hash: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, key: &NewKey<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into api_keys (id, name, user_id, key_type, rule_id, roles, secret_hash, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(key.id)
    .bind(key.name)
    .bind(key.user_id)
    .bind(key.key_type)
    .bind(key.rule_id)
    .bind(key.roles)
    .bind(key.secret_hash)
    .bind(key.created_at)
    .bind(key.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(concat!("select ", key_columns!(), " from api_keys k join users u on u.id = k.user_id where k.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Personal keys: the caller's, or everyone's for an administrator (`None`).
pub async fn list_personal<'e>(db: impl Executor<'e, Database = Any>, user_id: Option<&str>) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as(concat!(
        "select ",
        key_columns!(),
        " from api_keys k join users u on u.id = k.user_id
         where k.key_type = 'personal' and ($1 is null or k.user_id = $1) order by k.created_at desc, k.id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// The key a rule runs with now (the newest that is not invalidated or queued).
pub async fn current_for_rule<'e>(db: impl Executor<'e, Database = Any>, rule_id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(concat!(
        "select ",
        key_columns!(),
        " from api_keys k join users u on u.id = k.user_id
         where k.key_type = 'rule' and k.rule_id = $1 and k.invalidated_at is null
           and not exists (select 1 from api_key_pending_invalidation q where q.api_key_id = k.id)
         order by k.created_at desc limit 1"
    ))
    .bind(rule_id)
    .fetch_optional(db)
    .await
}

/// Marks one key invalidated now. False if it already was.
pub async fn invalidate<'e>(db: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<bool> {
    let result =
        sqlx::query("update api_keys set invalidated_at = $2 where id = $1 and invalidated_at is null").bind(id).bind(now).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

pub async fn enqueue<'e>(db: impl Executor<'e, Database = Any>, id: &str, reason: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("insert into api_key_pending_invalidation (api_key_id, created_at, reason) values ($1, $2, $3) on conflict (api_key_id) do nothing")
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn dequeue<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from api_key_pending_invalidation where api_key_id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// A queued key is still needed while an action task that holds it is
/// pending, running or waiting for a retry (a task that gave up is `failed`).
/// `not in` rather than `not exists`: both engines hash the subquery once,
/// whatever their statistics say (PostgreSQL picked a nested loop, 275 ms a
/// batch at 10,000 keys, on fresh tables).
macro_rules! referenced_keys_sql {
    () => {
        "(select p.api_key_id from action_task_params p join tasks t on t.id = p.task_id
          where t.status in ('idle', 'claiming', 'running'))"
    };
}

/// Tags up to `limit` queued keys that are due (waited `removal_delay`, or
/// asked for by a user) and no longer referenced, with `batch`.
pub async fn tag_due_batch<'e>(db: impl Executor<'e, Database = Any>, batch: &str, queued_before: i64, limit: i64) -> sqlx::Result<u64> {
    let result = sqlx::query(concat!(
        "update api_key_pending_invalidation set batch = $1 where api_key_id in (
             select q.api_key_id from api_key_pending_invalidation q
             where q.batch is null and (q.reason = 'user_request' or q.created_at <= $2) and q.api_key_id not in ",
        referenced_keys_sql!(),
        " order by q.created_at limit $3)"
    ))
    .bind(batch)
    .bind(queued_before)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

/// Invalidates the keys tagged with `batch`; returns how many were still valid.
pub async fn invalidate_batch<'e>(db: impl Executor<'e, Database = Any>, batch: &str, now: i64) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "update api_keys set invalidated_at = $2
         where invalidated_at is null and id in (select api_key_id from api_key_pending_invalidation where batch = $1)",
    )
    .bind(batch)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}

pub async fn dequeue_batch<'e>(db: impl Executor<'e, Database = Any>, batch: &str) -> sqlx::Result<u64> {
    let result = sqlx::query("delete from api_key_pending_invalidation where batch = $1").bind(batch).execute(db).await?;
    Ok(result.rows_affected())
}

/// What is left in the queue after a run: keys still referenced, keys still
/// waiting for their delay.
pub async fn queue_remainder<'e>(db: impl Executor<'e, Database = Any>, queued_before: i64) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(concat!(
        "select cast(coalesce(sum(case when q.api_key_id in ",
        referenced_keys_sql!(),
        " then 1 else 0 end), 0) as bigint),
                cast(coalesce(sum(case when q.api_key_id not in ",
        referenced_keys_sql!(),
        " and q.reason <> 'user_request' and q.created_at > $1 then 1 else 0 end), 0) as bigint)
         from api_key_pending_invalidation q"
    ))
    .bind(queued_before)
    .fetch_one(db)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ActionParamsRow {
    pub id: String,
    pub task_id: String,
    pub api_key_id: String,
    pub api_key_secret: String,
    pub params: String,
}

pub async fn insert_action_params<'e>(db: impl Executor<'e, Database = Any>, row: &ActionParamsRow, now: i64) -> sqlx::Result<()> {
    sqlx::query("insert into action_task_params (id, task_id, api_key_id, api_key_secret, params, created_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(&row.id)
        .bind(&row.task_id)
        .bind(&row.api_key_id)
        .bind(&row.api_key_secret)
        .bind(&row.params)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn action_params<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ActionParamsRow>> {
    sqlx::query_as("select id, task_id, api_key_id, api_key_secret, params from action_task_params where id = $1").bind(id).fetch_optional(db).await
}

/// Rows whose secret does not start with `prefix` (the current encryption's
/// mark), in id order so nodes that update them at once lock rows in the
/// same order.
pub async fn legacy_action_secrets<'e>(db: impl Executor<'e, Database = Any>, prefix: &str) -> sqlx::Result<Vec<ActionParamsRow>> {
    sqlx::query_as("select id, task_id, api_key_id, api_key_secret, params from action_task_params where api_key_secret not like $1 order by id")
        .bind(format!("{prefix}%"))
        .fetch_all(db)
        .await
}

/// Replaces a row's secret only if it still holds `old`: false if another
/// node re-encrypted (or the task removed) it meanwhile.
pub async fn replace_action_secret<'e>(db: impl Executor<'e, Database = Any>, id: &str, old: &str, new: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("update action_task_params set api_key_secret = $3 where id = $1 and api_key_secret = $2")
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

//! Task rows. Every write after a claim names the claim's `owner`, so a node
//! whose lease was taken over can no longer change the row.

use sqlx::{Any, Executor, FromRow};

use crate::db::Engine;

/// What a runner is handed when its task is claimed.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedRow {
    pub id: String,
    pub task_type: String,
    pub params: String,
    pub state: String,
    pub interval_ms: Option<i64>,
    pub attempts: i64,
}

/// One row as the health endpoint reads it.
#[derive(Debug, Clone, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub task_type: String,
    pub interval_ms: Option<i64>,
    pub run_at: i64,
    pub status: String,
    pub attempts: i64,
    pub last_run_at: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_result: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

/// Creates a recurring task once (first run now); later starts only update
/// its interval.
pub async fn ensure_recurring<'e>(db: impl Executor<'e, Database = Any>, id: &str, task_type: &str, interval_ms: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "insert into tasks (id, task_type, interval_ms, run_at, created_at) values ($1, $2, $3, $4, $4)
         on conflict (id) do update set interval_ms = excluded.interval_ms",
    )
    .bind(id)
    .bind(task_type)
    .bind(interval_ms)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_one_off<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    task_type: &str,
    params: &str,
    run_at: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("insert into tasks (id, task_type, params, run_at, created_at) values ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(task_type)
        .bind(params)
        .bind(run_at)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// The claim condition of `warden_core::tasks::claimable`, in SQL. It is
/// repeated on the outer UPDATE so that PostgreSQL re-checks it on a row
/// another node changed meanwhile; SQLite runs the whole statement under its
/// one write lock.
macro_rules! claimable_sql {
    () => {
        "((status = 'idle' and run_at <= $4) or (status in ('claiming', 'running') and (lease_until is null or lease_until < $4)))"
    };
}

const CLAIM_SQLITE: &str = concat!(
    "update tasks set status = 'claiming', owner = $1, lease_until = $2, attempts = attempts + 1 ",
    "where id in (select id from tasks where task_type = $3 and ",
    claimable_sql!(),
    " order by run_at limit $5) and ",
    claimable_sql!(),
    " returning id, task_type, params, state, interval_ms, attempts"
);

const CLAIM_POSTGRES: &str = concat!(
    "update tasks set status = 'claiming', owner = $1, lease_until = $2, attempts = attempts + 1 ",
    "where id in (select id from tasks where task_type = $3 and ",
    claimable_sql!(),
    " order by run_at limit $5 for update skip locked) and ",
    claimable_sql!(),
    " returning id, task_type, params, state, interval_ms, attempts"
);

/// Claims up to `limit` due tasks of one type for `owner`, in one statement.
pub async fn claim<'e>(
    db: impl Executor<'e, Database = Any>,
    engine: Engine,
    owner: &str,
    lease_until: i64,
    task_type: &str,
    now: i64,
    limit: i64,
) -> sqlx::Result<Vec<ClaimedRow>> {
    let sql = match engine {
        Engine::Sqlite => CLAIM_SQLITE,
        Engine::Postgres => CLAIM_POSTGRES,
    };
    sqlx::query_as(sql).bind(owner).bind(lease_until).bind(task_type).bind(now).bind(limit).fetch_all(db).await
}

/// Claimed → running. False if the claim was lost meanwhile.
pub async fn start<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str, now: i64, lease_until: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("update tasks set status = 'running', started_at = $3, lease_until = $4 where id = $1 and owner = $2")
        .bind(id)
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Extends the lease. False if another node took the task over.
pub async fn renew<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str, lease_until: i64) -> sqlx::Result<bool> {
    let result =
        sqlx::query("update tasks set lease_until = $3 where id = $1 and owner = $2").bind(id).bind(owner).bind(lease_until).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

/// How a run ended, as written to its row.
pub struct Finished<'a> {
    pub run_at: i64,
    pub retry_at: Option<i64>,
    pub attempts: i64,
    pub state: &'a str,
    pub started_at: i64,
    pub duration_ms: i64,
    pub error: Option<&'a str>,
    pub result: Option<&'a str>,
}

/// Idle again (rescheduled or retrying; at once if it was asked to run
/// meanwhile). False if the claim was lost.
pub async fn finish_idle<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str, f: &Finished<'_>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update tasks set status = 'idle', owner = null, lease_until = null, started_at = null,
             run_at = case when run_again = 1 then $7 + $8 else $3 end, run_again = 0, retry_at = $4, attempts = $5, state = $6, last_run_at = $7, last_duration_ms = $8,
             last_error = $9, last_result = coalesce($10, last_result), runs = runs + 1,
             failures = failures + (case when $9 is null then 0 else 1 end)
         where id = $1 and owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(f.run_at)
    .bind(f.retry_at)
    .bind(f.attempts)
    .bind(f.state)
    .bind(f.started_at)
    .bind(f.duration_ms)
    .bind(f.error)
    .bind(f.result)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A one-off task out of attempts stays, `failed`, for the record.
pub async fn finish_failed<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str, f: &Finished<'_>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update tasks set status = 'failed', owner = null, lease_until = null, started_at = null, retry_at = null,
             attempts = $3, last_run_at = $4, last_duration_ms = $5, last_error = $6, runs = runs + 1, failures = failures + 1
         where id = $1 and owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(f.attempts)
    .bind(f.started_at)
    .bind(f.duration_ms)
    .bind(f.error)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A one-off task that succeeded leaves, with the action parameters it held.
pub async fn delete_done<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("delete from tasks where id = $1 and owner = $2").bind(id).bind(owner).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete_action_params<'e>(db: impl Executor<'e, Database = Any>, task_id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from action_task_params where task_id = $1").bind(task_id).execute(db).await?;
    Ok(())
}

/// Removes one-off tasks that gave up before `before`.
pub async fn delete_failed_before<'e>(db: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    let result =
        sqlx::query("delete from tasks where interval_ms is null and status = 'failed' and last_run_at < $1").bind(before).execute(db).await?;
    Ok(result.rows_affected())
}

/// Hands a claim back untouched (a stopping node, a claim it could not start).
pub async fn release<'e>(db: impl Executor<'e, Database = Any>, id: &str, owner: &str) -> sqlx::Result<()> {
    sqlx::query("update tasks set status = 'idle', owner = null, lease_until = null, started_at = null where id = $1 and owner = $2")
        .bind(id)
        .bind(owner)
        .execute(db)
        .await?;
    Ok(())
}

/// Makes an idle (or failed) task due now. False if it is running or absent.
pub async fn run_soon<'e>(db: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<bool> {
    let result =
        sqlx::query("update tasks set run_at = $2, retry_at = null, status = 'idle', attempts = 0 where id = $1 and status in ('idle', 'failed')")
            .bind(id)
            .bind(now)
            .execute(db)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Asks a task to run as soon as it can: an idle one becomes due now; a
/// claimed or running one runs once more when it finishes (however many ask).
/// False if there is no such task.
pub async fn request_run<'e>(db: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update tasks set
             run_at = case when status = 'idle' and run_at > $2 then $2 else run_at end,
             run_again = case when status in ('claiming', 'running') then 1 else run_again end
         where id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from tasks where id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// When a task is next due, and whether it is running now.
pub async fn due<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as("select run_at, status from tasks where id = $1").bind(id).fetch_optional(db).await
}

pub async fn status_of<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select status from tasks where id = $1").bind(id).fetch_optional(db).await
}

pub async fn recurring<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<TaskRow>> {
    sqlx::query_as(
        "select id, task_type, interval_ms, run_at, status, attempts, last_run_at, last_duration_ms, last_error, last_result, runs, failures
         from tasks where interval_ms is not null order by task_type, id",
    )
    .fetch_all(db)
    .await
}

/// One-off tasks summed up per type.
#[derive(Debug, Clone, FromRow)]
pub struct OneOffSummary {
    pub task_type: String,
    pub count: i64,
    pub running: i64,
    pub failed: i64,
    pub next_run_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub failures: i64,
}

pub async fn one_off_summary<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<OneOffSummary>> {
    sqlx::query_as(
        "select task_type, count(*) as count,
                coalesce(sum(case when status in ('claiming', 'running') then 1 else 0 end), 0) as running,
                coalesce(sum(case when status = 'failed' then 1 else 0 end), 0) as failed,
                min(case when status = 'idle' then run_at end) as next_run_at,
                max(last_run_at) as last_run_at,
                cast(coalesce(sum(failures), 0) as bigint) as failures
         from tasks where interval_ms is null group by task_type order by task_type",
    )
    .fetch_all(db)
    .await
}

/// The newest error of a one-off type, if any row has one.
pub async fn last_one_off_error<'e>(db: impl Executor<'e, Database = Any>, task_type: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select last_error from tasks where interval_ms is null and task_type = $1 and last_error is not null
         order by last_run_at desc limit 1",
    )
    .bind(task_type)
    .fetch_optional(db)
    .await
}

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, Copy, FromRow)]
pub struct Window {
    pub failures: i64,
    pub window_started_at: i64,
}

/// The current window of `key`, if it started after `window_start_cutoff`.
pub async fn current<'e>(db: impl Executor<'e, Database = Any>, key: &str, window_start_cutoff: i64) -> sqlx::Result<Option<Window>> {
    sqlx::query_as("select failures, window_started_at from login_failures where key = $1 and window_started_at > $2")
        .bind(key)
        .bind(window_start_cutoff)
        .fetch_optional(db)
        .await
}

/// Counts one attempt against `key` if it is under `limit` in its window (a
/// new window starts when the old one is over), in one conditional write, so
/// concurrent attempts cannot all pass a check made before any of them was
/// counted. `false`: the limit is reached and nothing was written.
pub async fn reserve<'e>(db: impl Executor<'e, Database = Any>, key: &str, limit: i64, now: i64, window_start_cutoff: i64) -> sqlx::Result<bool> {
    let counted: Option<i64> = sqlx::query_scalar(
        "insert into login_failures (key, failures, window_started_at) values ($1, 1, $2)
         on conflict (key) do update set
           failures = case when login_failures.window_started_at > $3 then login_failures.failures + 1 else 1 end,
           window_started_at = case when login_failures.window_started_at > $3 then login_failures.window_started_at else $2 end
         where login_failures.window_started_at <= $3 or login_failures.failures < $4
         returning failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_start_cutoff)
    .bind(limit)
    .fetch_optional(db)
    .await?;
    Ok(counted.is_some())
}

/// Counts one failure, starting a new window when the old one is over.
pub async fn record<'e>(db: impl Executor<'e, Database = Any>, key: &str, now: i64, window_start_cutoff: i64) -> sqlx::Result<Window> {
    sqlx::query_as(
        "insert into login_failures (key, failures, window_started_at) values ($1, 1, $2)
         on conflict (key) do update set
           failures = case when login_failures.window_started_at > $3 then login_failures.failures + 1 else 1 end,
           window_started_at = case when login_failures.window_started_at > $3 then login_failures.window_started_at else $2 end
         returning failures, window_started_at",
    )
    .bind(key)
    .bind(now)
    .bind(window_start_cutoff)
    .fetch_one(db)
    .await
}

/// Gives back one reserved attempt that turned out to be a success.
pub async fn release<'e>(db: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("update login_failures set failures = failures - 1 where key = $1 and failures > 0").bind(key).execute(db).await?;
    Ok(())
}

pub async fn clear<'e>(db: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("delete from login_failures where key = $1").bind(key).execute(db).await?;
    Ok(())
}

/// Forgets windows that started before `cutoff` (they no longer throttle anyone).
pub async fn delete_before<'e>(db: impl Executor<'e, Database = Any>, cutoff: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query("delete from login_failures where window_started_at < $1").bind(cutoff).execute(db).await?.rows_affected())
}

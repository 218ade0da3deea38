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

pub async fn clear<'e>(db: impl Executor<'e, Database = Any>, key: &str) -> sqlx::Result<()> {
    sqlx::query("delete from login_failures where key = $1").bind(key).execute(db).await?;
    Ok(())
}

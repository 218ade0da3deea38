use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: String,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, token_hash: &str, user_id: &str, now: i64, expires_at: i64) -> sqlx::Result<()> {
    sqlx::query("insert into sessions (token_hash, user_id, created_at, last_seen_at, expires_at) values ($1, $2, $3, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get<'e>(db: impl Executor<'e, Database = Any>, token_hash: &str) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as("select user_id, last_seen_at, expires_at from sessions where token_hash = $1").bind(token_hash).fetch_optional(db).await
}

pub async fn touch<'e>(db: impl Executor<'e, Database = Any>, token_hash: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("update sessions set last_seen_at = $2 where token_hash = $1").bind(token_hash).bind(now).execute(db).await?;
    Ok(())
}

pub async fn delete<'e>(db: impl Executor<'e, Database = Any>, token_hash: &str) -> sqlx::Result<()> {
    sqlx::query("delete from sessions where token_hash = $1").bind(token_hash).execute(db).await?;
    Ok(())
}

/// Ends every session of a user (disabled, or password changed).
pub async fn delete_for_user<'e>(db: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<u64> {
    let result = sqlx::query("delete from sessions where user_id = $1").bind(user_id).execute(db).await?;
    Ok(result.rows_affected())
}

/// Drops sessions that can no longer be used.
pub async fn delete_expired<'e>(db: impl Executor<'e, Database = Any>, now: i64, idle_cutoff: i64) -> sqlx::Result<u64> {
    let result = sqlx::query("delete from sessions where expires_at <= $1 or last_seen_at <= $2").bind(now).bind(idle_cutoff).execute(db).await?;
    Ok(result.rows_affected())
}

//! Warden's own settings: small values written once per database by whichever
//! node needs them first, then read by every node.

use sqlx::{Any, Executor};

use crate::db::Db;

pub async fn get<'e>(db: impl Executor<'e, Database = Any>, name: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select value from settings where name = $1").bind(name).fetch_optional(db).await
}

/// Stores `value` under `name` unless a value is there already, and returns
/// the one stored: nodes starting together on one database agree on one.
pub async fn get_or_insert(db: &Db, name: &str, value: &str, now: i64) -> sqlx::Result<String> {
    sqlx::query("insert into settings (name, value, created_at) values ($1, $2, $3) on conflict (name) do nothing")
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(db)
        .await?;
    sqlx::query_scalar("select value from settings where name = $1").bind(name).fetch_one(db).await
}

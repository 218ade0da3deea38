use sqlx::{Any, Executor, FromRow};
use warden_core::authz::Role;

use crate::db::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub full_name: Option<String>,
    pub password_hash: String,
    pub roles: String,
    pub enabled: i64,
}

impl UserRow {
    /// Roles as stored (a JSON array of names). A name this build does not
    /// know grants nothing rather than failing the sign-in.
    pub fn roles(&self) -> Vec<Role> {
        let names: Vec<String> = serde_json::from_str(&self.roles).unwrap_or_default();
        names.iter().filter_map(|name| Role::parse(name)).collect()
    }

    pub fn enabled(&self) -> bool {
        self.enabled != 0
    }
}

pub fn roles_json(roles: &[Role]) -> String {
    serde_json::to_string(&roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

pub async fn insert<'e>(
    db: impl Executor<'e, Database = Any>,
    username: &str,
    full_name: Option<&str>,
    password_hash: &str,
    roles: &[Role],
) -> sqlx::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    sqlx::query(
        "insert into users (id, username, full_name, password_hash, roles, enabled, created_at, updated_at)
         values ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(&id)
    .bind(username)
    .bind(full_name)
    .bind(password_hash)
    .bind(roles_json(roles))
    .bind(now)
    .execute(db)
    .await?;
    Ok(id)
}

pub async fn by_username<'e>(db: impl Executor<'e, Database = Any>, username: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("select id, username, full_name, password_hash, roles, enabled from users where username = $1")
        .bind(username)
        .fetch_optional(db)
        .await
}

pub async fn by_id<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("select id, username, full_name, password_hash, roles, enabled from users where id = $1").bind(id).fetch_optional(db).await
}

pub async fn list<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as("select id, username, full_name, password_hash, roles, enabled from users order by username").fetch_all(db).await
}

/// Returns whether the user exists.
pub async fn set_password<'e>(db: impl Executor<'e, Database = Any>, username: &str, password_hash: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("update users set password_hash = $2, updated_at = $3 where username = $1")
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Returns whether the user exists.
pub async fn set_enabled<'e>(db: impl Executor<'e, Database = Any>, username: &str, enabled: bool) -> sqlx::Result<bool> {
    let result = sqlx::query("update users set enabled = $2, updated_at = $3 where username = $1")
        .bind(username)
        .bind(i64::from(enabled))
        .bind(now_ms())
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn set_roles<'e>(db: impl Executor<'e, Database = Any>, username: &str, roles: &[Role]) -> sqlx::Result<bool> {
    let result = sqlx::query("update users set roles = $2, updated_at = $3 where username = $1")
        .bind(username)
        .bind(roles_json(roles))
        .bind(now_ms())
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

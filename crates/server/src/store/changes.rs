//! The configuration audit trail: who created, changed or deleted which
//! connector or rule, when, and what (field names only, never a secret).

use sqlx::{Any, Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ChangeRow {
    pub id: String,
    /// `connector` or `rule`.
    pub object_type: String,
    pub object_id: String,
    pub change: String,
    pub changed_by: String,
    pub changed_at: i64,
    pub summary: String,
}

/// How many changes of one object the trail keeps.
pub const CHANGES_KEPT: i64 = 200;

/// Records a change and drops the object's changes beyond the newest `CHANGES_KEPT`.
pub async fn insert(tx: &mut sqlx::AnyConnection, change: &ChangeRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into config_changes (id, object_type, object_id, change, changed_by, changed_at, summary) values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&change.id)
    .bind(&change.object_type)
    .bind(&change.object_id)
    .bind(&change.change)
    .bind(&change.changed_by)
    .bind(change.changed_at)
    .bind(&change.summary)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "delete from config_changes where object_type = $1 and object_id = $2 and id not in
           (select id from config_changes where object_type = $1 and object_id = $2 order by changed_at desc, id desc limit $3)",
    )
    .bind(&change.object_type)
    .bind(&change.object_id)
    .bind(CHANGES_KEPT)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An object's history, newest first.
pub async fn of<'e>(db: impl Executor<'e, Database = Any>, object_type: &str, object_id: &str) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as(
        "select id, object_type, object_id, change, changed_by, changed_at, summary from config_changes
         where object_type = $1 and object_id = $2 order by changed_at desc, id desc",
    )
    .bind(object_type)
    .bind(object_id)
    .fetch_all(db)
    .await
}

//! Response actions, their targets, the files they move and the scripts
//! library (`migrations/0009_response_actions.sql`).

use sqlx::{Any, AnyConnection, Executor, FromRow};

use super::fleet::json_array;
use crate::db::Engine;

/// A JSON array of text bound as `$n`, as a subquery of its values.
fn values_of(engine: Engine, n: usize) -> String {
    match engine {
        Engine::Sqlite => format!("(select value from json_each(${n}))"),
        Engine::Postgres => format!("(select json_array_elements_text(${n}::json))"),
    }
}

fn text_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    json_array(items.map(|i| serde_json::json!(i)))
}

#[derive(Debug, Clone, FromRow)]
pub struct ActionRow {
    pub id: String,
    pub command: String,
    pub agent_type: String,
    pub parameters: String,
    pub comment: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub status: String,
    pub completed_at: Option<i64>,
    pub origin: String,
    pub alert_ids: Option<String>,
    pub case_ids: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub file_id: Option<String>,
    /// The bulk action it is part of (`0011_bulk_response_actions.sql`).
    pub bulk_id: Option<String>,
}

const ACTION_COLUMNS: &str = "a.id, a.command, a.agent_type, a.parameters, a.comment, a.created_by, a.created_at, a.expires_at, a.status, \
     a.completed_at, a.origin, a.alert_ids, a.case_ids, a.rule_id, a.rule_name, a.file_id, a.bulk_id";

#[derive(Debug, Clone, FromRow)]
pub struct TargetRow {
    pub action_id: String,
    pub external_id: Option<String>,
    pub agent_id: String,
    pub host_name: String,
    pub cancel_supported: i64,
    pub completed_at: Option<i64>,
    pub was_successful: i64,
    pub was_canceled: i64,
    pub canceled_by: Option<String>,
    pub cancel_action_id: Option<String>,
    pub is_expired: i64,
    pub errors: Option<String>,
    pub output: Option<String>,
}

/// A new target of a new action.
pub struct NewTarget<'a> {
    pub agent_id: &'a str,
    pub host_name: &'a str,
    pub cancel_supported: bool,
    /// The machine action an outside system created for it (MDE).
    pub external_id: Option<&'a str>,
}

pub async fn insert_action(tx: &mut AnyConnection, row: &ActionRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into response_actions (id, command, agent_type, parameters, comment, created_by, created_at, expires_at, status,
            completed_at, origin, alert_ids, case_ids, rule_id, rule_name, file_id, bulk_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(&row.id)
    .bind(&row.command)
    .bind(&row.agent_type)
    .bind(&row.parameters)
    .bind(&row.comment)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(&row.status)
    .bind(row.completed_at)
    .bind(&row.origin)
    .bind(&row.alert_ids)
    .bind(&row.case_ids)
    .bind(&row.rule_id)
    .bind(&row.rule_name)
    .bind(&row.file_id)
    .bind(&row.bulk_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The targets of a new action and, for Warden's own agents
/// (`agent_action_data`), the agent action each picks up at check-in, in
/// two statements however many agents there are.
pub async fn insert_targets(
    tx: &mut AnyConnection,
    engine: Engine,
    action: &ActionRow,
    targets: &[NewTarget<'_>],
    agent_action_data: Option<&str>,
) -> sqlx::Result<()> {
    let rows = json_array(targets.iter().map(|t| {
        serde_json::json!({"agent_id": t.agent_id, "host_name": t.host_name, "cancel_supported": t.cancel_supported as i64, "external_id": t.external_id})
    }));
    let (targets_sql, agent_actions_sql) = match engine {
        Engine::Sqlite => (
            "insert into response_action_targets (action_id, agent_id, created_at, host_name, cancel_supported, external_id)
             select $1, json_extract(x.value, '$.agent_id'), $2, json_extract(x.value, '$.host_name'), json_extract(x.value, '$.cancel_supported'),
                    json_extract(x.value, '$.external_id')
             from json_each($3) as x",
            "insert into agent_actions (id, agent_id, action_type, data, created_at, created_by)
             select $1, json_extract(x.value, '$.agent_id'), 'INPUT_ACTION', $4, $2, $5 from json_each($3) as x",
        ),
        Engine::Postgres => (
            "insert into response_action_targets (action_id, agent_id, created_at, host_name, cancel_supported, external_id)
             select $1, x->>'agent_id', $2, x->>'host_name', (x->>'cancel_supported')::bigint, x->>'external_id' from json_array_elements($3::json) as x",
            "insert into agent_actions (id, agent_id, action_type, data, created_at, created_by)
             select $1, x->>'agent_id', 'INPUT_ACTION', $4, $2, $5 from json_array_elements($3::json) as x",
        ),
    };
    sqlx::query(targets_sql).bind(&action.id).bind(action.created_at).bind(&rows).execute(&mut *tx).await?;
    let Some(agent_action_data) = agent_action_data else {
        return Ok(());
    };
    sqlx::query(agent_actions_sql)
        .bind(&action.id)
        .bind(action.created_at)
        .bind(&rows)
        .bind(agent_action_data)
        .bind(&action.created_by)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn get_action<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ActionRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {ACTION_COLUMNS} from response_actions a where a.id = $1"))).bind(id).fetch_optional(db).await
}

/// The targets of these actions; `outputs_of` lists the actions whose
/// outputs are read (the rest come without).
pub async fn targets_of<'e>(
    db: impl Executor<'e, Database = Any>,
    engine: Engine,
    ids: &[&str],
    outputs_of: &[&str],
) -> sqlx::Result<Vec<TargetRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select action_id, external_id, agent_id, host_name, cancel_supported, completed_at, was_successful, was_canceled, canceled_by,
            cancel_action_id, is_expired, errors, case when action_id in {} then output end as output
         from response_action_targets where action_id in {} order by action_id, agent_id",
        values_of(engine, 2),
        values_of(engine, 1)
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(text_array(ids.iter().copied())).bind(text_array(outputs_of.iter().copied())).fetch_all(db).await
}

/// The history's filters, in store terms.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub agent_ids: Vec<String>,
    pub agent_types: Vec<String>,
    pub commands: Vec<String>,
    pub statuses: Vec<String>,
    pub user_ids: Vec<String>,
    pub origins: Vec<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// `(…)` for `in`: a bind per value for a short list, so the planner sees
/// the values (PostgreSQL estimated a JSON list at 100 rows and scanned
/// every target); a JSON list beyond that.
fn in_list(engine: Engine, values: &[String], binds: &mut Vec<Bind>) -> String {
    if values.len() > 64 {
        binds.push(Bind::Text(text_array(values.iter().map(String::as_str))));
        return values_of(engine, binds.len());
    }
    let mut placeholders = Vec::with_capacity(values.len());
    for value in values {
        binds.push(Bind::Text(value.clone()));
        placeholders.push(format!("${}", binds.len()));
    }
    format!("({})", placeholders.join(", "))
}

/// The `where` clause and its binds (JSON lists as text, or numbers).
fn list_where(engine: Engine, filter: &ListFilter, now: i64) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    let list = |column: &str, values: &[String], clauses: &mut Vec<String>, binds: &mut Vec<Bind>| {
        if !values.is_empty() {
            let values = in_list(engine, values, binds);
            clauses.push(format!("{column} in {values}"));
        }
    };
    if !filter.agent_ids.is_empty() {
        // The targets carry the action's creation time, so a date range
        // narrows the agent's index range too (the history of a busy host).
        let mut sub = format!("t.agent_id in {}", in_list(engine, &filter.agent_ids, &mut binds));
        if let Some(start) = filter.start {
            binds.push(Bind::Int(start));
            sub.push_str(&format!(" and t.created_at >= ${}", binds.len()));
        }
        if let Some(end) = filter.end {
            binds.push(Bind::Int(end));
            sub.push_str(&format!(" and t.created_at <= ${}", binds.len()));
        }
        clauses.push(format!("a.id in (select t.action_id from response_action_targets t where {sub})"));
    }
    list("a.agent_type", &filter.agent_types, &mut clauses, &mut binds);
    list("a.command", &filter.commands, &mut clauses, &mut binds);
    list("a.created_by", &filter.user_ids, &mut clauses, &mut binds);
    list("a.origin", &filter.origins, &mut clauses, &mut binds);
    if !filter.statuses.is_empty() {
        binds.push(Bind::Int(now));
        let now_n = binds.len();
        let parts: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| match s.as_str() {
                "pending" => format!("(a.status = 'pending' and a.expires_at >= ${now_n})"),
                "failed" => format!("(a.status = 'failed' or (a.status = 'pending' and a.expires_at < ${now_n}))"),
                _ => "a.status = 'successful'".to_owned(),
            })
            .collect();
        clauses.push(format!("({})", parts.join(" or ")));
    }
    if let Some(start) = filter.start {
        binds.push(Bind::Int(start));
        clauses.push(format!("a.created_at >= ${}", binds.len()));
    }
    if let Some(end) = filter.end {
        binds.push(Bind::Int(end));
        clauses.push(format!("a.created_at <= ${}", binds.len()));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!(" where {}", clauses.join(" and ")) };
    (sql, binds)
}

enum Bind {
    Text(String),
    Int(i64),
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(n) => query.bind(*n),
            };
        }
        query
    }};
}

/// One page of the history, newest first, and how many match.
pub async fn list(db: &crate::db::Db, engine: Engine, filter: &ListFilter, now: i64, limit: i64, offset: i64) -> sqlx::Result<(Vec<ActionRow>, i64)> {
    let (clause, binds) = list_where(engine, filter, now);
    let n = binds.len();
    let page_sql =
        format!("select {ACTION_COLUMNS} from response_actions a{clause} order by a.created_at desc, a.id desc limit ${} offset ${}", n + 1, n + 2);
    let rows: Vec<ActionRow> = bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(page_sql)), &binds).bind(limit).bind(offset).fetch_all(db).await?;
    let count_sql = format!("select count(*) from response_actions a{clause}");
    let total: i64 = bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)), &binds).fetch_one(db).await?;
    Ok((rows, total))
}

/// A target's answer, written only while it is still pending: whichever of
/// completion, cancel and expiry comes first is the one terminal state.
pub struct Completion<'a> {
    pub action_id: &'a str,
    pub agent_id: &'a str,
    pub at: i64,
    pub successful: bool,
    pub errors: Option<String>,
    pub output: Option<String>,
    pub canceled_by: Option<&'a str>,
    pub cancel_action_id: Option<&'a str>,
}

pub async fn complete_target(tx: &mut AnyConnection, c: &Completion<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update response_action_targets set completed_at = $3, was_successful = $4, errors = $5, output = $6,
            was_canceled = $7, canceled_by = $8, cancel_action_id = $9
         where action_id = $1 and agent_id = $2 and completed_at is null",
    )
    .bind(c.action_id)
    .bind(c.agent_id)
    .bind(c.at)
    .bind(c.successful as i64)
    .bind(&c.errors)
    .bind(&c.output)
    .bind(c.canceled_by.is_some() as i64)
    .bind(c.canceled_by)
    .bind(c.cancel_action_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // The agent need not be asked again: its ack (or the cancel) settled it.
    sqlx::query("update agent_actions set acked_at = coalesce(acked_at, $3) where id = $1 and agent_id = $2")
        .bind(c.action_id)
        .bind(c.agent_id)
        .bind(c.at)
        .execute(&mut *tx)
        .await?;
    Ok(true)
}

/// A pending target whose outside system (MDE) runs it.
#[derive(Debug, Clone)]
pub struct ExternalTarget {
    pub action_id: String,
    pub agent_id: String,
    pub external_id: String,
    pub command: String,
    pub parameters: serde_json::Value,
    pub created_by: String,
}

/// Pending targets of `agent_type`'s actions that have a machine action to follow, oldest first.
pub async fn pending_external_targets<'e>(db: impl Executor<'e, Database = Any>, agent_type: &str, limit: i64) -> sqlx::Result<Vec<ExternalTarget>> {
    let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "select t.action_id, t.agent_id, t.external_id, a.command, a.parameters, a.created_by
         from response_actions a join response_action_targets t on t.action_id = a.id
         where a.status = 'pending' and a.agent_type = $1 and t.completed_at is null and t.external_id is not null
         order by a.created_at limit $2",
    )
    .bind(agent_type)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(action_id, agent_id, external_id, command, parameters, created_by)| ExternalTarget {
            action_id,
            agent_id,
            external_id,
            command,
            parameters: serde_json::from_str(&parameters).unwrap_or(serde_json::Value::Null),
            created_by,
        })
        .collect())
}

/// The oldest pending cancel that asked to cancel machine action
/// `external_id` on this host: `(its id, who sent it)`.
pub async fn pending_cancel_of(tx: &mut AnyConnection, agent_id: &str, external_id: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "select a.id, a.created_by from response_action_targets t join response_actions a on a.id = t.action_id
         where a.command = 'cancel' and t.agent_id = $1 and t.external_id = $2 and t.completed_at is null
         order by a.created_at limit 1",
    )
    .bind(agent_id)
    .bind(external_id)
    .fetch_optional(&mut *tx)
    .await
}

/// How a target ended: `(the cancel that ended it, whether it ended)`.
pub async fn target_end(tx: &mut AnyConnection, action_id: &str, agent_id: &str) -> sqlx::Result<Option<(Option<String>, bool)>> {
    let row: Option<(Option<String>, Option<i64>)> =
        sqlx::query_as("select cancel_action_id, completed_at from response_action_targets where action_id = $1 and agent_id = $2")
            .bind(action_id)
            .bind(agent_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(row.map(|(cancel, completed)| (cancel, completed.is_some())))
}

/// Sets the action's stored status from its targets once none is pending.
pub async fn settle_action(tx: &mut AnyConnection, action_id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query(
        "update response_actions set
            status = case when exists (select 1 from response_action_targets t where t.action_id = $1 and t.was_successful = 0)
                then 'failed' else 'successful' end,
            completed_at = $2
         where id = $1 and status = 'pending'
           and not exists (select 1 from response_action_targets t where t.action_id = $1 and t.completed_at is null)",
    )
    .bind(action_id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Pending actions past their expiry (at most `limit`), with their
/// unfinished targets.
pub async fn due_to_expire<'e>(db: impl Executor<'e, Database = Any>, now: i64, limit: i64) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "select t.action_id, t.agent_id from response_action_targets t
         where t.completed_at is null
           and t.action_id in (select a.id from response_actions a where a.status = 'pending' and a.expires_at < $1 order by a.expires_at limit $2)",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Marks a target expired (if still pending).
pub async fn expire_target(tx: &mut AnyConnection, action_id: &str, agent_id: &str, at: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update response_action_targets set completed_at = $3, was_successful = 0, is_expired = 1,
            errors = '[\"The action expired before the agent answered\"]'
         where action_id = $1 and agent_id = $2 and completed_at is null",
    )
    .bind(action_id)
    .bind(agent_id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update agent_actions set acked_at = coalesce(acked_at, $3), ack_error = 'expired' where id = $1 and agent_id = $2")
        .bind(action_id)
        .bind(agent_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Per agent and command, the actions still pending at `now`.
pub async fn pending_counts<'e>(
    db: impl Executor<'e, Database = Any>,
    engine: Engine,
    agent_ids: &[String],
    now: i64,
) -> sqlx::Result<Vec<(String, String, i64)>> {
    let sql = format!(
        "select t.agent_id, a.command, count(*) from response_action_targets t join response_actions a on a.id = t.action_id
         where t.agent_id in {} and t.completed_at is null and a.status = 'pending' and a.expires_at >= $2
         group by t.agent_id, a.command",
        values_of(engine, 1)
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(text_array(agent_ids.iter().map(String::as_str))).bind(now).fetch_all(db).await
}

/// Removes actions created before `before` (with their targets and agent
/// actions), at most `limit` at a time; returns how many.
pub async fn delete_actions_before(tx: &mut AnyConnection, before: i64, limit: i64) -> sqlx::Result<u64> {
    let ids: Vec<String> = sqlx::query_scalar("select id from response_actions where created_at < $1 order by created_at limit $2")
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    for id in &ids {
        sqlx::query("delete from agent_actions where id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("delete from response_action_targets where action_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("delete from response_actions where id = $1").bind(id).execute(&mut *tx).await?;
    }
    Ok(ids.len() as u64)
}

// --- bulk actions ---

#[derive(Debug, Clone, FromRow)]
pub struct BulkRow {
    pub id: String,
    pub command: String,
    pub agent_type: String,
    pub parameters: String,
    pub comment: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub kuery: Option<String>,
    pub selected: i64,
    pub refused_total: i64,
    /// JSON: the first refused hosts, with why.
    pub refused: String,
}

const BULK_COLUMNS: &str = "id, command, agent_type, parameters, comment, created_by, created_at, kuery, selected, refused_total, refused";

pub async fn insert_bulk(tx: &mut AnyConnection, bulk: &BulkRow) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into response_action_bulks ({BULK_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(&bulk.id)
    .bind(&bulk.command)
    .bind(&bulk.agent_type)
    .bind(&bulk.parameters)
    .bind(&bulk.comment)
    .bind(&bulk.created_by)
    .bind(bulk.created_at)
    .bind(&bulk.kuery)
    .bind(bulk.selected)
    .bind(bulk.refused_total)
    .bind(&bulk.refused)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_bulk<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<BulkRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {BULK_COLUMNS} from response_action_bulks where id = $1"))).bind(id).fetch_optional(db).await
}

/// Hosts left out after the bulk was written (they changed between the
/// preview's read and their chunk's transaction): counted, and the list
/// replaced by `refused` (already capped by the caller).
pub async fn add_bulk_refusals(tx: &mut AnyConnection, id: &str, added: i64, refused: &str) -> sqlx::Result<()> {
    sqlx::query("update response_action_bulks set refused_total = refused_total + $2, refused = $3 where id = $1")
        .bind(id)
        .bind(added)
        .bind(refused)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Removes a bulk that no action was written for (its first action failed).
pub async fn delete_bulk_without_actions(tx: &mut AnyConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from response_action_bulks where id = $1 and not exists (select 1 from response_actions a where a.bulk_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The actions of a bulk, in the order they were sent.
pub async fn actions_of_bulk<'e>(db: impl Executor<'e, Database = Any>, bulk_id: &str) -> sqlx::Result<Vec<ActionRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {ACTION_COLUMNS} from response_actions a where a.bulk_id = $1 order by a.created_at, a.id")))
        .bind(bulk_id)
        .fetch_all(db)
        .await
}

/// Removes bulks created before `before` whose actions retention removed;
/// returns how many.
pub async fn delete_bulks_before(tx: &mut AnyConnection, before: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from response_action_bulks where created_at < $1
           and not exists (select 1 from response_actions a where a.bulk_id = response_action_bulks.id)",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

// --- files ---

#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: String,
    pub direction: String,
    pub action_id: Option<String>,
    pub agent_id: Option<String>,
    pub upload_id: Option<String>,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: Option<String>,
    pub status: String,
    pub chunk_size: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

const FILE_COLUMNS: &str = "id, direction, action_id, agent_id, upload_id, name, mime_type, size, sha256, status, chunk_size, created_at, expires_at";

/// Inserts a file's row; a from-host file that exists already (an agent
/// that begins its upload again) is replaced, with its chunks.
pub async fn put_file(tx: &mut AnyConnection, file: &FileRow) -> sqlx::Result<()> {
    sqlx::query("delete from response_files where id = $1").bind(&file.id).execute(&mut *tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into response_files ({FILE_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(&file.id)
    .bind(&file.direction)
    .bind(&file.action_id)
    .bind(&file.agent_id)
    .bind(&file.upload_id)
    .bind(&file.name)
    .bind(&file.mime_type)
    .bind(file.size)
    .bind(&file.sha256)
    .bind(&file.status)
    .bind(file.chunk_size)
    .bind(file.created_at)
    .bind(file.expires_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_file<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<FileRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {FILE_COLUMNS} from response_files where id = $1"))).bind(id).fetch_optional(db).await
}

pub async fn file_by_upload<'e>(db: impl Executor<'e, Database = Any>, upload_id: &str) -> sqlx::Result<Option<FileRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {FILE_COLUMNS} from response_files where upload_id = $1")))
        .bind(upload_id)
        .fetch_optional(db)
        .await
}

pub async fn set_file_status<'e>(db: impl Executor<'e, Database = Any>, id: &str, status: &str) -> sqlx::Result<()> {
    sqlx::query("update response_files set status = $2 where id = $1").bind(id).bind(status).execute(db).await?;
    Ok(())
}

pub async fn put_chunk<'e>(db: impl Executor<'e, Database = Any>, file_id: &str, num: i64, sha2: &str, data: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "insert into response_file_chunks (file_id, num, sha2, data) values ($1, $2, $3, $4)
         on conflict (file_id, num) do update set sha2 = excluded.sha2, data = excluded.data",
    )
    .bind(file_id)
    .bind(num)
    .bind(sha2)
    .bind(data)
    .execute(db)
    .await?;
    Ok(())
}

/// `(num, sha2, size)` of a file's chunks, in order.
pub async fn chunk_list<'e>(db: impl Executor<'e, Database = Any>, file_id: &str) -> sqlx::Result<Vec<(i64, String, i64)>> {
    sqlx::query_as("select num, sha2, length(data) from response_file_chunks where file_id = $1 order by num").bind(file_id).fetch_all(db).await
}

/// A file's bytes, its chunks in order.
pub async fn file_bytes<'e>(db: impl Executor<'e, Database = Any>, file_id: &str) -> sqlx::Result<Vec<u8>> {
    let chunks: Vec<Vec<u8>> =
        sqlx::query_scalar("select data from response_file_chunks where file_id = $1 order by num").bind(file_id).fetch_all(db).await?;
    Ok(chunks.concat())
}

pub async fn delete_chunks<'e>(db: impl Executor<'e, Database = Any>, file_id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from response_file_chunks where file_id = $1").bind(file_id).execute(db).await?;
    Ok(())
}

/// Whether `agent_id` is a target of an action that sends file `file_id`.
pub async fn agent_may_fetch<'e>(db: impl Executor<'e, Database = Any>, file_id: &str, agent_id: &str) -> sqlx::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "select 1 from response_actions a join response_action_targets t on t.action_id = a.id
         where a.file_id = $1 and t.agent_id = $2 limit 1",
    )
    .bind(file_id)
    .bind(agent_id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// Removes files whose retention passed; returns how many.
pub async fn delete_expired_files(tx: &mut AnyConnection, now: i64) -> sqlx::Result<u64> {
    sqlx::query("delete from response_file_chunks where file_id in (select id from response_files where expires_at < $1)")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("delete from response_files where expires_at < $1").bind(now).execute(&mut *tx).await?;
    Ok(done.rows_affected())
}

// --- scripts library ---

#[derive(Debug, Clone, FromRow)]
pub struct ScriptRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub instructions: String,
    pub example: String,
    pub platform: String,
    pub requires_input: i64,
    pub file_id: String,
    pub file_name: String,
    pub file_size: i64,
    pub file_hash: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

const SCRIPT_COLUMNS: &str = "id, name, description, instructions, example, platform, requires_input, file_id, file_name, file_size, file_hash, \
     created_by, created_at, updated_by, updated_at";

pub async fn insert_script(tx: &mut AnyConnection, s: &ScriptRow) -> sqlx::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into scripts ({SCRIPT_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    )))
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.instructions)
    .bind(&s.example)
    .bind(&s.platform)
    .bind(s.requires_input)
    .bind(&s.file_id)
    .bind(&s.file_name)
    .bind(s.file_size)
    .bind(&s.file_hash)
    .bind(&s.created_by)
    .bind(s.created_at)
    .bind(&s.updated_by)
    .bind(s.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn update_script(tx: &mut AnyConnection, s: &ScriptRow) -> sqlx::Result<()> {
    sqlx::query(
        "update scripts set name = $2, description = $3, instructions = $4, example = $5, platform = $6, requires_input = $7,
            file_id = $8, file_name = $9, file_size = $10, file_hash = $11, updated_by = $12, updated_at = $13 where id = $1",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.instructions)
    .bind(&s.example)
    .bind(&s.platform)
    .bind(s.requires_input)
    .bind(&s.file_id)
    .bind(&s.file_name)
    .bind(s.file_size)
    .bind(&s.file_hash)
    .bind(&s.updated_by)
    .bind(s.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn get_script<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ScriptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {SCRIPT_COLUMNS} from scripts where id = $1"))).bind(id).fetch_optional(db).await
}

pub async fn list_scripts<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ScriptRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {SCRIPT_COLUMNS} from scripts order by name"))).fetch_all(db).await
}

pub async fn delete_script(tx: &mut AnyConnection, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from scripts where id = $1").bind(id).execute(&mut *tx).await?;
    Ok(done.rows_affected() > 0)
}

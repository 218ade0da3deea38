//! Fleet's SQL: policies, enrollment keys, agents, agent actions and events.

use serde::Deserialize;
use sqlx::{Any, Executor, FromRow};
use warden_core::kuery::{Field, Op, Query};

use crate::db::Engine;

macro_rules! agent_columns {
    () => {
        "a.id, a.policy_id, a.agent_type, a.active, a.enrolled_at, a.unenrolled_at, a.unenrollment_started_at,
         a.audit_unenrolled_reason, a.audit_unenrolled_time, a.audit_unenrolled_details, a.last_heard_at, a.policy_revision,
         a.last_checkin, a.last_checkin_status, a.last_checkin_message, a.local_metadata, a.user_provided_metadata, a.tags, a.components, a.hostname, a.version,
         a.access_api_key_id, a.access_key_hash, a.key_revoked, a.last_known_status, a.rejected_count, a.last_rejected_at,
         a.force_unenrolled_by, a.force_unenrolled_at, a.host_id, a.replaced_by, a.replaced_at, a.replaces, a.host_conflict_with,
         a.replace_token_hash, p.inactivity_timeout, p.keep_agent_id_on_reenroll"
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct AgentRow {
    pub id: String,
    pub policy_id: String,
    pub agent_type: String,
    pub active: i64,
    pub enrolled_at: i64,
    pub unenrolled_at: Option<i64>,
    pub unenrollment_started_at: Option<i64>,
    pub audit_unenrolled_reason: Option<String>,
    pub audit_unenrolled_time: Option<i64>,
    pub audit_unenrolled_details: Option<String>,
    pub last_heard_at: Option<i64>,
    pub policy_revision: Option<i64>,
    pub last_checkin: Option<i64>,
    pub last_checkin_status: Option<String>,
    pub last_checkin_message: Option<String>,
    pub local_metadata: String,
    pub user_provided_metadata: String,
    pub tags: String,
    pub components: String,
    pub hostname: String,
    pub version: String,
    pub access_api_key_id: String,
    pub access_key_hash: String,
    pub key_revoked: i64,
    pub last_known_status: Option<String>,
    pub rejected_count: i64,
    pub last_rejected_at: Option<i64>,
    pub force_unenrolled_by: Option<String>,
    pub force_unenrolled_at: Option<i64>,
    pub host_id: Option<String>,
    pub replaced_by: Option<String>,
    pub replaced_at: Option<i64>,
    pub replaces: Option<String>,
    pub host_conflict_with: Option<String>,
    pub replace_token_hash: Option<String>,
    pub inactivity_timeout: i64,
    pub keep_agent_id_on_reenroll: i64,
}

/// What listing, counting and filtering need: no JSON documents, so 10,000
/// rows read quickly. Read as one JSON array (see `agent_facts_matching`),
/// so the fields are in the order of `FACTS_ARRAY`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentFactsRow {
    pub id: String,
    pub policy_id: String,
    pub active: i64,
    pub enrolled_at: i64,
    pub unenrollment_started_at: Option<i64>,
    pub audit_unenrolled_reason: Option<String>,
    pub last_heard_at: Option<i64>,
    pub policy_revision: Option<i64>,
    pub last_checkin: Option<i64>,
    pub last_checkin_status: Option<String>,
    pub hostname: String,
    pub version: String,
    pub tags: String,
    pub last_known_status: Option<String>,
    pub replaced_at: Option<i64>,
    pub host_conflict_with: Option<String>,
    pub inactivity_timeout: i64,
}

/// One agent's facts as a JSON array, in `AgentFactsRow`'s field order.
macro_rules! facts_array {
    () => {
        "a.id, a.policy_id, a.active, a.enrolled_at, a.unenrollment_started_at, a.audit_unenrolled_reason, a.last_heard_at,
         a.policy_revision, a.last_checkin, a.last_checkin_status, a.hostname, a.version, a.tags, a.last_known_status,
         a.replaced_at, a.host_conflict_with, p.inactivity_timeout"
    };
}

pub async fn all_agent_facts<'e>(db: impl Executor<'e, Database = Any>, engine: Engine) -> sqlx::Result<Vec<AgentFactsRow>> {
    agent_facts_matching(db, engine, None).await
}

/// The facts of every agent that may match `query`: the SQL keeps only rows
/// that `kuery_prefilter` cannot rule out, and the caller evaluates the
/// query itself on them.
///
/// The rows come back as one JSON array in one row. Read as 10,000 rows, sqlx
/// copied every value twice and handed each row between its SQLite worker
/// thread and the async side: 39 ms of a 47 ms Fleet-list request
/// (docs/perf.md). One text value crosses once, and serde reads it in a few.
pub async fn agent_facts_matching<'e>(
    db: impl Executor<'e, Database = Any>,
    engine: Engine,
    query: Option<&Query>,
) -> sqlx::Result<Vec<AgentFactsRow>> {
    let select = match engine {
        Engine::Sqlite => concat!("select json_group_array(json_array(", facts_array!(), "))"),
        Engine::Postgres => concat!("select coalesce(json_agg(json_build_array(", facts_array!(), ")), '[]')::text"),
    };
    let from = "from agents a join agent_policies p on p.id = a.policy_id";
    let mut values = Vec::new();
    let sql = match query.and_then(|q| kuery_prefilter(q, engine, &mut values)) {
        // Safe: the condition is built only from fixed column names and
        // numbered placeholders; every client value is bound.
        Some(condition) => format!("{select} {from} where {condition}"),
        None => format!("{select} {from}"),
    };
    let mut statement = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for value in values {
        statement = statement.bind(value);
    }
    let json = statement.fetch_one(db).await?;
    serde_json::from_str(&json).map_err(|err| sqlx::Error::Decode(err.into()))
}

/// A necessary condition for `query` in SQL, over the columns SQL can see
/// (policy id, host name, version), with its values appended to `values`:
/// a row it rules out can never match, so the kuery evaluated afterwards
/// stays the one rule. `lower(…) like lower(…)` is exactly the kuery's ASCII
/// case folding: SQLite's `lower` folds only ASCII, and on PostgreSQL the "C"
/// collation makes it so (in a Turkish-locale database `lower('I')` is `ı`,
/// which would rule out a host the kuery matches). `None`: nothing can be
/// ruled out (status, tags, `not`, a version range).
pub fn kuery_prefilter(query: &Query, engine: Engine, values: &mut Vec<String>) -> Option<String> {
    let mark = values.len();
    let condition = match query {
        Query::Compare(field, Op::Eq, value) => {
            let column = match field {
                Field::PolicyId => "a.policy_id",
                Field::Hostname => "a.hostname",
                Field::Version => "a.version",
                Field::Status | Field::Tags => return None,
            };
            values.push(like_pattern(value));
            let n = values.len();
            Some(match engine {
                Engine::Sqlite => format!("lower({column}) like lower(${n}) escape '\\'"),
                Engine::Postgres => format!(r#"lower({column} collate "C") like lower(${n} collate "C") escape '\'"#),
            })
        }
        Query::And(a, b) => match (kuery_prefilter(a, engine, values), kuery_prefilter(b, engine, values)) {
            (Some(a), Some(b)) => Some(format!("({a} and {b})")),
            (one, other) => one.or(other),
        },
        Query::Or(a, b) => match (kuery_prefilter(a, engine, values), kuery_prefilter(b, engine, values)) {
            (Some(a), Some(b)) => Some(format!("({a} or {b})")),
            _ => None,
        },
        Query::Compare(..) | Query::Not(_) => None,
    };
    if condition.is_none() {
        values.truncate(mark);
    }
    condition
}

/// A kuery value as a LIKE pattern: `*` is any run, and LIKE's own
/// wildcards and escape character match only themselves.
fn like_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => pattern.push('%'),
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(c);
            }
            c => pattern.push(c),
        }
    }
    pattern
}

pub async fn agent<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as(concat!("select ", agent_columns!(), " from agents a join agent_policies p on p.id = a.policy_id where a.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Several agents' full rows in one query (a page of the Fleet list), in no
/// particular order; ids of deleted agents are simply missing.
pub async fn agents_by_ids(db: impl Executor<'_, Database = Any>, engine: Engine, ids: &[&str]) -> sqlx::Result<Vec<AgentRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_array(ids.iter().map(|id| serde_json::json!(id)));
    let sql = match engine {
        Engine::Sqlite => concat!(
            "select ",
            agent_columns!(),
            " from agents a join agent_policies p on p.id = a.policy_id where a.id in (select value from json_each($1))"
        ),
        Engine::Postgres => concat!(
            "select ",
            agent_columns!(),
            " from agents a join agent_policies p on p.id = a.policy_id where a.id in (select json_array_elements_text($1::json))"
        ),
    };
    sqlx::query_as(sql).bind(ids).fetch_all(db).await
}

pub async fn agent_by_key_id<'e>(db: impl Executor<'e, Database = Any>, key_id: &str) -> sqlx::Result<Option<AgentRow>> {
    sqlx::query_as(concat!("select ", agent_columns!(), " from agents a join agent_policies p on p.id = a.policy_id where a.access_api_key_id = $1"))
        .bind(key_id)
        .fetch_optional(db)
        .await
}

pub struct NewAgent<'a> {
    pub id: &'a str,
    pub policy_id: &'a str,
    pub policy_revision: i64,
    pub agent_type: &'a str,
    pub enrolled_at: i64,
    pub local_metadata: &'a str,
    pub user_provided_metadata: &'a str,
    pub tags: &'a str,
    pub hostname: &'a str,
    pub version: &'a str,
    pub access_api_key_id: &'a str,
    pub access_key_hash: &'a str,
    pub host_id: Option<&'a str>,
    pub replace_token_hash: Option<&'a str>,
}

pub async fn insert_agent<'e>(db: impl Executor<'e, Database = Any>, agent: NewAgent<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into agents (id, policy_id, policy_revision, agent_type, active, enrolled_at, local_metadata,
            user_provided_metadata, tags, components, hostname, version, access_api_key_id, access_key_hash, last_known_status,
            host_id, replace_token_hash)
         values ($1, $2, $3, $4, 1, $5, $6, $7, $8, '[]', $9, $10, $11, $12, 'enrolling', $13, $14)",
    )
    .bind(agent.id)
    .bind(agent.policy_id)
    .bind(agent.policy_revision)
    .bind(agent.agent_type)
    .bind(agent.enrolled_at)
    .bind(agent.local_metadata)
    .bind(agent.user_provided_metadata)
    .bind(agent.tags)
    .bind(agent.hostname)
    .bind(agent.version)
    .bind(agent.access_api_key_id)
    .bind(agent.access_key_hash)
    .bind(agent.host_id)
    .bind(agent.replace_token_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// The same agent enrolled again (its policy keeps agent ids): a new key and
/// what it reports now; its state starts over as a new enrollment's would,
/// and its history and id stay.
pub async fn reenroll_agent<'e>(db: impl Executor<'e, Database = Any>, agent: NewAgent<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "update agents set policy_revision = $2, agent_type = $3, enrolled_at = $4, local_metadata = $5, user_provided_metadata = $6,
            tags = $7, hostname = $8, version = $9, access_api_key_id = $10, access_key_hash = $11, last_known_status = 'enrolling',
            last_checkin = null, last_checkin_status = null, last_checkin_message = null, unenrollment_started_at = null,
            audit_unenrolled_reason = null, audit_unenrolled_time = null, audit_unenrolled_details = null, last_heard_at = null
         where id = $1 and active = 1",
    )
    .bind(agent.id)
    .bind(agent.policy_revision)
    .bind(agent.agent_type)
    .bind(agent.enrolled_at)
    .bind(agent.local_metadata)
    .bind(agent.user_provided_metadata)
    .bind(agent.tags)
    .bind(agent.hostname)
    .bind(agent.version)
    .bind(agent.access_api_key_id)
    .bind(agent.access_key_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// The active agents that already claim `host_id` (at most one, but a race
/// between two enrollments could leave two), oldest first.
pub async fn agents_on_host<'e>(db: impl Executor<'e, Database = Any>, host_id: &str) -> sqlx::Result<Vec<AgentRow>> {
    sqlx::query_as(concat!(
        "select ",
        agent_columns!(),
        " from agents a join agent_policies p on p.id = a.policy_id
         where a.host_id = $1 and a.active = 1 and a.replaced_by is null order by a.enrolled_at, a.id"
    ))
    .bind(host_id)
    .fetch_all(db)
    .await
}

/// Removes agents for good, with their activity logs and actions (which
/// reference them); an agent that named one as the agent it replaced no
/// longer does. Response-action history keeps its targets' host names (no
/// reference to `agents`), and alerts their context. Returns how many went.
pub async fn delete_agents(tx: &mut sqlx::AnyConnection, engine: Engine, ids: &[&str]) -> sqlx::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids = json_array(ids.iter().map(|id| serde_json::json!(id)));
    let within = match engine {
        Engine::Sqlite => "(select value from json_each($1))",
        Engine::Postgres => "(select json_array_elements_text($1::json))",
    };
    // Safe: only the fixed subquery above is spliced in; the ids are bound.
    for statement in [
        format!("delete from agent_events where agent_id in {within}"),
        format!("delete from agent_actions where agent_id in {within}"),
        format!("update agents set replaces = null where replaces in {within}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).bind(&ids).execute(&mut *tx).await?;
    }
    let removed = sqlx::query(sqlx::AssertSqlSafe(format!("delete from agents where id in {within}"))).bind(&ids).execute(&mut *tx).await?;
    Ok(removed.rows_affected())
}

/// Marks `old` replaced by `new` (unless it was meanwhile), and names it on
/// the new agent; false: nothing changed.
pub async fn mark_replaced(db: &mut sqlx::AnyConnection, old: &str, new: &str, at: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agents set replaced_by = $2, replaced_at = $3, last_known_status = 'replaced'
         where id = $1 and active = 1 and replaced_by is null",
    )
    .bind(old)
    .bind(new)
    .bind(at)
    .execute(&mut *db)
    .await?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("update agents set replaces = $2 where id = $1").bind(new).bind(old).execute(&mut *db).await?;
    Ok(true)
}

/// A replaced agent checked in: it and the agent that replaced it both claim
/// the host. False: they already did, or one of them is gone or leaving (an
/// analyst asked it to unenroll: that settled it).
pub async fn start_host_conflict(db: &mut sqlx::AnyConnection, replaced: &str, replacer: &str) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agents set host_conflict_with = $2, last_known_status = 'conflict'
         where id = $1 and active = 1 and replaced_by = $2 and host_conflict_with is null and unenrollment_started_at is null
            and exists (select 1 from agents b where b.id = $2 and b.active = 1 and b.unenrollment_started_at is null)",
    )
    .bind(replaced)
    .bind(replacer)
    .execute(&mut *db)
    .await?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("update agents set host_conflict_with = $2, last_known_status = 'conflict' where id = $1 and active = 1")
        .bind(replacer)
        .bind(replaced)
        .execute(&mut *db)
        .await?;
    Ok(true)
}

/// A replaced agent checked in, and the agent that replaced it has been
/// unenrolled meanwhile: the host is this agent's again. False: it is not so.
pub async fn reclaim_host<'e>(db: impl Executor<'e, Database = Any>, replaced: &str, replacer: &str) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agents set replaced_by = null, replaced_at = null
         where id = $1 and replaced_by = $2 and not exists (select 1 from agents b where b.id = $2 and b.active = 1)",
    )
    .bind(replaced)
    .bind(replacer)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The analyst unenrolled `ids` (or asked them to unenroll): the agents they
/// were in conflict with are alone on their hosts again, and one that an unenrolled agent had
/// replaced is in charge again (the analyst chose it). Returns
/// `(agent, the unenrolled one)` for each agent it freed.
pub async fn end_host_conflicts(tx: &mut sqlx::AnyConnection, engine: Engine, ids: &[&str]) -> sqlx::Result<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_array(ids.iter().map(|id| serde_json::json!(id)));
    let within = match engine {
        Engine::Sqlite => "(select value from json_each($1))",
        Engine::Postgres => "(select json_array_elements_text($1::json))",
    };
    // Safe: only the fixed subquery above is spliced in; the ids are bound.
    let partners = format!("where host_conflict_with in {within} and active = 1 and id not in {within}");
    let freed: Vec<(String, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("select id, host_conflict_with from agents {partners}"))).bind(&ids).fetch_all(&mut *tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update agents set
            replaced_at = case when replaced_by = host_conflict_with then null else replaced_at end,
            replaced_by = case when replaced_by = host_conflict_with then null else replaced_by end,
            host_conflict_with = null
         {partners}"
    )))
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    // The unenrolled ones are leaving (unenrolling, then unenrolled), neither
    // in conflict nor replaced: they show as unenrolling until they confirm.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update agents set replaced_by = null, replaced_at = null, host_conflict_with = null
         where id in {within} and host_conflict_with is not null"
    )))
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    Ok(freed)
}

/// A check-in that changes what is known about the agent: written at once,
/// and it clears the audit fields (the agent is back).
pub struct CheckinWrite<'a> {
    pub id: &'a str,
    pub now: i64,
    pub status: &'a str,
    pub message: &'a str,
    pub local_metadata: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub version: Option<&'a str>,
    pub components: Option<&'a str>,
    pub last_known_status: &'a str,
}

pub async fn write_checkin<'e>(db: impl Executor<'e, Database = Any>, c: CheckinWrite<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "update agents set last_checkin = $2, last_checkin_status = $3, last_checkin_message = $4,
            local_metadata = coalesce($5, local_metadata), hostname = coalesce($6, hostname), version = coalesce($7, version),
            components = coalesce($8, components), last_known_status = $9,
            audit_unenrolled_reason = null, audit_unenrolled_time = null, audit_unenrolled_details = null, last_heard_at = null,
            unenrolled_at = null
         where id = $1",
    )
    .bind(c.id)
    .bind(c.now)
    .bind(c.status)
    .bind(c.message)
    .bind(c.local_metadata)
    .bind(c.hostname)
    .bind(c.version)
    .bind(c.components)
    .bind(c.last_known_status)
    .execute(db)
    .await?;
    Ok(())
}

/// Heartbeats: only the time moves (batched by the flusher).
pub async fn touch_checkin<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("update agents set last_checkin = $2 where id = $1 and (last_checkin is null or last_checkin < $2)")
        .bind(id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the audit reason (and its details) unless one is already there;
/// false means it was (the caller answers 409 and nothing changes). An
/// orphaned endpoint's report is also its first proof of life.
pub async fn set_audit_reason<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    reason: &str,
    at: i64,
    details: Option<&str>,
    status: &str,
    heard_at: Option<i64>,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agents set audit_unenrolled_reason = $2, audit_unenrolled_time = $3, audit_unenrolled_details = $4, last_known_status = $5,
            last_heard_at = $6
         where id = $1 and audit_unenrolled_reason is null",
    )
    .bind(id)
    .bind(reason)
    .bind(at)
    .bind(details)
    .bind(status)
    .bind(heard_at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A Detached Endpoint reported again (Fleet Server answers it 409): its
/// latest report is kept, never moved back. False: the agent is not
/// orphaned (any more), and nothing changed.
pub async fn heard_from_orphan<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agents set last_heard_at = $2
         where id = $1 and audit_unenrolled_reason = 'orphaned' and (last_heard_at is null or last_heard_at < $2)",
    )
    .bind(id)
    .bind(at)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn record_rejected_call<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("update agents set rejected_count = rejected_count + 1, last_rejected_at = $2 where id = $1").bind(id).bind(at).execute(db).await?;
    Ok(())
}

/// Marks the agent as asked to unenroll, unless it already was (or is gone):
/// `false` means someone asked first and nothing changed, so a second
/// request, even a concurrent one, queues no second UNENROLL.
pub async fn start_unenroll<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("update agents set unenrollment_started_at = $2 where id = $1 and unenrollment_started_at is null and active = 1")
        .bind(id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// `start_unenroll` for many agents in one statement; returns the ids it
/// marked (the others were asked already). The ids travel as one JSON array,
/// read by `json_each` (SQLite) or `json_array_elements` (PostgreSQL).
pub async fn start_unenroll_many(tx: &mut sqlx::AnyConnection, engine: Engine, ids: &[&str], at: i64) -> sqlx::Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = json_array(ids.iter().map(|id| serde_json::json!(id)));
    let sql = match engine {
        Engine::Sqlite => {
            "update agents set unenrollment_started_at = $2
             where id in (select value from json_each($1)) and unenrollment_started_at is null and active = 1 returning id"
        }
        Engine::Postgres => {
            "update agents set unenrollment_started_at = $2
             where id in (select json_array_elements_text($1::json)) and unenrollment_started_at is null and active = 1 returning id"
        }
    };
    sqlx::query_scalar(sql).bind(ids).bind(at).fetch_all(&mut *tx).await
}

/// UNENROLL actions `(id, agent id, data)` in one statement (a bulk unenroll
/// of 10,000 agents was 30,000 statements).
pub async fn insert_unenroll_actions(
    tx: &mut sqlx::AnyConnection,
    engine: Engine,
    actions: &[(String, String, String)],
    at: i64,
    created_by: &str,
) -> sqlx::Result<()> {
    if actions.is_empty() {
        return Ok(());
    }
    let actions = json_array(actions.iter().map(|(id, agent, data)| serde_json::json!({"id": id, "agent_id": agent, "data": data})));
    let sql = match engine {
        Engine::Sqlite => {
            "insert into agent_actions (id, agent_id, action_type, data, created_at, created_by)
             select json_extract(value, '$.id'), json_extract(value, '$.agent_id'), 'UNENROLL', json_extract(value, '$.data'), $2, $3
             from json_each($1)"
        }
        Engine::Postgres => {
            "insert into agent_actions (id, agent_id, action_type, data, created_at, created_by)
             select x->>'id', x->>'agent_id', 'UNENROLL', x->>'data', $2, $3 from json_array_elements($1::json) as x"
        }
    };
    sqlx::query(sql).bind(actions).bind(at).bind(created_by).execute(&mut *tx).await?;
    Ok(())
}

pub fn json_array(items: impl Iterator<Item = serde_json::Value>) -> String {
    serde_json::Value::Array(items.collect()).to_string()
}

/// Activity-log lines in one statement.
pub async fn insert_events_many(tx: &mut sqlx::AnyConnection, engine: Engine, events: &[EventRow]) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = json_array(events.iter().map(|e| {
        serde_json::json!({"id": e.id, "agent_id": e.agent_id, "kind": e.kind, "message": e.message, "actor": e.actor, "created_at": e.created_at})
    }));
    let sql = match engine {
        Engine::Sqlite => {
            "insert into agent_events (id, agent_id, kind, message, actor, created_at)
             select json_extract(value, '$.id'), json_extract(value, '$.agent_id'), json_extract(value, '$.kind'),
                json_extract(value, '$.message'), json_extract(value, '$.actor'), json_extract(value, '$.created_at')
             from json_each($1)"
        }
        Engine::Postgres => {
            "insert into agent_events (id, agent_id, kind, message, actor, created_at)
             select x->>'id', x->>'agent_id', x->>'kind', x->>'message', x->>'actor', (x->>'created_at')::bigint
             from json_array_elements($1::json) as x"
        }
    };
    sqlx::query(sql).bind(rows).execute(&mut *tx).await?;
    Ok(())
}

/// One acknowledgement: `(agent id, action id, error)`.
pub struct Ack<'a> {
    pub agent_id: &'a str,
    pub action_id: &'a str,
    pub error: Option<&'a str>,
}

/// Acknowledges many agents' actions in one statement; returns
/// `(agent id, action id, action type)` for each action that exists (an ack
/// for an action of another agent, or of none, matches nothing).
pub async fn ack_actions_many(
    tx: &mut sqlx::AnyConnection,
    engine: Engine,
    acks: &[Ack<'_>],
    at: i64,
) -> sqlx::Result<Vec<(String, String, String)>> {
    if acks.is_empty() {
        return Ok(Vec::new());
    }
    let rows = json_array(acks.iter().map(|a| serde_json::json!({"agent_id": a.agent_id, "action_id": a.action_id, "error": a.error})));
    let sql = match engine {
        Engine::Sqlite => {
            "update agent_actions set acked_at = coalesce(acked_at, $2), ack_error = json_extract(x.value, '$.error')
             from json_each($1) as x
             where agent_actions.id = json_extract(x.value, '$.action_id') and agent_actions.agent_id = json_extract(x.value, '$.agent_id')
             returning agent_actions.agent_id, agent_actions.id, agent_actions.action_type"
        }
        Engine::Postgres => {
            "update agent_actions a set acked_at = coalesce(a.acked_at, $2), ack_error = x->>'error'
             from json_array_elements($1::json) as x
             where a.id = x->>'action_id' and a.agent_id = x->>'agent_id'
             returning a.agent_id, a.id, a.action_type"
        }
    };
    sqlx::query_as(sql).bind(rows).bind(at).fetch_all(&mut *tx).await
}

/// Unenrolls agents that confirmed, at once, in one statement.
pub async fn finish_unenroll_many(tx: &mut sqlx::AnyConnection, engine: Engine, ids: &[&str], at: i64) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = json_array(ids.iter().map(|id| serde_json::json!(id)));
    let sql = match engine {
        Engine::Sqlite => {
            "update agents set active = 0, key_revoked = 1, unenrolled_at = $2, last_known_status = 'unenrolled'
             where id in (select value from json_each($1))"
        }
        Engine::Postgres => {
            "update agents set active = 0, key_revoked = 1, unenrolled_at = $2, last_known_status = 'unenrolled'
             where id in (select json_array_elements_text($1::json))"
        }
    };
    sqlx::query(sql).bind(ids).bind(at).execute(&mut *tx).await?;
    Ok(())
}

/// Unenrolls at once and revokes the key; `forced_by` annotates a force-unenroll.
pub async fn finish_unenroll<'e>(db: impl Executor<'e, Database = Any>, id: &str, at: i64, forced_by: Option<&str>) -> sqlx::Result<()> {
    sqlx::query(
        "update agents set active = 0, key_revoked = 1, unenrolled_at = $2, last_known_status = 'unenrolled',
            force_unenrolled_by = coalesce($3, force_unenrolled_by),
            force_unenrolled_at = case when $3 is null then force_unenrolled_at else $2 end
         where id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(forced_by)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_last_known_status<'e>(db: impl Executor<'e, Database = Any>, id: &str, status: &str) -> sqlx::Result<()> {
    sqlx::query("update agents set last_known_status = $2 where id = $1").bind(id).bind(status).execute(db).await?;
    Ok(())
}

// --- actions for agents ---

#[derive(Debug, Clone, FromRow)]
pub struct ActionRow {
    pub id: String,
    pub agent_id: String,
    pub action_type: String,
    pub data: String,
    pub created_at: i64,
}

pub async fn insert_action<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    agent_id: &str,
    action_type: &str,
    data: &str,
    now: i64,
    created_by: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("insert into agent_actions (id, agent_id, action_type, data, created_at, created_by) values ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(agent_id)
        .bind(action_type)
        .bind(data)
        .bind(now)
        .bind(created_by)
        .execute(db)
        .await?;
    Ok(())
}

/// Actions the agent has not acknowledged and that were not handed out in
/// the last `redeliver_after_ms` (a lost answer is sent again).
pub async fn deliverable_actions<'e>(db: impl Executor<'e, Database = Any>, agent_id: &str, redeliver_before: i64) -> sqlx::Result<Vec<ActionRow>> {
    sqlx::query_as(
        "select id, agent_id, action_type, data, created_at from agent_actions
         where agent_id = $1 and acked_at is null and (delivered_at is null or delivered_at < $2)
         order by created_at",
    )
    .bind(agent_id)
    .bind(redeliver_before)
    .fetch_all(db)
    .await
}

pub async fn mark_delivered<'e>(db: impl Executor<'e, Database = Any>, agent_id: &str, action_id: &str, at: i64) -> sqlx::Result<()> {
    sqlx::query("update agent_actions set delivered_at = $3 where id = $1 and agent_id = $2")
        .bind(action_id)
        .bind(agent_id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// Agents with an unacknowledged action created at or after `since`.
pub async fn agents_with_new_actions<'e>(db: impl Executor<'e, Database = Any>, since: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select distinct agent_id from agent_actions where created_at >= $1 and acked_at is null").bind(since).fetch_all(db).await
}

// --- the activity log ---

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: String,
    pub agent_id: String,
    pub kind: String,
    pub message: String,
    pub actor: Option<String>,
    pub created_at: i64,
}

pub async fn insert_event<'e>(db: impl Executor<'e, Database = Any>, event: &EventRow) -> sqlx::Result<()> {
    sqlx::query("insert into agent_events (id, agent_id, kind, message, actor, created_at) values ($1, $2, $3, $4, $5, $6)")
        .bind(&event.id)
        .bind(&event.agent_id)
        .bind(&event.kind)
        .bind(&event.message)
        .bind(&event.actor)
        .bind(event.created_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn events<'e>(db: impl Executor<'e, Database = Any>, agent_id: &str, limit: i64) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(
        "select id, agent_id, kind, message, actor, created_at from agent_events where agent_id = $1
         order by created_at desc, id desc limit $2",
    )
    .bind(agent_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

// --- policies and enrollment keys ---

#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub description: Option<String>,
    pub is_managed: i64,
    pub inactivity_timeout: i64,
    pub keep_agent_id_on_reenroll: i64,
    pub revision: i64,
    pub updated_at: i64,
    pub agents: i64,
    pub is_verifier: i64,
    pub cloud_connector_id: Option<String>,
    pub expires_at: Option<i64>,
}

pub async fn policies<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<PolicyRow>> {
    sqlx::query_as(
        "select p.id, p.name, p.namespace, p.description, p.is_managed, p.inactivity_timeout, p.keep_agent_id_on_reenroll, p.revision, p.updated_at,
            (select count(*) from agents a where a.policy_id = p.id and a.active = 1) as agents, p.is_verifier, p.cloud_connector_id, p.expires_at
         from agent_policies p order by p.name",
    )
    .fetch_all(db)
    .await
}

pub async fn policy<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as(
        "select p.id, p.name, p.namespace, p.description, p.is_managed, p.inactivity_timeout, p.keep_agent_id_on_reenroll, p.revision, p.updated_at,
            (select count(*) from agents a where a.policy_id = p.id and a.active = 1) as agents, p.is_verifier, p.cloud_connector_id, p.expires_at
         from agent_policies p where p.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What an agent policy's insert or update writes.
pub struct PolicyWrite<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub description: Option<&'a str>,
    pub is_managed: bool,
    pub inactivity_timeout: i64,
    pub keep_agent_id_on_reenroll: bool,
    pub now: i64,
}

pub async fn insert_policy<'e>(db: impl Executor<'e, Database = Any>, p: PolicyWrite<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into agent_policies (id, name, namespace, description, is_managed, inactivity_timeout, keep_agent_id_on_reenroll,
            revision, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
    )
    .bind(p.id)
    .bind(p.name)
    .bind(p.namespace)
    .bind(p.description)
    .bind(i64::from(p.is_managed))
    .bind(p.inactivity_timeout)
    .bind(i64::from(p.keep_agent_id_on_reenroll))
    .bind(p.now)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update_policy<'e>(db: impl Executor<'e, Database = Any>, p: PolicyWrite<'_>) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "update agent_policies set name = $2, namespace = $3, description = $4, is_managed = $5, inactivity_timeout = $6,
            keep_agent_id_on_reenroll = $7, revision = revision + 1, updated_at = $8 where id = $1",
    )
    .bind(p.id)
    .bind(p.name)
    .bind(p.namespace)
    .bind(p.description)
    .bind(i64::from(p.is_managed))
    .bind(p.inactivity_timeout)
    .bind(i64::from(p.keep_agent_id_on_reenroll))
    .bind(p.now)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes what belongs to a policy (its enrollment keys and, as Fleet does,
/// its package policies) before the policy row; returns the cloud connectors
/// those package policies used.
pub async fn delete_policy(tx: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query("delete from enrollment_api_keys where policy_id = $1").bind(id).execute(&mut *tx).await?;
    let connectors: Vec<String> =
        sqlx::query_scalar("select distinct cloud_connector_id from package_policies where policy_id = $1 and cloud_connector_id is not null")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("delete from package_policies where policy_id = $1").bind(id).execute(&mut *tx).await?;
    Ok(connectors)
}

pub async fn delete_policy_row<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("delete from agent_policies where id = $1").bind(id).execute(db).await?;
    Ok(())
}

pub async fn agents_ever_enrolled<'e>(db: impl Executor<'e, Database = Any>, policy_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from agents where policy_id = $1").bind(policy_id).fetch_one(db).await
}

#[derive(Debug, Clone, FromRow)]
pub struct EnrollmentKeyRow {
    pub id: String,
    pub name: Option<String>,
    pub api_key_id: String,
    pub api_key: String,
    pub secret_hash: String,
    pub policy_id: String,
    pub active: i64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub async fn insert_enrollment_key<'e>(db: impl Executor<'e, Database = Any>, key: &EnrollmentKeyRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into enrollment_api_keys (id, name, api_key_id, api_key, secret_hash, policy_id, active, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(&key.api_key_id)
    .bind(&key.api_key)
    .bind(&key.secret_hash)
    .bind(&key.policy_id)
    .bind(key.created_at)
    .bind(key.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn enrollment_keys<'e>(db: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<EnrollmentKeyRow>> {
    sqlx::query_as(
        "select id, name, api_key_id, api_key, secret_hash, policy_id, active, created_at, expires_at
         from enrollment_api_keys where single_use = 0 order by created_at desc",
    )
    .fetch_all(db)
    .await
}

pub async fn enrollment_key<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<EnrollmentKeyRow>> {
    sqlx::query_as(
        "select id, name, api_key_id, api_key, secret_hash, policy_id, active, created_at, expires_at
         from enrollment_api_keys where id = $1 and single_use = 0",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn enrollment_key_by_key_id<'e>(db: impl Executor<'e, Database = Any>, api_key_id: &str) -> sqlx::Result<Option<EnrollmentKeyRow>> {
    sqlx::query_as(
        "select id, name, api_key_id, api_key, secret_hash, policy_id, active, created_at, expires_at
         from enrollment_api_keys where api_key_id = $1",
    )
    .bind(api_key_id)
    .fetch_optional(db)
    .await
}

pub async fn revoke_enrollment_key<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    let result = sqlx::query("update enrollment_api_keys set active = 0 where id = $1 and single_use = 0").bind(id).execute(db).await?;
    Ok(result.rows_affected() == 1)
}

/// Spends a single-use enrollment key inside the enrollment's transaction;
/// `false` when it is single-use and already spent (another enrollment won).
/// The write comes first: on SQLite a transaction that reads before it
/// writes may fail to upgrade its lock while another node writes.
pub async fn spend_enrollment_key(tx: &mut sqlx::AnyConnection, id: &str) -> sqlx::Result<bool> {
    let spent =
        sqlx::query("update enrollment_api_keys set active = 0 where id = $1 and single_use = 1 and active = 1").bind(id).execute(&mut *tx).await?;
    if spent.rows_affected() == 1 {
        return Ok(true);
    }
    // A key removed since the caller was authenticated is spent too.
    let single_use: Option<i64> =
        sqlx::query_scalar("select single_use from enrollment_api_keys where id = $1").bind(id).fetch_optional(&mut *tx).await?;
    Ok(single_use == Some(0))
}

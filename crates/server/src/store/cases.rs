//! Cases, their attachments and alerts, and the `.cases` action's record of
//! which case each group of a rule's alerts goes to.

use sqlx::{Any, AnyConnection, Executor, FromRow};

use crate::db::Engine;

#[derive(Debug, Clone, FromRow)]
pub struct CaseRow {
    pub id: String,
    pub version: i64,
    pub title: String,
    pub description: String,
    /// JSON array.
    pub tags: String,
    pub status: String,
    pub severity: String,
    pub owner: String,
    /// JSON.
    pub connector: String,
    /// JSON.
    pub settings: String,
    /// JSON array of `{uid}`.
    pub assignees: String,
    pub category: Option<String>,
    pub duration: Option<i64>,
    pub created_at: i64,
    /// JSON user.
    pub created_by: String,
    pub reporter: String,
    pub updated_at: Option<i64>,
    pub updated_by: Option<String>,
    pub closed_at: Option<i64>,
    pub closed_by: Option<String>,
}

/// A case as read, with its counts.
#[derive(Debug, Clone, FromRow)]
pub struct CaseWithCounts {
    #[sqlx(flatten)]
    pub case: CaseRow,
    pub total_comment: i64,
    pub total_alerts: i64,
}

const COLUMNS: &str = "c.id, c.version, c.title, c.description, c.tags, c.status, c.severity, c.owner, c.connector, c.settings, \
     c.assignees, c.category, c.duration, c.created_at, c.created_by, c.reporter, c.updated_at, c.updated_by, c.closed_at, c.closed_by, \
     (select count(*) from case_attachments a where a.case_id = c.id and a.type = 'user') as total_comment, \
     (select count(*) from case_alerts a where a.case_id = c.id) as total_alerts";

/// `$from, $from+1, …` for `count` values.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, row: &CaseRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into cases (id, version, title, description, tags, status, severity, owner, connector, settings, assignees, category,
           duration, created_at, created_by, reporter, updated_at, updated_by, closed_at, closed_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(&row.id)
    .bind(row.version)
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.tags)
    .bind(&row.status)
    .bind(&row.severity)
    .bind(&row.owner)
    .bind(&row.connector)
    .bind(&row.settings)
    .bind(&row.assignees)
    .bind(&row.category)
    .bind(row.duration)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(&row.reporter)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(row.closed_at)
    .bind(&row.closed_by)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes `row` over the case if it still has `expected_version`; `false`
/// when another change came first (or the case is gone). `row.version` is
/// the new version.
pub async fn update_if_version<'e>(db: impl Executor<'e, Database = Any>, row: &CaseRow, expected_version: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update cases set version = $3, title = $4, description = $5, tags = $6, status = $7, severity = $8, connector = $9,
           settings = $10, assignees = $11, category = $12, duration = $13, updated_at = $14, updated_by = $15, closed_at = $16, closed_by = $17
         where id = $1 and version = $2",
    )
    .bind(&row.id)
    .bind(expected_version)
    .bind(row.version)
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.tags)
    .bind(&row.status)
    .bind(&row.severity)
    .bind(&row.connector)
    .bind(&row.settings)
    .bind(&row.assignees)
    .bind(&row.category)
    .bind(row.duration)
    .bind(row.updated_at)
    .bind(&row.updated_by)
    .bind(row.closed_at)
    .bind(&row.closed_by)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A new version of the case because something was attached to it.
pub async fn touch<'e>(db: impl Executor<'e, Database = Any>, id: &str, updated_at: i64, updated_by: &str) -> sqlx::Result<bool> {
    let updated = sqlx::query("update cases set version = version + 1, updated_at = $2, updated_by = $3 where id = $1")
        .bind(id)
        .bind(updated_at)
        .bind(updated_by)
        .execute(db)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces the case's rows in `case_tags` (what `_find` filters on).
pub async fn replace_tags(tx: &mut AnyConnection, case_id: &str, tags: &[String]) -> sqlx::Result<()> {
    sqlx::query("delete from case_tags where case_id = $1").bind(case_id).execute(&mut *tx).await?;
    for tag in tags {
        sqlx::query("insert into case_tags (case_id, tag) values ($1, $2) on conflict do nothing").bind(case_id).bind(tag).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Replaces the case's rows in `case_assignees`.
pub async fn replace_assignees(tx: &mut AnyConnection, case_id: &str, uids: &[String]) -> sqlx::Result<()> {
    sqlx::query("delete from case_assignees where case_id = $1").bind(case_id).execute(&mut *tx).await?;
    for uid in uids {
        sqlx::query("insert into case_assignees (case_id, uid) values ($1, $2) on conflict do nothing")
            .bind(case_id)
            .bind(uid)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub async fn by_id<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<CaseWithCounts>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("select {COLUMNS} from cases c where c.id = $1"))).bind(id).fetch_optional(db).await
}

/// The cases among `ids` that exist, in no particular order.
pub async fn by_ids<'e>(db: impl Executor<'e, Database = Any>, ids: &[String]) -> sqlx::Result<Vec<CaseWithCounts>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Safe: only numbered placeholders; the ids are bound.
    let sql = format!("select {COLUMNS} from cases c where c.id in ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(db).await
}

/// Deletes the cases (their tags, assignees, attachments and alerts go with
/// them); how many there were.
pub async fn delete<'e>(db: impl Executor<'e, Database = Any>, ids: &[String]) -> sqlx::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!("delete from cases where id in ({})", placeholders(1, ids.len()));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.execute(db).await?.rows_affected())
}

/// A value bound to a numbered placeholder.
enum Bind {
    Text(String),
    Int(i64),
}

/// `_find`'s filters, as the service hands them over.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub tags: Vec<String>,
    pub statuses: Vec<String>,
    pub severities: Vec<String>,
    pub owners: Vec<String>,
    pub categories: Vec<String>,
    pub reporters: Vec<String>,
    pub assignees: Vec<String>,
    /// Cases assigned to nobody match too.
    pub unassigned: bool,
    /// Case-insensitive text, in the title and/or the description.
    pub search: Option<String>,
    pub search_title: bool,
    pub search_description: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseOrder {
    Title,
    Category,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
    Status,
    Severity,
}

/// `like` pattern for text anywhere in a column, with `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The `where` clause of `filter` (without the status filter when
/// `with_status` is false), its values appended to `binds`.
fn conditions(filter: &CaseFilter, engine: Engine, with_status: bool, binds: &mut Vec<Bind>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let list = |binds: &mut Vec<Bind>, values: &[String]| {
        let from = binds.len() + 1;
        binds.extend(values.iter().cloned().map(Bind::Text));
        placeholders(from, values.len())
    };
    if !filter.tags.is_empty() {
        parts.push(format!("exists (select 1 from case_tags t where t.case_id = c.id and t.tag in ({}))", list(binds, &filter.tags)));
    }
    for (column, values) in [
        ("c.status", if with_status { filter.statuses.as_slice() } else { &[] }),
        ("c.severity", filter.severities.as_slice()),
        ("c.owner", filter.owners.as_slice()),
        ("c.category", filter.categories.as_slice()),
        ("c.reporter", filter.reporters.as_slice()),
    ] {
        if !values.is_empty() {
            parts.push(format!("{column} in ({})", list(binds, values)));
        }
    }
    let unassigned = "not exists (select 1 from case_assignees s where s.case_id = c.id)";
    match (filter.assignees.is_empty(), filter.unassigned) {
        (true, false) => {}
        (true, true) => parts.push(unassigned.to_owned()),
        (false, unassigned_too) => {
            let assigned =
                format!("exists (select 1 from case_assignees s where s.case_id = c.id and s.uid in ({}))", list(binds, &filter.assignees));
            parts.push(if unassigned_too { format!("({assigned} or {unassigned})") } else { assigned });
        }
    }
    if let Some(text) = &filter.search {
        binds.push(Bind::Text(contains_pattern(text)));
        let n = binds.len();
        // ASCII case folding on both engines (see `store::fleet::kuery_prefilter`).
        let like = |column: &str| match engine {
            Engine::Sqlite => format!("lower({column}) like lower(${n}) escape '\\'"),
            Engine::Postgres => format!(r#"lower({column} collate "C") like lower(${n} collate "C") escape '\'"#),
        };
        let mut columns = Vec::new();
        if filter.search_title {
            columns.push(like("c.title"));
        }
        if filter.search_description {
            columns.push(like("c.description"));
        }
        parts.push(format!("({})", columns.join(" or ")));
    }
    if parts.is_empty() { "1 = 1".to_owned() } else { parts.join(" and ") }
}

fn order_by(order: CaseOrder, descending: bool, engine: Engine) -> String {
    // Text sorts by code point on both engines.
    let text = |column: &str| match engine {
        Engine::Sqlite => column.to_owned(),
        Engine::Postgres => format!(r#"{column} collate "C""#),
    };
    let key = match order {
        CaseOrder::Title => text("c.title"),
        CaseOrder::Category => text("coalesce(c.category, '')"),
        CaseOrder::CreatedAt => "c.created_at".to_owned(),
        CaseOrder::UpdatedAt => "coalesce(c.updated_at, 0)".to_owned(),
        CaseOrder::ClosedAt => "coalesce(c.closed_at, 0)".to_owned(),
        CaseOrder::Status => "case c.status when 'open' then 0 when 'in-progress' then 1 else 2 end".to_owned(),
        CaseOrder::Severity => "case c.severity when 'low' then 0 when 'medium' then 1 when 'high' then 2 else 3 end".to_owned(),
    };
    let direction = if descending { "desc" } else { "asc" };
    format!("{key} {direction}, c.created_at {direction}, c.id {direction}")
}

fn bind_all<'q, O>(
    mut query: sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(n) => query.bind(n),
        };
    }
    query
}

/// One page of the cases `filter` matches, and how many it matches.
pub async fn find(
    db: &mut AnyConnection,
    engine: Engine,
    filter: &CaseFilter,
    order: CaseOrder,
    descending: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<CaseWithCounts>, i64)> {
    let mut binds = Vec::new();
    let condition = conditions(filter, engine, true, &mut binds);
    let count_sql = format!("select count(*) from cases c where {condition}");
    let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
    for bind in &binds {
        count = match bind {
            Bind::Text(text) => count.bind(text.clone()),
            Bind::Int(n) => count.bind(*n),
        };
    }
    let total = count.fetch_one(&mut *db).await?;
    binds.push(Bind::Int(limit));
    binds.push(Bind::Int(offset));
    let n = binds.len();
    // Safe: fixed column names and numbered placeholders; every client value is bound.
    let sql =
        format!("select {COLUMNS} from cases c where {condition} order by {} limit ${} offset ${n}", order_by(order, descending, engine), n - 1);
    let rows = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds).fetch_all(&mut *db).await?;
    Ok((rows, total))
}

/// How many cases `filter` matches by status, whatever its status filter says.
pub async fn count_by_status<'e>(db: impl Executor<'e, Database = Any>, engine: Engine, filter: &CaseFilter) -> sqlx::Result<Vec<(String, i64)>> {
    let mut binds = Vec::new();
    let condition = conditions(filter, engine, false, &mut binds);
    let sql = format!("select c.status, count(*) from cases c where {condition} group by c.status");
    bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds).fetch_all(db).await
}

#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: String,
    pub case_id: String,
    pub version: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub comment: Option<String>,
    /// JSON: a string or an array, as sent.
    pub alert_id: Option<String>,
    pub alert_index: Option<String>,
    pub rule_id: Option<String>,
    pub rule_name: Option<String>,
    pub owner: String,
    pub created_at: i64,
    /// JSON user.
    pub created_by: String,
}

const ATTACHMENT_COLUMNS: &str = "id, case_id, version, type, comment, alert_id, alert_index, rule_id, rule_name, owner, created_at, created_by";

pub async fn insert_attachment<'e>(db: impl Executor<'e, Database = Any>, row: &AttachmentRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into case_attachments (id, case_id, version, type, comment, alert_id, alert_index, rule_id, rule_name, owner, created_at, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&row.id)
    .bind(&row.case_id)
    .bind(row.version)
    .bind(&row.kind)
    .bind(&row.comment)
    .bind(&row.alert_id)
    .bind(&row.alert_index)
    .bind(&row.rule_id)
    .bind(&row.rule_name)
    .bind(&row.owner)
    .bind(row.created_at)
    .bind(&row.created_by)
    .execute(db)
    .await?;
    Ok(())
}

/// A page of a case's attachments, by creation time.
pub async fn attachments<'e>(
    db: impl Executor<'e, Database = Any>,
    case_id: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<AttachmentRow>> {
    let direction = if descending { "desc" } else { "asc" };
    let sql = format!(
        "select {ATTACHMENT_COLUMNS} from case_attachments where case_id = $1 order by created_at {direction}, id {direction} limit $2 offset $3"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(case_id).bind(limit).bind(offset).fetch_all(db).await
}

pub async fn count_attachments<'e>(db: impl Executor<'e, Database = Any>, case_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from case_attachments where case_id = $1").bind(case_id).fetch_one(db).await
}

/// Which of `alerts` (id, index) the case holds already.
pub async fn attached_among<'e>(
    db: impl Executor<'e, Database = Any>,
    case_id: &str,
    alerts: &[(String, String)],
) -> sqlx::Result<Vec<(String, String)>> {
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<&String> = alerts.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    let sql = format!("select alert_id, alert_index from case_alerts where case_id = $1 and alert_id in ({})", placeholders(2, ids.len()));
    let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(case_id);
    for id in ids {
        query = query.bind(id);
    }
    let found = query.fetch_all(db).await?;
    Ok(found.into_iter().filter(|pair| alerts.contains(pair)).collect())
}

/// Records an alert in the case; `false` if it was there already.
pub async fn insert_alert<'e>(
    db: impl Executor<'e, Database = Any>,
    case_id: &str,
    alert: &(String, String),
    attachment_id: &str,
) -> sqlx::Result<bool> {
    let inserted =
        sqlx::query("insert into case_alerts (case_id, alert_id, alert_index, attachment_id) values ($1, $2, $3, $4) on conflict do nothing")
            .bind(case_id)
            .bind(&alert.0)
            .bind(&alert.1)
            .bind(attachment_id)
            .execute(db)
            .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn count_alerts<'e>(db: impl Executor<'e, Database = Any>, case_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from case_alerts where case_id = $1").bind(case_id).fetch_one(db).await
}

/// Which case a rule's group of alerts goes to.
#[derive(Debug, Clone, FromRow)]
pub struct RuleGroupRow {
    pub rule_id: String,
    pub owner: String,
    pub grouping_hash: String,
    pub grouping: String,
    pub counter: i64,
    pub case_id: String,
    pub window_started_at: i64,
    pub updated_at: i64,
}

pub async fn rule_group<'e>(
    db: impl Executor<'e, Database = Any>,
    rule_id: &str,
    owner: &str,
    grouping_hash: &str,
) -> sqlx::Result<Option<RuleGroupRow>> {
    sqlx::query_as(
        "select rule_id, owner, grouping_hash, grouping, counter, case_id, window_started_at, updated_at
         from case_rule_groups where rule_id = $1 and owner = $2 and grouping_hash = $3",
    )
    .bind(rule_id)
    .bind(owner)
    .bind(grouping_hash)
    .fetch_optional(db)
    .await
}

/// Records the group's first case; `false` if another run recorded one first.
pub async fn insert_rule_group<'e>(db: impl Executor<'e, Database = Any>, row: &RuleGroupRow) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into case_rule_groups (rule_id, owner, grouping_hash, grouping, counter, case_id, window_started_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
    )
    .bind(&row.rule_id)
    .bind(&row.owner)
    .bind(&row.grouping_hash)
    .bind(&row.grouping)
    .bind(row.counter)
    .bind(&row.case_id)
    .bind(row.window_started_at)
    .bind(row.updated_at)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Moves the group to `row.case_id` if it is still on `expected_case_id`;
/// `false` if another run moved it first.
pub async fn move_rule_group<'e>(db: impl Executor<'e, Database = Any>, row: &RuleGroupRow, expected_case_id: &str) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "update case_rule_groups set counter = $5, case_id = $6, window_started_at = $7, updated_at = $8
         where rule_id = $1 and owner = $2 and grouping_hash = $3 and case_id = $4",
    )
    .bind(&row.rule_id)
    .bind(&row.owner)
    .bind(&row.grouping_hash)
    .bind(expected_case_id)
    .bind(row.counter)
    .bind(&row.case_id)
    .bind(row.window_started_at)
    .bind(row.updated_at)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

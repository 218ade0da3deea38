//! Cases (Kibana's `/api/cases`): open one, change several with the version
//! each was read at, find, delete, comment on them and attach alerts; and the
//! run of the `.cases` system action ([`run_case_action`]) that a rule's
//! executor calls.
//!
//! Every write is one transaction that starts by taking the write lock on
//! SQLite (`begin immediate`, so two writers queue instead of one failing
//! with a stale snapshot) and changes a case only where its version is still
//! the one read (a conditional `update`), so two concurrent edits of one
//! version give one success and one 409, never a lost update.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use warden_core::cases::{
    AlertForCase, AlertRule, Attachment, AttachmentBody, AttachmentRequest, AttachmentsFindQuery, AttachmentsFindResponse, Case, CaseActionOutcome,
    CaseConnector, CaseOwner, CasePostRequest, CaseSearchField, CaseSettings, CaseSeverity, CaseSortField, CaseStatus, CaseUser, CasesActionParams,
    CasesFindQuery, CasesFindResponse, CasesPatchRequest, Closure, MAX_ALERTS_PER_CASE, MAX_CASES_TO_UPDATE, MAX_DOCS_PER_PAGE, NO_ASSIGNEES,
    NewAttachment, NewCase, OneOrMany, RuleForCase, SortOrder, auto_case_description, auto_case_tags, auto_case_title, closure, effective_changes,
    group_alerts, limited_array, reference, too_many_alerts_message, validate_attachment, validate_new_case, validate_patch,
};
use warden_core::events::Event;

use crate::AppState;
use crate::auth::{AuthUser, sha256_hex};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::fleet::rfc3339;
use crate::store::cases::{self as store, AttachmentRow, CaseFilter, CaseOrder, CaseRow, CaseWithCounts, RuleGroupRow};

/// What went wrong, for the HTTP layer (and the rule executor).
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// A `PATCH` that changes nothing.
    #[error("{0}")]
    NotAcceptable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<CasesError> for ApiError {
    fn from(err: CasesError) -> ApiError {
        match err {
            CasesError::NotFound(message) => ApiError::NotFound(message),
            CasesError::BadRequest(message) => ApiError::BadRequest(message),
            CasesError::Conflict(message) => ApiError::Conflict(message),
            CasesError::NotAcceptable(message) => ApiError::Coded { status: StatusCode::NOT_ACCEPTABLE, code: "Not Acceptable", message },
            CasesError::Database(err) => ApiError::Database(err),
            CasesError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = CasesError> = std::result::Result<T, E>;

/// The signed-in user as a case records them.
pub fn case_user(user: &AuthUser) -> CaseUser {
    CaseUser { username: user.username.clone(), full_name: user.full_name.clone(), email: None, profile_uid: Some(user.id.clone()) }
}

fn not_found(id: &str) -> CasesError {
    CasesError::NotFound(format!("Saved object [cases/{id}] not found"))
}

/// A version as the API shows it: opaque, in the form of Kibana's (`WzEsMV0=`).
pub fn encode_version(version: i64) -> String {
    STANDARD.encode(format!("[{version},1]"))
}

fn decode_version(text: &str) -> Option<i64> {
    let text = String::from_utf8(STANDARD.decode(text).ok()?).ok()?;
    text.strip_prefix('[')?.strip_suffix(",1]")?.parse().ok()
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| CasesError::Internal(anyhow::anyhow!("a stored case's {what} is not valid: {err}")))
}

fn closed_set<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T> {
    parse(text).ok_or_else(|| CasesError::Internal(anyhow::anyhow!("a stored case's {what} is unknown: {text}")))
}

fn to_case(row: CaseWithCounts) -> Result<Case> {
    let CaseWithCounts { case: row, total_comment, total_alerts } = row;
    Ok(Case {
        version: encode_version(row.version),
        tags: from_json(&row.tags, "tags")?,
        status: closed_set(&row.status, CaseStatus::parse, "status")?,
        severity: closed_set(&row.severity, CaseSeverity::parse, "severity")?,
        owner: closed_set(&row.owner, CaseOwner::parse, "owner")?,
        connector: from_json(&row.connector, "connector")?,
        settings: from_json(&row.settings, "settings")?,
        assignees: from_json(&row.assignees, "assignees")?,
        custom_fields: Vec::new(),
        observables: Vec::new(),
        duration: row.duration,
        created_at: rfc3339(row.created_at),
        created_by: from_json(&row.created_by, "created_by")?,
        updated_at: row.updated_at.map(rfc3339),
        updated_by: row.updated_by.as_deref().map(|u| from_json(u, "updated_by")).transpose()?,
        closed_at: row.closed_at.map(rfc3339),
        closed_by: row.closed_by.as_deref().map(|u| from_json(u, "closed_by")).transpose()?,
        external_service: None,
        total_comment: u64::try_from(total_comment).unwrap_or(0),
        total_alerts: u64::try_from(total_alerts).unwrap_or(0),
        total_events: 0,
        comments: None,
        id: row.id,
        title: row.title,
        description: row.description,
        category: row.category,
    })
}

fn to_attachment(row: AttachmentRow) -> Result<Attachment> {
    let owner = closed_set(&row.owner, CaseOwner::parse, "attachment owner")?;
    let body = match row.kind.as_str() {
        "user" => AttachmentBody::User { comment: row.comment.unwrap_or_default(), owner },
        "alert" => AttachmentBody::Alert {
            alert_id: from_json(row.alert_id.as_deref().unwrap_or("[]"), "alertId")?,
            index: from_json(row.alert_index.as_deref().unwrap_or("[]"), "index")?,
            rule: AlertRule { id: row.rule_id, name: row.rule_name },
            owner,
        },
        other => return Err(CasesError::Internal(anyhow::anyhow!("an attachment of unknown type {other}"))),
    };
    Ok(Attachment {
        id: row.id,
        version: encode_version(row.version),
        body,
        created_at: rfc3339(row.created_at),
        created_by: from_json(&row.created_by, "attachment created_by")?,
        pushed_at: None,
        pushed_by: None,
        updated_at: None,
        updated_by: None,
    })
}

async fn read(db: &mut AnyConnection, id: &str) -> Result<Case> {
    to_case(store::by_id(&mut *db, id).await?.ok_or_else(|| not_found(id))?)
}

/// Inserts a validated new case, open, at version 1.
async fn insert_case(tx: &mut AnyConnection, id: &str, new: &NewCase, user: &CaseUser, now: i64) -> Result<()> {
    let row = CaseRow {
        id: id.to_owned(),
        version: 1,
        title: new.title.clone(),
        description: new.description.clone(),
        tags: to_json(&new.tags),
        status: CaseStatus::Open.as_str().to_owned(),
        severity: new.severity.as_str().to_owned(),
        owner: new.owner.as_str().to_owned(),
        connector: to_json(&new.connector),
        settings: to_json(&new.settings),
        assignees: to_json(&new.assignees),
        category: new.category.clone(),
        duration: None,
        created_at: now,
        created_by: to_json(user),
        reporter: user.username.clone(),
        updated_at: None,
        updated_by: None,
        closed_at: None,
        closed_by: None,
    };
    store::insert(&mut *tx, &row).await?;
    store::replace_tags(tx, id, &new.tags).await?;
    let uids: Vec<String> = new.assignees.iter().map(|a| a.uid.clone()).collect();
    store::replace_assignees(tx, id, &uids).await?;
    Ok(())
}

/// Opens a case (`POST /api/cases`): open, severity `low` unless given.
pub async fn create(state: &AppState, request: &CasePostRequest, user: &CaseUser) -> Result<Case> {
    let new = validate_new_case(request).map_err(CasesError::BadRequest)?;
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    insert_case(&mut tx, &id, &new, user, now_ms()).await?;
    let case = read(&mut tx, &id).await?;
    tx.commit().await?;
    state.events.publish(Event::case_changed(&id));
    tracing::info!(case = %id, owner = new.owner.as_str(), "case opened");
    Ok(case)
}

/// One case, without its comments.
pub async fn get(state: &AppState, id: &str) -> Result<Case> {
    let mut conn = state.db.acquire().await?;
    read(&mut conn, id).await
}

/// Changes cases (`PATCH /api/cases`), each only if it still has the version
/// the client read; Kibana's checks in Kibana's order: unknown ids (404),
/// stale versions (409), nothing to change (406), a new owner (400). Cases
/// the request leaves as they are are not in the answer.
pub async fn update(state: &AppState, request: &CasesPatchRequest, user: &CaseUser) -> Result<Vec<Case>> {
    limited_array("cases", request.cases.len(), 1, MAX_CASES_TO_UPDATE).map_err(CasesError::BadRequest)?;
    let mut changes = Vec::with_capacity(request.cases.len());
    for patch in &request.cases {
        if request.cases.iter().filter(|other| other.id == patch.id).count() > 1 {
            return Err(CasesError::BadRequest(format!("The case {} is in the request more than once.", patch.id)));
        }
        changes.push(validate_patch(patch).map_err(CasesError::BadRequest)?);
    }
    let ids: Vec<String> = request.cases.iter().map(|p| p.id.clone()).collect();
    let now = now_ms();
    let user_json = to_json(user);
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let rows = store::by_ids(&mut *tx, &ids).await?;
    let find = |id: &str| rows.iter().find(|row| row.case.id == id);
    let missing: Vec<&str> = ids.iter().map(String::as_str).filter(|id| find(id).is_none()).collect();
    if !missing.is_empty() {
        return Err(CasesError::NotFound(format!("These cases {} do not exist. Please check you have the correct ids.", missing.join(", "))));
    }
    let stale: Vec<&str> = request
        .cases
        .iter()
        .filter(|patch| find(&patch.id).is_some_and(|row| decode_version(&patch.version) != Some(row.case.version)))
        .map(|patch| patch.id.as_str())
        .collect();
    if !stale.is_empty() {
        return Err(stale_versions(&stale));
    }
    let mut updates = Vec::new();
    for (patch, changes) in request.cases.iter().zip(changes) {
        let Some(current) = find(&patch.id) else { continue };
        let changes = effective_changes(&to_case(current.clone())?, changes);
        if !changes.is_empty() {
            updates.push((current, changes));
        }
    }
    if updates.is_empty() {
        return Err(CasesError::NotAcceptable("All update fields are identical to current version.".to_owned()));
    }
    let owner_changes: Vec<&str> = updates.iter().filter(|(_, c)| c.owner.is_some()).map(|(row, _)| row.case.id.as_str()).collect();
    if !owner_changes.is_empty() {
        return Err(CasesError::BadRequest(format!("Updating the owner of a case is not allowed ids: [{}]", owner_changes.join(", "))));
    }
    let mut updated_ids = Vec::with_capacity(updates.len());
    for (current, changes) in updates {
        let mut row = current.case.clone();
        if let Some(title) = changes.title {
            row.title = title;
        }
        if let Some(description) = changes.description {
            row.description = description;
        }
        if let Some(tags) = &changes.tags {
            row.tags = to_json(tags);
            store::replace_tags(&mut tx, &row.id, tags).await?;
        }
        if let Some(severity) = changes.severity {
            row.severity = severity.as_str().to_owned();
        }
        if let Some(connector) = &changes.connector {
            row.connector = to_json(connector);
        }
        if let Some(settings) = &changes.settings {
            row.settings = to_json(settings);
        }
        if let Some(assignees) = &changes.assignees {
            row.assignees = to_json(assignees);
            let uids: Vec<String> = assignees.iter().map(|a| a.uid.clone()).collect();
            store::replace_assignees(&mut tx, &row.id, &uids).await?;
        }
        if let Some(category) = changes.category {
            row.category = category;
        }
        if let Some(status) = changes.status {
            let from = closed_set(&row.status, CaseStatus::parse, "status")?;
            let closure = closure(from, status, row.created_at, now);
            apply_closure(&mut row, closure, &user_json, now);
            row.status = status.as_str().to_owned();
        }
        row.version = current.case.version + 1;
        row.updated_at = Some(now);
        row.updated_by = Some(user_json.clone());
        // The version read above may be gone by now on PostgreSQL: then this
        // change lost the race, and says so as a stale version would.
        if !store::update_if_version(&mut *tx, &row, current.case.version).await? {
            return Err(stale_versions(&[row.id.as_str()]));
        }
        updated_ids.push(row.id);
    }
    let mut cases = Vec::with_capacity(updated_ids.len());
    for id in &updated_ids {
        cases.push(read(&mut tx, id).await?);
    }
    tx.commit().await?;
    for id in &updated_ids {
        state.events.publish(Event::case_changed(id));
    }
    tracing::info!(cases = ?updated_ids, "cases updated");
    Ok(cases)
}

fn stale_versions(ids: &[&str]) -> CasesError {
    CasesError::Conflict(format!("These cases {} have been updated. Please refresh before saving additional updates.", ids.join(", ")))
}

fn apply_closure(row: &mut CaseRow, closure: Closure, user_json: &str, now: i64) {
    match closure {
        Closure::Keep => {}
        Closure::Close { duration_secs } => {
            row.closed_at = Some(now);
            row.closed_by = Some(user_json.to_owned());
            row.duration = Some(duration_secs);
        }
        Closure::Reopen => {
            row.closed_at = None;
            row.closed_by = None;
            row.duration = None;
        }
    }
}

/// Cases matching the query, a page at a time, with counts by status of the
/// cases the other filters match.
pub async fn find(state: &AppState, query: &CasesFindQuery) -> Result<CasesFindResponse> {
    let searches = |field: CaseSearchField| query.search_fields.is_empty() || query.search_fields.contains(&field);
    let filter = CaseFilter {
        tags: query.tags.clone(),
        statuses: query.status.iter().map(|s| s.as_str().to_owned()).collect(),
        severities: query.severity.iter().map(|s| s.as_str().to_owned()).collect(),
        owners: query.owner.iter().map(|s| s.as_str().to_owned()).collect(),
        categories: query.category.clone(),
        reporters: query.reporters.clone(),
        assignees: query.assignees.iter().filter(|a| a.as_str() != NO_ASSIGNEES).cloned().collect(),
        unassigned: query.assignees.iter().any(|a| a == NO_ASSIGNEES),
        search: query.search.clone(),
        search_title: searches(CaseSearchField::Title),
        search_description: searches(CaseSearchField::Description),
    };
    let order = match query.sort_field {
        CaseSortField::Title => CaseOrder::Title,
        CaseSortField::Category => CaseOrder::Category,
        CaseSortField::CreatedAt => CaseOrder::CreatedAt,
        CaseSortField::UpdatedAt => CaseOrder::UpdatedAt,
        CaseSortField::ClosedAt => CaseOrder::ClosedAt,
        CaseSortField::Status => CaseOrder::Status,
        CaseSortField::Severity => CaseOrder::Severity,
    };
    let per_page = query.per_page.min(MAX_DOCS_PER_PAGE);
    let offset = query.page.saturating_sub(1).saturating_mul(per_page);
    // One snapshot for the page and the counts.
    let mut tx = state.db.begin().await?;
    let descending = query.sort_order == SortOrder::Desc;
    let (rows, total) = store::find(&mut tx, state.engine, &filter, order, descending, per_page as i64, offset as i64).await?;
    let counts = store::count_by_status(&mut *tx, state.engine, &filter).await?;
    tx.commit().await?;
    let count = |status: CaseStatus| counts.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
    Ok(CasesFindResponse {
        cases: rows.into_iter().map(to_case).collect::<Result<_>>()?,
        page: query.page as u64,
        per_page: per_page as u64,
        total: u64::try_from(total).unwrap_or(0),
        count_open_cases: count(CaseStatus::Open),
        count_in_progress_cases: count(CaseStatus::InProgress),
        count_closed_cases: count(CaseStatus::Closed),
    })
}

/// Deletes cases with their comments and alerts: all of them, or none when
/// one is unknown (404).
pub async fn delete(state: &AppState, ids: &[String]) -> Result<()> {
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let found = store::by_ids(&mut *tx, ids).await?;
    let missing: Vec<&str> = ids.iter().map(String::as_str).filter(|id| !found.iter().any(|row| row.case.id == *id)).collect();
    if !missing.is_empty() {
        return Err(CasesError::NotFound(format!("These cases {} do not exist. Please check you have the correct ids.", missing.join(", "))));
    }
    store::delete(&mut *tx, ids).await?;
    tx.commit().await?;
    for id in ids {
        state.events.publish(Event::case_changed(id));
    }
    tracing::info!(cases = ?ids, "cases deleted");
    Ok(())
}

/// Who attaches (their JSON) and when.
struct Stamp<'a> {
    by: &'a str,
    at: i64,
}

/// Records the alerts among `alerts` the case does not hold yet as one alert
/// attachment, and returns them (none: no attachment). `single` keeps one
/// alert as a string, as it was sent.
async fn attach_alerts(
    tx: &mut AnyConnection,
    case_id: &str,
    alerts: &[(String, String)],
    (rule, owner): (&AlertRule, CaseOwner),
    single: bool,
    stamp: Stamp<'_>,
) -> Result<Vec<(String, String)>> {
    let attachment_id = uuid::Uuid::new_v4().to_string();
    let mut attached: Vec<(String, String)> = Vec::new();
    for alert in alerts {
        if !attached.contains(alert) && store::insert_alert(&mut *tx, case_id, alert, &attachment_id).await? {
            attached.push(alert.clone());
        }
    }
    if attached.is_empty() {
        return Ok(attached);
    }
    let (ids, indices): (Vec<String>, Vec<String>) = attached.iter().cloned().unzip();
    let (alert_id, index) = match (single, ids.as_slice(), indices.as_slice()) {
        (true, [id], [index]) => (OneOrMany::One(id.clone()), OneOrMany::One(index.clone())),
        _ => (OneOrMany::Many(ids), OneOrMany::Many(indices)),
    };
    let row = AttachmentRow {
        id: attachment_id,
        case_id: case_id.to_owned(),
        version: 1,
        kind: "alert".to_owned(),
        comment: None,
        alert_id: Some(to_json(&alert_id)),
        alert_index: Some(to_json(&index)),
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        owner: owner.as_str().to_owned(),
        created_at: stamp.at,
        created_by: stamp.by.to_owned(),
    };
    store::insert_attachment(&mut *tx, &row).await?;
    Ok(attached)
}

/// The alerts of `alerts` the case lacks, each once, in order.
async fn new_alerts(tx: &mut AnyConnection, case_id: &str, alerts: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let held = store::attached_among(&mut *tx, case_id, alerts).await?;
    let mut fresh: Vec<(String, String)> = Vec::new();
    for alert in alerts {
        if !held.contains(alert) && !fresh.contains(alert) {
            fresh.push(alert.clone());
        }
    }
    Ok(fresh)
}

/// Comments on a case or attaches alerts to it (`POST /api/cases/{id}/comments`),
/// and answers the case with every attachment. Alerts the case holds already
/// are left out (all of them: nothing changes); a case holds at most 1,000
/// alerts and 10,000 attachments, and no alert is attached to a closed case.
pub async fn add_attachment(state: &AppState, case_id: &str, request: &AttachmentRequest, user: &CaseUser) -> Result<Case> {
    let attachment = validate_attachment(request).map_err(CasesError::BadRequest)?;
    let now = now_ms();
    let user_json = to_json(user);
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let current = read(&mut tx, case_id).await?;
    if attachment.owner() != current.owner {
        return Err(CasesError::BadRequest("The owner field of the comment must match the case".to_owned()));
    }
    if store::count_attachments(&mut *tx, case_id).await? >= MAX_DOCS_PER_PAGE as i64 {
        return Err(CasesError::BadRequest(format!("The case with case id {case_id} has reached the limit of {MAX_DOCS_PER_PAGE} attachments.")));
    }
    let changed = match &attachment {
        NewAttachment::User { comment, owner } => {
            let row = AttachmentRow {
                id: uuid::Uuid::new_v4().to_string(),
                case_id: case_id.to_owned(),
                version: 1,
                kind: "user".to_owned(),
                comment: Some(comment.clone()),
                alert_id: None,
                alert_index: None,
                rule_id: None,
                rule_name: None,
                owner: owner.as_str().to_owned(),
                created_at: now,
                created_by: user_json.clone(),
            };
            store::insert_attachment(&mut *tx, &row).await?;
            true
        }
        NewAttachment::Alert { alerts, rule, owner } => {
            if current.status == CaseStatus::Closed {
                return Err(CasesError::BadRequest("Alert cannot be attached to a closed case".to_owned()));
            }
            let fresh = new_alerts(&mut tx, case_id, alerts).await?;
            if current.total_alerts as usize + fresh.len() > MAX_ALERTS_PER_CASE {
                return Err(CasesError::BadRequest(too_many_alerts_message()));
            }
            let single = matches!(request, AttachmentRequest::Alert { alert_id: OneOrMany::One(_), .. });
            let stamp = Stamp { by: &user_json, at: now };
            let attached = attach_alerts(&mut tx, case_id, &fresh, (rule, *owner), single, stamp).await?;
            // Another node's attachment may have landed meanwhile (PostgreSQL).
            if store::count_alerts(&mut *tx, case_id).await? > MAX_ALERTS_PER_CASE as i64 {
                return Err(CasesError::BadRequest(too_many_alerts_message()));
            }
            !attached.is_empty()
        }
    };
    if changed {
        store::touch(&mut *tx, case_id, now, &user_json).await?;
    }
    let mut case = read(&mut tx, case_id).await?;
    let attachments = store::attachments(&mut *tx, case_id, false, MAX_DOCS_PER_PAGE as i64, 0).await?;
    tx.commit().await?;
    case.comments = Some(attachments.into_iter().map(to_attachment).collect::<Result<_>>()?);
    if changed {
        state.events.publish(Event::case_changed(case_id));
    }
    Ok(case)
}

/// A case's attachments, a page at a time, newest first unless asked otherwise.
pub async fn find_attachments(state: &AppState, case_id: &str, query: AttachmentsFindQuery) -> Result<AttachmentsFindResponse> {
    let mut tx = state.db.begin().await?;
    if store::by_id(&mut *tx, case_id).await?.is_none() {
        return Err(not_found(case_id));
    }
    let total = store::count_attachments(&mut *tx, case_id).await?;
    let offset = query.page.saturating_sub(1).saturating_mul(query.per_page) as i64;
    let rows = store::attachments(&mut *tx, case_id, query.sort_order == SortOrder::Desc, query.per_page as i64, offset).await?;
    tx.commit().await?;
    Ok(AttachmentsFindResponse {
        comments: rows.into_iter().map(to_attachment).collect::<Result<_>>()?,
        page: query.page as u64,
        per_page: query.per_page as u64,
        total: u64::try_from(total).unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------
// The `.cases` system action.

/// Who owns the cases rules open: Warden is a security console.
const RULE_CASE_OWNER: CaseOwner = CaseOwner::SecuritySolution;

/// How many times one group is tried again after another node changed it
/// between our read and our write.
const GROUP_ATTEMPTS: usize = 5;

/// What a run did with one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Opened,
    Reopened,
    Existing,
}

/// Runs the `.cases` system action for one rule run, as Kibana's cases
/// connector does (`x-pack/platform/plugins/shared/cases/server/connectors/cases/cases_connector_executor.ts`):
///
/// - the alerts are grouped by `groupingBy` ([`group_alerts`]: alerts without
///   the field go to the group `unknown`; more groups than
///   `maximumCasesToOpen` make one case of them all);
/// - each group keeps one case per rule (a row of `case_rule_groups`, keyed
///   by rule, owner and grouping, so two nodes running the rule at once agree
///   on one case): while `timeWindow` has not passed since that case was
///   opened the group's alerts go to it; after that, or when the case was
///   deleted, a new case is opened (`… (2) (Auto-created)`);
/// - a closed case is reopened when `reopenClosedCases` is set; otherwise a
///   new case is opened for the group;
/// - only alerts the case does not hold yet are attached (running twice with
///   the same alerts adds nothing), and none to a case that would pass 1,000
///   alerts (as Kibana, a warning, not an error);
/// - no alerts, nothing at all.
///
/// A blank or over-long alert id, index or rule id (the caller's mistake)
/// refuses the whole run with [`CasesError::BadRequest`] before anything is
/// written; [`CasesError::Conflict`] means the group's record kept changing
/// under concurrent runs five times over (try again).
///
/// Cases are opened by `user` (who the rule runs as), owned by
/// `securitySolution`, titled, described and tagged as Kibana's
/// ([`auto_case_title`]: the rule name and the grouping value, tags
/// `auto-generated`, `rule:<id>`, the grouping and the rule's tags).
/// `templateId` and `autoPushCase` have no effect: Warden has neither case
/// templates nor external case systems. Each group is its own transaction,
/// so a failure leaves the groups before it done.
pub async fn run_case_action(
    state: &AppState,
    user: &CaseUser,
    rule: &RuleForCase,
    alerts: &[AlertForCase],
    params: &CasesActionParams,
) -> Result<CaseActionOutcome> {
    run_case_action_at(state, user, rule, alerts, params, now_ms()).await
}

/// [`run_case_action`] as if it were `now` (milliseconds since the epoch).
pub(crate) async fn run_case_action_at(
    state: &AppState,
    user: &CaseUser,
    rule: &RuleForCase,
    alerts: &[AlertForCase],
    params: &CasesActionParams,
    now: i64,
) -> Result<CaseActionOutcome> {
    for alert in alerts {
        reference("alert id", &alert.id).and_then(|()| reference("alert index", &alert.index)).map_err(CasesError::BadRequest)?;
    }
    reference("rule id", &rule.id).map_err(CasesError::BadRequest)?;
    let sub = &params.sub_action_params;
    let grouped = group_alerts(alerts, sub);
    let mut outcome = CaseActionOutcome { grouping_fell_back: grouped.fell_back, ..CaseActionOutcome::default() };
    if grouped.fell_back {
        tracing::warn!(
            rule = %rule.id,
            maximum = sub.maximum_cases_to_open,
            "the grouping would open more cases than allowed; falling back to one case"
        );
    }
    // A fixed order, so two nodes lock the groups' rows in the same order.
    let mut groups: Vec<(String, String, _)> = grouped
        .groups
        .into_iter()
        .map(|group| {
            let key = group.key();
            (sha256_hex(key.as_bytes()), key, group)
        })
        .collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for (hash, key, group) in groups {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(group.alerts.len());
        for alert in &group.alerts {
            let pair = (alert.id.clone(), alert.index.clone());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        let mut attempt = 0;
        let (placement, case_id, attached) = loop {
            attempt += 1;
            if let Some(placed) = place_group(state, user, rule, &group.grouping, &hash, &key, &pairs, sub, now).await? {
                break placed;
            }
            if attempt >= GROUP_ATTEMPTS {
                return Err(CasesError::Conflict(format!("The cases of rule {} kept changing while its alerts were attached; try again", rule.id)));
            }
        };
        outcome.alerts_attached += attached;
        match placement {
            Placement::Opened => outcome.opened.push(case_id.clone()),
            Placement::Reopened => outcome.reopened.push(case_id.clone()),
            Placement::Existing if attached > 0 => outcome.updated.push(case_id.clone()),
            Placement::Existing => outcome.unchanged.push(case_id.clone()),
        }
        if placement != Placement::Existing || attached > 0 {
            state.events.publish(Event::case_changed(&case_id));
        }
    }
    tracing::info!(
        rule = %rule.id,
        opened = outcome.opened.len(),
        updated = outcome.updated.len(),
        reopened = outcome.reopened.len(),
        alerts = outcome.alerts_attached,
        "cases action ran"
    );
    Ok(outcome)
}

/// Finds or opens the group's case and attaches its new alerts, in one
/// transaction. `None`: another run changed the group's record between our
/// read and our write; the caller tries again.
#[allow(clippy::too_many_arguments)]
async fn place_group(
    state: &AppState,
    user: &CaseUser,
    rule: &RuleForCase,
    grouping: &serde_json::Map<String, serde_json::Value>,
    hash: &str,
    key: &str,
    alerts: &[(String, String)],
    sub: &warden_core::cases::CasesSubActionParams,
    now: i64,
) -> Result<Option<(Placement, String, u64)>> {
    let owner = RULE_CASE_OWNER;
    let user_json = to_json(user);
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let record = store::rule_group(&mut *tx, &rule.id, owner.as_str(), hash).await?;
    let (placement, case_id) = match record {
        None => {
            let record = RuleGroupRow {
                rule_id: rule.id.clone(),
                owner: owner.as_str().to_owned(),
                grouping_hash: hash.to_owned(),
                grouping: key.to_owned(),
                counter: 1,
                case_id: uuid::Uuid::new_v4().to_string(),
                window_started_at: now,
                updated_at: now,
            };
            if !store::insert_rule_group(&mut *tx, &record).await? {
                return Ok(None);
            }
            insert_rule_case(&mut tx, &record, rule, grouping, user, now).await?;
            (Placement::Opened, record.case_id)
        }
        Some(record) => {
            let window_passed = now.saturating_sub(record.window_started_at) > sub.time_window_ms();
            let current = if window_passed { None } else { store::by_id(&mut *tx, &record.case_id).await? };
            match current {
                Some(case) if case.case.status != CaseStatus::Closed.as_str() => (Placement::Existing, record.case_id),
                Some(case) if sub.reopen_closed_cases => {
                    let mut row = case.case.clone();
                    row.status = CaseStatus::Open.as_str().to_owned();
                    apply_closure(&mut row, Closure::Reopen, &user_json, now);
                    row.version = case.case.version + 1;
                    row.updated_at = Some(now);
                    row.updated_by = Some(user_json.clone());
                    if !store::update_if_version(&mut *tx, &row, case.case.version).await? {
                        return Ok(None);
                    }
                    (Placement::Reopened, record.case_id)
                }
                // The window passed, or the case was closed (and is not to be
                // reopened): the group's next case. A deleted case is
                // replaced under the same number and window.
                closed_or_gone => {
                    let next_case = window_passed || closed_or_gone.is_some();
                    let moved = RuleGroupRow {
                        counter: if next_case { record.counter + 1 } else { record.counter },
                        case_id: uuid::Uuid::new_v4().to_string(),
                        window_started_at: if next_case { now } else { record.window_started_at },
                        updated_at: now,
                        ..record.clone()
                    };
                    if !store::move_rule_group(&mut *tx, &moved, &record.case_id).await? {
                        return Ok(None);
                    }
                    insert_rule_case(&mut tx, &moved, rule, grouping, user, now).await?;
                    (Placement::Opened, moved.case_id)
                }
            }
        }
    };
    let fresh = new_alerts(&mut tx, &case_id, alerts).await?;
    let held = store::count_alerts(&mut *tx, &case_id).await?;
    let mut attached = 0;
    if fresh.is_empty() {
        // Every alert is there already: a run seen before.
    } else if held as usize + fresh.len() > MAX_ALERTS_PER_CASE {
        tracing::warn!(
            case = %case_id,
            rule = %rule.id,
            new_alerts = fresh.len(),
            "the case would hold more than {MAX_ALERTS_PER_CASE} alerts; the new alerts are not attached"
        );
    } else {
        let alert_rule = AlertRule { id: Some(rule.id.clone()), name: Some(rule.name.clone()) };
        let stamp = Stamp { by: &user_json, at: now };
        attached = attach_alerts(&mut tx, &case_id, &fresh, (&alert_rule, owner), false, stamp).await?.len() as u64;
        if store::count_alerts(&mut *tx, &case_id).await? > MAX_ALERTS_PER_CASE as i64 {
            // Another node attached alerts meanwhile: look again.
            return Ok(None);
        }
        store::touch(&mut *tx, &case_id, now, &user_json).await?;
    }
    tx.commit().await?;
    Ok(Some((placement, case_id, attached)))
}

/// Opens the case a rule's group goes to, as Kibana's `getCreateCaseRequest`
/// (no template, no custom fields): alerts not synced, severity low.
async fn insert_rule_case(
    tx: &mut AnyConnection,
    record: &RuleGroupRow,
    rule: &RuleForCase,
    grouping: &serde_json::Map<String, serde_json::Value>,
    user: &CaseUser,
    now: i64,
) -> Result<()> {
    let counter = u64::try_from(record.counter).unwrap_or(1);
    let title = auto_case_title(&rule.name, grouping, counter);
    let new = NewCase {
        title: title.trim().chars().take(warden_core::cases::MAX_TITLE_LENGTH).collect(),
        description: auto_case_description(&rule.name, None, grouping),
        tags: auto_case_tags(&rule.id, &rule.tags, grouping),
        severity: CaseSeverity::Low,
        owner: RULE_CASE_OWNER,
        connector: CaseConnector::none(),
        settings: CaseSettings { sync_alerts: false, extract_observables: None },
        assignees: Vec::new(),
        category: None,
    };
    insert_case(tx, &record.case_id, &new, user, now).await
}

#[cfg(test)]
mod tests;

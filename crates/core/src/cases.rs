//! Cases as Kibana's `/api/cases` speaks them: the case, its bodies (create,
//! patch, find, attachments), the field limits and their messages, and the
//! `.cases` system action: its params and how it groups a rule's alerts into
//! cases. Pure rules; the server stores, the SPA shows.
//!
//! The messages are Kibana's (`x-pack/platform/plugins/shared/cases`:
//! `common/schema` for the limits, `server/client/cases/bulk_update.ts` for
//! the patch refusals, `server/connectors/cases/` for the system action).

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Kibana's `MAX_TITLE_LENGTH`.
pub const MAX_TITLE_LENGTH: usize = 160;
pub const MAX_DESCRIPTION_LENGTH: usize = 30_000;
pub const MAX_COMMENT_LENGTH: usize = 30_000;
pub const MAX_CATEGORY_LENGTH: usize = 50;
pub const MAX_TAGS_PER_CASE: usize = 200;
pub const MAX_LENGTH_PER_TAG: usize = 256;
pub const MAX_ASSIGNEES_PER_CASE: usize = 10;
pub const MAX_CUSTOM_FIELDS_PER_CASE: usize = 10;
/// At most this many alerts in one case, all attachments together.
pub const MAX_ALERTS_PER_CASE: usize = 1000;
/// `PATCH /api/cases` takes 1 to this many cases.
pub const MAX_CASES_TO_UPDATE: usize = 100;
/// `DELETE /api/cases` takes 1 to this many ids.
pub const MAX_DELETE_IDS_LENGTH: usize = 100;
pub const MAX_CASES_PER_PAGE: usize = 100;
pub const MAX_COMMENTS_PER_PAGE: usize = 100;
pub const DEFAULT_PER_PAGE: usize = 20;
/// No page may reach past this many cases (Kibana's `MAX_DOCS_PER_PAGE`);
/// also the most attachments one case holds, so the case with its comments
/// is always one page.
pub const MAX_DOCS_PER_PAGE: usize = 10_000;
/// Kibana's `MAX_TAGS_FILTER_LENGTH` and its siblings: values per filter of `_find`.
pub const MAX_FILTER_VALUES: usize = 100;
/// The longest id, alert id, index name, user id, rule id or rule name Warden
/// takes (an Elasticsearch `_id` is at most 512 bytes).
pub const MAX_REFERENCE_LENGTH: usize = 512;
/// The longest `search` of `_find`.
pub const MAX_SEARCH_LENGTH: usize = 1000;
/// The most cases one run of the `.cases` action may open (Kibana's `MAX_OPEN_CASES`).
pub const MAX_OPEN_CASES: u32 = 20;
pub const DEFAULT_MAX_OPEN_CASES: u32 = 5;
pub const DEFAULT_TIME_WINDOW: &str = "7d";
/// Kibana's `MAX_RULE_NAME_LENGTH` and `MAX_SUFFIX_LENGTH`, for the titles of the cases rules open.
const MAX_RULE_NAME_LENGTH: usize = 100;
const MAX_SUFFIX_LENGTH: usize = 60;
/// The tag every case a rule opens carries.
pub const AUTO_GENERATED_TAG: &str = "auto-generated";

crate::text_enum! {
    /// Where a case is in its life.
    CaseStatus { Open = "open", InProgress = "in-progress", Closed = "closed" }
}

crate::text_enum! {
    CaseSeverity { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
}

crate::text_enum! {
    /// The solution a case belongs to; it never changes.
    CaseOwner { Cases = "cases", Observability = "observability", SecuritySolution = "securitySolution" }
}

crate::text_enum! {
    /// What `_find` sorts by.
    CaseSortField {
        Title = "title",
        Category = "category",
        CreatedAt = "createdAt",
        UpdatedAt = "updatedAt",
        ClosedAt = "closedAt",
        Status = "status",
        Severity = "severity",
    }
}

crate::text_enum! {
    SortOrder { Asc = "asc", Desc = "desc" }
}

crate::text_enum! {
    /// What `search` of `_find` looks in.
    CaseSearchField { Title = "title", Description = "description" }
}

crate::text_enum! {
    /// The kinds of attachment Warden stores.
    AttachmentType { User = "user", Alert = "alert" }
}

crate::text_enum! {
    CustomFieldType { Text = "text", Toggle = "toggle", Number = "number" }
}

/// Who opened, changed or closed a case, as Kibana's `User`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseUser {
    pub username: String,
    pub full_name: Option<String>,
    pub email: Option<String>,
    /// Warden's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uid: Option<String>,
}

/// The external system a case is pushed to. Warden has none, so every case
/// has the none connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseConnector {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub connector_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub fields: Option<Value>,
}

impl CaseConnector {
    pub const NONE_TYPE: &'static str = ".none";

    /// `{id: "none", name: "none", type: ".none", fields: null}`.
    pub fn none() -> CaseConnector {
        CaseConnector { id: "none".into(), name: "none".into(), connector_type: CaseConnector::NONE_TYPE.into(), fields: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CaseSettings {
    /// Whether a status change also changes the attached alerts' status.
    pub sync_alerts: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_observables: Option<bool>,
}

/// A user a case is assigned to (their Warden user id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Assignee {
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomField {
    pub key: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: Value,
}

/// A case, as every route returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Case {
    pub id: String,
    /// Opaque; a `PATCH` must send the version it read.
    pub version: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub status: CaseStatus,
    pub severity: CaseSeverity,
    pub owner: CaseOwner,
    pub connector: CaseConnector,
    pub settings: CaseSettings,
    pub assignees: Vec<Assignee>,
    pub category: Option<String>,
    #[serde(rename = "customFields")]
    pub custom_fields: Vec<CustomField>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub observables: Vec<Value>,
    /// Seconds from opening to closing; null unless closed.
    pub duration: Option<i64>,
    /// RFC 3339.
    pub created_at: String,
    pub created_by: CaseUser,
    pub updated_at: Option<String>,
    pub updated_by: Option<CaseUser>,
    pub closed_at: Option<String>,
    pub closed_by: Option<CaseUser>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub external_service: Option<Value>,
    /// User comments.
    #[serde(rename = "totalComment")]
    pub total_comment: u64,
    /// Alerts attached (each alert once).
    #[serde(rename = "totalAlerts")]
    pub total_alerts: u64,
    #[serde(rename = "totalEvents")]
    pub total_events: u64,
    /// Only in the answer of `POST /api/cases/{id}/comments`: every attachment, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<Vec<Attachment>>,
}

/// `POST /api/cases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CasePostRequest {
    /// 1 to 160 characters (trimmed).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 160))]
    pub title: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 30000))]
    pub description: String,
    /// At most 200, each 1 to 256 characters.
    #[cfg_attr(feature = "openapi", schema(max_items = 200))]
    pub tags: Vec<String>,
    /// Warden pushes to no external system: `{"id":"none","name":"none","type":".none","fields":null}`.
    pub connector: CaseConnector,
    pub settings: CaseSettings,
    pub owner: CaseOwner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub assignees: Option<Vec<Assignee>>,
    /// `low` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<CaseSeverity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 50))]
    pub category: Option<String>,
    /// Warden configures no custom fields, so only `[]` is accepted.
    #[serde(default, rename = "customFields", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub custom_fields: Option<Vec<CustomField>>,
}

/// `PATCH /api/cases`: 1 to 100 cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CasesPatchRequest {
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub cases: Vec<CasePatch>,
}

/// One case of a `PATCH`: its id, the version read, and the fields to change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CaseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<CaseSeverity>,
    /// Refused (400) unless it is the case's owner already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<CaseOwner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<CaseConnector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<CaseSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignees: Option<Vec<Assignee>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable))]
    pub category: Option<Option<String>>,
    #[serde(default, rename = "customFields", skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<CustomField>>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The answer of `GET /api/cases/_find`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CasesFindResponse {
    pub cases: Vec<Case>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
    /// Counts by status of the cases the other filters match.
    pub count_open_cases: u64,
    pub count_in_progress_cases: u64,
    pub count_closed_cases: u64,
}

/// A string, or an array of them (an alert attachment's `alertId` and `index`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one.clone()],
            OneOrMany::Many(many) => many.clone(),
        }
    }
}

/// The rule an alert attachment came from; either value may be null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// `POST /api/cases/{id}/comments`: a user comment or alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum AttachmentRequest {
    #[serde(rename = "user")]
    User {
        /// 1 to 30,000 characters.
        comment: String,
        /// The case's owner.
        owner: CaseOwner,
    },
    #[serde(rename = "alert")]
    Alert {
        /// One alert id, or several (then `index` has as many).
        #[serde(rename = "alertId")]
        alert_id: OneOrMany,
        index: OneOrMany,
        rule: AlertRule,
        owner: CaseOwner,
    },
}

/// What an attachment holds, as stored and returned (`AttachmentRequest`'s shapes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum AttachmentBody {
    #[serde(rename = "user")]
    User { comment: String, owner: CaseOwner },
    #[serde(rename = "alert")]
    Alert {
        #[serde(rename = "alertId")]
        alert_id: OneOrMany,
        index: OneOrMany,
        rule: AlertRule,
        owner: CaseOwner,
    },
}

/// An attachment of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    pub id: String,
    pub version: String,
    #[serde(flatten)]
    pub body: AttachmentBody,
    pub created_at: String,
    pub created_by: CaseUser,
    pub pushed_at: Option<String>,
    pub pushed_by: Option<CaseUser>,
    pub updated_at: Option<String>,
    pub updated_by: Option<CaseUser>,
}

/// The answer of `GET /api/cases/{id}/comments/_find`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentsFindResponse {
    pub comments: Vec<Attachment>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

// ---------------------------------------------------------------------------
// Limits and their messages.

/// Kibana's `limitedStringSchema`: the trimmed text, not empty and at most `max` characters.
pub fn limited_string(field: &str, value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("The {field} field cannot be an empty string."));
    }
    if trimmed.chars().count() > max {
        return Err(format!("The length of the {field} is too long. The maximum length is {max}."));
    }
    Ok(trimmed.to_owned())
}

/// Kibana's `limitedArraySchema`.
pub fn limited_array(field: &str, len: usize, min: usize, max: usize) -> Result<(), String> {
    if len < min {
        return Err(format!("The length of the field {field} is too short. Array must be of length >= {min}."));
    }
    if len > max {
        return Err(format!("The length of the field {field} is too long. Array must be of length <= {max}."));
    }
    Ok(())
}

/// An id, alert id, index or user id: not blank, at most [`MAX_REFERENCE_LENGTH`] characters.
pub fn reference(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("The {field} field cannot be an empty string."));
    }
    if value.chars().count() > MAX_REFERENCE_LENGTH {
        return Err(format!("The length of the {field} is too long. The maximum length is {MAX_REFERENCE_LENGTH}."));
    }
    Ok(())
}

pub fn validate_title(title: &str) -> Result<String, String> {
    limited_string("title", title, MAX_TITLE_LENGTH)
}

pub fn validate_description(description: &str) -> Result<String, String> {
    limited_string("description", description, MAX_DESCRIPTION_LENGTH)
}

pub fn validate_comment(comment: &str) -> Result<String, String> {
    limited_string("comment", comment, MAX_COMMENT_LENGTH)
}

/// At most 200 tags, each trimmed, 1 to 256 characters.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>, String> {
    limited_array("tags", tags.len(), 0, MAX_TAGS_PER_CASE)?;
    tags.iter().map(|tag| limited_string("tag", tag, MAX_LENGTH_PER_TAG)).collect()
}

pub fn validate_category(category: Option<&str>) -> Result<Option<String>, String> {
    category.map(|c| limited_string("category", c, MAX_CATEGORY_LENGTH)).transpose()
}

/// At most 10; blank uids are dropped and duplicates kept once, as Kibana's sanitizer does.
pub fn validate_assignees(assignees: &[Assignee]) -> Result<Vec<Assignee>, String> {
    limited_array("assignees", assignees.len(), 0, MAX_ASSIGNEES_PER_CASE)?;
    let mut kept: Vec<Assignee> = Vec::new();
    for assignee in assignees {
        let uid = assignee.uid.trim();
        if uid.is_empty() || kept.iter().any(|a| a.uid == uid) {
            continue;
        }
        reference("uid", uid)?;
        kept.push(Assignee { uid: uid.to_owned() });
    }
    Ok(kept)
}

/// At most 10, and each key must be configured; Warden configures none, so
/// any custom field is refused with Kibana's message.
pub fn validate_custom_fields(fields: &[CustomField]) -> Result<(), String> {
    limited_array("customFields", fields.len(), 0, MAX_CUSTOM_FIELDS_PER_CASE)?;
    if fields.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
    Err(format!("Invalid custom field keys: {}", keys.join(", ")))
}

/// Only the none connector (stored as `CaseConnector::none()`).
pub fn validate_connector(connector: &CaseConnector) -> Result<CaseConnector, String> {
    if connector.connector_type != CaseConnector::NONE_TYPE {
        return Err(format!(
            "Warden pushes cases to no external system: the connector's type must be \"{}\", not \"{}\"",
            CaseConnector::NONE_TYPE,
            connector.connector_type.chars().take(64).collect::<String>()
        ));
    }
    if connector.fields.as_ref().is_some_and(|f| !f.is_null()) {
        return Err("The fields of the \".none\" connector must be null".to_owned());
    }
    Ok(CaseConnector::none())
}

/// A new case, validated and normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub severity: CaseSeverity,
    pub owner: CaseOwner,
    pub connector: CaseConnector,
    pub settings: CaseSettings,
    pub assignees: Vec<Assignee>,
    pub category: Option<String>,
}

pub fn validate_new_case(request: &CasePostRequest) -> Result<NewCase, String> {
    validate_custom_fields(request.custom_fields.as_deref().unwrap_or_default())?;
    Ok(NewCase {
        title: validate_title(&request.title)?,
        description: validate_description(&request.description)?,
        tags: validate_tags(&request.tags)?,
        severity: request.severity.unwrap_or(CaseSeverity::Low),
        owner: request.owner,
        connector: validate_connector(&request.connector)?,
        settings: request.settings.clone(),
        assignees: validate_assignees(request.assignees.as_deref().unwrap_or_default())?,
        category: validate_category(request.category.as_deref())?,
    })
}

/// The fields one case of a `PATCH` changes, validated and normalized.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaseChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub status: Option<CaseStatus>,
    pub severity: Option<CaseSeverity>,
    pub owner: Option<CaseOwner>,
    pub connector: Option<CaseConnector>,
    pub settings: Option<CaseSettings>,
    pub assignees: Option<Vec<Assignee>>,
    pub category: Option<Option<String>>,
}

impl CaseChanges {
    pub fn is_empty(&self) -> bool {
        *self == CaseChanges::default()
    }
}

/// The checks of one case of a `PATCH` that need no stored case.
pub fn validate_patch(patch: &CasePatch) -> Result<CaseChanges, String> {
    reference("id", &patch.id)?;
    if patch.version.chars().count() > MAX_REFERENCE_LENGTH {
        return Err(format!("The length of the version is too long. The maximum length is {MAX_REFERENCE_LENGTH}."));
    }
    if let Some(fields) = &patch.custom_fields {
        validate_custom_fields(fields)?;
    }
    Ok(CaseChanges {
        title: patch.title.as_deref().map(validate_title).transpose()?,
        description: patch.description.as_deref().map(validate_description).transpose()?,
        tags: patch.tags.as_deref().map(validate_tags).transpose()?,
        status: patch.status,
        severity: patch.severity,
        owner: patch.owner,
        connector: patch.connector.as_ref().map(validate_connector).transpose()?,
        settings: patch.settings.clone(),
        assignees: patch.assignees.as_deref().map(validate_assignees).transpose()?,
        category: patch.category.as_ref().map(|c| validate_category(c.as_deref())).transpose()?,
    })
}

/// `changes` without the fields that equal the case's already (Kibana's
/// `getCaseToUpdate`): what is left is what the `PATCH` really changes.
pub fn effective_changes(current: &Case, changes: CaseChanges) -> CaseChanges {
    fn differ<T: PartialEq>(new: Option<T>, old: &T) -> Option<T> {
        new.filter(|n| n != old)
    }
    CaseChanges {
        title: differ(changes.title, &current.title),
        description: differ(changes.description, &current.description),
        tags: differ(changes.tags, &current.tags),
        status: differ(changes.status, &current.status),
        severity: differ(changes.severity, &current.severity),
        owner: differ(changes.owner, &current.owner),
        connector: differ(changes.connector, &current.connector),
        settings: differ(changes.settings, &current.settings),
        assignees: differ(changes.assignees, &current.assignees),
        category: differ(changes.category, &current.category),
    }
}

/// What a status change does to `closed_at`, `closed_by` and `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// Leave them.
    Keep,
    /// Set them: closed now, open for `duration_secs`.
    Close { duration_secs: i64 },
    /// Clear them: the case is open again.
    Reopen,
}

/// Closing records when and how long the case was open (whole seconds, as
/// Kibana's `getDurationForUpdate`); leaving `closed` clears it.
pub fn closure(from: CaseStatus, to: CaseStatus, created_at_ms: i64, now_ms: i64) -> Closure {
    match (from, to) {
        (from, to) if from == to => Closure::Keep,
        (_, CaseStatus::Closed) => Closure::Close { duration_secs: now_ms.saturating_sub(created_at_ms).max(0) / 1000 },
        (CaseStatus::Closed, _) => Closure::Reopen,
        _ => Closure::Keep,
    }
}

// ---------------------------------------------------------------------------
// Query strings. Filters take a value or repeat (`status=open&status=closed`).

/// `GET /api/cases/_find`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CasesFindQuery {
    pub tags: Vec<String>,
    pub status: Vec<CaseStatus>,
    pub severity: Vec<CaseSeverity>,
    /// User ids; `none` matches cases assigned to nobody.
    pub assignees: Vec<String>,
    /// User names of who opened the case.
    pub reporters: Vec<String>,
    pub owner: Vec<CaseOwner>,
    pub category: Vec<String>,
    /// Case-insensitive text in the title or description (or `search_fields`).
    pub search: Option<String>,
    pub search_fields: Vec<CaseSearchField>,
    pub sort_field: CaseSortField,
    pub sort_order: SortOrder,
    pub page: usize,
    pub per_page: usize,
}

/// Kibana's `NO_ASSIGNEES_FILTERING_KEYWORD`.
pub const NO_ASSIGNEES: &str = "none";

fn query_error(name: &str, message: impl std::fmt::Display) -> String {
    format!("[request query.{name}]: {message}")
}

fn parse_closed<T: Copy>(name: &str, value: &str, parse: fn(&str) -> Option<T>, all: &[&str]) -> Result<T, String> {
    parse(value).ok_or_else(|| query_error(name, format!("\"{}\" is not one of {}", value.chars().take(64).collect::<String>(), all.join(", "))))
}

fn closed_values<T: Copy>(name: &str, values: &[&str], parse: fn(&str) -> Option<T>, all: &[&str]) -> Result<Vec<T>, String> {
    filter_values(name, values)?.iter().map(|v| parse_closed(name, v, parse, all)).collect()
}

fn parse_count(name: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(query_error(name, format!("must be a whole number from {min} to {max}"))),
    }
}

/// `page` and `perPage`: page ≥ 1, 1 ≤ perPage ≤ `max_per_page`, and no page past the 10,000th item.
fn paging(page: Option<&str>, per_page: Option<&str>, max_per_page: usize) -> Result<(usize, usize), String> {
    let page = page.map(|p| parse_count("page", p, 1, MAX_DOCS_PER_PAGE)).transpose()?.unwrap_or(1);
    let per_page = per_page.map(|p| parse_count("perPage", p, 1, max_per_page)).transpose()?.unwrap_or(DEFAULT_PER_PAGE);
    if page.saturating_mul(per_page) > MAX_DOCS_PER_PAGE {
        return Err(format!(
            "[request query]: The number of documents is too high. Paginating through more than {MAX_DOCS_PER_PAGE} documents is not possible."
        ));
    }
    Ok((page, per_page))
}

/// The values of one query parameter, bounded in number and length.
fn filter_values(name: &str, values: &[&str]) -> Result<Vec<String>, String> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(query_error(name, format!("at most {MAX_FILTER_VALUES} values")));
    }
    values
        .iter()
        .map(|value| {
            if value.chars().count() > MAX_REFERENCE_LENGTH {
                Err(query_error(name, format!("a value may have at most {MAX_REFERENCE_LENGTH} characters")))
            } else {
                Ok((*value).to_owned())
            }
        })
        .collect()
}

fn single<'a>(name: &str, values: &[&'a str]) -> Result<Option<&'a str>, String> {
    match values {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(query_error(name, "may be given once")),
    }
}

/// The query's pairs grouped by name, refusing names not in `known`.
fn group_pairs<'a>(pairs: &'a [(String, String)], known: &[&str]) -> Result<HashMap<&'a str, Vec<&'a str>>, String> {
    let mut grouped: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, value) in pairs {
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "[request query]: unknown parameter \"{}\" (known: {})",
                name.chars().take(64).collect::<String>(),
                known.join(", ")
            ));
        }
        grouped.entry(name.as_str()).or_default().push(value.as_str());
    }
    Ok(grouped)
}

const FIND_PARAMETERS: &[&str] = &[
    "tags",
    "status",
    "severity",
    "assignees",
    "reporters",
    "owner",
    "category",
    "search",
    "searchFields",
    "sortField",
    "sortOrder",
    "page",
    "perPage",
];

/// Parses `_find`'s query string (its decoded pairs, in order).
pub fn parse_find_query(pairs: &[(String, String)]) -> Result<CasesFindQuery, String> {
    let grouped = group_pairs(pairs, FIND_PARAMETERS)?;
    let get = |name: &str| grouped.get(name).map(Vec::as_slice).unwrap_or_default();
    let status_names: Vec<&str> = CaseStatus::ALL.iter().map(|s| s.as_str()).collect();
    let severity_names: Vec<&str> = CaseSeverity::ALL.iter().map(|s| s.as_str()).collect();
    let owner_names: Vec<&str> = CaseOwner::ALL.iter().map(|s| s.as_str()).collect();
    let field_names: Vec<&str> = CaseSearchField::ALL.iter().map(|s| s.as_str()).collect();
    let sort_names: Vec<&str> = CaseSortField::ALL.iter().map(|s| s.as_str()).collect();
    let search = match single("search", get("search"))? {
        Some(text) if text.chars().count() > MAX_SEARCH_LENGTH => {
            return Err(query_error("search", format!("at most {MAX_SEARCH_LENGTH} characters")));
        }
        Some(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let (page, per_page) = paging(single("page", get("page"))?, single("perPage", get("perPage"))?, MAX_CASES_PER_PAGE)?;
    Ok(CasesFindQuery {
        tags: filter_values("tags", get("tags"))?,
        status: closed_values("status", get("status"), CaseStatus::parse, &status_names)?,
        severity: closed_values("severity", get("severity"), CaseSeverity::parse, &severity_names)?,
        assignees: filter_values("assignees", get("assignees"))?,
        reporters: filter_values("reporters", get("reporters"))?,
        owner: closed_values("owner", get("owner"), CaseOwner::parse, &owner_names)?,
        category: filter_values("category", get("category"))?,
        search,
        search_fields: closed_values("searchFields", get("searchFields"), CaseSearchField::parse, &field_names)?,
        sort_field: single("sortField", get("sortField"))?
            .map(|v| parse_closed("sortField", v, CaseSortField::parse, &sort_names))
            .transpose()?
            .unwrap_or(CaseSortField::CreatedAt),
        sort_order: single("sortOrder", get("sortOrder"))?
            .map(|v| parse_closed("sortOrder", v, SortOrder::parse, &["asc", "desc"]))
            .transpose()?
            .unwrap_or(SortOrder::Desc),
        page,
        per_page,
    })
}

/// `GET /api/cases/{id}/comments/_find`, parsed: newest first unless `sortOrder=asc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentsFindQuery {
    pub page: usize,
    pub per_page: usize,
    pub sort_order: SortOrder,
}

pub fn parse_attachments_find_query(pairs: &[(String, String)]) -> Result<AttachmentsFindQuery, String> {
    let grouped = group_pairs(pairs, &["page", "perPage", "sortOrder"])?;
    let get = |name: &str| grouped.get(name).map(Vec::as_slice).unwrap_or_default();
    let (page, per_page) = paging(single("page", get("page"))?, single("perPage", get("perPage"))?, MAX_COMMENTS_PER_PAGE)?;
    let sort_order = single("sortOrder", get("sortOrder"))?
        .map(|v| parse_closed("sortOrder", v, SortOrder::parse, &["asc", "desc"]))
        .transpose()?
        .unwrap_or(SortOrder::Desc);
    Ok(AttachmentsFindQuery { page, per_page, sort_order })
}

/// `DELETE /api/cases?ids=`: `ids=["a","b"]` (JSON, as Kibana documents it)
/// or `ids=a&ids=b`; 1 to 100 ids, each once.
pub fn parse_delete_ids(pairs: &[(String, String)]) -> Result<Vec<String>, String> {
    let grouped = group_pairs(pairs, &["ids"])?;
    let mut ids: Vec<String> = Vec::new();
    for value in grouped.get("ids").map(Vec::as_slice).unwrap_or_default() {
        if value.trim_start().starts_with('[') {
            let list: Vec<String> = serde_json::from_str(value).map_err(|_| query_error("ids", "expected an id or a JSON array of ids (strings)"))?;
            ids.extend(list);
        } else {
            ids.push((*value).to_owned());
        }
        if ids.len() > MAX_DELETE_IDS_LENGTH {
            break;
        }
    }
    limited_array("ids", ids.len(), 1, MAX_DELETE_IDS_LENGTH).map_err(|m| query_error("ids", m))?;
    for id in &ids {
        reference("id", id).map_err(|m| query_error("ids", m))?;
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

// ---------------------------------------------------------------------------
// Attachments.

/// An attachment request, validated: a comment, or alerts as (id, index) pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum NewAttachment {
    User { comment: String, owner: CaseOwner },
    Alert { alerts: Vec<(String, String)>, rule: AlertRule, owner: CaseOwner },
}

impl NewAttachment {
    pub fn owner(&self) -> CaseOwner {
        match self {
            NewAttachment::User { owner, .. } | NewAttachment::Alert { owner, .. } => *owner,
        }
    }
}

/// Kibana's message when a case would hold more than 1,000 alerts.
pub fn too_many_alerts_message() -> String {
    format!("Case has reached the maximum allowed number ({MAX_ALERTS_PER_CASE}) of attached alerts.")
}

pub fn validate_attachment(request: &AttachmentRequest) -> Result<NewAttachment, String> {
    match request {
        AttachmentRequest::User { comment, owner } => Ok(NewAttachment::User { comment: validate_comment(comment)?, owner: *owner }),
        AttachmentRequest::Alert { alert_id, index, rule, owner } => {
            let ids = alert_id.to_vec();
            let indices = index.to_vec();
            if ids.len() != indices.len() {
                return Err(format!(
                    "Received an alert comment with ids and indices arrays of different lengths alertId: {} index: {}",
                    ids.len(),
                    indices.len()
                ));
            }
            limited_array("alertId", ids.len(), 1, MAX_ALERTS_PER_CASE).map_err(|m| if ids.is_empty() { m } else { too_many_alerts_message() })?;
            for (id, index) in ids.iter().zip(&indices) {
                reference("alertId", id)?;
                reference("index", index)?;
            }
            for (name, value) in [("rule.id", &rule.id), ("rule.name", &rule.name)] {
                if value.as_ref().is_some_and(|v| v.chars().count() > MAX_REFERENCE_LENGTH) {
                    return Err(format!("The length of the {name} is too long. The maximum length is {MAX_REFERENCE_LENGTH}."));
                }
            }
            Ok(NewAttachment::Alert { alerts: ids.into_iter().zip(indices).collect(), rule: rule.clone(), owner: *owner })
        }
    }
}

// ---------------------------------------------------------------------------
// The `.cases` system action.

/// The `.cases` system action's params, as a rule stores them (Kibana's
/// `CasesConnectorRuleActionParamsSchema` with the newer fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CasesActionParams {
    /// Always `run`.
    pub sub_action: String,
    pub sub_action_params: CasesSubActionParams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CasesSubActionParams {
    /// No field (one case for all alerts) or one alert field.
    pub grouping_by: Vec<String>,
    /// A closed case of a group is reopened (else a new case is opened).
    pub reopen_closed_cases: bool,
    /// How long a group keeps adding to the case opened for it, e.g. `7d`.
    pub time_window: String,
    pub template_id: Option<String>,
    /// 1 to 20: more groups than this make one case of all the alerts.
    pub maximum_cases_to_open: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_push_case: Option<bool>,
}

impl CasesSubActionParams {
    /// The time window in milliseconds (validated params always have one).
    pub fn time_window_ms(&self) -> i64 {
        parse_time_window(&self.time_window).unwrap_or(7 * DAY_MS)
    }
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// The latest instant JavaScript's `Date` (and so Kibana's date math) can hold.
const MAX_DATE_MS: i64 = 8_640_000_000_000_000;

/// A time window (`^[1-9][0-9]*[dwhm]$`, at least 5 minutes) in milliseconds.
pub fn parse_time_window(text: &str) -> Result<i64, String> {
    let invalid = || "Not a valid time window".to_owned();
    let mut chars = text.chars();
    let unit = chars.next_back().ok_or_else(invalid)?;
    let number = chars.as_str();
    let well_formed = number.starts_with(|c: char| matches!(c, '1'..='9')) && number.chars().all(|c| c.is_ascii_digit());
    let unit_ms = match unit {
        'm' => MINUTE_MS,
        'h' => 60 * MINUTE_MS,
        'd' => DAY_MS,
        'w' => 7 * DAY_MS,
        _ => return Err(invalid()),
    };
    if !well_formed {
        return Err(invalid());
    }
    let count: i64 = number.parse().map_err(|_| invalid())?;
    let ms = count.checked_mul(unit_ms).filter(|ms| *ms <= MAX_DATE_MS).ok_or_else(invalid)?;
    if unit == 'm' && count < 5 {
        return Err("Time window should be at least 5 minutes".to_owned());
    }
    Ok(ms)
}

fn expected(place: &str, kind: &str, value: Option<&Value>) -> String {
    format!("[{place}]: expected value of type [{kind}] but got [{}]", crate::error::config_schema_type(value))
}

/// Checks a rule's `.cases` action params and fills the defaults, with
/// `@kbn/config-schema`'s messages (`[subActionParams.timeWindow]: …`).
pub fn validate_cases_action_params(params: &Value) -> Result<CasesActionParams, String> {
    let Some(outer) = params.as_object() else {
        return Err(format!("expected a plain object value, but found [{}] instead.", crate::error::config_schema_type(Some(params))));
    };
    for key in outer.keys() {
        if key != "subAction" && key != "subActionParams" {
            return Err(format!("[{}]: definition for this key is missing", key.chars().take(64).collect::<String>()));
        }
    }
    if outer.get("subAction").and_then(Value::as_str) != Some("run") {
        return Err("[subAction]: expected value to equal [run]".to_owned());
    }
    let inner = match outer.get("subActionParams") {
        Some(Value::Object(inner)) => inner,
        other => {
            return Err(format!(
                "[subActionParams]: expected a plain object value, but found [{}] instead.",
                crate::error::config_schema_type(other)
            ));
        }
    };
    const KNOWN: [&str; 6] = ["groupingBy", "reopenClosedCases", "timeWindow", "templateId", "maximumCasesToOpen", "autoPushCase"];
    for key in inner.keys() {
        if !KNOWN.contains(&key.as_str()) {
            return Err(format!("[subActionParams.{}]: definition for this key is missing", key.chars().take(64).collect::<String>()));
        }
    }
    let grouping_by = match inner.get("groupingBy") {
        Some(Value::Array(fields)) => {
            if fields.len() > 1 {
                return Err(format!("[subActionParams.groupingBy]: array size is [{}], but cannot be greater than [1]", fields.len()));
            }
            let mut names = Vec::new();
            for (i, field) in fields.iter().enumerate() {
                let place = format!("subActionParams.groupingBy.{i}");
                let name = field.as_str().ok_or_else(|| expected(&place, "string", Some(field)))?;
                let length = name.chars().count();
                if length == 0 {
                    return Err(format!("[{place}]: value has length [0] but it must have a minimum length of [1]."));
                }
                if length > MAX_LENGTH_PER_TAG {
                    return Err(format!("[{place}]: value has length [{length}] but it must have a maximum length of [{MAX_LENGTH_PER_TAG}]."));
                }
                names.push(name.to_owned());
            }
            names
        }
        other => return Err(expected("subActionParams.groupingBy", "array", other)),
    };
    let reopen_closed_cases = match inner.get("reopenClosedCases") {
        None => false,
        Some(Value::Bool(reopen)) => *reopen,
        other => return Err(expected("subActionParams.reopenClosedCases", "boolean", other)),
    };
    let time_window = match inner.get("timeWindow") {
        None => DEFAULT_TIME_WINDOW.to_owned(),
        Some(Value::String(window)) => {
            parse_time_window(window).map_err(|m| format!("[subActionParams.timeWindow]: {m}"))?;
            window.clone()
        }
        other => return Err(expected("subActionParams.timeWindow", "string", other)),
    };
    let template_id = match inner.get("templateId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_REFERENCE_LENGTH => Some(id.clone()),
        Some(Value::String(id)) => {
            return Err(format!(
                "[subActionParams.templateId]: value has length [{}] but it must have a maximum length of [{MAX_REFERENCE_LENGTH}].",
                id.chars().count()
            ));
        }
        other => return Err(expected("subActionParams.templateId", "string", other)),
    };
    let maximum_cases_to_open = match inner.get("maximumCasesToOpen") {
        None => DEFAULT_MAX_OPEN_CASES,
        Some(Value::Number(number)) => match number.as_f64() {
            Some(n) if n < 1.0 => return Err("[subActionParams.maximumCasesToOpen]: Value must be equal to or greater than [1].".to_owned()),
            Some(n) if n > f64::from(MAX_OPEN_CASES) => {
                return Err(format!("[subActionParams.maximumCasesToOpen]: Value must be equal to or lower than [{MAX_OPEN_CASES}]."));
            }
            _ => number
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("[subActionParams.maximumCasesToOpen]: expected a whole number but got [{number}]"))?,
        },
        other => return Err(expected("subActionParams.maximumCasesToOpen", "number", other)),
    };
    let auto_push_case = match inner.get("autoPushCase") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(push)) => Some(*push),
        other => return Err(expected("subActionParams.autoPushCase", "boolean", other)),
    };
    Ok(CasesActionParams {
        sub_action: "run".to_owned(),
        sub_action_params: CasesSubActionParams { grouping_by, reopen_closed_cases, time_window, template_id, maximum_cases_to_open, auto_push_case },
    })
}

/// An alert a rule hands to the `.cases` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertForCase {
    /// The alert's id (`_id`).
    pub id: String,
    /// Where it is stored (`_index`).
    pub index: String,
    /// Its fields, flat (`{"host.name": "web-01"}`) or nested (`{"host": {"name": "web-01"}}`).
    pub fields: Value,
}

/// The rule the `.cases` action runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleForCase {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
}

/// What one run of the `.cases` action did, by case id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CaseActionOutcome {
    /// Cases opened by this run.
    pub opened: Vec<String>,
    /// Cases that existed and got alerts.
    pub updated: Vec<String>,
    /// Closed cases this run opened again (and attached alerts to).
    pub reopened: Vec<String>,
    /// Cases that got nothing: every alert was attached already, or the case is full.
    pub unchanged: Vec<String>,
    /// Alerts attached by this run.
    pub alerts_attached: u64,
    /// More groups than `maximumCasesToOpen`: all the alerts went to one case.
    pub grouping_fell_back: bool,
}

/// One group of alerts: the field's value that made it (empty without
/// grouping), and its alerts in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertGroup<'a> {
    pub grouping: Map<String, Value>,
    pub alerts: Vec<&'a AlertForCase>,
}

impl AlertGroup<'_> {
    /// The group's identity: its grouping as JSON with sorted keys.
    pub fn key(&self) -> String {
        canonical_json(&Value::Object(self.grouping.clone()))
    }
}

/// The groups of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouped<'a> {
    pub groups: Vec<AlertGroup<'a>>,
    /// Kibana's circuit breaker tripped: one group of every alert.
    pub fell_back: bool,
}

/// The value of `field` in an alert's fields, looked up as lodash's `get`
/// does (a flat `"host.name"` key first, else the nested path, array
/// indices included); `None` when it is absent or falsy (null, false, 0, "")
/// as Kibana's `Boolean(get(alert, field))` judges.
pub fn grouping_value<'v>(fields: &'v Value, field: &str) -> Option<&'v Value> {
    let found = match fields.as_object().and_then(|object| object.get(field)) {
        Some(flat) => Some(flat),
        None => field.split('.').try_fold(fields, |value, step| match value {
            Value::Object(object) => object.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }),
    };
    found.filter(|value| match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    })
}

/// Groups a run's alerts into cases as Kibana's cases connector does
/// (`server/connectors/cases/cases_connector_executor.ts`, `groupAlerts` and
/// `applyCircuitBreakers`): by the value of the `groupingBy` field, in the
/// order values first appear; alerts without the field (or with a falsy
/// value) together in a group keyed `unknown`, last; no `groupingBy`, one
/// group of every alert. When that makes more groups than
/// `maximumCasesToOpen` (or `MAX_OPEN_CASES`), the circuit breaker makes one
/// group of every alert with no grouping, as Kibana falls back to one case.
/// No alerts, no groups.
pub fn group_alerts<'a>(alerts: &'a [AlertForCase], params: &CasesSubActionParams) -> Grouped<'a> {
    let mut fields: Vec<&str> = Vec::new();
    for field in &params.grouping_by {
        if !fields.contains(&field.as_str()) {
            fields.push(field);
        }
    }
    let mut groups: Vec<AlertGroup<'a>> = Vec::new();
    let mut ungrouped: Vec<&'a AlertForCase> = Vec::new();
    for alert in alerts {
        let values: Option<Map<String, Value>> =
            fields.iter().map(|field| grouping_value(&alert.fields, field).map(|v| ((*field).to_owned(), v.clone()))).collect();
        match values {
            Some(grouping) => match groups.iter_mut().find(|group| group.grouping == grouping) {
                Some(group) => group.alerts.push(alert),
                None => groups.push(AlertGroup { grouping, alerts: vec![alert] }),
            },
            None => ungrouped.push(alert),
        }
    }
    if !ungrouped.is_empty() {
        let grouping = fields.iter().map(|field| ((*field).to_owned(), Value::from("unknown"))).collect();
        // An alert whose value is the text "unknown" shares the group, as in Kibana.
        match groups.iter_mut().find(|group| group.grouping == grouping) {
            Some(group) => group.alerts.extend(ungrouped),
            None => groups.push(AlertGroup { grouping, alerts: ungrouped }),
        }
    }
    let limit = params.maximum_cases_to_open.min(MAX_OPEN_CASES) as usize;
    if groups.len() > limit {
        let alerts = groups.into_iter().flat_map(|group| group.alerts).collect();
        return Grouped { groups: vec![AlertGroup { grouping: Map::new(), alerts }], fell_back: true };
    }
    Grouped { groups, fell_back: false }
}

/// JSON with every object's keys sorted, so equal values give equal text.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            let entries: Vec<String> =
                keys.iter().map(|key| format!("{}:{}", Value::from(key.as_str()), canonical_json(&object[key.as_str()]))).collect();
            format!("{{{}}}", entries.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Kibana's `convertValueToString`: text as it is, arrays and objects as JSON.
pub fn value_to_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The title of a case a rule opens, as Kibana's `getCasesTitle`:
/// `<rule> - Grouping by <value> (Auto-created)`, with ` (<n>)` before the
/// last part from the group's second case on, the rule name cut at 100 and
/// the grouping so that the whole stays within 160 characters.
pub fn auto_case_title(rule_name: &str, grouping: &Map<String, Value>, counter: u64) -> String {
    const DOTS: &str = "...";
    let grouping_description = grouping.values().map(value_to_string).collect::<Vec<_>>().join(" & ");
    let counter_text = if counter > 1 { format!(" ({counter})") } else { String::new() };
    let static_start = if grouping_description.is_empty() { "" } else { " - Grouping by " };
    let static_end = format!("{counter_text} (Auto-created)");
    let name_length = rule_name.chars().count();
    let name = if name_length > MAX_RULE_NAME_LENGTH {
        format!("{}{DOTS}", truncate_chars(rule_name, MAX_RULE_NAME_LENGTH - DOTS.len()))
    } else {
        rule_name.to_owned()
    };
    let name_length = name.chars().count();
    let max_suffix = if name_length < MAX_RULE_NAME_LENGTH { MAX_TITLE_LENGTH - name_length } else { MAX_SUFFIX_LENGTH };
    let max_grouping = max_suffix.saturating_sub(static_start.chars().count() + static_end.chars().count());
    let grouping_text = if grouping_description.chars().count() > max_grouping {
        format!("{}{DOTS}", truncate_chars(&grouping_description, max_grouping.saturating_sub(DOTS.len())))
    } else {
        grouping_description
    };
    format!("{name}{static_start}{grouping_text}{static_end}")
}

/// The description of a case a rule opens, as Kibana's `getCaseDescription`.
pub fn auto_case_description(rule_name: &str, rule_url: Option<&str>, grouping: &Map<String, Value>) -> String {
    let rule = match rule_url {
        Some(url) => format!("['{rule_name}']({url})"),
        None => rule_name.to_owned(),
    };
    let mut description = format!("This case was created by the rule {rule}.");
    let grouped_by: Vec<String> = grouping.iter().map(|(key, value)| format!("`{key}: {}`", value_to_string(value))).collect();
    if !grouped_by.is_empty() {
        description.push_str(&format!(" The assigned alerts are grouped by {}.", grouped_by.join(" and ")));
    }
    truncate_chars(&description, MAX_DESCRIPTION_LENGTH)
}

/// The tags of a case a rule opens, as Kibana's `getCaseTags`:
/// `auto-generated`, `rule:<id>`, each grouping field and `field:value`, then
/// the rule's tags; at most 200, each cut at 256 characters. Blank tags,
/// which a case may not have, are left out.
pub fn auto_case_tags(rule_id: &str, rule_tags: &[String], grouping: &Map<String, Value>) -> Vec<String> {
    let mut tags = vec![AUTO_GENERATED_TAG.to_owned(), format!("rule:{rule_id}")];
    for (key, value) in grouping {
        tags.push(key.clone());
        tags.push(format!("{key}:{}", value_to_string(value)));
    }
    tags.extend(rule_tags.iter().cloned());
    tags.into_iter().map(|tag| truncate_chars(tag.trim(), MAX_LENGTH_PER_TAG)).filter(|tag| !tag.is_empty()).take(MAX_TAGS_PER_CASE).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alert(id: &str, fields: Value) -> AlertForCase {
        AlertForCase { id: id.into(), index: ".alerts-security".into(), fields }
    }

    fn sub_params(grouping_by: &[&str], maximum: u32) -> CasesSubActionParams {
        CasesSubActionParams {
            grouping_by: grouping_by.iter().map(|f| (*f).to_owned()).collect(),
            reopen_closed_cases: false,
            time_window: "7d".into(),
            template_id: None,
            maximum_cases_to_open: maximum,
            auto_push_case: None,
        }
    }

    #[test]
    fn strings_are_trimmed_and_bounded_with_kibanas_messages() {
        for (value, max, expected) in [
            ("  a title  ", 160, Ok("a title".to_owned())),
            ("   ", 160, Err("The title field cannot be an empty string.".to_owned())),
            ("", 160, Err("The title field cannot be an empty string.".to_owned())),
            (&"x".repeat(160) as &str, 160, Ok("x".repeat(160))),
            (&"x".repeat(161), 160, Err("The length of the title is too long. The maximum length is 160.".to_owned())),
            (&"é".repeat(160), 160, Ok("é".repeat(160))),
        ] {
            assert_eq!(limited_string("title", value, max), expected, "{value:?}");
        }
        assert!(validate_description(&"d".repeat(30_000)).is_ok());
        assert_eq!(validate_description(&"d".repeat(30_001)), Err("The length of the description is too long. The maximum length is 30000.".into()));
        assert_eq!(validate_comment(" "), Err("The comment field cannot be an empty string.".into()));
        assert_eq!(validate_category(Some(&"c".repeat(51))), Err("The length of the category is too long. The maximum length is 50.".into()));
        assert_eq!(validate_category(None), Ok(None));
    }

    #[test]
    fn arrays_are_bounded_with_kibanas_messages() {
        let tags = |n: usize, tag: &str| vec![tag.to_owned(); n];
        for (list, expected) in [
            (tags(200, "t"), Ok(200)),
            (tags(201, "t"), Err("The length of the field tags is too long. Array must be of length <= 200.".to_owned())),
            (tags(1, &"t".repeat(256)), Ok(1)),
            (tags(1, &"t".repeat(257)), Err("The length of the tag is too long. The maximum length is 256.".to_owned())),
            (tags(1, " "), Err("The tag field cannot be an empty string.".to_owned())),
            (vec![], Ok(0)),
        ] {
            assert_eq!(validate_tags(&list).map(|t| t.len()), expected);
        }
        let people = |n: usize| (0..n).map(|i| Assignee { uid: format!("u{i}") }).collect::<Vec<_>>();
        assert_eq!(validate_assignees(&people(10)).map(|a| a.len()), Ok(10));
        assert_eq!(validate_assignees(&people(11)), Err("The length of the field assignees is too long. Array must be of length <= 10.".into()));
        let messy = [Assignee { uid: " a ".into() }, Assignee { uid: "".into() }, Assignee { uid: "a".into() }, Assignee { uid: "b".into() }];
        assert_eq!(validate_assignees(&messy), Ok(vec![Assignee { uid: "a".into() }, Assignee { uid: "b".into() }]));
        assert_eq!(limited_array("cases", 0, 1, 100), Err("The length of the field cases is too short. Array must be of length >= 1.".into()));
        assert_eq!(limited_array("cases", 101, 1, 100), Err("The length of the field cases is too long. Array must be of length <= 100.".into()));
        assert_eq!(limited_array("cases", 100, 1, 100), Ok(()));
    }

    #[test]
    fn custom_fields_and_connectors_are_what_warden_has() {
        assert_eq!(validate_custom_fields(&[]), Ok(()));
        let field = CustomField { key: "k1".into(), field_type: CustomFieldType::Text, value: json!("x") };
        assert_eq!(validate_custom_fields(std::slice::from_ref(&field)), Err("Invalid custom field keys: k1".into()));
        assert!(validate_custom_fields(&vec![field; 11]).is_err_and(|m| m.contains("<= 10")));
        assert_eq!(validate_connector(&CaseConnector::none()), Ok(CaseConnector::none()));
        let jira = CaseConnector { id: "j".into(), name: "Jira".into(), connector_type: ".jira".into(), fields: None };
        assert!(validate_connector(&jira).is_err_and(|m| m.contains(".jira")));
        let odd = CaseConnector { fields: Some(json!({"a": 1})), ..CaseConnector::none() };
        assert!(validate_connector(&odd).is_err());
    }

    fn post() -> CasePostRequest {
        CasePostRequest {
            title: " Breach ".into(),
            description: "Lateral movement".into(),
            tags: vec!["t1".into()],
            connector: CaseConnector::none(),
            settings: CaseSettings { sync_alerts: true, extract_observables: None },
            owner: CaseOwner::SecuritySolution,
            assignees: None,
            severity: None,
            category: None,
            custom_fields: None,
        }
    }

    #[test]
    fn a_new_case_defaults_to_low_severity() {
        let new = validate_new_case(&post()).expect("valid");
        assert_eq!((new.title.as_str(), new.severity, new.assignees.len()), ("Breach", CaseSeverity::Low, 0));
        let bad = CasePostRequest { title: "x".repeat(161), ..post() };
        assert!(validate_new_case(&bad).is_err_and(|m| m.contains("title is too long")));
        let wire: CasePostRequest = serde_json::from_value(json!({
            "title": "t", "description": "d", "tags": [], "owner": "cases", "settings": {"syncAlerts": false},
            "connector": {"id": "none", "name": "none", "type": ".none", "fields": null}, "severity": "critical"
        }))
        .expect("Kibana's body");
        assert_eq!(wire.severity, Some(CaseSeverity::Critical));
        let unknown = serde_json::from_value::<CasePostRequest>(json!({"title": "t", "foo": 1}));
        assert!(unknown.is_err());
    }

    fn case() -> Case {
        Case {
            id: "c1".into(),
            version: "v".into(),
            title: "Breach".into(),
            description: "d".into(),
            tags: vec!["a".into()],
            status: CaseStatus::Open,
            severity: CaseSeverity::Low,
            owner: CaseOwner::Cases,
            connector: CaseConnector::none(),
            settings: CaseSettings { sync_alerts: false, extract_observables: None },
            assignees: vec![],
            category: None,
            custom_fields: vec![],
            observables: vec![],
            duration: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            created_by: CaseUser { username: "admin".into(), full_name: None, email: None, profile_uid: None },
            updated_at: None,
            updated_by: None,
            closed_at: None,
            closed_by: None,
            external_service: None,
            total_comment: 0,
            total_alerts: 0,
            total_events: 0,
            comments: None,
        }
    }

    #[test]
    fn a_patch_keeps_only_what_differs() {
        let patch: CasePatch =
            serde_json::from_value(json!({"id": "c1", "version": "v", "title": " Breach ", "tags": ["a"], "severity": "high", "category": null}))
                .expect("patch");
        assert_eq!(patch.category, Some(None), "null is not absent");
        let changes = effective_changes(&case(), validate_patch(&patch).expect("valid"));
        assert_eq!(changes, CaseChanges { severity: Some(CaseSeverity::High), ..CaseChanges::default() });
        let same =
            CasePatch { id: "c1".into(), version: "v".into(), title: Some("Breach".into()), owner: Some(CaseOwner::Cases), ..CasePatch::default() };
        assert!(effective_changes(&case(), validate_patch(&same).expect("valid")).is_empty());
        let owner = CasePatch { owner: Some(CaseOwner::Observability), ..same.clone() };
        assert_eq!(effective_changes(&case(), validate_patch(&owner).expect("valid")).owner, Some(CaseOwner::Observability));
        let category = CasePatch { category: Some(Some(" net ".into())), ..same.clone() };
        assert_eq!(effective_changes(&case(), validate_patch(&category).expect("valid")).category, Some(Some("net".into())));
        for (bad, message) in [
            (CasePatch { title: Some(" ".into()), ..same.clone() }, "The title field cannot be an empty string."),
            (CasePatch { id: "".into(), ..same.clone() }, "The id field cannot be an empty string."),
            (CasePatch { tags: Some(vec!["x".into(); 201]), ..same.clone() }, "Array must be of length <= 200."),
        ] {
            assert!(validate_patch(&bad).is_err_and(|m| m.contains(message)), "{bad:?}");
        }
    }

    #[test]
    fn closing_records_the_duration_and_reopening_clears_it() {
        use CaseStatus::*;
        for (from, to, expected) in [
            (Open, Closed, Closure::Close { duration_secs: 90 }),
            (InProgress, Closed, Closure::Close { duration_secs: 90 }),
            (Closed, Open, Closure::Reopen),
            (Closed, InProgress, Closure::Reopen),
            (Open, InProgress, Closure::Keep),
            (Closed, Closed, Closure::Keep),
        ] {
            assert_eq!(closure(from, to, 1_000, 91_999), expected, "{from:?} -> {to:?}");
        }
        assert_eq!(closure(Open, Closed, 5_000, 1_000), Closure::Close { duration_secs: 0 }, "a clock step back is not negative");
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn find_queries_parse_with_defaults_and_bounds() {
        let query = parse_find_query(&[]).expect("no parameters");
        assert_eq!((query.page, query.per_page, query.sort_field, query.sort_order), (1, 20, CaseSortField::CreatedAt, SortOrder::Desc));
        let query = parse_find_query(&pairs(&[
            ("status", "open"),
            ("status", "in-progress"),
            ("tags", "a"),
            ("search", "  breach "),
            ("sortField", "title"),
            ("sortOrder", "asc"),
            ("perPage", "100"),
            ("owner", "securitySolution"),
        ]))
        .expect("valid");
        assert_eq!(query.status, vec![CaseStatus::Open, CaseStatus::InProgress]);
        assert_eq!((query.search.as_deref(), query.per_page, query.sort_field), (Some("breach"), 100, CaseSortField::Title));
        for (bad, message) in [
            (vec![("perPage", "101")], "[request query.perPage]"),
            (vec![("perPage", "0")], "[request query.perPage]"),
            (vec![("page", "0")], "[request query.page]"),
            (vec![("page", "x")], "[request query.page]"),
            (vec![("page", "101"), ("perPage", "100")], "more than 10000 documents"),
            (vec![("status", "done")], "[request query.status]: \"done\" is not one of open, in-progress, closed"),
            (vec![("sortField", "id")], "[request query.sortField]"),
            (vec![("sortOrder", "up")], "[request query.sortOrder]"),
            (vec![("page", "1"), ("page", "2")], "may be given once"),
            (vec![("from", "now-1d")], "unknown parameter \"from\""),
        ] {
            assert!(parse_find_query(&pairs(&bad)).is_err_and(|m| m.contains(message)), "{bad:?}");
        }
        let many: Vec<(&str, &str)> = vec![("tags", "t"); 101];
        assert!(parse_find_query(&pairs(&many)).is_err());
        let long = "s".repeat(MAX_SEARCH_LENGTH + 1);
        assert!(parse_find_query(&pairs(&[("search", &long)])).is_err());
    }

    #[test]
    fn delete_ids_come_as_json_or_repeated() {
        assert_eq!(parse_delete_ids(&pairs(&[("ids", r#"["b","a"]"#)])), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(parse_delete_ids(&pairs(&[("ids", "a"), ("ids", "b"), ("ids", "a")])), Ok(vec!["a".into(), "b".into()]));
        assert!(parse_delete_ids(&[]).is_err_and(|m| m.contains("too short")));
        assert!(parse_delete_ids(&pairs(&[("ids", "[]")])).is_err_and(|m| m.contains("too short")));
        assert!(parse_delete_ids(&pairs(&[("ids", "[1]")])).is_err());
        assert!(parse_delete_ids(&pairs(&[("ids", "")])).is_err());
        let hundred_one: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let json = serde_json::to_string(&hundred_one).unwrap_or_default();
        assert!(parse_delete_ids(&pairs(&[("ids", &json)])).is_err_and(|m| m.contains("<= 100")));
        assert!(parse_delete_ids(&pairs(&[("id", "a")])).is_err());
    }

    #[test]
    fn attachment_queries_page_newest_first() {
        assert_eq!(parse_attachments_find_query(&[]), Ok(AttachmentsFindQuery { page: 1, per_page: 20, sort_order: SortOrder::Desc }));
        assert!(parse_attachments_find_query(&pairs(&[("perPage", "101")])).is_err());
        assert_eq!(parse_attachments_find_query(&pairs(&[("sortOrder", "asc")])).map(|q| q.sort_order), Ok(SortOrder::Asc));
    }

    #[test]
    fn attachments_validate_like_kibanas() {
        let user: AttachmentRequest = serde_json::from_value(json!({"type": "user", "comment": " hi ", "owner": "cases"})).expect("user");
        assert_eq!(validate_attachment(&user), Ok(NewAttachment::User { comment: "hi".into(), owner: CaseOwner::Cases }));
        let alert: AttachmentRequest = serde_json::from_value(json!({
            "type": "alert", "alertId": ["a1", "a2"], "index": ["i1", "i2"], "rule": {"id": "r", "name": null}, "owner": "securitySolution"
        }))
        .expect("alert");
        match validate_attachment(&alert) {
            Ok(NewAttachment::Alert { alerts, .. }) => assert_eq!(alerts, vec![("a1".into(), "i1".into()), ("a2".into(), "i2".into())]),
            other => panic!("{other:?}"),
        }
        let single: AttachmentRequest =
            serde_json::from_value(json!({"type": "alert", "alertId": "a1", "index": "i1", "rule": {"id": null, "name": null}, "owner": "cases"}))
                .expect("one alert");
        assert!(validate_attachment(&single).is_ok());
        let uneven = AttachmentRequest::Alert {
            alert_id: OneOrMany::Many(vec!["a".into(), "b".into()]),
            index: OneOrMany::One("i".into()),
            rule: AlertRule { id: None, name: None },
            owner: CaseOwner::Cases,
        };
        assert!(validate_attachment(&uneven).is_err_and(|m| m.contains("different lengths")));
        let many = AttachmentRequest::Alert {
            alert_id: OneOrMany::Many((0..1001).map(|i| i.to_string()).collect()),
            index: OneOrMany::Many(vec!["i".into(); 1001]),
            rule: AlertRule { id: None, name: None },
            owner: CaseOwner::Cases,
        };
        assert_eq!(validate_attachment(&many), Err(too_many_alerts_message()));
        let none = AttachmentRequest::Alert {
            alert_id: OneOrMany::Many(vec![]),
            index: OneOrMany::Many(vec![]),
            rule: AlertRule { id: None, name: None },
            owner: CaseOwner::Cases,
        };
        assert!(validate_attachment(&none).is_err_and(|m| m.contains("too short")));
        assert!(serde_json::from_value::<AttachmentRequest>(json!({"type": "file", "owner": "cases"})).is_err());
        assert!(serde_json::from_value::<AttachmentRequest>(json!({"type": "user", "comment": "c", "owner": "cases", "x": 1})).is_err());
        // The stored shape flattens the body beside the bookkeeping.
        let stored = Attachment {
            id: "at".into(),
            version: "v".into(),
            body: AttachmentBody::User { comment: "hi".into(), owner: CaseOwner::Cases },
            created_at: "t".into(),
            created_by: CaseUser { username: "u".into(), full_name: None, email: None, profile_uid: None },
            pushed_at: None,
            pushed_by: None,
            updated_at: None,
            updated_by: None,
        };
        let wire = serde_json::to_value(&stored).unwrap_or_default();
        assert_eq!((wire["type"].clone(), wire["comment"].clone(), wire["id"].clone()), (json!("user"), json!("hi"), json!("at")));
    }

    #[test]
    fn time_windows_follow_kibanas_pattern_and_minimum() {
        for (text, expected) in [
            ("7d", Ok(7 * DAY_MS)),
            ("2w", Ok(14 * DAY_MS)),
            ("1h", Ok(3_600_000)),
            ("5m", Ok(300_000)),
            ("10m", Ok(600_000)),
            ("4m", Err("Time window should be at least 5 minutes")),
            ("1m", Err("Time window should be at least 5 minutes")),
            ("0d", Err("Not a valid time window")),
            ("07d", Err("Not a valid time window")),
            ("7", Err("Not a valid time window")),
            ("d", Err("Not a valid time window")),
            ("7M", Err("Not a valid time window")),
            ("7y", Err("Not a valid time window")),
            ("7,", Err("Not a valid time window")),
            ("-7d", Err("Not a valid time window")),
            ("7 d", Err("Not a valid time window")),
            ("", Err("Not a valid time window")),
            ("99999999999999999999d", Err("Not a valid time window")),
            ("999999999999w", Err("Not a valid time window")),
        ] {
            assert_eq!(parse_time_window(text), expected.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn action_params_validate_with_defaults_and_name_the_field() {
        let params = validate_cases_action_params(&json!({"subAction": "run", "subActionParams": {"groupingBy": []}})).expect("minimal");
        let sub = &params.sub_action_params;
        assert_eq!((sub.reopen_closed_cases, sub.time_window.as_str(), sub.maximum_cases_to_open), (false, "7d", 5));
        assert_eq!((sub.template_id.clone(), sub.auto_push_case), (None, None));
        let full = json!({"subAction": "run", "subActionParams": {
            "groupingBy": ["host.name"], "reopenClosedCases": true, "timeWindow": "2h", "templateId": null, "maximumCasesToOpen": 20, "autoPushCase": false
        }});
        let params = validate_cases_action_params(&full).expect("full");
        assert_eq!(params.sub_action_params.grouping_by, vec!["host.name".to_owned()]);
        assert_eq!(params.sub_action_params.time_window_ms(), 2 * 3_600_000);
        assert_eq!(serde_json::to_value(&params).unwrap_or_default(), full, "round trip");
        for (params, message) in [
            (json!(null), "expected a plain object value, but found [null] instead."),
            (json!({"subAction": "push", "subActionParams": {"groupingBy": []}}), "[subAction]: expected value to equal [run]"),
            (json!({"subActionParams": {"groupingBy": []}}), "[subAction]: expected value to equal [run]"),
            (json!({"subAction": "run"}), "[subActionParams]: expected a plain object value, but found [undefined] instead."),
            (json!({"subAction": "run", "subActionParams": {"groupingBy": []}, "x": 1}), "[x]: definition for this key is missing"),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "owner": "cases"}}),
                "[subActionParams.owner]: definition for this key is missing",
            ),
            (json!({"subAction": "run", "subActionParams": {}}), "[subActionParams.groupingBy]: expected value of type [array] but got [undefined]"),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": ["a", "b"]}}),
                "[subActionParams.groupingBy]: array size is [2], but cannot be greater than [1]",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [7]}}),
                "[subActionParams.groupingBy.0]: expected value of type [string] but got [number]",
            ),
            (json!({"subAction": "run", "subActionParams": {"groupingBy": [""]}}), "[subActionParams.groupingBy.0]: value has length [0]"),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "reopenClosedCases": "yes"}}),
                "[subActionParams.reopenClosedCases]: expected value of type [boolean] but got [string]",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "timeWindow": "3m"}}),
                "[subActionParams.timeWindow]: Time window should be at least 5 minutes",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "timeWindow": "7y"}}),
                "[subActionParams.timeWindow]: Not a valid time window",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "timeWindow": 7}}),
                "[subActionParams.timeWindow]: expected value of type [string] but got [number]",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "maximumCasesToOpen": 0}}),
                "[subActionParams.maximumCasesToOpen]: Value must be equal to or greater than [1].",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "maximumCasesToOpen": 21}}),
                "[subActionParams.maximumCasesToOpen]: Value must be equal to or lower than [20].",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "maximumCasesToOpen": 2.5}}),
                "[subActionParams.maximumCasesToOpen]: expected a whole number",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "maximumCasesToOpen": "5"}}),
                "[subActionParams.maximumCasesToOpen]: expected value of type [number] but got [string]",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "templateId": 1}}),
                "[subActionParams.templateId]: expected value of type [string]",
            ),
            (
                json!({"subAction": "run", "subActionParams": {"groupingBy": [], "autoPushCase": "no"}}),
                "[subActionParams.autoPushCase]: expected value of type [boolean]",
            ),
        ] {
            let result = validate_cases_action_params(&params);
            assert!(result.as_ref().is_err_and(|m| m.starts_with(message)), "{params}: {result:?}");
        }
    }

    #[test]
    fn grouping_values_are_found_flat_or_nested_and_falsy_ones_are_missing() {
        let fields =
            json!({"host.name": "flat", "host": {"name": "nested", "ip": ["10.0.0.1"]}, "user": {"name": ""}, "count": 0, "ok": true, "n": 3});
        for (field, expected) in [
            ("host.name", Some(json!("flat"))),
            ("host.ip", Some(json!(["10.0.0.1"]))),
            ("host.ip.0", Some(json!("10.0.0.1"))),
            ("user.name", None),
            ("count", None),
            ("ok", Some(json!(true))),
            ("n", Some(json!(3))),
            ("missing", None),
            ("host.name.first", None),
        ] {
            assert_eq!(grouping_value(&fields, field).cloned(), expected, "{field}");
        }
        assert_eq!(grouping_value(&json!({"host": {"name": "web"}}), "host.name"), Some(&json!("web")));
        assert_eq!(grouping_value(&json!({"a": null}), "a"), None);
        assert_eq!(grouping_value(&json!({"a": false}), "a"), None);
        assert_eq!(grouping_value(&json!("not an object"), "a"), None);
    }

    #[test]
    fn alerts_group_by_the_field_with_unknown_last() {
        let alerts = vec![
            alert("a1", json!({"host.name": "web-01"})),
            alert("a2", json!({"host": {"name": "db-01"}})),
            alert("a3", json!({})),
            alert("a4", json!({"host.name": "web-01"})),
            alert("a5", json!({"host": {"name": "unknown"}})),
            alert("a6", json!({"host.name": ""})),
        ];
        fn ids<'a>(group: &AlertGroup<'a>) -> Vec<&'a str> {
            group.alerts.iter().map(|a| a.id.as_str()).collect()
        }
        let grouped = group_alerts(&alerts, &sub_params(&["host.name"], 5));
        assert!(!grouped.fell_back);
        let summary: Vec<(String, Vec<&str>)> = grouped.groups.iter().map(|g| (g.key(), ids(g))).collect();
        assert_eq!(
            summary,
            vec![
                (r#"{"host.name":"web-01"}"#.to_owned(), vec!["a1", "a4"]),
                (r#"{"host.name":"db-01"}"#.to_owned(), vec!["a2"]),
                (r#"{"host.name":"unknown"}"#.to_owned(), vec!["a5", "a3", "a6"]),
            ]
        );
        // No grouping: one group of all, keyed `{}`.
        let grouped = group_alerts(&alerts, &sub_params(&[], 5));
        assert_eq!((grouped.groups.len(), grouped.groups[0].key(), grouped.groups[0].alerts.len()), (1, "{}".to_owned(), 6));
        // No alerts: no group, so no case.
        assert!(group_alerts(&[], &sub_params(&["host.name"], 5)).groups.is_empty());
        assert!(group_alerts(&[], &sub_params(&[], 5)).groups.is_empty());
        // Values that are arrays or objects group by their whole value.
        let odd = vec![alert("b1", json!({"ip": ["1", "2"]})), alert("b2", json!({"ip": ["1", "2"]})), alert("b3", json!({"ip": ["2"]}))];
        assert_eq!(group_alerts(&odd, &sub_params(&["ip"], 5)).groups.len(), 2);
    }

    #[test]
    fn too_many_groups_fall_back_to_one_case_as_kibanas_circuit_breaker() {
        let alerts: Vec<AlertForCase> = (0..4).map(|i| alert(&format!("a{i}"), json!({"host.name": format!("h{i}")}))).collect();
        for (maximum, groups, fell_back) in [(4, 4, false), (5, 4, false), (3, 1, true), (1, 1, true)] {
            let grouped = group_alerts(&alerts, &sub_params(&["host.name"], maximum));
            assert_eq!((grouped.groups.len(), grouped.fell_back), (groups, fell_back), "maximum {maximum}");
            if fell_back {
                assert_eq!((grouped.groups[0].key(), grouped.groups[0].alerts.len()), ("{}".to_owned(), 4));
            }
        }
        // MAX_OPEN_CASES caps whatever the params say.
        let many: Vec<AlertForCase> = (0..21).map(|i| alert(&format!("a{i}"), json!({"h": i + 1}))).collect();
        assert!(group_alerts(&many, &sub_params(&["h"], 25)).fell_back);
        assert!(!group_alerts(&many[..20], &sub_params(&["h"], 20)).fell_back);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "x"}], "c": null}})),
            r#"{"a":{"c":null,"d":[1,{"y":"x","z":0}]},"b":1}"#
        );
    }

    #[test]
    fn auto_cases_are_titled_described_and_tagged_as_kibanas() {
        let grouping: Map<String, Value> = [("host.name".to_owned(), json!("web-01"))].into_iter().collect();
        let none = Map::new();
        for (name, grouping, counter, expected) in [
            ("Brute force", &grouping, 1, "Brute force - Grouping by web-01 (Auto-created)".to_owned()),
            ("Brute force", &grouping, 2, "Brute force - Grouping by web-01 (2) (Auto-created)".to_owned()),
            ("Brute force", &none, 1, "Brute force (Auto-created)".to_owned()),
            ("Brute force", &none, 3, "Brute force (3) (Auto-created)".to_owned()),
        ] {
            assert_eq!(auto_case_title(name, grouping, counter), expected);
        }
        let long_name = "n".repeat(150);
        let long_value: Map<String, Value> = [("f".to_owned(), json!("v".repeat(300)))].into_iter().collect();
        let title = auto_case_title(&long_name, &long_value, 1);
        assert!(title.starts_with(&format!("{}... - Grouping by v", "n".repeat(97))), "{title}");
        assert!(title.ends_with("... (Auto-created)"), "{title}");
        assert!(title.chars().count() <= MAX_TITLE_LENGTH, "{}", title.chars().count());
        let title = auto_case_title("short", &long_value, 12);
        assert_eq!(title.chars().count(), MAX_TITLE_LENGTH, "{title}");
        assert!(validate_title(&title).is_ok());

        assert_eq!(
            auto_case_description("Brute force", None, &grouping),
            "This case was created by the rule Brute force. The assigned alerts are grouped by `host.name: web-01`."
        );
        assert_eq!(auto_case_description("R", Some("https://w/r/1"), &none), "This case was created by the rule ['R'](https://w/r/1).");
        assert_eq!(
            auto_case_tags("r1", &["mitre".into(), " ".into()], &grouping),
            vec!["auto-generated", "rule:r1", "host.name", "host.name:web-01", "mitre"]
        );
        let many: Vec<String> = (0..300).map(|i| format!("t{i}")).collect();
        let tags = auto_case_tags("r1", &many, &none);
        assert_eq!((tags.len(), tags[2].as_str()), (MAX_TAGS_PER_CASE, "t0"));
        assert!(auto_case_tags("r".repeat(300).as_str(), &[], &none).iter().all(|t| t.chars().count() <= MAX_LENGTH_PER_TAG));
        let structured: Map<String, Value> = [("ip".to_owned(), json!(["1", "2"]))].into_iter().collect();
        assert_eq!(auto_case_title("R", &structured, 1), r#"R - Grouping by ["1","2"] (Auto-created)"#);
    }
}

//! Rules (Kibana's `/api/alerting`): saving one validates it with the core's
//! rules, splits its actions, gives it an API key of whoever saved it
//! (`api_keys::rule_saved_by`) and a recurring task that runs it
//! (`runner.rs`); every change is recorded in the configuration audit trail.

mod agent_status;
pub mod runner;
pub mod verification;

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Map, Value};
use warden_core::actions::ConnectorChange;
use warden_core::api_keys::InvalidationReason;
use warden_core::authz::has_privilege;
use warden_core::events::Event;
use warden_core::rules::{
    Alert, AlertStatus, AlertsCount, CreateRuleRequest, ExecutionError, ExecutionState, ExecutionStatus, FindAlertsResponse, FindRulesResponse,
    LastRun, NotifyWhen, RULE_TYPES, Rule, RuleAction, RuleRefusal, RuleRun, RuleSchedule, RuleSystemAction, RuleTypeInfo, RuleTypeSpec, RunOutcome,
    UpdateRuleRequest, merge_actions, rule_type, split_actions, validate_common, validate_rule_params,
};

use crate::AppState;
use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::ApiError;
use crate::fleet::rfc3339;
use crate::store;
use crate::store::changes::{self, ChangeRow};
use crate::store::rules::{AlertRow, FindAlerts, FindRules, RuleRow, SortColumn};

pub use runner::definitions;

/// What went wrong, for the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("Saved object [alert/{0}] not found")]
    NotFound(String),
    #[error("Alert {0} not found")]
    AlertNotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<RuleRefusal> for RulesError {
    fn from(refusal: RuleRefusal) -> RulesError {
        match refusal {
            RuleRefusal::BadRequest(message) => RulesError::BadRequest(message),
            RuleRefusal::Forbidden(message) => RulesError::Forbidden(message),
        }
    }
}

impl From<RulesError> for ApiError {
    fn from(err: RulesError) -> ApiError {
        match err {
            RulesError::NotFound(_) | RulesError::AlertNotFound(_) => ApiError::NotFound(err.to_string()),
            RulesError::BadRequest(message) => ApiError::BadRequest(message),
            RulesError::Forbidden(message) => ApiError::Coded { status: StatusCode::FORBIDDEN, code: "Forbidden", message },
            RulesError::Conflict(message) => ApiError::Conflict(message),
            RulesError::Database(err) => ApiError::Database(err),
            RulesError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = RulesError> = std::result::Result<T, E>;

/// The task that runs a rule: one recurring row per enabled rule.
pub fn task_id(rule_id: &str) -> String {
    format!("rule:{rule_id}")
}

/// The task type that runs rules of `rule_type_id`.
pub fn task_type(rule_type_id: &str) -> String {
    format!("alerting:{rule_type_id}")
}

/// The rule types, and whether the caller may create rules of each.
pub fn types(user: &AuthUser) -> Vec<RuleTypeInfo> {
    RULE_TYPES.iter().map(|spec| RuleTypeInfo::of(spec, &user.roles)).collect()
}

pub fn config(state: &AppState) -> warden_core::rules::AlertingConfig {
    let minimum = i64::try_from(state.config.rules_minimum_interval.as_millis()).unwrap_or(i64::MAX);
    warden_core::rules::AlertingConfig {
        minimum_schedule_interval: warden_core::rules::MinimumScheduleInterval {
            value: warden_core::rules::format_duration_ms(minimum),
            enforce: true,
        },
        is_using_security: true,
    }
}

/// The biggest params object a rule or one of its actions may carry.
const MAX_PARAMS_BYTES: usize = 64 * 1024;

/// What a create or an update asks to save, before it is checked.
struct Draft<'a> {
    name: &'a str,
    tags: &'a [String],
    schedule: &'a RuleSchedule,
    throttle: Option<&'a str>,
    notify_when: Option<NotifyWhen>,
    params: &'a Map<String, Value>,
    actions: &'a [warden_core::rules::RuleActionRequest],
}

/// Everything a save checks: the saver's right to the type, the common
/// fields, the type's params, the action templates, and the actions (split in two).
fn checked(
    state: &AppState,
    user: &AuthUser,
    spec: &RuleTypeSpec,
    draft: &Draft<'_>,
    connectors: &HashMap<String, warden_core::rules::ConnectorRef>,
    verb: &str,
) -> Result<(Vec<RuleAction>, Vec<RuleSystemAction>)> {
    if !has_privilege(&user.roles, spec.required_privilege) {
        return Err(RulesError::Forbidden(format!("Unauthorized to {verb} a \"{}\" rule: it requires {}", spec.id, spec.required_privilege)));
    }
    let minimum = i64::try_from(state.config.rules_minimum_interval.as_millis()).unwrap_or(i64::MAX);
    validate_common(draft.name, draft.tags, draft.schedule, draft.throttle, minimum, if verb == "create" { "creating" } else { "updating" })?;
    if serde_json::to_string(draft.params).map_or(0, |t| t.len()) > MAX_PARAMS_BYTES {
        return Err(RulesError::BadRequest(format!("[request body.params]: larger than {MAX_PARAMS_BYTES} bytes")));
    }
    validate_rule_params(spec.id, draft.params).map_err(RulesError::BadRequest)?;
    for action in draft.actions {
        if serde_json::to_string(&action.params).map_or(0, |t| t.len()) > MAX_PARAMS_BYTES {
            return Err(RulesError::BadRequest(format!("Action {}: params larger than {MAX_PARAMS_BYTES} bytes", action.id)));
        }
        // Templates are checked now (syntax, size), not first when an alert fires.
        if let Some(connector) = connectors.get(&action.id) {
            crate::actions::template::render_action_params(&connector.connector_type_id, &action.params, &Value::Null)
                .map_err(|err| RulesError::BadRequest(format!("Action {}: {err}", action.id)))?;
        }
    }
    let rule_level_frequency = draft.throttle.is_some() || draft.notify_when.is_some();
    let split =
        split_actions(draft.actions, spec, rule_level_frequency, |id| connectors.get(id).cloned(), &user.roles, || uuid::Uuid::new_v4().to_string())?;
    Ok((split.actions, split.system_actions))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn change(rule_id: &str, what: &str, actor: &str, summary: String) -> ChangeRow {
    ChangeRow {
        // Time-ordered, so changes within one millisecond keep their order.
        id: uuid::Uuid::now_v7().to_string(),
        object_type: "rule".to_owned(),
        object_id: rule_id.to_owned(),
        change: what.to_owned(),
        changed_by: actor.to_owned(),
        changed_at: now_ms(),
        summary,
    }
}

/// Gives the rule a key of `user` (or keeps the one it has if `user` owns
/// it) inside the save's transaction, and writes it into `row`.
async fn attach_key(state: &AppState, tx: &mut sqlx::AnyConnection, row: &mut RuleRow, user: &AuthUser) -> Result<()> {
    if let Some(credentials) = crate::api_keys::rule_saved_by(tx, &row.id, &user.id).await? {
        row.api_key_secret = Some(state.cipher.encrypt(&credentials.secret, &row.id)?);
        row.api_key_id = Some(credentials.id);
        row.api_key_owner = Some(user.username.clone());
    }
    Ok(())
}

/// Makes the rule's task match the rule: running on its interval while
/// enabled (a new or re-enabled rule runs at once), absent while disabled.
async fn sync_task(tx: &mut sqlx::AnyConnection, row: &RuleRow, interval_ms: i64) -> Result<()> {
    let id = task_id(&row.id);
    if row.enabled == 1 {
        store::tasks::ensure_recurring(&mut *tx, &id, &task_type(&row.rule_type_id), interval_ms, now_ms()).await?;
    } else {
        store::tasks::delete(&mut *tx, &id).await?;
    }
    Ok(())
}

fn interval_ms(row: &RuleRow) -> i64 {
    warden_core::rules::parse_duration_ms(&row.schedule_interval, "schedule.interval").unwrap_or(60_000)
}

/// Creates a rule (with the client's id, or a new one).
pub async fn create(state: &AppState, id: Option<&str>, request: CreateRuleRequest, user: &AuthUser) -> Result<Rule> {
    if let Some(id) = id {
        warden_core::actions::validate_connector_id(id).map_err(|m| RulesError::BadRequest(m.replace("system actions", "Warden")))?;
    }
    let spec = rule_type(&request.rule_type_id)
        .ok_or_else(|| RulesError::BadRequest(format!("Rule type \"{}\" is not registered.", request.rule_type_id)))?;
    if request.consumer.trim().is_empty() || request.consumer.len() > 64 {
        return Err(RulesError::BadRequest("[request body.consumer]: must be 1 to 64 characters".into()));
    }
    let connectors = crate::actions::connector_refs(state).await?;
    let draft = Draft {
        name: &request.name,
        tags: &request.tags,
        schedule: &request.schedule,
        throttle: request.throttle.as_deref(),
        notify_when: request.notify_when,
        params: &request.params,
        actions: &request.actions,
    };
    let (actions, system_actions) = checked(state, user, spec, &draft, &connectors, "create")?;
    let now = now_ms();
    let mut row = RuleRow {
        id: id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
        name: request.name.trim().to_owned(),
        rule_type_id: spec.id.to_owned(),
        consumer: request.consumer,
        enabled: i64::from(request.enabled),
        tags: json(&request.tags),
        schedule_interval: request.schedule.interval,
        params: json(&request.params),
        throttle: request.throttle,
        notify_when: request.notify_when.map(|n| n.as_str().to_owned()),
        actions: json(&actions),
        system_actions: json(&system_actions),
        mute_all: 0,
        muted_alert_ids: "[]".into(),
        created_by: user.username.clone(),
        created_at: now,
        updated_by: user.username.clone(),
        updated_at: now,
        api_key_owner: None,
        api_key_id: None,
        api_key_secret: None,
        revision: 0,
        execution_status: ExecutionState::Pending.as_str().into(),
        last_execution_date: None,
        last_duration_ms: None,
        execution_error_reason: None,
        execution_error_message: None,
        last_run: None,
        schedule_log: "{}".into(),
    };
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    attach_key(state, &mut tx, &mut row, user).await?;
    if !store::rules::insert(&mut *tx, &row).await? {
        return Err(RulesError::Conflict(format!("Saved object [alert/{}] conflict", row.id)));
    }
    sync_task(&mut tx, &row, interval_ms(&row)).await?;
    let summary =
        format!("created: {} \"{}\" every {}, {} action(s)", row.rule_type_id, row.name, row.schedule_interval, actions.len() + system_actions.len());
    changes::insert(&mut tx, &change(&row.id, "create", &user.username, summary)).await?;
    tx.commit().await?;
    after_change(state, &row.id).await;
    tracing::info!(rule = %row.id, rule_type = %row.rule_type_id, "rule created");
    get(state, &row.id).await
}

/// Publishes the change and wakes the rule's task, so a saved rule runs at once.
async fn after_change(state: &AppState, rule_id: &str) {
    state.events.publish(Event::rule_changed(rule_id));
    if let Err(err) = state.tasks.request_run(&task_id(rule_id)).await {
        tracing::warn!(error = %err, rule = %rule_id, "could not wake the rule's task; it runs on its schedule");
    }
}

async fn load(state: &AppState, id: &str) -> Result<RuleRow> {
    store::rules::by_id(&state.db, id).await?.ok_or_else(|| RulesError::NotFound(id.to_owned()))
}

/// Replaces a rule's definition (its type and consumer stay).
pub async fn update(state: &AppState, id: &str, request: UpdateRuleRequest, user: &AuthUser) -> Result<Rule> {
    let old = load(state, id).await?;
    let spec =
        rule_type(&old.rule_type_id).ok_or_else(|| RulesError::BadRequest(format!("Rule type \"{}\" is not registered.", old.rule_type_id)))?;
    let connectors = crate::actions::connector_refs(state).await?;
    let draft = Draft {
        name: &request.name,
        tags: &request.tags,
        schedule: &request.schedule,
        throttle: request.throttle.as_deref(),
        notify_when: request.notify_when,
        params: &request.params,
        actions: &request.actions,
    };
    let (actions, system_actions) = checked(state, user, spec, &draft, &connectors, "update")?;
    let mut row = RuleRow {
        name: request.name.trim().to_owned(),
        tags: json(&request.tags),
        schedule_interval: request.schedule.interval,
        params: json(&request.params),
        throttle: request.throttle,
        notify_when: request.notify_when.map(|n| n.as_str().to_owned()),
        actions: json(&actions),
        system_actions: json(&system_actions),
        updated_by: user.username.clone(),
        updated_at: now_ms(),
        revision: old.revision.saturating_add(1),
        ..old.clone()
    };
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    attach_key(state, &mut tx, &mut row, user).await?;
    if !store::rules::update(&mut *tx, &row).await? {
        return Err(RulesError::NotFound(id.to_owned()));
    }
    sync_task(&mut tx, &row, interval_ms(&row)).await?;
    changes::insert(&mut tx, &change(id, "update", &user.username, changed_fields(&old, &row))).await?;
    tx.commit().await?;
    after_change(state, id).await;
    tracing::info!(rule = %id, "rule updated");
    get(state, id).await
}

/// What an update changed, by field.
fn changed_fields(old: &RuleRow, new: &RuleRow) -> String {
    let pairs = [
        ("name", &old.name, &new.name),
        ("tags", &old.tags, &new.tags),
        ("schedule", &old.schedule_interval, &new.schedule_interval),
        ("params", &old.params, &new.params),
        ("actions", &old.actions, &new.actions),
        ("system actions", &old.system_actions, &new.system_actions),
    ];
    let mut changed: Vec<&str> = pairs.iter().filter(|(_, a, b)| a != b).map(|(name, _, _)| *name).collect();
    if old.throttle != new.throttle || old.notify_when != new.notify_when {
        changed.push("notify settings");
    }
    if old.api_key_owner != new.api_key_owner {
        changed.push("API key owner");
    }
    if changed.is_empty() { "updated: nothing changed".into() } else { format!("updated: {}", changed.join(", ")) }
}

/// Deletes a rule; its key is queued for invalidation, never invalidated in place.
pub async fn delete(state: &AppState, id: &str, user: &AuthUser) -> Result<()> {
    let old = load(state, id).await?;
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    crate::api_keys::retire_for_rule(&mut tx, id, InvalidationReason::RuleDeleted).await?;
    store::tasks::delete(&mut *tx, &task_id(id)).await?;
    if !store::rules::delete(&mut tx, id).await? {
        return Err(RulesError::NotFound(id.to_owned()));
    }
    changes::insert(&mut tx, &change(id, "delete", &user.username, format!("deleted: {} \"{}\"", old.rule_type_id, old.name))).await?;
    tx.commit().await?;
    state.events.publish(Event::rule_changed(id));
    tracing::info!(rule = %id, "rule deleted");
    Ok(())
}

/// `_enable` / `_disable`: enabling runs the rule as the user who enabled it
/// (a new key if that is someone else); disabling stops its task and marks
/// its active alerts untracked.
pub async fn set_enabled(state: &AppState, id: &str, enabled: bool, user: &AuthUser) -> Result<()> {
    let old = load(state, id).await?;
    if (old.enabled == 1) == enabled {
        return Ok(());
    }
    let spec =
        rule_type(&old.rule_type_id).ok_or_else(|| RulesError::BadRequest(format!("Rule type \"{}\" is not registered.", old.rule_type_id)))?;
    if enabled && !has_privilege(&user.roles, spec.required_privilege) {
        return Err(RulesError::Forbidden(format!("Unauthorized to enable a \"{}\" rule: it requires {}", spec.id, spec.required_privilege)));
    }
    let mut row = RuleRow { enabled: i64::from(enabled), updated_by: user.username.clone(), updated_at: now_ms(), ..old.clone() };
    if enabled {
        row.execution_status = ExecutionState::Pending.as_str().into();
    }
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    if enabled {
        attach_key(state, &mut tx, &mut row, user).await?;
    } else {
        untrack_alerts(&mut tx, id).await?;
    }
    if !store::rules::update(&mut *tx, &row).await? {
        return Err(RulesError::NotFound(id.to_owned()));
    }
    sync_task(&mut tx, &row, interval_ms(&row)).await?;
    let what = if enabled { "enable" } else { "disable" };
    changes::insert(&mut tx, &change(id, what, &user.username, format!("{what}d"))).await?;
    tx.commit().await?;
    after_change(state, id).await;
    Ok(())
}

async fn untrack_alerts(tx: &mut sqlx::AnyConnection, rule_id: &str) -> Result<()> {
    let now = now_ms();
    for alert in store::rules::active_alerts(&mut *tx, rule_id).await? {
        let row = AlertRow { status: AlertStatus::Untracked.as_str().into(), ended_at: Some(now), updated_at: now, ..alert };
        store::rules::update_alert(&mut *tx, &row).await?;
    }
    Ok(())
}

/// `_mute_all` / `_unmute_all`: a muted rule keeps tracking alerts but fires no action.
pub async fn set_muted(state: &AppState, id: &str, muted: bool, user: &AuthUser) -> Result<()> {
    let old = load(state, id).await?;
    if (old.mute_all == 1) == muted {
        return Ok(());
    }
    let row = RuleRow { mute_all: i64::from(muted), updated_by: user.username.clone(), updated_at: now_ms(), ..old };
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    if !store::rules::update(&mut *tx, &row).await? {
        return Err(RulesError::NotFound(id.to_owned()));
    }
    let what = if muted { "mute" } else { "unmute" };
    changes::insert(&mut tx, &change(id, what, &user.username, format!("{what}d all alerts"))).await?;
    tx.commit().await?;
    state.events.publish(Event::rule_changed(id));
    Ok(())
}

pub async fn get(state: &AppState, id: &str) -> Result<Rule> {
    let row = load(state, id).await?;
    to_rule(state, row).await
}

async fn to_rule(state: &AppState, row: RuleRow) -> Result<Rule> {
    let actions: Vec<RuleAction> = serde_json::from_str(&row.actions).map_err(anyhow::Error::from)?;
    let system_actions: Vec<RuleSystemAction> = serde_json::from_str(&row.system_actions).map_err(anyhow::Error::from)?;
    let task = if row.enabled == 1 { store::tasks::due(&state.db, &task_id(&row.id)).await? } else { None };
    let error =
        row.execution_error_reason.clone().map(|reason| ExecutionError { reason, message: row.execution_error_message.clone().unwrap_or_default() });
    Ok(Rule {
        actions: merge_actions(&actions, &system_actions),
        scheduled_task_id: task.as_ref().map(|_| task_id(&row.id)),
        next_run: task.as_ref().map(|(run_at, _)| rfc3339(*run_at)),
        running: task.as_ref().is_some_and(|(_, status)| matches!(status.as_str(), "claiming" | "running")),
        execution_status: ExecutionStatus {
            status: ExecutionState::parse(&row.execution_status).unwrap_or(ExecutionState::Unknown),
            last_execution_date: rfc3339(row.last_execution_date.unwrap_or(row.created_at)),
            last_duration: row.last_duration_ms.and_then(|ms| u64::try_from(ms).ok()),
            error,
        },
        last_run: row.last_run.as_deref().and_then(|text| serde_json::from_str::<LastRun>(text).ok()),
        params: serde_json::from_str(&row.params).unwrap_or_default(),
        tags: serde_json::from_str(&row.tags).unwrap_or_default(),
        muted_alert_ids: serde_json::from_str(&row.muted_alert_ids).unwrap_or_default(),
        notify_when: row.notify_when.as_deref().and_then(NotifyWhen::parse),
        schedule: RuleSchedule { interval: row.schedule_interval },
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        id: row.id,
        enabled: row.enabled == 1,
        name: row.name,
        rule_type_id: row.rule_type_id,
        consumer: row.consumer,
        created_by: row.created_by,
        updated_by: row.updated_by,
        api_key_owner: row.api_key_owner,
        api_key_created_by_user: false,
        throttle: row.throttle,
        mute_all: row.mute_all == 1,
        revision: u64::try_from(row.revision).unwrap_or(0),
    })
}

/// `_find`'s query, parsed and bounded.
pub struct FindQuery {
    pub page: u32,
    pub per_page: u32,
    pub search: Option<String>,
    pub rule_type_id: Option<String>,
    pub sort_field: Option<String>,
    pub descending: bool,
}

pub async fn find(state: &AppState, query: FindQuery) -> Result<FindRulesResponse> {
    let sort = match query.sort_field.as_deref() {
        None | Some("name") => SortColumn::Name,
        Some("created_at" | "createdAt") => SortColumn::CreatedAt,
        Some("updated_at" | "updatedAt") => SortColumn::UpdatedAt,
        Some("enabled") => SortColumn::Enabled,
        Some("execution_status.last_execution_date" | "last_execution_date") => SortColumn::LastExecution,
        Some(other) => return Err(RulesError::BadRequest(format!("[request query.sort_field]: cannot sort by {other}"))),
    };
    let search = query.search.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let offset = i64::from(query.page.saturating_sub(1)).saturating_mul(i64::from(query.per_page));
    let (rows, total) = store::rules::find(
        &state.db,
        &FindRules {
            search: search.as_deref(),
            rule_type_id: query.rule_type_id.as_deref(),
            sort,
            descending: query.descending,
            limit: i64::from(query.per_page),
            offset,
        },
    )
    .await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        data.push(to_rule(state, row).await?);
    }
    Ok(FindRulesResponse { page: query.page, per_page: query.per_page, total: u64::try_from(total).unwrap_or(0), data })
}

/// A rule's runs, newest first (the newest 200).
pub async fn runs(state: &AppState, id: &str) -> Result<Vec<RuleRun>> {
    load(state, id).await?;
    Ok(store::rules::runs(&state.db, id)
        .await?
        .into_iter()
        .map(|run| RuleRun {
            started_at: rfc3339(run.started_at),
            duration_ms: u64::try_from(run.duration_ms).unwrap_or(0),
            outcome: RunOutcome::parse(&run.outcome).unwrap_or(RunOutcome::Failed),
            message: run.message,
            alerts_count: AlertsCount {
                active: u64::try_from(run.new_alerts.saturating_add(run.ongoing_alerts)).unwrap_or(0),
                new: u64::try_from(run.new_alerts).unwrap_or(0),
                recovered: u64::try_from(run.recovered_alerts).unwrap_or(0),
                ignored: 0,
            },
            actions_scheduled: u64::try_from(run.actions_scheduled).unwrap_or(0),
            trigger: run.run_trigger,
        })
        .collect())
}

/// A rule's change history, newest first (also after it was deleted).
pub async fn history(state: &AppState, id: &str) -> Result<Vec<ConnectorChange>> {
    let rows = changes::of(&state.db, "rule", id).await?;
    if rows.is_empty() {
        return Err(RulesError::NotFound(id.to_owned()));
    }
    Ok(rows
        .into_iter()
        .map(|row| ConnectorChange { change: row.change, changed_by: row.changed_by, changed_at: rfc3339(row.changed_at), summary: row.summary })
        .collect())
}

fn to_alert(row: AlertRow, case_ids: Vec<String>, now: i64) -> Alert {
    let end = row.ended_at.unwrap_or(now);
    let context: Map<String, Value> = serde_json::from_str(&row.context).unwrap_or_default();
    Alert {
        duration_us: u64::try_from(end.saturating_sub(row.started_at)).unwrap_or(0).saturating_mul(1000),
        status: AlertStatus::parse(&row.status).unwrap_or(AlertStatus::Recovered),
        start: rfc3339(row.started_at),
        end: row.ended_at.map(rfc3339),
        id: row.id,
        instance_id: row.instance_id,
        rule_id: row.rule_id,
        rule_name: row.rule_name,
        action_group: row.action_group,
        context,
        case_ids,
    }
}

pub struct AlertQuery {
    pub rule_id: Option<String>,
    pub status: Option<AlertStatus>,
    pub search: Option<String>,
    pub page: u32,
    pub per_page: u32,
}

pub async fn find_alerts(state: &AppState, query: AlertQuery) -> Result<FindAlertsResponse> {
    let search = query.search.map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let offset = i64::from(query.page.saturating_sub(1)).saturating_mul(i64::from(query.per_page));
    let (rows, total) = store::rules::find_alerts(
        &state.db,
        &FindAlerts {
            rule_id: query.rule_id.as_deref(),
            status: query.status.map(AlertStatus::as_str),
            search: search.as_deref(),
            limit: i64::from(query.per_page),
            offset,
        },
    )
    .await?;
    let now = now_ms();
    Ok(FindAlertsResponse {
        page: query.page,
        per_page: query.per_page,
        total: u64::try_from(total).unwrap_or(0),
        data: with_cases(state, rows, now).await?,
    })
}

pub async fn get_alert(state: &AppState, id: &str) -> Result<Alert> {
    let row = store::rules::alert_by_id(&state.db, id).await?.ok_or_else(|| RulesError::AlertNotFound(id.to_owned()))?;
    Ok(with_cases(state, vec![row], now_ms()).await?.remove(0))
}

/// The alerts with the cases each is attached to (a page: at most 100).
async fn with_cases(state: &AppState, rows: Vec<AlertRow>, now: i64) -> Result<Vec<Alert>> {
    let mut alerts = Vec::with_capacity(rows.len());
    for row in rows {
        let case_ids = store::rules::case_ids_of_alert(&state.db, &row.id).await?;
        alerts.push(to_alert(row, case_ids, now));
    }
    Ok(alerts)
}

/// Which rules use each connector (id → the rules' ids and names): the
/// connectors' `referenced_by_count`, and what a connector's delete names.
pub async fn rules_by_connector<'e>(db: impl sqlx::Executor<'e, Database = sqlx::Any>) -> sqlx::Result<BTreeMap<String, Vec<(String, String)>>> {
    let mut using: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (rule_id, rule_name, actions) in store::rules::all_actions(db).await? {
        let actions: Vec<RuleAction> = serde_json::from_str(&actions).unwrap_or_default();
        let ids: std::collections::BTreeSet<String> = actions.into_iter().map(|a| a.id).collect();
        for id in ids {
            using.entry(id).or_default().push((rule_id.clone(), rule_name.clone()));
        }
    }
    Ok(using)
}

/// Beyond Kibana, which runs rules only on their schedule: when Fleet reports
/// that an agent changed (a check-in that changes what it reports, an
/// uninstall, an orphaned endpoint, silence), every enabled
/// `fleet.agent_status` rule is asked to run at once, so an uninstall
/// reaches its webhook within seconds. Requests are coalesced by the task
/// manager (one more run follows a run in progress); only the node where the
/// change happened asks.
pub async fn run_fleet_trigger(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    use warden_core::events::EventKind;
    let mut heard = state.events.subscribe();
    let mut closed = state.events.closed_signal();
    loop {
        let wake = tokio::select! {
            received = heard.recv() => match received {
                Ok(delivered) => delivered.local && matches!(delivered.event.kind, EventKind::AgentEvent | EventKind::AgentChanged | EventKind::Resync),
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
            () = crate::events::bus::stopped(&mut closed) => return,
        };
        if !wake {
            continue;
        }
        // Gather a burst (a bulk unenroll, a check-in storm) into one request.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = heard.try_recv() {}
        match store::rules::enabled_of_type(&state.db, warden_core::rules::FLEET_AGENT_STATUS).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(err) = state.tasks.request_run(&task_id(&id)).await {
                        tracing::warn!(error = %err, rule = %id, "could not ask the rule to run; it runs on its schedule");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not list the rules a Fleet change wakes; they run on their schedule"),
        }
    }
}

/// A verification ended: every enabled `fleet.cloud_connector_verification`
/// rule runs now rather than at its next interval.
pub async fn request_verification_rules(state: &AppState) {
    match store::rules::enabled_of_type(&state.db, warden_core::rules::FLEET_CLOUD_CONNECTOR_VERIFICATION).await {
        Ok(ids) => {
            for id in ids {
                if let Err(err) = state.tasks.request_run(&task_id(&id)).await {
                    tracing::warn!(error = %err, rule = %id, "could not ask the rule to run; it runs on its schedule");
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not list the verification rules; they run on their schedule"),
    }
}

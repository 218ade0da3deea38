//! The actions framework: connectors (stored, secrets encrypted), system
//! actions (built from the type registry, never stored, fixed ids), the
//! licence gate, each type's config/secrets/params validation and executor
//! (`executors.rs`), and the change history of every connector.

mod executors;
pub mod mde;
mod system;
pub mod template;
mod validate;

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};
use warden_core::actions::{
    CONNECTOR_TYPES, Connector, ConnectorChange, ConnectorExecution, ConnectorOperation, ConnectorType, ConnectorTypeSpec, CreateConnectorRequest,
    ExecuteConnectorResponse, UpdateConnectorRequest, connector_type, may_use, preconfigured_refusal, preconfigured_write_refusal,
    system_action_refusal, system_connector_id, validate_connector_id,
};
use warden_core::authz::Role;
use warden_core::events::Event;
use warden_core::rules::ConnectorRef;

use crate::AppState;
use crate::config::{Config, PreconfiguredConnector};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::fleet::rfc3339;
use crate::store::changes::{self, ChangeRow};
use crate::store::connectors::{self as store, ConnectorRow, ExecutionRow};

pub use executors::OutboundGuard;

/// What went wrong, for the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("Saved object [action/{0}] not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The licence does not cover the type.
    #[error("{0}")]
    License(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ActionsError> for ApiError {
    fn from(err: ActionsError) -> ApiError {
        match err {
            ActionsError::NotFound(_) => ApiError::NotFound(err.to_string()),
            ActionsError::BadRequest(message) => ApiError::BadRequest(message),
            ActionsError::License(message) => ApiError::Coded { status: StatusCode::FORBIDDEN, code: "Forbidden", message },
            ActionsError::Conflict(message) => ApiError::Conflict(message),
            ActionsError::Database(err) => ApiError::Database(err),
            ActionsError::Internal(err) => ApiError::Internal(err),
        }
    }
}

type Result<T, E = ActionsError> = std::result::Result<T, E>;

/// The connector types, for the public list (no system action types) or the
/// rule form's (`include_system`: those the caller may use).
pub fn types(state: &AppState, include_system: bool, roles: &[Role]) -> Vec<ConnectorType> {
    CONNECTOR_TYPES
        .iter()
        .filter(|spec| !spec.is_system_action_type || (include_system && may_use(spec, roles)))
        .map(|spec| ConnectorType::of(spec, state.license()))
        .collect()
}

/// A system action as the internal list shows it.
fn system_connector(spec: &ConnectorTypeSpec) -> Connector {
    Connector {
        id: system_connector_id(spec.id),
        name: spec.name.to_owned(),
        connector_type_id: spec.id.to_owned(),
        config: Some(Map::new()),
        is_preconfigured: false,
        is_deprecated: false,
        is_system_action: true,
        is_missing_secrets: Some(false),
        is_connector_type_deprecated: false,
        referenced_by_count: Some(0),
    }
}

fn to_connector(state: &AppState, row: ConnectorRow, referenced_by_count: Option<u64>) -> Connector {
    let config = serde_json::from_str(&row.config).ok();
    let is_missing_secrets = state.cipher.decrypt(&row.secrets, &row.id).is_err();
    Connector {
        id: row.id,
        name: row.name,
        connector_type_id: row.connector_type_id,
        config,
        is_preconfigured: false,
        is_deprecated: false,
        is_system_action: false,
        is_missing_secrets: Some(is_missing_secrets),
        is_connector_type_deprecated: false,
        referenced_by_count,
    }
}

/// Every connector; with `include_system`, the system actions the caller may use too.
pub async fn list(state: &AppState, include_system: bool, roles: &[Role]) -> Result<Vec<Connector>> {
    let rows = store::all(&state.db).await?;
    let using = crate::rules::rules_by_connector(&state.db).await?;
    let count = |id: &str| Some(using.get(id).map_or(0, |rules| rules.len() as u64));
    // A stored connector whose id the configuration now takes is shadowed, as in `get`.
    let mut connectors: Vec<Connector> = rows
        .into_iter()
        .filter(|row| preconfigured(state, &row.id).is_none())
        .map(|row| {
            let n = count(&row.id);
            to_connector(state, row, n)
        })
        .collect();
    connectors.extend(state.config.actions_preconfigured.0.iter().map(|(id, connector)| preconfigured_connector(id, connector, count(id))));
    connectors.sort_by_cached_key(|c| (c.name.to_lowercase(), c.id.clone()));
    if include_system {
        connectors.extend(CONNECTOR_TYPES.iter().filter(|spec| spec.is_system_action_type && may_use(spec, roles)).map(system_connector));
    }
    Ok(connectors)
}

/// A preconfigured connector as the API shows it: no config, no secrets flag.
fn preconfigured_connector(id: &str, connector: &PreconfiguredConnector, referenced_by_count: Option<u64>) -> Connector {
    Connector {
        id: id.to_owned(),
        name: connector.name.clone(),
        connector_type_id: connector.connector_type_id.clone(),
        config: None,
        is_preconfigured: true,
        is_deprecated: false,
        is_system_action: false,
        is_missing_secrets: None,
        is_connector_type_deprecated: false,
        referenced_by_count,
    }
}

fn preconfigured<'a>(state: &'a AppState, id: &str) -> Option<&'a PreconfiguredConnector> {
    state.config.actions_preconfigured.0.get(id)
}

fn refuse_preconfigured(state: &AppState, id: &str, operation: ConnectorOperation) -> Result<()> {
    match preconfigured(state, id).and(preconfigured_write_refusal(id, operation)) {
        Some(refusal) => Err(ActionsError::BadRequest(refusal)),
        None => Ok(()),
    }
}

/// Checks the preconfigured connectors before Warden serves: a system action
/// type, an unknown type or an invalid config stops startup, naming the connector.
pub fn check_preconfigured(config: &Config, guard: &OutboundGuard) -> anyhow::Result<()> {
    for (id, connector) in &config.actions_preconfigured.0 {
        if let Some(refusal) = preconfigured_refusal(id, &connector.connector_type_id) {
            anyhow::bail!("{refusal}");
        }
        validate_connector_id(id).map_err(|err| anyhow::anyhow!("Preconfigured connector {id}: {err}"))?;
        let spec = connector_type(&connector.connector_type_id).ok_or_else(|| anyhow::anyhow!("Preconfigured connector {id}: unknown type"))?;
        validate::config_and_secrets(spec, connector.config.clone(), &connector.secrets, guard)
            .map_err(|err| anyhow::anyhow!("Preconfigured connector {id}: {err}"))?;
    }
    Ok(())
}

/// One connector (stored or preconfigured); a system action's id is not found here, as in Kibana.
pub async fn get(state: &AppState, id: &str) -> Result<Connector> {
    if let Some(connector) = preconfigured(state, id) {
        return Ok(preconfigured_connector(id, connector, None));
    }
    let row = store::by_id(&state.db, id).await?.ok_or_else(|| ActionsError::NotFound(id.to_owned()))?;
    Ok(to_connector(state, row, None))
}

/// The system action with this id, if it is one.
fn system_action(id: &str) -> Option<&'static ConnectorTypeSpec> {
    CONNECTOR_TYPES.iter().find(|spec| spec.is_system_action_type && system_connector_id(spec.id) == id)
}

/// The type, known, not a system action for `operation`, and within the licence.
fn usable_type(state: &AppState, type_id: &str, operation: ConnectorOperation) -> Result<&'static ConnectorTypeSpec> {
    let spec = connector_type(type_id).ok_or_else(|| ActionsError::BadRequest(format!("Action type \"{type_id}\" is not registered.")))?;
    if let Some(refusal) = system_action_refusal(spec, operation) {
        return Err(ActionsError::BadRequest(refusal));
    }
    let license = state.license();
    if !license.allows(spec.minimum_license) {
        return Err(ActionsError::License(format!(
            "Action type {} is disabled because your {} license does not support it. Please upgrade your license.",
            spec.id,
            license.as_str()
        )));
    }
    Ok(spec)
}

fn refuse_system_id(id: &str, operation: ConnectorOperation) -> Result<()> {
    match system_action(id).and_then(|spec| system_action_refusal(spec, operation)) {
        Some(refusal) => Err(ActionsError::BadRequest(refusal)),
        None => Ok(()),
    }
}

fn non_empty_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 {
        return Err(ActionsError::BadRequest("[request body.name]: must be 1 to 256 characters".into()));
    }
    Ok(name.to_owned())
}

fn seal_secrets(state: &AppState, secrets: &Map<String, Value>, id: &str) -> Result<String> {
    Ok(state.cipher.encrypt(&Value::Object(secrets.clone()).to_string(), id)?)
}

fn change(connector_id: &str, what: &str, actor: &str, summary: String) -> ChangeRow {
    ChangeRow {
        // Time-ordered, so changes within one millisecond keep their order.
        id: uuid::Uuid::now_v7().to_string(),
        object_type: "connector".to_owned(),
        object_id: connector_id.to_owned(),
        change: what.to_owned(),
        changed_by: actor.to_owned(),
        changed_at: now_ms(),
        summary,
    }
}

/// Creates a connector (with the client's id, or a new one).
pub async fn create(state: &AppState, id: Option<&str>, request: CreateConnectorRequest, actor: &str) -> Result<Connector> {
    if let Some(id) = id {
        refuse_system_id(id, ConnectorOperation::Create)?;
        validate_connector_id(id).map_err(ActionsError::BadRequest)?;
        if preconfigured(state, id).is_some() {
            return Err(ActionsError::Conflict(format!("Saved object [action/{id}] conflict: a preconfigured connector has this id")));
        }
    }
    let spec = usable_type(state, &request.connector_type_id, ConnectorOperation::Create)?;
    let name = non_empty_name(&request.name)?;
    let config = validate::config_and_secrets(spec, request.config, &request.secrets, &state.outbound_guard())?;
    let id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let now = now_ms();
    let row = ConnectorRow {
        id: id.clone(),
        name,
        connector_type_id: spec.id.to_owned(),
        config: Value::Object(config.clone()).to_string(),
        secrets: seal_secrets(state, &request.secrets, &id)?,
        created_at: now,
        created_by: actor.to_owned(),
        updated_at: now,
        updated_by: actor.to_owned(),
    };
    let mut tx = state.db.begin().await?;
    if !store::insert(&mut *tx, &row).await? {
        return Err(ActionsError::Conflict(format!("Saved object [action/{id}] conflict")));
    }
    let fields: Vec<&str> = config.keys().map(String::as_str).collect();
    let summary = format!("created: {} \"{}\" (config: {})", spec.id, row.name, if fields.is_empty() { "none".into() } else { fields.join(", ") });
    changes::insert(&mut tx, &change(&id, "create", actor, summary)).await?;
    tx.commit().await?;
    state.events.publish(Event::connector_changed(&id));
    tracing::info!(connector = %id, connector_type = spec.id, "connector created");
    Ok(to_connector(state, row, None))
}

/// Replaces a connector's name, config and secrets (its type stays).
pub async fn update(state: &AppState, id: &str, request: UpdateConnectorRequest, actor: &str) -> Result<Connector> {
    refuse_system_id(id, ConnectorOperation::Update)?;
    refuse_preconfigured(state, id, ConnectorOperation::Update)?;
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let old = store::by_id(&mut *tx, id).await?.ok_or_else(|| ActionsError::NotFound(id.to_owned()))?;
    let spec = usable_type(state, &old.connector_type_id, ConnectorOperation::Update)?;
    let name = non_empty_name(&request.name)?;
    let config = validate::config_and_secrets(spec, request.config, &request.secrets, &state.outbound_guard())?;
    let row = ConnectorRow {
        name,
        config: Value::Object(config.clone()).to_string(),
        secrets: seal_secrets(state, &request.secrets, id)?,
        updated_at: now_ms(),
        updated_by: actor.to_owned(),
        ..old.clone()
    };
    if !store::update(&mut *tx, &row).await? {
        return Err(ActionsError::NotFound(id.to_owned()));
    }
    let summary = changed_fields(state, &old, &row.name, &config, &request.secrets);
    changes::insert(&mut tx, &change(id, "update", actor, summary)).await?;
    tx.commit().await?;
    state.events.publish(Event::connector_changed(id));
    tracing::info!(connector = %id, "connector updated");
    Ok(to_connector(state, row, None))
}

/// What an update changed, by name only: never a secret's value.
fn changed_fields(state: &AppState, old: &ConnectorRow, name: &str, config: &Map<String, Value>, secrets: &Map<String, Value>) -> String {
    let mut changed = Vec::new();
    if old.name != name {
        changed.push("name".to_owned());
    }
    let old_config: Map<String, Value> = serde_json::from_str(&old.config).unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> = old_config.keys().chain(config.keys()).collect();
    changed.extend(keys.into_iter().filter(|key| old_config.get(*key) != config.get(*key)).map(|key| format!("config.{key}")));
    let old_secrets: Option<Map<String, Value>> = state.cipher.decrypt(&old.secrets, &old.id).ok().and_then(|text| serde_json::from_str(&text).ok());
    if old_secrets.as_ref() != Some(secrets) {
        changed.push("secrets".to_owned());
    }
    if changed.is_empty() { "updated: nothing changed".to_owned() } else { format!("updated: {}", changed.join(", ")) }
}

pub async fn delete(state: &AppState, id: &str, actor: &str) -> Result<()> {
    refuse_system_id(id, ConnectorOperation::Delete)?;
    refuse_preconfigured(state, id, ConnectorOperation::Delete)?;
    let mut tx = crate::db::begin_write(&state.db, state.engine).await?;
    let old = store::by_id(&mut *tx, id).await?.ok_or_else(|| ActionsError::NotFound(id.to_owned()))?;
    // Refused while rules use it: deleting it would silently drop their
    // actions (a compliance rule would stop notifying anyone).
    if let Some(rules) = crate::rules::rules_by_connector(&mut *tx).await?.remove(id) {
        let names: Vec<String> = rules.iter().map(|(_, name)| format!("\"{name}\"")).collect();
        return Err(ActionsError::Conflict(format!(
            "Connector {id} is used by {} rule(s): {}. Remove it from those rules first.",
            rules.len(),
            names.join(", ")
        )));
    }
    if !store::delete(&mut *tx, id).await? {
        return Err(ActionsError::NotFound(id.to_owned()));
    }
    store::delete_executions(&mut *tx, id).await?;
    changes::insert(&mut tx, &change(id, "delete", actor, format!("deleted: {} \"{}\"", old.connector_type_id, old.name))).await?;
    tx.commit().await?;
    state.events.publish(Event::connector_changed(id));
    tracing::info!(connector = %id, "connector deleted");
    Ok(())
}

/// Runs a connector now with `params` (`_execute`) as `actor`, and records
/// the run in its execution log: the answer says how it went; a failed call
/// is an answer, not an error.
pub async fn execute(state: &AppState, id: &str, params: Map<String, Value>, actor: &str) -> Result<ExecuteConnectorResponse> {
    // On a task of its own: a client that hangs up must not stop the run
    // between the call going out and the log recording it.
    let (state, id, actor) = (state.clone(), id.to_owned(), actor.to_owned());
    tokio::spawn(async move { execute_and_log(&state, &id, params, actor).await }).await.map_err(anyhow::Error::from)?
}

async fn execute_and_log(state: &AppState, id: &str, params: Map<String, Value>, actor: String) -> Result<ExecuteConnectorResponse> {
    let started_at = now_ms();
    let clock = std::time::Instant::now();
    refuse_system_id(id, ConnectorOperation::Execute)?;
    let target = resolve(state, id).await?;
    let spec = usable_type(state, target.type_id(), ConnectorOperation::Execute)?;
    let params = validate::params(spec, params)?;
    let result = run_resolved(state, spec, &target, &params).await;
    log_execution(state, id, &result, Logged { started_at, clock, actor, source: "api".to_owned(), rule_id: None }).await?;
    Ok(result)
}

/// Who ran a connector, from where, and since when: one line of its execution log.
struct Logged {
    started_at: i64,
    clock: std::time::Instant,
    actor: String,
    source: String,
    rule_id: Option<String>,
}

async fn log_execution(state: &AppState, id: &str, result: &ExecuteConnectorResponse, logged: Logged) -> Result<()> {
    let row = ExecutionRow {
        id: uuid::Uuid::new_v4().to_string(),
        connector_id: id.to_owned(),
        started_at: logged.started_at,
        duration_ms: i64::try_from(logged.clock.elapsed().as_millis()).unwrap_or(i64::MAX),
        status: result.status.as_str().to_owned(),
        message: result.message.clone(),
        service_message: result.service_message.clone(),
        retry: result.retry.map(i64::from),
        actor: logged.actor,
        source: logged.source,
        rule_id: logged.rule_id,
    };
    let mut tx = state.db.begin().await?;
    store::insert_execution(&mut tx, &row).await?;
    tx.commit().await?;
    state.events.publish(Event::connector_changed(id));
    Ok(())
}

/// A connector to run: from the configuration file, or stored (its secrets
/// decrypted, or `None` when they cannot be).
enum Target {
    Preconfigured(String, PreconfiguredConnector),
    Stored(ConnectorRow, Option<Map<String, Value>>),
}

impl Target {
    fn type_id(&self) -> &str {
        match self {
            Target::Preconfigured(_, connector) => &connector.connector_type_id,
            Target::Stored(row, _) => &row.connector_type_id,
        }
    }
}

async fn resolve(state: &AppState, id: &str) -> Result<Target> {
    if let Some(connector) = preconfigured(state, id) {
        return Ok(Target::Preconfigured(id.to_owned(), connector.clone()));
    }
    let row = store::by_id(&state.db, id).await?.ok_or_else(|| ActionsError::NotFound(id.to_owned()))?;
    let secrets = state.cipher.decrypt(&row.secrets, &row.id).ok().and_then(|text| serde_json::from_str(&text).ok());
    Ok(Target::Stored(row, secrets))
}

async fn run_resolved(state: &AppState, spec: &ConnectorTypeSpec, target: &Target, params: &Map<String, Value>) -> ExecuteConnectorResponse {
    let guard = state.outbound_guard();
    match target {
        Target::Preconfigured(id, connector) => {
            executors::run(spec, id, &connector.name, &connector.config, &connector.secrets, params, &guard).await
        }
        Target::Stored(row, None) => ExecuteConnectorResponse::failed(
            &row.id,
            "the connector's secrets cannot be decrypted (was the encryption key changed?); enter them again",
            None,
            false,
        ),
        Target::Stored(row, Some(secrets)) => {
            let config: Map<String, Value> = serde_json::from_str(&row.config).unwrap_or_default();
            executors::run(spec, &row.id, &row.name, &config, secrets, params, &guard).await
        }
    }
}

/// Every connector id a rule may name, with its type: stored, preconfigured
/// and every system action (whether the saver may use one is the rule's check).
pub async fn connector_refs(state: &AppState) -> sqlx::Result<HashMap<String, ConnectorRef>> {
    let mut refs: HashMap<String, ConnectorRef> = store::all(&state.db)
        .await?
        .into_iter()
        .map(|row| (row.id, ConnectorRef { connector_type_id: row.connector_type_id, is_system_action: false }))
        .collect();
    for (id, connector) in &state.config.actions_preconfigured.0 {
        refs.insert(id.clone(), ConnectorRef { connector_type_id: connector.connector_type_id.clone(), is_system_action: false });
    }
    for spec in CONNECTOR_TYPES.iter().filter(|spec| spec.is_system_action_type) {
        refs.insert(system_connector_id(spec.id), ConnectorRef { connector_type_id: spec.id.to_owned(), is_system_action: true });
    }
    Ok(refs)
}

/// An action a rule scheduled, as its task carries it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScheduledAction {
    pub connector_id: String,
    pub params: Map<String, Value>,
    /// What the params' templates may name (`rule`, `context`, `alert`, `alerts`, `date`).
    pub variables: Value,
    pub rule_id: String,
    pub rule_name: String,
    #[serde(default)]
    pub rule_tags: Vec<String>,
    /// For system actions: the alerts of the run (their adapter's input).
    #[serde(default)]
    pub alerts: Vec<ScheduledAlert>,
}

/// An alert as a system action's adapter gets it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScheduledAlert {
    /// The alert's uuid (this active span).
    pub id: String,
    pub instance_id: String,
    /// The alert's context: what grouping fields (`host.name`) are read from.
    pub fields: Value,
}

/// Runs an action a rule scheduled, as the owner of the key it was
/// scheduled with, and logs it. Privileges and licence are checked again
/// now: an owner who lost a privilege the action needs makes it fail with
/// the reason; it never runs on privileges nobody holds any more.
pub async fn run_scheduled(
    state: &AppState,
    key: &crate::api_keys::Credentials,
    action: &ScheduledAction,
    attempt: u32,
    last_attempt: bool,
) -> Result<ExecuteConnectorResponse> {
    let started_at = now_ms();
    let clock = std::time::Instant::now();
    let id = action.connector_id.as_str();
    let owner = crate::api_keys::authenticate(&state.db, key).await?;
    let actor = owner.as_ref().map_or_else(|| format!("API key {}", key.id), |user| user.username.clone());
    let mut result = match owner {
        None => {
            ExecuteConnectorResponse::failed(id, "the rule's API key is no longer valid (invalidated, expired, or its owner disabled)", None, false)
        }
        Some(owner) => run_as(state, &owner, action).await,
    };
    if result.retry == Some(true) && last_attempt {
        result.retry = Some(false);
    }
    let source = format!("rule {} (attempt {attempt})", action.rule_name);
    log_execution(state, id, &result, Logged { started_at, clock, actor, source, rule_id: Some(action.rule_id.clone()) }).await?;
    Ok(result)
}

async fn run_as(state: &AppState, owner: &crate::auth::AuthUser, action: &ScheduledAction) -> ExecuteConnectorResponse {
    let id = action.connector_id.as_str();
    let license = state.license();
    if let Some(spec) = system_action(id) {
        if !may_use(spec, &owner.roles) {
            let needed: Vec<String> = spec.required_privileges.iter().map(ToString::to_string).collect();
            let message = format!("the rule's owner {} no longer holds {}", owner.username, needed.join(", "));
            return ExecuteConnectorResponse::failed(id, &message, None, false);
        }
        if !license.allows(spec.minimum_license) {
            let message = format!("{} needs a {} licence; this Warden has {}", spec.id, spec.minimum_license.as_str(), license.as_str());
            return ExecuteConnectorResponse::failed(id, &message, None, false);
        }
        return system::run(state, spec, owner, action).await;
    }
    if !warden_core::authz::has_privilege(&owner.roles, warden_core::authz::Privilege::ActionsRead) {
        return ExecuteConnectorResponse::failed(id, &format!("the rule's owner {} no longer holds actions:read", owner.username), None, false);
    }
    let prepared = async {
        let target = resolve(state, id).await?;
        let spec = usable_type(state, target.type_id(), ConnectorOperation::Execute)?;
        let rendered = template::render_action_params(spec.id, &action.params, &action.variables)
            .map_err(|err| ActionsError::BadRequest(format!("the action's params could not be rendered: {err}")))?;
        let params = validate::params(spec, rendered)?;
        Ok::<_, ActionsError>((target, spec, params))
    };
    match prepared.await {
        Ok((target, spec, params)) => run_resolved(state, spec, &target, &params).await,
        Err(err) => ExecuteConnectorResponse::failed(id, &err.to_string(), None, false),
    }
}

fn to_execution(row: ExecutionRow) -> ConnectorExecution {
    ConnectorExecution {
        connector_id: row.connector_id,
        started_at: rfc3339(row.started_at),
        duration_ms: u64::try_from(row.duration_ms).unwrap_or(0),
        status: warden_core::actions::ExecutionStatus::parse(&row.status).unwrap_or(warden_core::actions::ExecutionStatus::Error),
        message: row.message,
        service_message: row.service_message,
        retry: row.retry.map(|r| r != 0),
        actor: row.actor,
        source: row.source,
        rule_id: row.rule_id,
    }
}

/// The actions a rule ran (its action log), newest first (the newest 200).
pub async fn executions_for_rule(state: &AppState, rule_id: &str) -> Result<Vec<ConnectorExecution>> {
    Ok(store::executions_for_rule(&state.db, rule_id, store::EXECUTIONS_KEPT).await?.into_iter().map(to_execution).collect())
}

/// A connector's runs, newest first (the newest 200).
pub async fn executions(state: &AppState, id: &str) -> Result<Vec<ConnectorExecution>> {
    if system_action(id).is_some() {
        return Err(ActionsError::NotFound(id.to_owned()));
    }
    let known = preconfigured(state, id).is_some() || store::by_id(&state.db, id).await?.is_some();
    let rows = store::executions(&state.db, id).await?;
    if !known && rows.is_empty() {
        return Err(ActionsError::NotFound(id.to_owned()));
    }
    Ok(rows.into_iter().map(to_execution).collect())
}

/// A connector's change history, newest first (also after it was deleted).
pub async fn history(state: &AppState, id: &str) -> Result<Vec<ConnectorChange>> {
    let rows = changes::of(&state.db, "connector", id).await?;
    if rows.is_empty() {
        return Err(ActionsError::NotFound(id.to_owned()));
    }
    Ok(rows
        .into_iter()
        .map(|row| ConnectorChange { change: row.change, changed_by: row.changed_by, changed_at: rfc3339(row.changed_at), summary: row.summary })
        .collect())
}

//! Running rules and the actions they schedule, as task-manager tasks.
//!
//! A rule run authenticates with the rule's API key (it runs as whoever saved
//! it last), evaluates its type, turns what it found into alert transitions
//! (new, ongoing, recovered), and, unless the rule is muted, queues one task
//! per action that should fire (the core's frequency rules) with the same
//! key, all in one transaction: alerts are never recorded without their
//! actions, or actions queued for alerts that were not recorded. Each action
//! task runs the connector as the key's owner (`actions::run_scheduled`) and
//! is retried when the connector says a retry may help.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use warden_core::actions::ExecutionStatus as ConnectorStatus;
use warden_core::events::Event;
use warden_core::rules::{
    AlertStatus, AlertsCount, DEFAULT_GROUP, ExecutionState, LastRun, LastScheduled, NotifyWhen, RECOVERED_GROUP, RuleAction, RuleSystemAction,
    RunOutcome, ScheduleLog, agent_alert_matches, alerts_filter_kuery, effective_frequency, rule_type, should_fire_for_alert, should_fire_summary,
    transitions,
};

use super::agent_status::{self, Instance};
use crate::AppState;
use crate::actions::{ScheduledAction, ScheduledAlert};
use crate::api_keys::Credentials;
use crate::db::now_ms;
use crate::store;
use crate::store::rules::{AlertRow, RuleRow, RunRecord, RunRow};
use crate::tasks::{RunOutput, TaskContext, TaskDefinition};

/// The task type of actions scheduled by rules.
pub const ACTION_TASK_TYPE: &str = "actions:execute";

/// How many times an action is tried before it is given up.
const ACTION_ATTEMPTS: u32 = 3;

/// The task types rules need: one per rule type, and the actions' one.
pub fn definitions(state: &AppState) -> Vec<TaskDefinition> {
    let mut definitions: Vec<TaskDefinition> = warden_core::rules::RULE_TYPES
        .iter()
        .map(|spec| {
            let runner_state = state.clone();
            let task_type: &'static str = Box::leak(super::task_type(spec.id).into_boxed_str());
            let mut definition = TaskDefinition::new(task_type, "Rule runs", move |ctx| run_rule(runner_state.clone(), ctx));
            definition.timeout = state.config.rule_run_timeout;
            definition.max_concurrency = 4;
            definition.max_attempts = 1;
            definition
        })
        .collect();
    let action_state = state.clone();
    let mut actions = TaskDefinition::new(ACTION_TASK_TYPE, "Rule actions", move |ctx| run_action(action_state.clone(), ctx));
    actions.timeout = state.config.actions_response_timeout + Duration::from_secs(30);
    actions.max_concurrency = 8;
    actions.max_attempts = ACTION_ATTEMPTS;
    actions.retry_base = Duration::from_secs(5);
    actions.retry_cap = Duration::from_secs(300);
    definitions.push(actions);
    definitions
}

/// Why a run failed, as `execution_status.error` shows it.
struct Failure {
    reason: &'static str,
    message: String,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure { reason, message: message.into() }
    }
}

/// What a successful run did.
#[derive(Default)]
struct Outcome {
    new: usize,
    ongoing: usize,
    recovered: usize,
    actions_scheduled: usize,
}

async fn run_rule(state: AppState, ctx: TaskContext) -> anyhow::Result<RunOutput> {
    let Some(rule_id) = ctx.id.strip_prefix("rule:") else { anyhow::bail!("task {} is not a rule's", ctx.id) };
    let Some(row) = store::rules::by_id(&state.db, rule_id).await? else {
        return Ok(RunOutput { state: None, summary: Some("the rule is gone".into()) });
    };
    if row.enabled != 1 {
        return Ok(RunOutput { state: None, summary: Some("the rule is disabled".into()) });
    }
    let started_at = now_ms();
    let clock = Instant::now();
    // Earlier than its schedule: a Fleet status change asked for this run.
    let interval = warden_core::rules::parse_duration_ms(&row.schedule_interval, "").unwrap_or(60_000);
    let early = row.last_execution_date.is_some_and(|last| started_at.saturating_sub(last) < interval.saturating_sub(1_000));
    let trigger = if early { "fleet" } else { "schedule" };
    let result = execute(&state, &row, started_at).await;
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    let summary = record(&state, &row, started_at, duration_ms, trigger, &result).await?;
    state.events.publish(Event::rule_changed(&row.id));
    Ok(RunOutput { state: None, summary: Some(summary) })
}

/// Writes the run's outcome onto the rule and into its run history.
async fn record(
    state: &AppState,
    row: &RuleRow,
    started_at: i64,
    duration_ms: i64,
    trigger: &str,
    result: &Result<Outcome, Failure>,
) -> anyhow::Result<String> {
    let (outcome, status, message, error, counts) = match result {
        Ok(done) => {
            let counts = AlertsCount {
                active: u64::try_from(done.new + done.ongoing).unwrap_or(0),
                new: u64::try_from(done.new).unwrap_or(0),
                recovered: u64::try_from(done.recovered).unwrap_or(0),
                ignored: 0,
            };
            let status = if done.new + done.ongoing > 0 { ExecutionState::Active } else { ExecutionState::Ok };
            let message = format!(
                "{} new, {} ongoing, {} recovered alert(s); {} action(s) queued",
                done.new, done.ongoing, done.recovered, done.actions_scheduled
            );
            (RunOutcome::Succeeded, status, message, None, counts)
        }
        Err(failure) => (RunOutcome::Failed, ExecutionState::Error, failure.message.clone(), Some(failure), AlertsCount::default()),
    };
    let last_run = LastRun {
        outcome,
        outcome_order: if outcome == RunOutcome::Failed { 20 } else { 0 },
        outcome_msg: Some(vec![message.clone()]),
        warning: None,
        alerts_count: counts,
    };
    let last_run = serde_json::to_string(&last_run)?;
    let mut tx = state.db.begin().await?;
    let run = RunRecord {
        execution_status: status.as_str(),
        last_execution_date: started_at,
        last_duration_ms: duration_ms,
        error_reason: error.map(|f| f.reason),
        error_message: error.map(|f| f.message.as_str()),
        last_run: &last_run,
    };
    store::rules::record_run(&mut *tx, &row.id, &run).await?;
    let done = result.as_ref().ok();
    let count = |f: fn(&Outcome) -> usize| i64::try_from(done.map_or(0, f)).unwrap_or(0);
    let history = RunRow {
        id: uuid::Uuid::new_v4().to_string(),
        rule_id: row.id.clone(),
        started_at,
        duration_ms,
        outcome: outcome.as_str().to_owned(),
        message: Some(message.clone()),
        new_alerts: count(|o| o.new),
        ongoing_alerts: count(|o| o.ongoing),
        recovered_alerts: count(|o| o.recovered),
        actions_scheduled: count(|o| o.actions_scheduled),
        run_trigger: trigger.to_owned(),
    };
    store::rules::insert_run(&mut tx, &history).await?;
    tx.commit().await?;
    if let Some(failure) = error {
        tracing::warn!(rule = %row.id, reason = failure.reason, "rule run failed: {}", failure.message);
    }
    Ok(message)
}

/// The rule's key, and the user it acts for, if the key still works and
/// the user still holds what the rule type needs.
async fn owner_of(state: &AppState, row: &RuleRow) -> Result<Credentials, Failure> {
    let (Some(id), Some(sealed)) = (&row.api_key_id, &row.api_key_secret) else {
        return Err(Failure::new("decrypt", "the rule has no API key; save or re-enable it to give it one"));
    };
    let secret = state
        .cipher
        .decrypt(sealed, &row.id)
        .map_err(|_| Failure::new("decrypt", "the rule's API key cannot be decrypted (was the encryption key changed?); save the rule again"))?;
    let key = Credentials { id: id.clone(), secret };
    let owner = crate::api_keys::authenticate(&state.db, &key)
        .await
        .map_err(|err| Failure::new("unknown", format!("could not check the rule's API key: {err}")))?
        .ok_or_else(|| {
            Failure::new("decrypt", "the rule's API key is no longer valid (invalidated, or its owner disabled); save or re-enable the rule")
        })?;
    let spec = rule_type(&row.rule_type_id).ok_or_else(|| Failure::new("validate", format!("rule type {} is not registered", row.rule_type_id)))?;
    if !warden_core::authz::has_privilege(&owner.roles, spec.required_privilege) {
        return Err(Failure::new("execute", format!("the rule's owner {} no longer holds {}", owner.username, spec.required_privilege)));
    }
    Ok(key)
}

async fn execute(state: &AppState, row: &RuleRow, now: i64) -> Result<Outcome, Failure> {
    let key = owner_of(state, row).await?;
    let params: Map<String, Value> = serde_json::from_str(&row.params).unwrap_or_default();
    let found = match row.rule_type_id.as_str() {
        warden_core::rules::FLEET_CLOUD_CONNECTOR_VERIFICATION => {
            let params = warden_core::rules::validate_verification_params(&params).map_err(|message| Failure::new("validate", message))?;
            super::verification::evaluate(state, &params).await
        }
        _ => {
            let params = warden_core::rules::validate_agent_status_params(&params).map_err(|message| Failure::new("validate", message))?;
            agent_status::evaluate(state, &params, now).await
        }
    }
    .map_err(|err| Failure::new("execute", format!("{err:#}")))?;
    let previous = store::rules::active_alerts(&state.db, &row.id).await.map_err(|err| Failure::new("read", err.to_string()))?;
    apply(state, row, &key, found, previous, now).await.map_err(|err| Failure::new("execute", format!("{err:#}")))
}

/// Records the transitions and queues the actions, in one transaction.
async fn apply(
    state: &AppState,
    row: &RuleRow,
    key: &Credentials,
    found: Vec<Instance>,
    previous: Vec<AlertRow>,
    now: i64,
) -> anyhow::Result<Outcome> {
    let previous: BTreeMap<String, AlertRow> = previous.into_iter().map(|a| (a.instance_id.clone(), a)).collect();
    let found: BTreeMap<String, Map<String, Value>> = found.into_iter().map(|i| (i.id, i.context)).collect();
    let changes = transitions(&previous.keys().cloned().collect(), &found.keys().cloned().collect::<BTreeSet<_>>());
    let mut alerts: Vec<(AlertRow, bool)> = Vec::new(); // (row, is new)
    for instance in changes.new.iter().chain(&changes.ongoing) {
        let context = Value::Object(found.get(instance).cloned().unwrap_or_default()).to_string();
        let alert = match previous.get(instance) {
            Some(old) => AlertRow { context, updated_at: now, ..old.clone() },
            None => AlertRow {
                id: uuid::Uuid::new_v4().to_string(),
                rule_id: row.id.clone(),
                rule_name: row.name.clone(),
                instance_id: instance.clone(),
                status: AlertStatus::Active.as_str().into(),
                action_group: DEFAULT_GROUP.into(),
                started_at: now,
                ended_at: None,
                context,
                schedule_log: "{}".into(),
                updated_at: now,
            },
        };
        alerts.push((alert, !previous.contains_key(instance)));
    }
    let recovered: Vec<AlertRow> = changes
        .recovered
        .iter()
        .filter_map(|instance| previous.get(instance))
        .map(|old| AlertRow {
            status: AlertStatus::Recovered.as_str().into(),
            action_group: RECOVERED_GROUP.into(),
            ended_at: Some(now),
            updated_at: now,
            ..old.clone()
        })
        .collect();

    let plan = if row.mute_all == 1 { Plan::default() } else { plan_actions(row, &mut alerts, &recovered, now)? };
    let mut tx = state.db.begin().await?;
    for (alert, is_new) in &alerts {
        if *is_new {
            store::rules::insert_alert(&mut *tx, alert).await?;
        } else {
            store::rules::update_alert(&mut *tx, alert).await?;
        }
    }
    for alert in &recovered {
        store::rules::update_alert(&mut *tx, alert).await?;
    }
    for action in &plan.actions {
        crate::api_keys::schedule_action(&mut tx, &state.tasks, &state.cipher, ACTION_TASK_TYPE, key, &serde_json::to_value(action)?).await?;
    }
    if let Some(log) = &plan.rule_log {
        store::rules::set_schedule_log(&mut *tx, &row.id, log).await?;
    }
    tx.commit().await?;
    Ok(Outcome { new: changes.new.len(), ongoing: changes.ongoing.len(), recovered: recovered.len(), actions_scheduled: plan.actions.len() })
}

/// The actions a run fires, and the rule's new log of summary and system
/// actions (`None`: unchanged).
#[derive(Default)]
struct Plan {
    actions: Vec<ScheduledAction>,
    rule_log: Option<String>,
}

/// Decides which actions fire (the core's frequency rules) and updates the
/// alerts' logs of when each action last fired.
fn plan_actions(row: &RuleRow, alerts: &mut [(AlertRow, bool)], recovered: &[AlertRow], now: i64) -> anyhow::Result<Plan> {
    let actions: Vec<RuleAction> = serde_json::from_str(&row.actions)?;
    let system_actions: Vec<RuleSystemAction> = serde_json::from_str(&row.system_actions)?;
    let muted: BTreeSet<String> = serde_json::from_str(&row.muted_alert_ids).unwrap_or_default();
    let tags: Vec<String> = serde_json::from_str(&row.tags).unwrap_or_default();
    let mut rule_log: ScheduleLog = serde_json::from_str(&row.schedule_log).unwrap_or_default();
    let rule_vars = json!({"id": row.id, "name": row.name, "tags": tags, "type": row.rule_type_id});
    let date = crate::fleet::rfc3339(now);
    let mut plan = Plan::default();
    let scheduled = |connector_id: &str, params: &Map<String, Value>, variables: Value, alerts: Vec<ScheduledAlert>| ScheduledAction {
        connector_id: connector_id.to_owned(),
        params: params.clone(),
        variables,
        rule_id: row.id.clone(),
        rule_name: row.name.clone(),
        rule_tags: tags.clone(),
        alerts,
    };
    let alert_vars = |alert: &AlertRow, group: &str| {
        let context: Value = serde_json::from_str(&alert.context).unwrap_or(Value::Null);
        json!({
            "rule": rule_vars,
            "context": context,
            "alert": {"id": alert.instance_id, "uuid": alert.id, "actionGroup": group, "flapping": false},
            "date": date,
        })
    };
    let summary_of = |rows: &[&AlertRow]| json!({"count": rows.len(), "data": rows.iter().map(|a| alert_document(a)).collect::<Vec<_>>()});
    // A summary's alerts (those its filter lets through) and how many there are.
    let summary_vars = |alerts: &[(AlertRow, bool)], passes: &dyn Fn(&AlertRow) -> bool| {
        let new_alerts: Vec<&AlertRow> = alerts.iter().filter(|(a, is_new)| *is_new && passes(a)).map(|(a, _)| a).collect();
        let ongoing: Vec<&AlertRow> = alerts.iter().filter(|(a, is_new)| !*is_new && passes(a)).map(|(a, _)| a).collect();
        let recovered: Vec<&AlertRow> = recovered.iter().filter(|a| passes(a)).collect();
        let count = new_alerts.len() + ongoing.len() + recovered.len();
        let vars = json!({
            "rule": rule_vars,
            "date": date,
            "alerts": {
                "new": summary_of(&new_alerts),
                "ongoing": summary_of(&ongoing),
                "recovered": summary_of(&recovered),
                "all": {"count": count},
            },
        });
        (vars, count)
    };
    let mut rule_log_changed = false;

    for action in &actions {
        let (summary, notify_when, throttle_ms) =
            effective_frequency(action, row.notify_when.as_deref().and_then(NotifyWhen::parse), row.throttle.as_deref());
        // Checked when the rule was saved; an unreadable one filters nothing out.
        let filter = action.alerts_filter.as_ref().and_then(|f| alerts_filter_kuery(f).ok().flatten());
        let passes = |alert: &AlertRow| {
            // Alert filters read agents' fields: they apply to fleet.agent_status rules only.
            row.rule_type_id != warden_core::rules::FLEET_AGENT_STATUS
                || filter.as_ref().is_none_or(|query| agent_alert_matches(query, &serde_json::from_str(&alert.context).unwrap_or(Value::Null)))
        };
        if summary {
            let (vars, count) = summary_vars(alerts, &passes);
            if should_fire_summary(notify_when, throttle_ms, count, rule_log.get(&action.uuid).map(|l| l.at), now) {
                plan.actions.push(scheduled(&action.id, &action.params, vars, Vec::new()));
                rule_log.insert(action.uuid.clone(), LastScheduled { group: action.group.clone(), at: now });
                rule_log_changed = true;
            }
            continue;
        }
        if action.group == RECOVERED_GROUP {
            for alert in recovered.iter().filter(|a| !muted.contains(&a.instance_id) && passes(a)) {
                plan.actions.push(scheduled(&action.id, &action.params, alert_vars(alert, RECOVERED_GROUP), Vec::new()));
            }
            continue;
        }
        for (alert, _) in alerts.iter_mut().filter(|(a, _)| a.action_group == action.group && !muted.contains(&a.instance_id) && passes(a)) {
            let mut log: ScheduleLog = serde_json::from_str(&alert.schedule_log).unwrap_or_default();
            if should_fire_for_alert(notify_when, throttle_ms, &action.group, log.get(&action.uuid), now) {
                plan.actions.push(scheduled(&action.id, &action.params, alert_vars(alert, &action.group), Vec::new()));
                log.insert(action.uuid.clone(), LastScheduled { group: action.group.clone(), at: now });
                alert.schedule_log = serde_json::to_string(&log)?;
            }
        }
    }

    // System actions: once per run that has active alerts, with all of them
    // (their adapter decides what to do; the cases one is idempotent).
    let active: Vec<ScheduledAlert> = alerts
        .iter()
        .filter(|(a, _)| !muted.contains(&a.instance_id))
        .map(|(a, _)| ScheduledAlert {
            id: a.id.clone(),
            instance_id: a.instance_id.clone(),
            fields: serde_json::from_str(&a.context).unwrap_or(Value::Null),
        })
        .collect();
    if !active.is_empty() {
        for action in &system_actions {
            plan.actions.push(scheduled(&action.id, &action.params, summary_vars(alerts, &|_| true).0, active.clone()));
            rule_log.insert(action.uuid.clone(), LastScheduled { group: DEFAULT_GROUP.into(), at: now });
            rule_log_changed = true;
        }
    }
    if rule_log_changed {
        plan.rule_log = Some(serde_json::to_string(&rule_log)?);
    }
    Ok(plan)
}

/// An alert as summary templates see it (`{{#alerts.new.data}}…`).
fn alert_document(alert: &AlertRow) -> Value {
    let context: Value = serde_json::from_str(&alert.context).unwrap_or(Value::Null);
    json!({"id": alert.instance_id, "uuid": alert.id, "status": alert.status, "start": crate::fleet::rfc3339(alert.started_at), "context": context})
}

async fn run_action(state: AppState, ctx: TaskContext) -> anyhow::Result<RunOutput> {
    let (key, params) = crate::api_keys::load_action(&state.db, &state.cipher, &ctx.params).await?;
    let action: ScheduledAction = serde_json::from_value(params)?;
    let last_attempt = ctx.attempt >= ACTION_ATTEMPTS;
    let result = crate::actions::run_scheduled(&state, &key, &action, ctx.attempt, last_attempt).await?;
    let message = result.message.clone().unwrap_or_default();
    match (result.status, result.retry) {
        (ConnectorStatus::Ok, _) => Ok(RunOutput { state: None, summary: Some(format!("{} ran for rule {}", action.connector_id, action.rule_id)) }),
        // The task manager retries it (with backoff) until its attempts run out.
        (ConnectorStatus::Error, Some(true)) => anyhow::bail!("{}: {message} (will retry)", action.connector_id),
        (ConnectorStatus::Error, _) => Ok(RunOutput { state: None, summary: Some(format!("{} failed: {message}", action.connector_id)) }),
    }
}

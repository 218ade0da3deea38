//! The rule form: its type (chosen when creating), name, schedule, tags, the
//! type's own params editor (`fleet.agent_status`: statuses, policies, a KQL
//! box checked by the same kuery parser the server uses, "for at least";
//! `fleet.cloud_connector_verification`: which cloud connectors, and
//! whether a failed verification, a revoked permission or both alert),
//! and one actions section
//! where connectors and system actions are picked from one list. A system
//! action already added is disabled in the list (with why), one the user may
//! not use is not offered (the server's list leaves it out), and a system
//! action never shows execution options. Each action has its own params
//! editor. Errors sit next to their field, from the core functions the server
//! applies; what only the server can judge comes back in place.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde_json::{Map, Value, json};
use warden_core::actions::{CASES, Connector, EMAIL, ENDPOINT_RESPONSE, SERVER_LOG, WEBHOOK, connector_type_name, usable_in_rules};
use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::AgentPolicy;
use warden_core::rules::{
    ActionFrequency, ConnectorRef, CreateRuleRequest, DEFAULT_GROUP, FLEET_AGENT_STATUS, FLEET_CLOUD_CONNECTOR_VERIFICATION, NotifyWhen,
    RECOVERED_GROUP, RULE_TYPES, Rule, RuleActionRequest, RuleSchedule, SUMMARY_VARIABLES, UpdateRuleRequest, parse_duration_ms, rule_type,
    rule_type_variables, split_actions, system_action_params_refusal, validate_name, validate_schedule, validate_tags, validate_verification_params,
};

use crate::api;
use crate::api::cloud_connectors::ConnectorName;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::form::{Checkbox, Field, TextArea};
use crate::components::states::ErrorMessage;
use crate::session::use_session;

/// The statuses offered, those that need attention first.
const STATUSES: [AgentStatus; 10] = [
    AgentStatus::Uninstalled,
    AgentStatus::Orphaned,
    AgentStatus::Migrated,
    AgentStatus::Replaced,
    AgentStatus::Conflict,
    AgentStatus::Offline,
    AgentStatus::Inactive,
    AgentStatus::Unenrolled,
    AgentStatus::Error,
    AgentStatus::Degraded,
];
const NOTIFY: [(&str, &str); 3] = [
    ("onActionGroupChange", "When the alert starts or recovers"),
    ("onActiveAlert", "On every run while active"),
    ("onThrottleInterval", "At most once per interval"),
];
const LEVELS: [&str; 5] = ["info", "warn", "error", "debug", "trace"];

/// One action being edited: its connector, its execution options (ordinary
/// actions only) and its params, one signal per field of every type's editor.
#[derive(Clone)]
struct ActionDraft {
    key: u32,
    uuid: Option<String>,
    connector: Connector,
    group: RwSignal<String>,
    notify_when: RwSignal<String>,
    throttle: RwSignal<String>,
    summary: RwSignal<bool>,
    body: RwSignal<String>,
    to: RwSignal<String>,
    subject: RwSignal<String>,
    message: RwSignal<String>,
    level: RwSignal<String>,
    grouping_by: RwSignal<String>,
    time_window: RwSignal<String>,
    reopen: RwSignal<bool>,
    maximum: RwSignal<String>,
}

/// The default texts of a new action, in the rule type's own variables:
/// (webhook body, email subject, message).
fn default_texts(rule_type_id: &str) -> (&'static str, &'static str, &'static str) {
    match rule_type_id {
        FLEET_CLOUD_CONNECTOR_VERIFICATION => (
            "{\n  \"connector\": \"{{context.connector.name}}\",\n  \"provider\": \"{{context.connector.provider}}\",\n  \"status\": \"{{context.status}}\",\n  \"reason\": \"{{context.reason}}\",\n  \"rule\": \"{{rule.name}}\"\n}",
            "{{rule.name}}: cloud connector {{context.connector.name}} {{context.status}}",
            "Cloud connector {{context.connector.name}} ({{context.connector.provider}}) {{context.status}}: {{context.reason}}",
        ),
        _ => (
            "{\n  \"agent\": \"{{context.agent.id}}\",\n  \"host\": \"{{context.host.name}}\",\n  \"status\": \"{{context.status}}\",\n  \"rule\": \"{{rule.name}}\"\n}",
            "{{rule.name}}: {{context.host.name}} is {{context.status}}",
            "{{context.host.name}} is {{context.status}}: {{context.reason}}",
        ),
    }
}

impl ActionDraft {
    fn new(key: u32, connector: Connector, rule_type_id: &str) -> ActionDraft {
        let (body, subject, message) = default_texts(rule_type_id);
        ActionDraft {
            key,
            uuid: None,
            connector,
            group: RwSignal::new(DEFAULT_GROUP.to_owned()),
            notify_when: RwSignal::new("onActionGroupChange".to_owned()),
            throttle: RwSignal::new("1h".to_owned()),
            summary: RwSignal::new(false),
            body: RwSignal::new(body.to_owned()),
            to: RwSignal::new(String::new()),
            subject: RwSignal::new(subject.to_owned()),
            message: RwSignal::new(message.to_owned()),
            level: RwSignal::new("warn".to_owned()),
            grouping_by: RwSignal::new("host.name".to_owned()),
            time_window: RwSignal::new("7d".to_owned()),
            reopen: RwSignal::new(false),
            maximum: RwSignal::new("5".to_owned()),
        }
    }

    /// Filled from a saved action.
    fn of(key: u32, connector: Connector, rule_type_id: &str, saved: &warden_core::rules::RuleActionResponse) -> ActionDraft {
        let draft = ActionDraft::new(key, connector, rule_type_id);
        let text = |key: &str| saved.params.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(group) = &saved.group {
            draft.group.set(group.clone());
        }
        if let Some(frequency) = &saved.frequency {
            draft.notify_when.set(frequency.notify_when.as_str().to_owned());
            draft.summary.set(frequency.summary);
            if let Some(throttle) = &frequency.throttle {
                draft.throttle.set(throttle.clone());
            }
        }
        for (field, signal) in [("body", draft.body), ("subject", draft.subject), ("message", draft.message), ("level", draft.level)] {
            if let Some(value) = text(field) {
                signal.set(value);
            }
        }
        // The endpoint-response action's comment is edited in the message field.
        if let Some(comment) = text("comment") {
            draft.message.set(comment);
        }
        if let Some(to) = saved.params.get("to").and_then(Value::as_array) {
            draft.to.set(to.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
        }
        if let Some(sub) = saved.params.get("subActionParams") {
            draft.grouping_by.set(sub.get("groupingBy").and_then(|g| g.get(0)).and_then(Value::as_str).unwrap_or_default().to_owned());
            draft.time_window.set(sub.get("timeWindow").and_then(Value::as_str).unwrap_or("7d").to_owned());
            draft.reopen.set(sub.get("reopenClosedCases").and_then(Value::as_bool).unwrap_or(false));
            draft.maximum.set(sub.get("maximumCasesToOpen").and_then(Value::as_u64).unwrap_or(5).to_string());
        }
        ActionDraft { uuid: Some(saved.uuid.clone()), ..draft }
    }

    fn is_system(&self) -> bool {
        self.connector.is_system_action
    }

    fn params(&self) -> Map<String, Value> {
        let value = match self.connector.connector_type_id.as_str() {
            WEBHOOK => json!({"body": self.body.get()}),
            EMAIL => {
                let to: Vec<String> = self.to.get().split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
                json!({"to": to, "subject": self.subject.get(), "message": self.message.get()})
            }
            SERVER_LOG => json!({"level": self.level.get(), "message": self.message.get()}),
            ENDPOINT_RESPONSE => {
                let comment = self.message.get();
                let comment = comment.trim();
                if comment.is_empty() { json!({"command": "isolate"}) } else { json!({"command": "isolate", "comment": comment}) }
            }
            CASES => {
                let grouping = self.grouping_by.get();
                let grouping: Vec<&str> = Some(grouping.trim()).filter(|g| !g.is_empty()).into_iter().collect();
                let maximum = self.maximum.get().trim().parse::<u64>().map_or_else(|_| json!(self.maximum.get()), |n| json!(n));
                json!({"subAction": "run", "subActionParams": {
                    "groupingBy": grouping, "reopenClosedCases": self.reopen.get(), "timeWindow": self.time_window.get().trim(),
                    "maximumCasesToOpen": maximum, "templateId": null
                }})
            }
            _ => json!({}),
        };
        value.as_object().cloned().unwrap_or_default()
    }

    /// As the API takes it: a system action has only its id, uuid and params.
    fn request(&self) -> RuleActionRequest {
        let (group, frequency) = if self.is_system() {
            (None, None)
        } else {
            let notify_when = NotifyWhen::parse(&self.notify_when.get()).unwrap_or(NotifyWhen::OnActionGroupChange);
            let throttle = (notify_when == NotifyWhen::OnThrottleInterval).then(|| self.throttle.get().trim().to_owned());
            (Some(self.group.get()), Some(ActionFrequency { summary: self.summary.get(), notify_when, throttle }))
        };
        RuleActionRequest {
            id: self.connector.id.clone(),
            group,
            params: self.params(),
            frequency,
            uuid: self.uuid.clone(),
            alerts_filter: None,
            use_alert_data_for_template: None,
        }
    }
}

/// Everything the form edits.
#[derive(Clone, Copy)]
struct RuleForm {
    /// Chosen when creating; a saved rule keeps its type.
    rule_type: RwSignal<&'static str>,
    name: RwSignal<String>,
    tags: RwSignal<String>,
    interval: RwSignal<String>,
    statuses: RwSignal<Vec<AgentStatus>>,
    policy_ids: RwSignal<Vec<String>>,
    kuery: RwSignal<String>,
    for_at_least: RwSignal<String>,
    /// Cloud connector verification: every connector (also those created
    /// later), or only `connector_ids`.
    all_connectors: RwSignal<bool>,
    connector_ids: RwSignal<Vec<String>>,
    on_failed: RwSignal<bool>,
    on_revoked: RwSignal<bool>,
    actions: RwSignal<Vec<ActionDraft>>,
    next_key: StoredValue<u32>,
    /// Errors show once a save was tried, then follow every keystroke.
    tried: RwSignal<bool>,
}

impl RuleForm {
    fn new() -> RuleForm {
        RuleForm {
            rule_type: RwSignal::new(FLEET_AGENT_STATUS),
            name: RwSignal::new(String::new()),
            tags: RwSignal::new("compliance".to_owned()),
            interval: RwSignal::new("1m".to_owned()),
            statuses: RwSignal::new(vec![AgentStatus::Uninstalled, AgentStatus::Orphaned]),
            policy_ids: RwSignal::new(Vec::new()),
            kuery: RwSignal::new(String::new()),
            for_at_least: RwSignal::new(String::new()),
            all_connectors: RwSignal::new(true),
            connector_ids: RwSignal::new(Vec::new()),
            on_failed: RwSignal::new(true),
            on_revoked: RwSignal::new(true),
            actions: RwSignal::new(Vec::new()),
            next_key: StoredValue::new(0),
            tried: RwSignal::new(false),
        }
    }

    fn of(rule: &Rule, connectors: &[Connector]) -> RuleForm {
        let form = RuleForm::new();
        let type_id = rule_type(&rule.rule_type_id).map_or(FLEET_AGENT_STATUS, |spec| spec.id);
        form.rule_type.set(type_id);
        form.name.set(rule.name.clone());
        form.tags.set(rule.tags.join(", "));
        form.interval.set(rule.schedule.interval.clone());
        if let Ok(params) = warden_core::rules::validate_agent_status_params(&rule.params) {
            form.statuses.set(params.statuses.clone());
            form.policy_ids.set(params.policy_ids.clone().unwrap_or_default());
            form.kuery.set(params.kuery.clone().unwrap_or_default());
            form.for_at_least.set(params.for_at_least.clone().unwrap_or_default());
        }
        if type_id == FLEET_CLOUD_CONNECTOR_VERIFICATION
            && let Ok(params) = validate_verification_params(&rule.params)
        {
            form.all_connectors.set(params.connector_ids.is_none());
            form.connector_ids.set(params.connector_ids.unwrap_or_default());
            form.on_failed.set(params.on_failed);
            form.on_revoked.set(params.on_revoked);
        }
        let drafts = rule
            .actions
            .iter()
            .map(|saved| {
                let connector = connectors.iter().find(|c| c.id == saved.id).cloned().unwrap_or_else(|| missing_connector(saved));
                ActionDraft::of(form.key(), connector, type_id, saved)
            })
            .collect();
        form.actions.set(drafts);
        form
    }

    fn key(&self) -> u32 {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        key
    }

    fn tag_list(&self) -> Vec<String> {
        self.tags.get().split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
    }

    fn params(&self) -> Map<String, Value> {
        if self.rule_type.get() == FLEET_CLOUD_CONNECTOR_VERIFICATION {
            let mut params = Map::new();
            if !self.all_connectors.get() {
                params.insert("connector_ids".into(), json!(self.connector_ids.get()));
            }
            params.insert("on_failed".into(), json!(self.on_failed.get()));
            params.insert("on_revoked".into(), json!(self.on_revoked.get()));
            return params;
        }
        let mut params = Map::new();
        params.insert("statuses".into(), json!(self.statuses.get()));
        let policies = self.policy_ids.get();
        if !policies.is_empty() {
            params.insert("policy_ids".into(), json!(policies));
        }
        for (key, signal) in [("kuery", self.kuery), ("for_at_least", self.for_at_least)] {
            let text = signal.get().trim().to_owned();
            if !text.is_empty() {
                params.insert(key.into(), json!(text));
            }
        }
        params
    }
}

/// A connector a saved rule names that is no longer listed (deleted, or a
/// system action the user may not use any more): kept, so saving says why.
fn missing_connector(saved: &warden_core::rules::RuleActionResponse) -> Connector {
    Connector {
        id: saved.id.clone(),
        name: format!("{} (not available)", saved.id),
        connector_type_id: saved.connector_type_id.clone(),
        config: None,
        is_preconfigured: false,
        is_deprecated: false,
        is_system_action: saved.group.is_none(),
        is_missing_secrets: None,
        is_connector_type_deprecated: false,
        referenced_by_count: None,
    }
}

#[component]
pub fn NewRulePage() -> impl IntoView {
    let connectors = LocalResource::new(api::rules::connectors);
    view! {
        <section class="page">
            <p><A href=href("/rules")>"← Rules"</A></p>
            <h1>"Create rule"</h1>
            <AsyncView resource=connectors loading="Loading connectors…" let:connectors>
                <RuleEditor form=RuleForm::new() connectors existing=None />
            </AsyncView>
        </section>
    }
}

#[component]
pub fn EditRulePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let loaded = LocalResource::new(move || {
        let id = id();
        async move {
            let rule = api::rules::get(&id).await?;
            let connectors = api::rules::connectors().await?;
            Ok((rule, connectors))
        }
    });
    view! {
        <section class="page">
            <AsyncView resource=loaded loading="Loading rule…" let:loaded>
                {
                    let (rule, connectors) = loaded;
                    let form = RuleForm::of(&rule, &connectors);
                    view! {
                        <p><A href=href(&format!("/rules/{}", rule.id))>"← " {rule.name.clone()}</A></p>
                        <h1>"Edit rule"</h1>
                        <RuleEditor form connectors existing=Some(rule.id.clone()) />
                    }
                }
            </AsyncView>
        </section>
    }
}

#[component]
fn RuleEditor(form: RuleForm, connectors: Vec<Connector>, existing: Option<String>) -> impl IntoView {
    let navigate = use_navigate();
    let session = use_session();
    let config = LocalResource::new(api::rules::config);
    let minimum_ms =
        move || config.get().and_then(|c| c.ok()).and_then(|c| parse_duration_ms(&c.minimum_schedule_interval.value, "").ok()).unwrap_or(60_000);
    let verb = if existing.is_some() { "updating" } else { "creating" };
    let roles = move || session.user().map(|u| u.roles.clone()).unwrap_or_default();
    let connectors = StoredValue::new(connectors);

    // Every error, from the core's rules, shown once a save was tried.
    let shown = move |error: Option<String>| if form.tried.get() { error } else { None };
    let name_error = Signal::derive(move || shown(validate_name(&form.name.get()).err()));
    let tags_error = Signal::derive(move || shown(validate_tags(&form.tag_list()).err()));
    let schedule_error =
        Signal::derive(move || shown(validate_schedule(&RuleSchedule { interval: form.interval.get().trim().to_owned() }, minimum_ms(), verb).err()));
    // Each type's own fields count only while that type is chosen.
    let agent_status = move || form.rule_type.get() == FLEET_AGENT_STATUS;
    let statuses_error =
        Signal::derive(move || shown((agent_status() && form.statuses.get().is_empty()).then(|| "Pick at least one status".to_owned())));
    let kuery_error = Signal::derive(move || {
        let text = form.kuery.get();
        shown(agent_status().then(|| warden_core::kuery::parse(text.trim()).err().map(|e| e.0)).flatten())
    });
    let for_error = Signal::derive(move || {
        let text = form.for_at_least.get().trim().to_owned();
        shown((agent_status() && !text.is_empty()).then(|| parse_duration_ms(&text, "for at least").err()).flatten())
    });
    let verification_error = Signal::derive(move || {
        shown((form.rule_type.get() == FLEET_CLOUD_CONNECTOR_VERIFICATION).then(|| validate_verification_params(&form.params()).err()).flatten())
    });
    let actions_error = Signal::derive(move || {
        let requests: Vec<RuleActionRequest> = form.actions.get().iter().map(ActionDraft::request).collect();
        let lookup = |id: &str| {
            connectors.with_value(|list| {
                list.iter()
                    .find(|c| c.id == id)
                    .map(|c| ConnectorRef { connector_type_id: c.connector_type_id.clone(), is_system_action: c.is_system_action })
            })
        };
        let spec = rule_type(form.rule_type.get())?;
        // Stand-in uuids for actions not saved yet (the server gives the real ones).
        let mut n = 0;
        let new_uuid = || {
            n += 1;
            format!("new-{n}")
        };
        shown(split_actions(&requests, spec, false, lookup, &roles(), new_uuid).err().map(|e| e.to_string()))
    });
    let has_errors = move || {
        [name_error, tags_error, schedule_error, statuses_error, kuery_error, for_error, verification_error, actions_error]
            .iter()
            .any(|e| e.get().is_some())
            || form.actions.get().iter().any(|a| system_action_params_refusal(&a.connector.connector_type_id, &a.params()).is_some())
    };

    let save = Action::new_local(move |(existing, create): &(Option<String>, CreateRuleRequest)| {
        let (existing, create) = (existing.clone(), create.clone());
        async move {
            match existing {
                None => api::rules::create(&create).await,
                Some(id) => {
                    let update = UpdateRuleRequest {
                        name: create.name,
                        tags: create.tags,
                        schedule: create.schedule,
                        params: create.params,
                        throttle: None,
                        notify_when: None,
                        actions: create.actions,
                    };
                    api::rules::update(&id, &update).await
                }
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(rule)) = save.value().get() {
            navigate(&format!("/rules/{}", rule.id), Default::default());
        }
    });
    let existing_id = existing.clone();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        form.tried.set(true);
        if has_errors() {
            return;
        }
        let request = CreateRuleRequest {
            name: form.name.get_untracked().trim().to_owned(),
            rule_type_id: form.rule_type.get_untracked().to_owned(),
            consumer: "alerts".to_owned(),
            enabled: true,
            tags: form.tag_list(),
            schedule: RuleSchedule { interval: form.interval.get_untracked().trim().to_owned() },
            params: form.params(),
            throttle: None,
            notify_when: None,
            actions: form.actions.get_untracked().iter().map(ActionDraft::request).collect(),
        };
        save.dispatch((existing_id.clone(), request));
    };
    let server_error = move || save.value().get().and_then(|r| r.err()).map(|e| e.message);

    let editing = existing.is_some();
    view! {
        <form class="rule-form" on:submit=on_submit novalidate aria-label=if editing { "Edit rule" } else { "Create rule" }>
            <div class="panel">
                <h2>"Rule"</h2>
                <div class="form-grid">
                    {if editing {
                        view! { <Field label="Rule type"><input name="rule_type" readonly prop:value=move || type_name(form.rule_type.get()) /></Field> }.into_any()
                    } else {
                        view! {
                            <Field label="Rule type">
                                <select name="rule_type" on:change=move |ev| {
                                    if let Some(spec) = rule_type(&event_target_value(&ev)) { form.rule_type.set(spec.id) }
                                }>
                                    {RULE_TYPES.iter().map(|spec| view! {
                                        <option value=spec.id selected=move || form.rule_type.get() == spec.id>{spec.name}</option>
                                    }).collect_view()}
                                </select>
                            </Field>
                        }.into_any()
                    }}
                    <Field label="Name" error=name_error><input name="name" maxlength="256" placeholder="Endpoint protection removed" bind:value=form.name /></Field>
                    <Field label="Runs every" error=schedule_error><input name="interval" placeholder="1m" bind:value=form.interval /></Field>
                    <Field label="Tags (comma-separated)" error=tags_error><input name="tags" placeholder="compliance, pci" bind:value=form.tags /></Field>
                </div>
                <p class="muted">
                    {move || if form.rule_type.get() == FLEET_CLOUD_CONNECTOR_VERIFICATION {
                        "Alerts per cloud connector, on its permission verifications: one that failed, or one that found a permission denied that was granted before. "
                    } else {
                        "Beyond its schedule, the rule runs as soon as an agent changes status, so an uninstall is reported within seconds. "
                    }}
                    {move || config.get().and_then(|c| c.ok()).map(|c| format!("The shortest schedule allowed is {}.", c.minimum_schedule_interval.value))}
                </p>
            </div>
            {move || if form.rule_type.get() == FLEET_CLOUD_CONNECTOR_VERIFICATION {
                view! { <VerificationParamsEditor form error=verification_error /> }.into_any()
            } else {
                view! { <AgentStatusParamsEditor form statuses_error kuery_error for_error /> }.into_any()
            }}
            <ActionsSection form connectors />
            {move || server_error().map(|message| view! { <ErrorMessage message /> })}
            {move || (form.tried.get() && has_errors()).then(|| view! { <p class="field-error" role="alert">"Fix the fields marked above."</p> })}
            <div class="actions-row">
                <button type="submit" class="button button-primary" disabled=move || save.pending().get()>
                    {if existing.is_some() { "Save rule" } else { "Create rule" }}
                </button>
            </div>
        </form>
    }
}

fn type_name(id: &str) -> &'static str {
    rule_type(id).map_or("", |spec| spec.name)
}

/// `fleet.agent_status`: which statuses, on which policies, matching what, for how long.
#[component]
fn AgentStatusParamsEditor(
    form: RuleForm,
    statuses_error: Signal<Option<String>>,
    kuery_error: Signal<Option<String>>,
    for_error: Signal<Option<String>>,
) -> impl IntoView {
    // Verifier policies are Warden's own and short-lived: never a rule's scope.
    let policies = LocalResource::new(api::fleet::policies);
    view! {
        <div class="panel">
            <h2>"Watch for agents that are"</h2>
            <fieldset class="checks" aria-describedby="statuses-error">
                <legend class="field-label">"Status"</legend>
                {STATUSES.into_iter().map(|status| {
                    let checked = Signal::derive(move || form.statuses.get().contains(&status));
                    let on_change = Callback::new(move |on: bool| form.statuses.update(|list| {
                        list.retain(|s| *s != status);
                        if on { list.push(status); }
                    }));
                    view! { <span title=status.explanation()><Checkbox label=format!(" {}", status.label()) checked on_change /></span> }
                }).collect_view()}
                {move || statuses_error.get().map(|m| view! { <span id="statuses-error" class="field-error" role="alert">{m}</span> })}
            </fieldset>
            <div class="form-grid">
                <Field label="On policies (none: all)">
                    <select name="policies" multiple size="3" on:change=move |ev| form.policy_ids.set(selected_values(&ev))>
                        {move || policies.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().filter(|p| !p.is_verifier).map(|p: AgentPolicy| {
                            let id = p.id.to_string();
                            let selected = form.policy_ids.get_untracked().contains(&id);
                            view! { <option value=id.clone() selected=selected>{p.name}</option> }
                        }).collect_view()}
                    </select>
                </Field>
                <Field label="Matching (KQL, optional)" error=kuery_error>
                    <input name="kuery" placeholder="tags:pci and not local_metadata.host.hostname:lab-*" bind:value=form.kuery />
                </Field>
                <Field label="For at least (optional)" error=for_error><input name="for_at_least" placeholder="10m" bind:value=form.for_at_least /></Field>
            </div>
        </div>
    }
}

/// The values of a `<select multiple>`'s chosen options.
fn selected_values(ev: &leptos::ev::Event) -> Vec<String> {
    use wasm_bindgen::JsCast;
    let Some(select) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) else { return Vec::new() };
    let options = select.selected_options();
    (0..options.length()).filter_map(|i| options.item(i)).filter_map(|o| o.get_attribute("value")).collect()
}

/// `fleet.cloud_connector_verification`: which cloud connectors, and on what.
#[component]
fn VerificationParamsEditor(form: RuleForm, error: Signal<Option<String>>) -> impl IntoView {
    let connectors = LocalResource::new(api::cloud_connectors::names);
    let scope = move |all: bool| {
        view! {
            <label class="check">
                <input type="radio" name="connector_scope" value=if all { "all" } else { "some" }
                    prop:checked=move || form.all_connectors.get() == all on:change=move |_| form.all_connectors.set(all) />
                {if all { " Every cloud connector, also those created later" } else { " Only these:" }}
            </label>
        }
    };
    view! {
        <div class="panel stack">
            <h2>"Watch cloud connectors"</h2>
            <fieldset class="checks">
                <legend class="field-label">"Which"</legend>
                {scope(true)}
                {scope(false)}
            </fieldset>
            <Show when=move || !form.all_connectors.get()>
                <Field label="Cloud connectors">
                    <select name="connector_ids" multiple size="4" on:change=move |ev| form.connector_ids.set(selected_values(&ev))>
                        {move || connectors.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|c: ConnectorName| {
                            let selected = form.connector_ids.get_untracked().contains(&c.id);
                            view! { <option value=c.id.clone() selected=selected>{format!("{} ({})", c.name, c.cloud_provider.label())}</option> }
                        }).collect_view()}
                    </select>
                </Field>
                {move || connectors.get().and_then(|r| r.err()).map(|e| view! { <ErrorMessage message=e.message /> })}
            </Show>
            <fieldset class="checks">
                <legend class="field-label">"Alert when"</legend>
                <Checkbox label=" A verification fails (a required permission is missing, or the verifier could not finish)" checked=form.on_failed
                    on_change=Callback::new(move |on: bool| form.on_failed.set(on)) />
                <Checkbox label=" A permission granted at the previous verification is not any more (revoked)" checked=form.on_revoked
                    on_change=Callback::new(move |on: bool| form.on_revoked.set(on)) />
            </fieldset>
            {move || error.get().map(|m| view! { <span class="field-error" role="alert" data-testid="verification-error">{m}</span> })}
        </div>
    }
}

/// The actions: one list to pick connectors and system actions from, and an
/// editor per action.
#[component]
fn ActionsSection(form: RuleForm, connectors: StoredValue<Vec<Connector>>) -> impl IntoView {
    let picked = RwSignal::new(String::new());
    let add = move |_| {
        let id = picked.get_untracked();
        let Some(connector) = connectors.with_value(|list| list.iter().find(|c| c.id == id).cloned()) else { return };
        let draft = ActionDraft::new(form.key(), connector, form.rule_type.get_untracked());
        form.actions.update(|list| list.push(draft));
        picked.set(String::new());
    };
    let added_system = move |id: &str| form.actions.with(|list| list.iter().any(|a| a.is_system() && a.connector.id == id));
    view! {
        <div class="panel">
            <h2>"Actions"</h2>
            <p class="muted">"What happens when an alert starts or recovers. System actions (such as opening a case) are run by Warden once per run that has alerts: they have no timing options."</p>
            <div class="toolbar">
                <label class="field grow">
                    <span class="field-label">"Add an action"</span>
                    <select name="add-action" on:change=move |ev| picked.set(event_target_value(&ev)) prop:value=move || picked.get()>
                        <option value="">"Choose a connector or a system action…"</option>
                        {move || connectors.get_value().into_iter().filter(|c| usable_in_rules(&c.connector_type_id)).map(|c| {
                            let id = c.id.clone();
                            let taken = Signal::derive({ let id = id.clone(); move || added_system(&id) });
                            let label = if c.is_system_action {
                                format!("{} — system action", connector_type_name(&c.connector_type_id))
                            } else {
                                format!("{} — {}", c.name, connector_type_name(&c.connector_type_id))
                            };
                            view! {
                                <option value=id disabled=taken
                                    title=move || taken.get().then_some("Already added: a system action can be used once per rule")>
                                    {label}{move || if taken.get() { " (already added)" } else { "" }}
                                </option>
                            }
                        }).collect_view()}
                    </select>
                </label>
                <button type="button" class="button" on:click=add disabled=move || picked.get().is_empty()>"Add"</button>
            </div>
            {move || connectors.with_value(|l| l.is_empty()).then(|| view! {
                <p class="muted">"No connectors yet: create one on the "<A href=href("/connectors")>"Connectors"</A>" page."</p>
            })}
            <For each=move || form.actions.get() key=|a| a.key let:action>
                <ActionEditor action form />
            </For>
        </div>
    }
}

#[component]
fn ActionEditor(action: ActionDraft, form: RuleForm) -> impl IntoView {
    let key = action.key;
    let remove = move |_| form.actions.update(|list| list.retain(|a| a.key != key));
    let title = if action.is_system() {
        format!("{} (system action)", connector_type_name(&action.connector.connector_type_id))
    } else {
        format!("{} — {}", action.connector.name, connector_type_name(&action.connector.connector_type_id))
    };
    let draft = action.clone();
    let params_error = Signal::derive(move || {
        if !form.tried.get() {
            return None;
        }
        system_action_params_refusal(&draft.connector.connector_type_id, &draft.params())
    });
    let options = (!action.is_system()).then(|| view! { <ExecutionOptions action=action.clone() /> });
    view! {
        <fieldset class="action-editor" data-testid="action-editor">
            <legend>{title}</legend>
            {options}
            <ActionParams action=action.clone() rule_type=form.rule_type />
            {move || params_error.get().map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
            <div class="actions-row"><button type="button" class="button button-danger" on:click=remove>"Remove"</button></div>
        </fieldset>
    }
}

/// When an ordinary action fires: its group and frequency.
#[component]
fn ExecutionOptions(action: ActionDraft) -> impl IntoView {
    let throttle_error = Signal::derive(move || {
        (action.notify_when.get() == "onThrottleInterval").then(|| parse_duration_ms(action.throttle.get().trim(), "interval").err()).flatten()
    });
    view! {
        <div class="form-grid" data-testid="execution-options">
            <Field label="Run when the alert">
                <select name="group" on:change=move |ev| action.group.set(event_target_value(&ev))>
                    <option value=DEFAULT_GROUP selected=move || action.group.get() == DEFAULT_GROUP>"fires"</option>
                    <option value=RECOVERED_GROUP selected=move || action.group.get() == RECOVERED_GROUP>"recovers"</option>
                </select>
            </Field>
            <Field label="How often">
                <select name="notify_when" on:change=move |ev| action.notify_when.set(event_target_value(&ev))>
                    {NOTIFY.iter().map(|&(value, text)| view! { <option value=value selected=move || action.notify_when.get() == value>{text}</option> }).collect_view()}
                </select>
            </Field>
            <Show when=move || action.notify_when.get() == "onThrottleInterval">
                <Field label="Interval" error=throttle_error><input name="throttle" bind:value=action.throttle /></Field>
            </Show>
        </div>
        <Checkbox label=" One summary for all of a run's alerts" checked=action.summary on_change=Callback::new(move |on: bool| action.summary.set(on)) />
    }
}

/// The params editor of the action's type.
#[component]
fn ActionParams(action: ActionDraft, rule_type: RwSignal<&'static str>) -> impl IntoView {
    // The chosen rule type's own variables (what its server side builds).
    let variables = move || if action.summary.get() { SUMMARY_VARIABLES } else { rule_type_variables(rule_type.get()) };
    let insert = move |target: RwSignal<String>| {
        move |ev: leptos::ev::Event| {
            let name = event_target_value(&ev);
            if !name.is_empty() {
                target.update(|text| text.push_str(&format!("{{{{{name}}}}}")));
            }
        }
    };
    let picker = move |target: RwSignal<String>| {
        view! {
            <label class="field">
                <span class="field-label">"Insert a variable"</span>
                <select name="variables" on:change=insert(target) prop:value="">
                    <option value="">"Variables…"</option>
                    {move || variables().iter().map(|&(name, about)| view! { <option value=name title=about>{format!("{{{{{name}}}}} — {about}")}</option> }).collect_view()}
                </select>
            </label>
        }
    };
    match action.connector.connector_type_id.as_str() {
        WEBHOOK => view! {
            <TextArea label="Body (JSON; values are escaped for JSON)" name="body" value=action.body rows=7 />
            {picker(action.body)}
        }
        .into_any(),
        EMAIL => view! {
            <div class="form-grid">
                <Field label="To (comma-separated)"><input name="to" placeholder="soc@example.com" bind:value=action.to /></Field>
                <Field label="Subject"><input name="subject" bind:value=action.subject /></Field>
            </div>
            <TextArea label="Message" name="message" value=action.message rows=4 />
            {picker(action.message)}
        }
        .into_any(),
        SERVER_LOG => view! {
            <div class="form-grid">
                <Field label="Level">
                    <select name="level" on:change=move |ev| action.level.set(event_target_value(&ev))>
                        {LEVELS.iter().map(|&level| view! { <option value=level selected=move || action.level.get() == level>{level}</option> }).collect_view()}
                    </select>
                </Field>
                <Field label="Message"><input name="message" bind:value=action.message /></Field>
            </div>
            {picker(action.message)}
        }
        .into_any(),
        CASES => view! {
            <div class="form-grid">
                <Field label="Group alerts into cases by (empty: one case)"><input name="groupingBy" placeholder="host.name" bind:value=action.grouping_by /></Field>
                <Field label="Reuse a group's case for"><input name="timeWindow" placeholder="7d" bind:value=action.time_window /></Field>
                <Field label="At most this many cases per run (1–20)"><input name="maximumCasesToOpen" inputmode="numeric" bind:value=action.maximum /></Field>
            </div>
            <Checkbox label=" Reopen a closed case of the same group (otherwise open a new one)" checked=action.reopen
                on_change=Callback::new(move |on: bool| action.reopen.set(on)) />
        }
        .into_any(),
        ENDPOINT_RESPONSE => view! {
            <div class="form-grid">
                <Field label="Command">
                    <select name="command">
                        <option value="isolate" selected=true>"isolate: cut the host off the network (Warden still reaches it)"</option>
                    </select>
                </Field>
                <Field label="Comment (shown in the response actions history)"><input name="comment" placeholder="Isolated by rule" bind:value=action.message /></Field>
            </div>
            <p class="muted">"Each alert's host is isolated through its Warden agent, or through Microsoft Defender for Endpoint when the agent can no longer receive actions. The rule's owner needs the isolate privilege, checked again every time it runs."</p>
        }
        .into_any(),
        _ => view! { <p class="muted">"Nothing to set."</p> }.into_any(),
    }
}

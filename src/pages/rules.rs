//! Rules: the list (status, last run, next run, an enable switch) and each
//! rule's page (what it watches and does, its alerts, its runs with errors,
//! the actions it ran and who changed it). Reading needs rules:read;
//! creating, editing, switching and deleting need rules:all.

use leptos::Params;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query};
use leptos_router::params::Params;
use warden_core::actions::{ConnectorExecution, ExecutionStatus};
use warden_core::authz::Privilege;
use warden_core::paths;
use warden_core::rules::{Alert, ExecutionState, Rule, RuleRun, RunOutcome};

use crate::api;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::audit::history_columns;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::data_table::{Column, DataTable};
use crate::components::pager::Pager;
use crate::components::states::ErrorMessage;
use crate::components::status_badge::AlertStatusBadge;
use crate::components::tabs::{Tabs, current_tab};
use crate::components::time::{ago_text, parse_time, until, use_now};
use crate::components::toast::use_toasts;
use crate::live::{Topic, use_live};
use crate::session::use_session;

const PER_PAGE: u32 = 20;
const TABS: &[(&str, &str)] = &[("details", "Details"), ("alerts", "Alerts"), ("runs", "Runs"), ("actions", "Action log"), ("history", "History")];

pub fn may_edit() -> Signal<bool> {
    let session = use_session();
    Signal::derive(move || session.user().is_some_and(|u| u.can(Privilege::RulesAll)))
}

/// The status badge of a rule: disabled, or how its last run went.
fn rule_status(rule: &Rule) -> (&'static str, &'static str) {
    if !rule.enabled {
        return ("Disabled", "badge status-inactive");
    }
    match rule.execution_status.status {
        ExecutionState::Active => ("Active alerts", "badge status-orphaned"),
        ExecutionState::Ok => ("OK", "badge status-online"),
        ExecutionState::Error => ("Failed", "badge status-error"),
        ExecutionState::Pending => ("Pending", "badge status-updating"),
        ExecutionState::Warning => ("Warning", "badge status-degraded"),
        ExecutionState::Unknown => ("Unknown", "badge status-offline"),
    }
}

/// `/rules?q=compliance&page=2`.
#[derive(Params, Debug, Clone, PartialEq, Default)]
struct RulesQuery {
    q: Option<String>,
    page: Option<u32>,
}

#[component]
pub fn RulesPage() -> impl IntoView {
    let may_edit = may_edit();
    let query = use_query::<RulesQuery>();
    let view_of = move || query.get().unwrap_or_default();
    let navigate = use_navigate();
    let show = Callback::new(move |(q, page): (String, u32)| {
        let page = (page > 1).then(|| page.to_string());
        let params: Vec<(&str, &str)> =
            [("q", Some(q.as_str()).filter(|q| !q.is_empty())), ("page", page.as_deref())].into_iter().filter_map(|(n, v)| Some((n, v?))).collect();
        navigate(&paths::with_query("/rules", &params), Default::default());
    });
    let live = use_live(Topic::Rules);
    let now = use_now();
    let switch = Action::new_local(move |(id, enabled): &(String, bool)| {
        let (id, enabled) = (id.clone(), *enabled);
        async move { api::rules::set_enabled(&id, enabled).await }
    });
    let rules = LocalResource::new(move || {
        live.track();
        switch.version().track();
        let view = view_of();
        async move { api::rules::find(view.page.unwrap_or(1).max(1), PER_PAGE, view.q.as_deref().unwrap_or_default()).await }
    });
    let search = RwSignal::new(view_of().q.unwrap_or_default());
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        show.run((search.get_untracked(), 1));
    };
    let columns = move || {
        vec![
            Column::new("Name", |rule: &Rule| {
                let name = rule.name.clone();
                view! { <A href=href(&format!("/rules/{}", rule.id))>{name}</A> }
            }),
            Column::new("Status", |rule: &Rule| {
                let (label, class) = rule_status(rule);
                let error = rule.execution_status.error.as_ref().map(|e| e.message.clone());
                view! { <span class=class title=error>{label}</span> }
            }),
            Column::new("Last run", move |rule: &Rule| {
                let last = rule.last_run.as_ref().map(|_| rule.execution_status.last_execution_date.clone());
                move || ago_text(last.as_deref(), now.get())
            }),
            Column::new("Next run", move |rule: &Rule| {
                let next = rule.next_run.clone();
                let running = rule.running;
                move || match (running, next.as_deref().and_then(parse_time)) {
                    (true, _) => "running now".to_owned(),
                    (false, Some(at)) => until(at, now.get()),
                    (false, None) => "—".to_owned(),
                }
            }),
            Column::new("Schedule", |rule: &Rule| format!("every {}", rule.schedule.interval)),
            Column::new("Actions", |rule: &Rule| rule.actions.len().to_string()),
            Column::actions(move |rule: &Rule| {
                let (id, enabled, name) = (rule.id.clone(), rule.enabled, rule.name.clone());
                view! {
                    <label class="switch" title=move || if may_edit.get() { String::new() } else { "Enabling and disabling needs rules:all".to_owned() }>
                        <input type="checkbox" role="switch" checked=enabled disabled=move || !may_edit.get() || switch.pending().get()
                            aria-label=format!("Enabled: {name}")
                            on:change=move |ev| { switch.dispatch((id.clone(), event_target_checked(&ev))); } />
                        <span>{if enabled { "On" } else { "Off" }}</span>
                    </label>
                }
            }),
        ]
    };
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Rules"</h1>
                <Show when=move || may_edit.get()>
                    <A href=href("/rules/new") attr:class="button button-primary">"Create rule"</A>
                </Show>
            </div>
            <p class="lead">"What Warden watches, and what it does when something is found: a webhook, an email, a line in the log, a case."</p>
            <form class="toolbar" on:submit=on_search role="search">
                <input type="search" class="grow" placeholder="Search names and tags" aria-label="Search rules" bind:value=search />
                <button type="submit" class="button">"Search"</button>
            </form>
            {move || switch.value().get().and_then(|r| r.err()).map(|err| view! { <ErrorMessage message=err.message /> })}
            <AsyncView resource=rules loading="Loading rules…" let:page>
                <DataTable rows=page.data columns=columns() empty="No rules yet. A compliance rule (an agent uninstalled or orphaned) is a good first one." testid="rules"
                    row_id=|r: &Rule| ("rule-row".to_owned(), r.name.clone()) />
                <Pager total=page.total as usize page=page.page as usize per_page=PER_PAGE as usize
                    on_page=Callback::new(move |p: usize| show.run((view_of().q.unwrap_or_default(), p as u32))) />
            </AsyncView>
        </section>
    }
}

#[component]
pub fn RulePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let may_edit = may_edit();
    let tab = current_tab(TABS);
    let toasts = use_toasts();
    let navigate = use_navigate();
    let live = use_live(Topic::Rules);
    let now = use_now();

    let switch = Action::new_local(move |(what, on): &(&'static str, bool)| {
        let (id, what, on) = (id(), *what, *on);
        async move { if what == "enabled" { api::rules::set_enabled(&id, on).await } else { api::rules::set_muted(&id, on).await } }
    });
    let delete = Action::new_local(move |_: &()| {
        let id = id();
        async move { api::rules::delete(&id).await }
    });
    let rule = LocalResource::new(move || {
        live.track();
        switch.version().track();
        let id = id();
        async move { api::rules::get(&id).await }
    });
    // Each tab's data is read while the tab is open.
    let alerts = LocalResource::new(move || {
        live.track();
        let (open, id) = (tab.get() == "alerts", id());
        async move {
            if !open {
                return Ok(Vec::new());
            }
            let query = api::alerts::AlertsQuery { rule_id: Some(&id), status: None, search: "", page: 1, per_page: 100 };
            api::alerts::find(&query).await.map(|page| page.data)
        }
    });
    let runs = LocalResource::new(move || {
        live.track();
        let (open, id) = (tab.get() == "runs", id());
        async move { if open { api::rules::runs(&id).await } else { Ok(Vec::new()) } }
    });
    let action_log = LocalResource::new(move || {
        live.track();
        let (open, id) = (tab.get() == "actions", id());
        async move { if open { api::rules::action_log(&id).await } else { Ok(Vec::new()) } }
    });
    let history = LocalResource::new(move || {
        live.track();
        let (open, id) = (tab.get() == "history", id());
        async move { if open { api::rules::history(&id).await } else { Ok(Vec::new()) } }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            toasts.show("Rule deleted");
            navigate("/rules", Default::default());
        }
    });
    let confirming = RwSignal::new(false);
    let delete_error = Signal::derive(move || delete.value().get().and_then(|r| r.err()).map(|e| e.message));

    view! {
        <section class="page">
            <p><A href=href("/rules")>"← Rules"</A></p>
            <AsyncView resource=rule loading="Loading rule…" let:rule>
                {
                    let (label, class) = rule_status(&rule);
                    let (enabled, muted) = (rule.enabled, rule.mute_all);
                    let edit = href(&format!("/rules/{}/edit", rule.id));
                    view! {
                        <div class="page-head">
                            <h1>{rule.name.clone()} " " <span class=class>{label}</span></h1>
                            <Show when=move || may_edit.get()>
                                <div class="actions-row">
                                    <button type="button" class="button" disabled=move || switch.pending().get()
                                        on:click=move |_| { switch.dispatch(("enabled", !enabled)); }>{if enabled { "Disable" } else { "Enable" }}</button>
                                    <button type="button" class="button" disabled=move || switch.pending().get()
                                        on:click=move |_| { switch.dispatch(("muted", !muted)); }>{if muted { "Unmute" } else { "Mute" }}</button>
                                    <A href=edit.clone() attr:class="button button-primary">"Edit"</A>
                                    <button type="button" class="button button-danger" on:click=move |_| confirming.set(true)>"Delete"</button>
                                </div>
                            </Show>
                        </div>
                        {move || switch.value().get().and_then(|r| r.err()).map(|err| view! { <ErrorMessage message=err.message /> })}
                        {rule.execution_status.error.clone().map(|error| view! {
                            <div class="result result-error" role="alert"><strong>"Last run failed: "</strong>{error.message}</div>
                        })}
                        <Tabs label="Rule" tabs=TABS current=tab>
                        {
                            let rule = rule.clone();
                            move || match tab.get() {
                                "alerts" => view! {
                                    <AsyncView resource=alerts let:list>
                                        <DataTable rows=list columns=alert_columns(now) empty="No alerts: nothing this rule watches for has happened." testid="rule-alerts" />
                                    </AsyncView>
                                }.into_any(),
                                "runs" => view! {
                                    <AsyncView resource=runs let:list>
                                        <DataTable rows=list columns=run_columns() empty="Not run yet." testid="rule-runs" />
                                    </AsyncView>
                                }.into_any(),
                                "actions" => view! {
                                    <AsyncView resource=action_log let:list>
                                        <DataTable rows=list columns=action_columns() empty="No action has run yet." testid="rule-actions" />
                                    </AsyncView>
                                }.into_any(),
                                "history" => view! {
                                    <AsyncView resource=history let:list>
                                        <DataTable rows=list columns=history_columns() empty="No changes recorded." testid="rule-history" />
                                    </AsyncView>
                                }.into_any(),
                                _ => view! { <RuleDetails rule=rule.clone() now /> }.into_any(),
                            }
                        }
                        </Tabs>
                        <Show when=move || confirming.get()>
                            <ConfirmDialog title="Delete this rule?" confirm="Delete" danger=true
                                pending=delete.pending() error=delete_error
                                on_confirm=Callback::new(move |()| { delete.dispatch(()); })
                                on_cancel=Callback::new(move |()| confirming.set(false))>
                                <p>"Its alerts and runs go with it, and its API key is queued for invalidation. Its change history stays."</p>
                            </ConfirmDialog>
                        </Show>
                    }
                }
            </AsyncView>
        </section>
    }
}

#[component]
fn RuleDetails(rule: Rule, now: ReadSignal<f64>) -> impl IntoView {
    let params = serde_json::to_string_pretty(&rule.params).unwrap_or_default();
    let next = rule.next_run.clone();
    let last = rule.last_run.as_ref().map(|_| rule.execution_status.last_execution_date.clone());
    let outcome = rule.last_run.as_ref().and_then(|r| r.outcome_msg.clone()).map(|m| m.join(" "));
    view! {
        <div class="panel">
            <dl class="facts">
                <dt>"Type"</dt><dd>{rule.rule_type_id.clone()}</dd>
                <dt>"Schedule"</dt><dd>{format!("every {}", rule.schedule.interval)}" (and at once when an agent changes status)"</dd>
                <dt>"Watches"</dt><dd><pre>{params}</pre></dd>
                <dt>"Tags"</dt><dd>{if rule.tags.is_empty() { "—".to_owned() } else { rule.tags.join(", ") }}</dd>
                <dt>"Last run"</dt><dd>{move || ago_text(last.as_deref(), now.get())}{outcome.map(|m| format!(": {m}"))}</dd>
                <dt>"Next run"</dt><dd>{move || next.as_deref().and_then(parse_time).map_or_else(|| "—".to_owned(), |at| until(at, now.get()))}</dd>
                <dt>"Runs as"</dt><dd>{rule.api_key_owner.clone().unwrap_or_else(|| "—".into())}" (who saved it last)"</dd>
                <dt>"Muted"</dt><dd>{if rule.mute_all { "yes: alerts are tracked, no action fires" } else { "no" }}</dd>
            </dl>
            <h2>"Actions"</h2>
            <ul class="plain-list">
                {rule.actions.iter().map(|action| {
                    let when = match (&action.group, &action.frequency) {
                        (None, _) => "system action: runs once per run that has alerts".to_owned(),
                        (Some(group), Some(f)) => format!("{group}: {}{}", f.notify_when.as_str(), f.throttle.as_ref().map(|t| format!(" every {t}")).unwrap_or_default()),
                        (Some(group), None) => format!("{group}: every active run"),
                    };
                    view! { <li><code>{action.connector_type_id.clone()}</code>" "{action.id.clone()}" — "{when}</li> }
                }).collect_view()}
            </ul>
        </div>
    }
}

/// The alerts page's cells, for this rule's alerts.
fn alert_columns(now: ReadSignal<f64>) -> Vec<Column<Alert>> {
    use crate::pages::alerts::{agent_status, case_links, duration, host_link};
    vec![
        Column::new("Status", |a: &Alert| view! { <AlertStatusBadge status=a.status /> }),
        Column::new("Host", host_link),
        Column::new("Agent status", agent_status),
        Column::new("Started", move |a: &Alert| {
            let start = a.start.clone();
            move || ago_text(Some(&start), now.get())
        }),
        Column::new("Duration", move |a: &Alert| duration(a, now)),
        Column::new("Cases", |a: &Alert| case_links(&a.case_ids)),
    ]
}

fn run_columns() -> Vec<Column<RuleRun>> {
    vec![
        Column::new("When", |r: &RuleRun| r.started_at.clone()),
        Column::new("Outcome", |r: &RuleRun| {
            let ok = r.outcome != RunOutcome::Failed;
            view! { <span class=if ok { "badge status-online" } else { "badge status-error" }>{r.outcome.as_str()}</span> }
        }),
        Column::new("Why it ran", |r: &RuleRun| if r.trigger == "fleet" { "an agent changed" } else { "its schedule" }),
        Column::new("Found", |r: &RuleRun| format!("{} new, {} recovered", r.alerts_count.new, r.alerts_count.recovered)),
        Column::new("Actions", |r: &RuleRun| r.actions_scheduled.to_string()),
        Column::new("Message", |r: &RuleRun| view! { <span class="cell-wrap">{r.message.clone().unwrap_or_default()}</span> }),
        Column::new("Took", |r: &RuleRun| format!("{} ms", r.duration_ms)),
    ]
}

fn action_columns() -> Vec<Column<ConnectorExecution>> {
    vec![
        Column::new("When", |r: &ConnectorExecution| r.started_at.clone()),
        Column::new("Connector", |r: &ConnectorExecution| r.connector_id.clone()),
        Column::new("Outcome", |r: &ConnectorExecution| {
            let ok = r.status == ExecutionStatus::Ok;
            view! { <span class=if ok { "badge status-online" } else { "badge status-error" }>{if ok { "succeeded" } else { "failed" }}</span> }
        }),
        Column::new("Detail", |r: &ConnectorExecution| {
            let detail = [r.message.clone(), r.service_message.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
            view! { <span class="cell-wrap">{detail}</span> }
        }),
        Column::new("As", |r: &ConnectorExecution| format!("{} ({})", r.actor, r.source)),
    ]
}

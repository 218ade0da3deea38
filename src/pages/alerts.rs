//! Alerts across rules: active, recovered and untracked, filtered by rule,
//! status and host (search), paged on the server, live on the push channel.
//! The filters live in the URL, so a reload or a shared link shows the same.
//! Each alert links to its rule, its agent and the cases it is in.

use leptos::Params;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query};
use leptos_router::params::Params;
use serde_json::Value;
use warden_core::fleet::AgentStatus;
use warden_core::paths;
use warden_core::response_actions::ResponseAgentType;
use warden_core::rules::{Alert, AlertStatus};

use crate::api;
use crate::api::alerts::AlertsQuery;
use crate::app::{console_url, href, may_open_console};
use crate::components::async_view::AsyncView;
use crate::components::data_table::{Column, DataTable};
use crate::components::pager::Pager;
use crate::components::status_badge::{AlertStatusBadge, StatusBadge};
use crate::components::time::{ago_text, span, span_since, use_now, utc_time};
use crate::live::{Topic, use_live};
use crate::session::use_session;

const PER_PAGE: usize = 20;

/// What the alerts page shows, as its URL says: `/alerts?status=active&rule=r1&q=web&page=2`.
#[derive(Params, Debug, Clone, PartialEq, Default)]
struct AlertsView {
    status: Option<String>,
    rule: Option<String>,
    q: Option<String>,
    page: Option<usize>,
}

impl AlertsView {
    fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    fn status(&self) -> Option<AlertStatus> {
        self.status.as_deref().and_then(AlertStatus::parse)
    }

    fn rule(&self) -> Option<&str> {
        self.rule.as_deref().filter(|r| !r.is_empty())
    }

    fn search(&self) -> &str {
        self.q.as_deref().unwrap_or_default()
    }

    /// The URL that shows this view; empty parts are left out.
    fn url(&self) -> String {
        let page = self.page.filter(|&p| p > 1).map(|p| p.to_string());
        let params: Vec<(&str, &str)> =
            [("status", self.status().map(AlertStatus::as_str)), ("rule", self.rule()), ("q", self.q.as_deref()), ("page", page.as_deref())]
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.filter(|v| !v.trim().is_empty())?)))
                .collect();
        paths::with_query("/alerts", &params)
    }
}

/// A text of the alert's context (`host.name`, `status`, `reason`).
fn context_text<'a>(alert: &'a Alert, pointer: &str) -> Option<&'a str> {
    let mut value: Option<&Value> = None;
    for (i, key) in pointer.split('.').enumerate() {
        value = if i == 0 { alert.context.get(key) } else { value.and_then(|v| v.get(key)) };
    }
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The agent's host, linked to the agent's page, and its responder console
/// for whoever may respond.
pub fn host_link(alert: &Alert) -> impl IntoView + use<> {
    let host = context_text(alert, "host.name").unwrap_or(&alert.instance_id).to_owned();
    let may_respond = use_session().user().is_some_and(|u| may_open_console(&u));
    let console = may_respond.then(|| {
        let url = href(&console_url(&alert.instance_id, ResponseAgentType::Endpoint));
        view! { " " <A href=url attr:class="button button-small" attr:title="Open this host's responder console">"Console"</A> }
    });
    view! { <A href=href(&format!("/fleet/agents/{}", paths::encode(&alert.instance_id)))>{host}</A>{console} }
}

/// The agent's status when the alert was raised, and why.
pub fn agent_status(alert: &Alert) -> impl IntoView + use<> {
    let status = context_text(alert, "status").and_then(AgentStatus::parse);
    let reason = context_text(alert, "reason").map(str::to_owned);
    view! {
        {status.map(|status| view! { <StatusBadge status /> })}
        {reason.map(|reason| view! { <div class="muted cell-wrap small">{reason}</div> })}
    }
}

/// The alert's rule, linked to the rule's page.
pub fn rule_link(rule_id: &str, rule_name: &str) -> impl IntoView + use<> {
    let name = if rule_name.is_empty() { rule_id.to_owned() } else { rule_name.to_owned() };
    view! { <A href=href(&format!("/rules/{}", paths::encode(rule_id)))>{name}</A> }
}

/// How long it has been active: until now while it is, live.
pub fn duration(alert: &Alert, now: ReadSignal<f64>) -> impl IntoView + use<> {
    let (active, start, recorded) = (alert.status == AlertStatus::Active, alert.start.clone(), alert.duration_us / 1_000_000);
    move || if active { span_since(&start, now.get()) } else { span(recorded) }
}

/// The cases the alert is in, each linked.
pub fn case_links(case_ids: &[String]) -> impl IntoView + use<> {
    if case_ids.is_empty() {
        return "—".into_any();
    }
    let links = case_ids
        .iter()
        .map(|id| {
            let short: String = id.chars().take(8).collect();
            view! { <A href=href(&format!("/cases/{}", paths::encode(id))) attr:title=format!("Case {id}")>{format!("Case {short}")}</A> }
        })
        .collect_view();
    view! { <span class="links-inline">{links}</span> }.into_any()
}

fn columns(now: ReadSignal<f64>) -> Vec<Column<Alert>> {
    vec![
        Column::new("Status", |a: &Alert| view! { <AlertStatusBadge status=a.status /> }),
        Column::new("Host", host_link),
        Column::new("Agent status", agent_status),
        Column::new("Rule", |a: &Alert| rule_link(&a.rule_id, &a.rule_name)),
        Column::new("Started", move |a: &Alert| {
            let start = a.start.clone();
            view! { <time datetime=start.clone()>{utc_time(&start)}</time><div class="muted small">{move || ago_text(Some(&start), now.get())}</div> }
        }),
        Column::new("Duration", move |a: &Alert| duration(a, now)),
        Column::new("Ended", |a: &Alert| a.end.as_deref().map_or_else(|| "—".to_owned(), utc_time)),
        Column::new("Cases", |a: &Alert| case_links(&a.case_ids)),
    ]
}

const STATUSES: [(Option<AlertStatus>, &str); 4] =
    [(None, "All"), (Some(AlertStatus::Active), "Active"), (Some(AlertStatus::Recovered), "Recovered"), (Some(AlertStatus::Untracked), "Untracked")];

#[component]
pub fn AlertsPage() -> impl IntoView {
    let query = use_query::<AlertsView>();
    let view_of = move || query.get().unwrap_or_default();
    let navigate = use_navigate();
    // Every change of filter is a navigation, so the URL always says what is shown.
    let show = Callback::new(move |next: AlertsView| navigate(&next.url(), Default::default()));
    let changed = move |edit: fn(&mut AlertsView, String), value: String| {
        let mut next = query.get_untracked().unwrap_or_default();
        edit(&mut next, value);
        show.run(next);
    };

    let live = use_live(Topic::Rules);
    let now = use_now();
    let alerts = LocalResource::new(move || {
        live.track();
        let view = view_of();
        async move {
            let find = AlertsQuery { rule_id: view.rule(), status: view.status(), search: view.search(), page: view.page(), per_page: PER_PAGE };
            api::alerts::find(&find).await
        }
    });
    let rules = LocalResource::new(move || {
        live.track();
        api::alerts::rule_names()
    });

    let search_input = RwSignal::new(view_of().q.unwrap_or_default());
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        changed(|v, q| (v.q, v.page) = (Some(q), None), search_input.get_untracked());
    };
    let on_rule = move |ev: leptos::ev::Event| changed(|v, rule| (v.rule, v.page) = (Some(rule), None), event_target_value(&ev));
    let on_page = Callback::new(move |page: usize| changed(|v, p| v.page = p.parse().ok(), page.to_string()));

    let rule_options = move || {
        let chosen = view_of().rule.unwrap_or_default();
        let mut names = rules.get().and_then(Result::ok).unwrap_or_default();
        // A rule the URL names but the first page of rules does not.
        if !chosen.is_empty() && !names.iter().any(|(id, _)| *id == chosen) {
            names.push((chosen.clone(), chosen.clone()));
        }
        let any = view! { <option value="" selected=chosen.is_empty()>"Any rule"</option> };
        let each = names
            .into_iter()
            .map(|(id, name)| {
                let selected = id == chosen;
                view! { <option value=id selected=selected>{name}</option> }
            })
            .collect_view();
        view! { {any}{each} }
    };

    view! {
        <section class="page">
            <h1>"Alerts"</h1>
            <p class="lead">"What the rules found across the fleet: active alerts first, then recovered and untracked ones, each with its agent and cases."</p>
            <div class="chips" role="group" aria-label="Filter by status">
                {STATUSES.into_iter().map(|(status, label)| view! {
                    <button type="button" class="chip" data-testid=format!("alert-status-{}", status.map_or("all", AlertStatus::as_str))
                        aria-pressed=move || (view_of().status() == status).to_string()
                        on:click=move |_| changed(|v, s| (v.status, v.page) = (Some(s), None), status.map_or("", AlertStatus::as_str).to_owned())>
                        {label}
                    </button>
                }).collect_view()}
            </div>
            <form class="toolbar" on:submit=on_search role="search">
                <label class="toolbar-field">
                    <span class="field-label">"Rule"</span>
                    <select name="rule" on:change=on_rule>{rule_options}</select>
                </label>
                <input type="search" class="grow" placeholder="Host name, agent id or agent status" aria-label="Search alerts by host" bind:value=search_input />
                <button type="submit" class="button">"Search"</button>
            </form>
            <AsyncView resource=alerts loading="Loading alerts…" let:found>
                {
                    let view = view_of();
                    let filtered = view.status().is_some() || view.rule().is_some() || !view.search().trim().is_empty();
                    let empty = if filtered { "No alert matches these filters." } else { "No alerts yet: the rules have found nothing." };
                    view! {
                        <DataTable rows=found.data columns=columns(now) empty testid="alerts"
                            row_id=|a: &Alert| ("alert-row".to_owned(), context_text(a, "host.name").unwrap_or(&a.instance_id).to_owned()) />
                        <Pager total=found.total as usize page=view.page() per_page=PER_PAGE on_page />
                    }
                }
            </AsyncView>
        </section>
    }
}

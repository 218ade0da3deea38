//! The Fleet view: every agent with its status, counts that filter, search,
//! sort and paging (all on the server), live every 5 seconds. The filters
//! live in the URL, so a view can be shared and survives reload.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::{Agent, ListResponse};
use warden_core::kuery;
use warden_core::paths;

use crate::api;
use crate::app::href;
use crate::components::states::{ErrorMessage, Loading};
use crate::components::status_badge::StatusBadge;
use crate::components::time::{ago_text, use_now, use_tick};

const PER_PAGE: usize = 20;

/// The chips, in the order an analyst scans them: what needs attention first.
const CHIPS: [AgentStatus; 9] = [
    AgentStatus::Uninstalled,
    AgentStatus::Orphaned,
    AgentStatus::Migrated,
    AgentStatus::Error,
    AgentStatus::Degraded,
    AgentStatus::Offline,
    AgentStatus::Online,
    AgentStatus::Updating,
    AgentStatus::Unenrolling,
];

fn encode(text: &str) -> String {
    String::from(web_sys::js_sys::encode_uri_component(text))
}

#[component]
pub fn FleetPage() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let status = move || param("status");
    let search = move || param("q");
    let page = move || param("page").parse::<usize>().unwrap_or(1).max(1);
    let sort = move || {
        let s = param("sort");
        if s.is_empty() { "local_metadata.host.hostname".to_owned() } else { s }
    };
    let order = move || {
        let o = param("order");
        if o == "desc" { o } else { "asc".to_owned() }
    };
    let show_inactive = move || param("inactive") == "1";

    // Every change of filter is a navigation, so the URL always says what is shown.
    let set_params = {
        let navigate = navigate.clone();
        move |changes: Vec<(&'static str, String)>| {
            let mut pairs: Vec<(String, String)> = ["status", "q", "page", "sort", "order", "inactive"]
                .iter()
                .map(|k| (k.to_string(), query.with_untracked(|q| q.get(k).unwrap_or_default())))
                .collect();
            for (key, value) in changes {
                if let Some(pair) = pairs.iter_mut().find(|(k, _)| k == key) {
                    pair.1 = value;
                }
            }
            let qs: Vec<String> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(&v))).collect();
            let target = if qs.is_empty() { "/fleet".to_owned() } else { format!("/fleet?{}", qs.join("&")) };
            navigate(&target, Default::default());
        }
    };

    let tick = use_tick(Duration::from_secs(5));
    let now = use_now();
    let agents = LocalResource::new(move || {
        tick.track();
        let kuery = kuery::for_view(Some(&status()).filter(|s| !s.is_empty()).map(|s| s.as_str()), &search());
        let url = paths::with_query(
            paths::AGENTS,
            &[
                ("page", &page().to_string()),
                ("perPage", &PER_PAGE.to_string()),
                ("sortField", &sort()),
                ("sortOrder", &order()),
                ("getStatusSummary", "true"),
                ("showInactive", &show_inactive().to_string()),
                ("kuery", &kuery),
            ],
        );
        async move { api::get::<ListResponse<Agent>>(&url).await }
    });

    let search_input = RwSignal::new(search());
    let on_search = {
        let set_params = set_params.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            set_params(vec![("q", search_input.get_untracked()), ("page", String::new())]);
        }
    };
    let sort_by = {
        let set_params = set_params.clone();
        move |field: &'static str| {
            let next_order = if sort() == field && order() == "asc" { "desc" } else { "asc" };
            set_params(vec![("sort", field.to_owned()), ("order", next_order.to_owned())]);
        }
    };
    let header = move |label: &'static str, field: &'static str| {
        let sort_by = sort_by.clone();
        view! {
            <th aria-sort=move || if sort() == field { if order() == "asc" { "ascending" } else { "descending" } } else { "none" }>
                <button type="button" class="th-sort" on:click=move |_| sort_by(field)>
                    {label}
                    {move || if sort() == field { if order() == "asc" { " ▲" } else { " ▼" } } else { "" }}
                </button>
            </th>
        }
    };

    let chips = {
        let set_params = set_params.clone();
        move |summary: std::collections::BTreeMap<String, usize>, total_all: usize| {
            let set_params = set_params.clone();
            let all_set = set_params.clone();
            view! {
                <div class="chips" role="group" aria-label="Filter by status">
                    <button type="button" class="chip" aria-pressed=move || (status().is_empty()).to_string()
                        on:click=move |_| all_set(vec![("status", String::new()), ("page", String::new())])>
                        "All " <span class="count">{total_all}</span>
                    </button>
                    {CHIPS.into_iter().map(|chip| {
                        let set_params = set_params.clone();
                        let count = summary.get(chip.as_str()).copied().unwrap_or(0);
                        view! {
                            <button type="button" class=format!("chip chip-{}", chip.as_str()) title=chip.explanation()
                                aria-pressed=move || (status() == chip.as_str()).to_string()
                                data-testid=format!("chip-{}", chip.as_str())
                                on:click=move |_| set_params(vec![("status", chip.as_str().to_owned()), ("page", String::new())])>
                                {chip.label()} " " <span class="count">{count}</span>
                            </button>
                        }
                    }).collect_view()}
                </div>
            }
        }
    };

    let paging = {
        let set_params = set_params.clone();
        move |total: usize| {
            let pages = total.div_ceil(PER_PAGE).max(1);
            let current = page().min(pages);
            let first = if total == 0 { 0 } else { (current - 1) * PER_PAGE + 1 };
            let last = (current * PER_PAGE).min(total);
            let (prev, forward) = (set_params.clone(), set_params.clone());
            view! {
                <nav class="paging" aria-label="Pages">
                    <span>{format!("{first}–{last} of {total}")}</span>
                    <button type="button" class="button" disabled={current <= 1} on:click=move |_| prev(vec![("page", (current - 1).to_string())])>"Previous"</button>
                    <button type="button" class="button" disabled={current >= pages} on:click=move |_| forward(vec![("page", (current + 1).to_string())])>"Next"</button>
                </nav>
            }
        }
    };

    let inactive_toggle = set_params.clone();
    view! {
        <section class="page">
            <h1>"Fleet"</h1>
            <p class="lead">"Which endpoints are protected, which went dark, and why."</p>
            <form class="toolbar" on:submit=on_search role="search">
                <input type="search" placeholder="Search host names, or a kuery such as tags:prod" aria-label="Search agents" bind:value=search_input class="grow" />
                <button type="submit" class="button">"Search"</button>
                <label class="check">
                    <input type="checkbox" prop:checked=show_inactive
                        on:change=move |ev| inactive_toggle(vec![("inactive", if event_target_checked(&ev) { "1".into() } else { String::new() }), ("page", String::new())]) />
                    " Show inactive and unenrolled"
                </label>
            </form>
            <Transition fallback=|| view! { <Loading label="Loading agents…" /> }>
                {move || {
                    let chips = chips.clone();
                    let paging = paging.clone();
                    let header = header.clone();
                    Suspend::new(async move {
                        match agents.await {
                            Err(err) => view! { <ErrorMessage message=err.message /> }.into_any(),
                            Ok(list) => {
                                let summary = list.status_summary.clone().unwrap_or_default();
                                let all: usize = summary.values().sum();
                                let total = list.total;
                                view! {
                                    {chips(summary, all)}
                                    {if list.items.is_empty() {
                                        view! { <div class="state state-empty">{if all == 0 { "No agents are enrolled yet. Enroll one with warden-agent enroll and the policy's enrollment token." } else { "No agent matches these filters." }}</div> }.into_any()
                                    } else {
                                        view! {
                                            <table class="table" data-testid="agents">
                                                <thead><tr>
                                                    {header("Host", "local_metadata.host.hostname")}
                                                    {header("Status", "status")}
                                                    <th>"Policy"</th>
                                                    {header("Version", "local_metadata.elastic.agent.version")}
                                                    {header("Last activity", "last_checkin")}
                                                </tr></thead>
                                                <tbody>
                                                    {list.items.into_iter().map(|agent| {
                                                        let host = agent.local_metadata.pointer("/host/hostname").and_then(|v| v.as_str()).unwrap_or("(unnamed)").to_owned();
                                                        let last = agent.last_checkin.clone();
                                                        let rejected = agent.rejected_calls.clone();
                                                        view! {
                                                            <tr>
                                                                <td><A href=href(&format!("/fleet/agents/{}", agent.id))>{host}</A>
                                                                    {rejected.map(|r| view! { <span class="warn-inline" title=format!("Refused {} call(s) after unenroll; last {}", r.count, r.last_at)>" ⚠ still calling"</span> })}
                                                                </td>
                                                                <td><StatusBadge status=agent.status /></td>
                                                                <td>{agent.policy_id.to_string()}</td>
                                                                <td>{agent.agent.version.clone()}</td>
                                                                <td>{move || ago_text(last.as_deref(), now.get())}</td>
                                                            </tr>
                                                        }
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                    {paging(total)}
                                }.into_any()
                            }
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

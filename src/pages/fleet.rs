//! The Fleet view: every agent with its status, counts that filter, search,
//! sort and paging (all on the server), live on the push channel. The
//! filters live in the URL, so a view can be shared and survives reload.
//! Users who may send a response action in bulk pick hosts (or every agent
//! the filter matches) and send one command to all of them. A cloud
//! connector's permission verifier (its short-lived agent policy and the
//! agent that enrolls in it) shows as what it is, with the connector it
//! checks and when Warden removes it.

use std::collections::BTreeMap;

use leptos::Params;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query};
use leptos_router::params::Params;
use warden_core::authz::Privilege;
use warden_core::fleet::AgentStatus;
use warden_core::fleet_api::{Agent, AgentPolicy, AgentSortField, BulkTarget};
use warden_core::ids::AgentId;
use warden_core::response_actions::bulk::bulk_commands;
use warden_core::response_actions::{MdeHost, ResponseAgentType};
use warden_core::{kuery, paths};

use crate::api;
use crate::api::fleet::AgentListQuery;
use crate::app::{console_url, href, may_open_console};
use crate::components::async_view::AsyncView;
use crate::components::data_table::{Column, DataTable, Sorting};
use crate::components::form::Checkbox;
use crate::components::pager::Pager;
use crate::components::states::ErrorMessage;
use crate::components::status_badge::StatusBadge;
use crate::components::time::{ago_text, use_now, utc_time};
use crate::live::{Topic, use_live};
use crate::pages::agent::isolated_badge;
use crate::pages::bulk_actions::{BulkSelection, bulk_send_dialog};
use crate::pages::cloud_connectors::FleetNav;
use crate::session::use_session;

const PER_PAGE: usize = 20;

/// The chips, in the order an analyst scans them: what needs attention first.
const CHIPS: [AgentStatus; 10] = [
    AgentStatus::Conflict,
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

/// What the Fleet view shows, as its URL says: `/fleet?status=offline&q=web&page=2&sort=status&order=desc&inactive=1`.
#[derive(Params, Debug, Clone, PartialEq, Default)]
struct FleetQuery {
    status: Option<String>,
    q: Option<String>,
    page: Option<usize>,
    sort: Option<AgentSortField>,
    order: Option<String>,
    inactive: Option<String>,
}

impl FleetQuery {
    fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    fn sort(&self) -> AgentSortField {
        self.sort.unwrap_or(AgentSortField::Hostname)
    }

    fn descending(&self) -> bool {
        self.order.as_deref() == Some("desc")
    }

    fn show_inactive(&self) -> bool {
        self.inactive.as_deref() == Some("1")
    }

    fn status(&self) -> Option<&str> {
        self.status.as_deref().filter(|s| !s.is_empty())
    }

    /// The URL that shows this view; empty parts are left out.
    fn url(&self) -> String {
        let page = self.page.filter(|&p| p > 1).map(|p| p.to_string());
        let params: Vec<(&str, &str)> = [
            ("status", self.status()),
            ("q", self.q.as_deref()),
            ("page", page.as_deref()),
            ("sort", self.sort.map(AgentSortField::as_str)),
            ("order", self.order.as_deref()),
            ("inactive", self.inactive.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|v| !v.is_empty())?)))
        .collect();
        paths::with_query("/fleet", &params)
    }
}

#[component]
pub fn FleetPage() -> impl IntoView {
    let query = use_query::<FleetQuery>();
    let view_of = move || query.get().unwrap_or_default();
    let navigate = use_navigate();
    // Every change of filter is a navigation, so the URL always says what is shown.
    let show = Callback::new(move |change: FleetQuery| navigate(&change.url(), Default::default()));
    let changed = move |edit: fn(&mut FleetQuery, String), value: String| {
        let mut next = query.get_untracked().unwrap_or_default();
        edit(&mut next, value);
        show.run(next);
    };

    let live = use_live(Topic::Fleet);
    let cloud_live = use_live(Topic::CloudConnectors);
    let now = use_now();
    // The verifier policies in flight (Warden's own, one verification each),
    // with the name of the connector each checks.
    let verifiers = LocalResource::new(move || {
        live.track();
        cloud_live.track();
        async move {
            let mut verifiers = Vec::new();
            for policy in api::fleet::policies().await?.into_iter().filter(|p| p.is_verifier) {
                let connector = match &policy.cloud_connector_id {
                    Some(id) => api::cloud_connectors::name(id).await.map(|c| c.name).unwrap_or_else(|_| id.clone()),
                    None => String::new(),
                };
                verifiers.push(Verifier { policy, connector });
            }
            Ok(verifiers)
        }
    });
    // Which commands this user may send in bulk (privileges and licence): none, no selection.
    let authz = LocalResource::new(api::response_actions::authz);
    let commands = move || authz.get().and_then(Result::ok).map(|a| bulk_commands(&a.privileges, a.license)).unwrap_or_default();
    let may_bulk = move || !commands().is_empty();
    let agents = LocalResource::new(move || {
        live.track();
        let view = view_of();
        async move {
            // Known before the table is drawn, so its checkboxes (and verifier badges) are there from the start.
            let _ = authz.await;
            let _ = verifiers.await;
            let kuery = kuery::for_view(view.status(), view.q.as_deref().unwrap_or_default());
            let list = AgentListQuery {
                page: view.page(),
                per_page: PER_PAGE,
                sort: view.sort(),
                descending: view.descending(),
                show_inactive: view.show_inactive(),
                kuery: &kuery,
            };
            api::fleet::list_agents(&list).await
        }
    });

    // The hosts picked for a response action (id → host name), kept across
    // the pages of one filter; or every agent the filter matches.
    let picked = RwSignal::new(BTreeMap::<String, String>::new());
    let all_matching = RwSignal::new(false);
    let page_rows = RwSignal::new(Vec::<(String, String)>::new());
    let total = RwSignal::new(0usize);
    let sending = RwSignal::new(None::<BulkSelection>);
    let filter = Memo::new(move |_| {
        let view = view_of();
        (view.status().map(str::to_owned), view.q.clone(), view.show_inactive())
    });
    // Another filter is another selection.
    Effect::new(move |_| {
        filter.track();
        picked.update(BTreeMap::clear);
        all_matching.set(false);
    });
    Effect::new(move |_| {
        if let Some(Ok(list)) = agents.get() {
            page_rows.set(list.items.iter().map(|a| (a.id.to_string(), host_of(a))).collect());
            total.set(list.total);
        }
    });
    let page_picked = move || page_rows.with(|rows| !rows.is_empty() && picked.with(|p| rows.iter().all(|(id, _)| p.contains_key(id))));
    let count = move || if all_matching.get() { total.get() } else { picked.with(BTreeMap::len) };
    let on_page_check = Callback::new(move |on: bool| {
        all_matching.set(false);
        picked.update(|p| {
            for (id, host) in page_rows.get_untracked() {
                if on {
                    p.insert(id, host);
                } else {
                    p.remove(&id);
                }
            }
        });
    });
    let open = move |_| {
        let view = view_of();
        let selection = if all_matching.get_untracked() {
            let kuery = kuery::for_view(view.status(), view.q.as_deref().unwrap_or_default());
            let n = total.get_untracked();
            let summary = if kuery.is_empty() { format!("All {n} agents in the Fleet view.") } else { format!("All {n} agents matching {kuery}.") };
            BulkSelection { agents: BulkTarget::Kuery(kuery), include_inactive: view.show_inactive(), count: n, summary }
        } else {
            let chosen = picked.get_untracked();
            let names: Vec<&str> = chosen.values().map(String::as_str).take(5).collect();
            let more = chosen.len().saturating_sub(names.len());
            let summary = if more > 0 { format!("{} and {more} more.", names.join(", ")) } else { format!("{}.", names.join(", ")) };
            BulkSelection {
                agents: BulkTarget::Ids(chosen.keys().map(AgentId::new).collect()),
                include_inactive: false,
                count: chosen.len(),
                summary,
            }
        };
        sending.set(Some(selection));
    };
    let selection_bar = move || {
        may_bulk().then(|| {
            view! {
                <div class="toolbar fleet-selection" role="group" aria-label="Hosts for a response action" data-testid="fleet-selection">
                    <Checkbox label=" Select this page" checked=Signal::derive(move || all_matching.get() || page_picked()) on_change=on_page_check />
                    {move || (page_picked() && !all_matching.get() && total.get() > page_rows.with(Vec::len)).then(|| view! {
                        <button type="button" class="button button-ghost" data-testid="select-all-matching" on:click=move |_| all_matching.set(true)>
                            {format!("Select all {} matching", total.get())}
                        </button>
                    })}
                    <span class="muted" data-testid="selected-count" data-count=count>
                        {move || if all_matching.get() { format!("All {} matching selected", total.get()) } else { format!("{} selected", count()) }}
                    </span>
                    {move || (count() > 0).then(|| view! {
                        <button type="button" class="button button-ghost" on:click=move |_| {
                            picked.update(BTreeMap::clear);
                            all_matching.set(false);
                        }>"Clear"</button>
                    })}
                    <button type="button" class="button button-primary" data-testid="bulk-open" disabled=move || count() == 0 on:click=open>
                        "Response action…"
                    </button>
                </div>
            }
        })
    };

    let search_input = RwSignal::new(view_of().q.unwrap_or_default());
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        changed(|v, q| (v.q, v.page) = (Some(q), None), search_input.get_untracked());
    };
    let sorting = Sorting {
        field: Signal::derive(move || view_of().sort().as_str().to_owned()),
        descending: Signal::derive(move || view_of().descending()),
        on_sort: Callback::new(move |field: &'static str| {
            let mut next = query.get_untracked().unwrap_or_default();
            let field = AgentSortField::parse(field);
            let ascending_now = next.sort() == field.unwrap_or(AgentSortField::Hostname) && !next.descending();
            (next.sort, next.order) = (field, Some(if ascending_now { "desc" } else { "asc" }.to_owned()));
            show.run(next);
        }),
    };
    let on_page = Callback::new(move |page: usize| changed(|v, p| v.page = p.parse().ok(), page.to_string()));
    let on_inactive =
        Callback::new(move |on: bool| changed(|v, on| (v.inactive, v.page) = (Some(on), None), if on { "1".into() } else { String::new() }));

    let chips = move |summary: std::collections::BTreeMap<String, usize>| {
        let all: usize = summary.values().sum();
        let chip = move |status: Option<AgentStatus>, count: usize| {
            let value = status.map(|s| s.as_str()).unwrap_or_default();
            let class = status.map_or("chip".to_owned(), |s| format!("chip chip-{}", s.as_str()));
            view! {
                <button type="button" class=class title=status.map(|s| s.explanation())
                    aria-pressed=move || (view_of().status().unwrap_or_default() == value).to_string()
                    data-testid=status.map(|s| format!("chip-{}", s.as_str()))
                    on:click=move |_| changed(|v, s| (v.status, v.page) = (Some(s), None), value.to_owned())>
                    {status.map_or("All", |s| s.label())} " " <span class="count">{count}</span>
                </button>
            }
        };
        view! {
            <div class="chips" role="group" aria-label="Filter by status">
                {chip(None, all)}
                {CHIPS.into_iter().map(|status| chip(Some(status), summary.get(status.as_str()).copied().unwrap_or(0))).collect_view()}
            </div>
        }
    };

    let session = use_session();
    let columns = move || {
        let select = Column::new("Select", move |agent: &Agent| {
            let (id, host) = (agent.id.to_string(), host_of(agent));
            let (mine, label) = (id.clone(), format!("Select {host}"));
            view! {
                <input type="checkbox" class="row-check" aria-label=label data-testid="select-agent"
                    prop:checked=move || all_matching.get() || picked.with(|p| p.contains_key(&mine)) prop:disabled=move || all_matching.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        picked.update(|p| if on { p.insert(id.clone(), host.clone()); } else { p.remove(&id); });
                    } />
            }
        })
        .header_hidden();
        let may_respond = session.user().is_some_and(|u| may_open_console(&u));
        let verifying: Vec<Verifier> = verifiers.get_untracked().and_then(Result::ok).unwrap_or_default();
        let verifier_of = move |agent: &Agent| verifying.iter().find(|v| v.policy.id == agent.policy_id).cloned();
        let policy_verifier = verifier_of.clone();
        let mut columns = vec![
            Column::new("Host", move |agent: &Agent| {
                let verifier = verifier_of(agent).map(|v| view! { " " <VerifierBadge verifier=v /> });
                let host = agent.local_metadata.pointer("/host/hostname").and_then(|v| v.as_str()).unwrap_or("(unnamed)").to_owned();
                let rejected = agent.rejected_calls.clone().map(|r| {
                    view! { <span class="warn-inline" title=format!("Refused {} call(s) after unenroll; last {}", r.count, r.last_at)>" ⚠ still calling"</span> }
                });
                let isolated = isolated_badge(&agent.local_metadata);
                let console = (may_respond && verifier.is_none()).then(|| {
                    let url = href(&console_url(agent.id.as_ref(), ResponseAgentType::Endpoint));
                    view! { " " <A href=url attr:class="button button-small" attr:title="Open this host's responder console">"Console"</A> }
                });
                view! { <A href=href(&format!("/fleet/agents/{}", agent.id))>{host}</A>{rejected}{verifier}" "{isolated}{console} }
            })
            .sortable(AgentSortField::Hostname.as_str()),
            Column::new("Status", |agent: &Agent| view! { <StatusBadge status=agent.status /> }).sortable(AgentSortField::Status.as_str()),
            Column::new("Policy", move |agent: &Agent| match policy_verifier(agent) {
                Some(verifier) => view! { <VerifierPolicy verifier /> }.into_any(),
                None => agent.policy_id.to_string().into_any(),
            }),
            Column::new("Version", |agent: &Agent| agent.agent.version.clone()).sortable(AgentSortField::Version.as_str()),
            Column::new("Last activity", move |agent: &Agent| match agent.last_heard_at.clone() {
                // A Detached Endpoint that still reports: up, though its agent is silent.
                Some(heard) => view! {
                    <span data-testid="last-heard" title="The Detached Endpoint's latest report: the host is up">
                        {move || format!("heard from {}", ago_text(Some(&heard), now.get()))}
                    </span>
                }
                .into_any(),
                None => {
                    let last = agent.last_checkin.clone();
                    (move || ago_text(last.as_deref(), now.get())).into_any()
                }
            })
            .sortable(AgentSortField::LastCheckin.as_str()),
        ];
        if authz.get_untracked().and_then(Result::ok).is_some_and(|a| !bulk_commands(&a.privileges, a.license).is_empty()) {
            columns.insert(0, select);
        }
        columns
    };

    view! {
        <section class="page">
            <FleetNav />
            <h1>"Fleet"</h1>
            <p class="lead">"Which endpoints are protected, which went dark, and why."</p>
            <form class="toolbar" on:submit=on_search role="search">
                <input type="search" placeholder="Search host names, or a kuery such as tags:prod" aria-label="Search agents" bind:value=search_input class="grow" />
                <button type="submit" class="button">"Search"</button>
                <Checkbox label=" Show inactive, replaced and unenrolled" checked=Signal::derive(move || view_of().show_inactive()) on_change=on_inactive />
            </form>
            <Verifiers verifiers />
            {selection_bar}
            <AsyncView resource=agents loading="Loading agents…" let:list>
                {
                    let summary = list.status_summary.clone().unwrap_or_default();
                    let view = view_of();
                    // The counts include inactive agents, which the list may hide.
                    let enrolled = summary.values().sum::<usize>() > 0;
                    let filtered = view.status().is_some() || view.q.as_deref().is_some_and(|q| !q.trim().is_empty());
                    let empty = if filtered || enrolled {
                        "No agent matches these filters."
                    } else {
                        "No agents are enrolled yet. Enroll one with warden-agent enroll and the policy's enrollment token."
                    };
                    view! {
                        {chips(summary)}
                        <DataTable rows=list.items columns=columns() empty sorting testid="agents" />
                        <Pager total=list.total page=view_of().page() per_page=PER_PAGE on_page />
                    }
                }
            </AsyncView>
            <AgentPolicies />
            <MdeHosts />
            <Suspense fallback=|| ()>
                {move || sending.get().map(|selection| {
                    let commands = commands();
                    let on_close = Callback::new(move |()| sending.set(None));
                    Suspend::new(async move { bulk_send_dialog(selection, commands, on_close).await })
                })}
            </Suspense>
        </section>
    }
}

/// A verifier policy and the connector it checks.
#[derive(Debug, Clone, PartialEq)]
struct Verifier {
    policy: AgentPolicy,
    /// The connector's name (its id when it cannot be read).
    connector: String,
}

impl Verifier {
    fn connector_link(&self) -> impl IntoView + use<> {
        let name = self.connector.clone();
        self.policy.cloud_connector_id.clone().map(|id| {
            view! { <A href=href(&format!("/fleet/cloud-connectors/{}", paths::encode(&id)))>{name}</A> }
        })
    }

    fn expires(&self) -> String {
        self.policy.expires_at.as_deref().map(utc_time).unwrap_or_else(|| "when it reports".to_owned())
    }
}

/// Not an ordinary agent: Warden's permission verifier, gone once it reports.
#[component]
fn VerifierBadge(verifier: Verifier) -> impl IntoView {
    let why = format!(
        "A permission verifier Warden started for cloud connector {}: it checks the connector's permissions, reports, and is removed (at the latest at {})",
        verifier.connector,
        verifier.expires()
    );
    view! { <span class="badge verifier" title=why data-testid="verifier-badge">"Verifier"</span> }
}

#[component]
fn VerifierPolicy(verifier: Verifier) -> impl IntoView {
    view! {
        <span class="verifier-policy">
            "Verifies " {verifier.connector_link()} <span class="muted">{format!(" · expires at {}", verifier.expires())}</span>
        </span>
    }
}

/// The verifications in flight: their policies, whether or not their agent has enrolled yet.
#[component]
fn Verifiers(verifiers: LocalResource<crate::api::ApiResult<Vec<Verifier>>>) -> impl IntoView {
    move || {
        let list = verifiers.get().and_then(Result::ok).unwrap_or_default();
        (!list.is_empty()).then(|| {
            let items = list
                .into_iter()
                .map(|verifier| {
                    let agents = match verifier.policy.agents {
                        0 => "its agent has not enrolled yet".to_owned(),
                        1 => "1 agent".to_owned(),
                        n => format!("{n} agents"),
                    };
                    view! {
                        <li data-testid="verifier">
                            <VerifierBadge verifier=verifier.clone() />
                            " Checking the permissions of cloud connector " {verifier.connector_link()}
                            <span class="muted">{format!(": {agents}, expires at {} (policy {})", verifier.expires(), verifier.policy.name)}</span>
                        </li>
                    }
                })
                .collect_view();
            view! {
                <div class="panel verifiers" role="status">
                    <p class="muted">"Permission verifiers: short-lived agents Warden starts to check a cloud connector, removed when they have reported. They are not endpoints."</p>
                    <ul>{items}</ul>
                </div>
            }
        })
    }
}

/// The agent policies (not the verifiers'), and what a host that enrolls
/// again into each becomes: a new agent that replaces the old one, or, where
/// a Fleet administrator allows it, the same agent id (the agent proves it
/// with its replace token).
#[component]
fn AgentPolicies() -> impl IntoView {
    let session = use_session();
    let may_edit = move || session.user().is_some_and(|u| u.can(Privilege::FleetAll));
    let toggle = Action::new_local(move |(policy, keep): &(AgentPolicy, bool)| {
        let (policy, keep) = (policy.clone(), *keep);
        async move { api::fleet::set_keep_agent_id(&policy, keep).await }
    });
    let policies = LocalResource::new(move || {
        toggle.version().track();
        async move { api::fleet::policies().await.map(|all| all.into_iter().filter(|p| !p.is_verifier).collect::<Vec<_>>()) }
    });
    let error = Signal::derive(move || match toggle.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });
    let columns = move || {
        vec![
            Column::new("Policy", |p: &AgentPolicy| p.name.clone()),
            Column::new("Agents", |p: &AgentPolicy| p.agents.to_string()),
            Column::new("Inactive after", |p: &AgentPolicy| humantime_days(p.inactivity_timeout)),
            Column::new("A host that enrolls again", move |p: &AgentPolicy| {
                let policy = p.clone();
                let keep = p.keep_agent_id_on_reenroll;
                if may_edit() {
                    let label = format!(" keeps its agent id ({})", policy.name);
                    view! {
                        <Checkbox label checked=Signal::derive(move || keep) on_change=Callback::new(move |on: bool| { toggle.dispatch((policy.clone(), on)); }) />
                    }
                    .into_any()
                } else if keep {
                    "keeps its agent id".into_any()
                } else {
                    "is a new agent; the old one is marked replaced".into_any()
                }
            }),
        ]
    };
    view! {
        <h2 class="section-title">"Agent policies"</h2>
        <p class="muted">"A host that enrolls again becomes a new agent and its old agent is marked replaced (linked both ways). Where a policy keeps agent ids, the same agent re-enrolling into it, with the replace token it first enrolled with, keeps its id instead."</p>
        {move || error.get().map(|message| view! { <ErrorMessage message /> })}
        <AsyncView resource=policies loading="Loading agent policies…" let:list>
            <DataTable rows=list columns=columns() empty="No agent policy yet." testid="agent-policies" />
        </AsyncView>
    }
}

/// Seconds as whole days when they are ("14 days"), else as given.
fn humantime_days(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 && s / 86_400 == 1 => "1 day".to_owned(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s => format!("{s} s"),
    }
}

/// The agent's host name as the table shows it.
fn host_of(agent: &Agent) -> String {
    agent.local_metadata.pointer("/host/hostname").and_then(|v| v.as_str()).unwrap_or("(unnamed)").to_owned()
}

/// The hosts Microsoft Defender for Endpoint knows, through its connector:
/// not Fleet agents, but response actions can target them (agent type
/// `microsoft_defender_endpoint`). Shown only when the connector exists.
#[component]
fn MdeHosts() -> impl IntoView {
    let changes = use_live(Topic::ResponseActions);
    let hosts = LocalResource::new(move || {
        changes.track();
        api::response_actions::mde_hosts()
    });
    let now = use_now();
    let columns = move || {
        vec![
            Column::new("Host", |host: &MdeHost| {
                let history = href(&format!("/response-actions?agentIds={}", warden_core::paths::encode(&host.id)));
                let console = href(&console_url(&host.id, ResponseAgentType::MicrosoftDefenderEndpoint));
                view! {
                    <a href=history title="Its response actions">{host.name.clone()}</a> " "
                    <A href=console attr:class="button button-small" attr:title="Open this host's responder console">"Console"</A>
                }
                .into_any()
            }),
            Column::new("Machine id", |host: &MdeHost| view! { <code>{host.id.clone()}</code> }.into_any()),
            Column::new("OS", |host: &MdeHost| host.os_platform.clone().unwrap_or_default()),
            Column::new("Health", |host: &MdeHost| host.health_status.clone().unwrap_or_default()),
            Column::new("Risk", |host: &MdeHost| host.risk_score.clone().unwrap_or_default()),
            Column::new("Last seen", move |host: &MdeHost| {
                let seen = host.last_seen.clone();
                move || ago_text(seen.as_deref(), now.get())
            }),
        ]
    };
    view! {
        <AsyncView resource=hosts loading="Loading Microsoft Defender for Endpoint hosts…" let:answer>
            {answer.configured.then(|| view! {
                <h2 class="section-title">"Microsoft Defender for Endpoint hosts"</h2>
                <p class="muted">"Read through the MDE connector. Isolate, release, run a script from MDE's library, or cancel: their actions show in the response actions history."</p>
                <DataTable rows=answer.data columns=columns() empty="Microsoft Defender for Endpoint knows no host." testid="mde-hosts" />
            })}
        </AsyncView>
    }
}

//! One agent: its status and why, the audit fields, the FORCE_UNENROLL
//! annotation, refused calls, the activity log, unenroll for Fleet
//! administrators, and its response actions (isolated or not, pending
//! ones, the last few). Live on the push channel.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use warden_core::authz::Privilege;
use warden_core::fleet_api::can_unenroll;
use warden_core::paths;
use warden_core::response_actions::{ActionListQuery, EndpointMetadata, ResponseAgentType};

use crate::api;
use crate::app::{console_url, href, may_open_console};
use crate::components::async_view::AsyncView;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::status_badge::StatusBadge;
use crate::components::time::{ago_text, use_now, utc_time};
use crate::components::toast::use_toasts;
use crate::live::{Topic, use_live};
use crate::pages::response_actions::{action_badge, sent_at};
use crate::session::use_session;

#[component]
pub fn AgentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let session = use_session();
    let may_unenroll = move || session.user().is_some_and(|u| u.can(Privilege::FleetAll));
    let may_respond = move || session.user().is_some_and(|u| may_open_console(&u));
    let may_read_actions = move || session.user().is_some_and(|u| u.can(Privilege::ResponseActionsLogRead));
    let live = use_live(Topic::Fleet);
    let now = use_now();
    let toasts = use_toasts();

    let confirming = RwSignal::new(None::<bool>);
    let unenroll = Action::new_local(move |force: &bool| {
        let (id, force) = (id(), *force);
        async move { api::fleet::unenroll(&id, force).await }
    });
    let agent = LocalResource::new(move || {
        live.track();
        unenroll.version().track();
        let id = id();
        async move { api::fleet::agent(&id).await }
    });
    let events = LocalResource::new(move || {
        live.track();
        unenroll.version().track();
        let id = id();
        async move { api::fleet::agent_events(&id).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = unenroll.value().get() {
            let force = confirming.get_untracked() == Some(true);
            confirming.set(None);
            toasts.show(if force {
                "Agent force-unenrolled: its key is revoked"
            } else {
                "Unenroll requested: the agent is removed when it confirms"
            });
        }
    });
    let unenroll_error = Signal::derive(move || match unenroll.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });

    view! {
        <section class="page">
            <p><A href=href("/fleet")>"← Fleet"</A></p>
            <AsyncView resource=agent loading="Loading agent…" let:agent>
                {
                    let host = agent.local_metadata.pointer("/host/hostname").and_then(|v| v.as_str()).unwrap_or("(unnamed host)").to_owned();
                    let offer = can_unenroll(&agent);
                    let last = agent.last_checkin.clone();
                    let heard = agent.last_heard_at.clone();
                    let details = agent.audit_unenrolled_details.clone().unwrap_or_default();
                    view! {
                        <h1>{host} " " <StatusBadge status=agent.status /> {isolated_badge(&agent.local_metadata)}</h1>
                        {may_respond().then(|| view! {
                            <p><A href=href(&console_url(agent.id.as_ref(), ResponseAgentType::Endpoint)) attr:class="button" attr:data-testid="open-console">"Open console"</A></p>
                        })}
                        <p class="lead">{agent.status.explanation()}</p>
                        {agent.host_conflict_with.clone().map(|other| view! {
                            <div class="state state-error" role="alert" data-testid="host-conflict">
                                "Two agents claim this host: this one and " {agent_link(other.as_str())} ". "
                                "A replaced agent kept checking in, so one of them may be an impostor that knows the host's id. Unenroll the one that is not yours; the other is then alone on its host again."
                            </div>
                        })}
                        {agent.replaced_by.clone().map(|by| view! {
                            <p class="notice" data-testid="replaced-by">
                                "This host enrolled again: this agent was replaced by " {agent_link(by.as_str())}
                                {agent.replaced_at.clone().map(|at| format!(" at {at}"))} "."
                            </p>
                        })}
                        {agent.replaces.clone().map(|old| view! {
                            <p class="muted" data-testid="replaces">"Enrolled from a host that had an agent: it replaces " {agent_link(old.as_str())} ", whose history stays on its page."</p>
                        })}
                        {agent.rejected_calls.clone().map(|r| view! {
                            <div class="state state-error" role="alert" data-testid="rejected-calls">
                                {format!("An unenrolled agent keeps trying to connect: {} refused call(s), the last at {}. Either the unenroll did not reach it, or this is not our agent.", r.count, r.last_at)}
                            </div>
                        })}
                        <div class="grid">
                            <div class="panel">
                                <h2>"Details"</h2>
                                <dl class="facts">
                                    <dt>"Agent id"</dt><dd><code>{agent.id.to_string()}</code></dd>
                                    <dt>"Host id"</dt><dd data-testid="host-id">{agent.host_id.clone().map_or_else(|| view! { <span class="muted">"not reported"</span> }.into_any(), |id| view! { <code>{id}</code> }.into_any())}</dd>
                                    <dt>"Policy"</dt><dd>{agent.policy_id.to_string()}</dd>
                                    <dt>"Version"</dt><dd>{agent.agent.version.clone()}</dd>
                                    <dt>"Tags"</dt><dd>{agent.tags.join(", ")}</dd>
                                    <dt>"Enrolled"</dt><dd>{agent.enrolled_at.clone()}</dd>
                                    <dt>"Last activity"</dt><dd>{move || ago_text(last.as_deref(), now.get())}</dd>
                                    {heard.map(|heard| {
                                        let title = utc_time(&heard);
                                        view! {
                                            <dt>"Last heard from"</dt>
                                            <dd data-testid="last-heard" title=title>
                                                {move || ago_text(Some(&heard), now.get())}
                                                <span class="muted">" — the Detached Endpoint still reports: the host is up"</span>
                                            </dd>
                                        }
                                    })}
                                    <dt>"Last message"</dt><dd>{agent.last_checkin_message.clone().unwrap_or_default()}</dd>
                                </dl>
                            </div>
                            <div class="panel" data-testid="audit">
                                <h2>"Final message and unenroll"</h2>
                                <dl class="facts">
                                    <dt>"Audit reason"</dt><dd>{agent.audit_unenrolled_reason.map(|r| r.as_str().to_owned()).unwrap_or_else(|| "none".into())}</dd>
                                    <dt>"Reported at"</dt><dd>{agent.audit_unenrolled_time.clone().unwrap_or_else(|| "—".into())}</dd>
                                    {details.user.clone().map(|user| view! { <dt>"By user"</dt><dd data-testid="audit-user"><code>{user}</code></dd> })}
                                    {details.process.clone().map(|p| view! {
                                        <dt>"Process"</dt>
                                        <dd data-testid="audit-process">
                                            <code>{format!("{} (pid {})", p.name, p.pid)}</code>
                                            {p.command_line.map(|line| view! { <br /><code class="muted">{line}</code> })}
                                        </dd>
                                    })}
                                    {details.new_fleet_url.clone().map(|url| view! {
                                        // Shown, never linked: the URL is the agent's word (maybe an attacker's Fleet).
                                        <dt>"Moved to"</dt><dd data-testid="audit-new-fleet"><code>{url}</code></dd>
                                    })}
                                    <dt>"Unenrolled at"</dt><dd>{agent.unenrolled_at.clone().unwrap_or_else(|| "—".into())}</dd>
                                    <dt>"FORCE_UNENROLL"</dt><dd data-testid="force-annotation">{agent.force_unenroll.clone().map(|f| format!("by {} at {}", f.by, f.at)).unwrap_or_else(|| "—".into())}</dd>
                                </dl>
                                <Show when=move || offer && may_unenroll()>
                                    <div class="actions-row">
                                        <button type="button" class="button" on:click=move |_| confirming.set(Some(false))>"Unenroll"</button>
                                        <button type="button" class="button button-danger" on:click=move |_| confirming.set(Some(true))>"Force unenroll"</button>
                                    </div>
                                </Show>
                            </div>
                        </div>
                    }
                }
            </AsyncView>
            {move || confirming.get().map(|force| view! {
                <ConfirmDialog
                    title=if force { "Force unenroll this agent?" } else { "Unenroll this agent?" }
                    confirm=if force { "Force unenroll" } else { "Unenroll" }
                    danger=force
                    pending=unenroll.pending()
                    error=unenroll_error
                    on_confirm=Callback::new(move |()| { unenroll.dispatch(force); })
                    on_cancel=Callback::new(move |()| confirming.set(None))
                >
                    <p>{if force {
                        "Its API key is revoked at once and the agent can no longer talk to Warden. The record keeps who did it and when."
                    } else {
                        "The agent is asked to unenroll and is removed when it confirms. An agent that reported itself gone is removed at once."
                    }}</p>
                </ConfirmDialog>
            })}
            {move || may_read_actions().then(|| view! { <AgentActions id=id() /> })}
            <div class="panel">
                <h2>"Activity"</h2>
                <AsyncView resource=events let:lines>
                    {if lines.is_empty() {
                        view! { <div class="state state-empty">"Nothing yet."</div> }.into_any()
                    } else {
                        view! {
                            <ol class="timeline" data-testid="activity">
                                {lines.into_iter().map(|e| view! {
                                    <li data-kind=e.kind.as_str()>
                                        <time>{e.created_at.clone()}</time>
                                        <span>{e.message.clone()}</span>
                                        {e.actor.clone().map(|a| view! { <span class="muted">{format!(" — {a}")}</span> })}
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any()
                    }}
                </AsyncView>
            </div>
        </section>
    }
}

/// A link to another agent's page, by its id.
fn agent_link(id: &str) -> impl IntoView + use<> {
    let (link, label) = (href(&format!("/fleet/agents/{}", paths::encode(id))), format!("agent {id}"));
    view! { <A href=link><code>{label}</code></A> }
}

/// "Isolated" when the agent reports its host cut off from the network.
pub fn isolated_badge(local_metadata: &serde_json::Value) -> impl IntoView + use<> {
    EndpointMetadata::of(local_metadata).isolated.then(|| {
        view! { <span class="badge isolated" data-testid="isolated" title="Isolated: the host talks to Warden only">"Isolated"</span> }
    })
}

/// How many actions wait for the agent, its last five, and a link to all of them.
#[component]
fn AgentActions(id: String) -> impl IntoView {
    let live = use_live(Topic::ResponseActions);
    let now = use_now();
    let pending = {
        let id = id.clone();
        LocalResource::new(move || {
            live.track();
            let id = id.clone();
            async move { api::response_actions::pending(&[&id]).await }
        })
    };
    let recent = {
        let id = id.clone();
        LocalResource::new(move || {
            live.track();
            let query = ActionListQuery { agent_ids: vec![id.clone()], page: 1, page_size: 5, ..ActionListQuery::default() };
            async move { api::response_actions::list(&query).await }
        })
    };
    let history = href(&paths::with_query("/response-actions", &[("agentIds", &id)]));
    view! {
        <div class="panel" data-testid="agent-actions">
            <h2>"Response actions"</h2>
            <AsyncView resource=pending let:agents>
                {
                    let counts: Vec<(String, u64)> =
                        agents.into_iter().flat_map(|a| a.pending_actions).filter(|(_, count)| *count > 0).collect();
                    let total: u64 = counts.iter().map(|(_, count)| count).sum();
                    let detail = counts.iter().map(|(command, count)| format!("{command} {count}")).collect::<Vec<_>>().join(", ");
                    view! {
                        <p data-testid="pending-actions" data-count=total>
                            {match total { 0 => "No pending actions".to_owned(), 1 => "1 pending action".to_owned(), n => format!("{n} pending actions") }}
                            {(!detail.is_empty()).then(|| view! { <span class="muted">{format!(" ({detail})")}</span> })}
                        </p>
                    }
                }
            </AsyncView>
            <AsyncView resource=recent let:found>
                {if found.data.is_empty() {
                    view! { <div class="state state-empty">"No response actions on this host yet."</div> }.into_any()
                } else {
                    view! {
                        <ul class="ra-recent" data-testid="recent-actions">
                            {found.data.into_iter().map(|action| view! {
                                <li data-id=action.id.clone()>
                                    <code class="ra-command">{action.command.console_name()}</code>
                                    {action_badge(&action)}
                                    <span class="muted">{sent_at(&action, now)} " by " {action.created_by.clone()}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </AsyncView>
            <p><A href=history>"Response actions history"</A></p>
        </div>
    }
}

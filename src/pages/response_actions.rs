//! The response actions history: every action sent to every endpoint, newest
//! first, filtered by host, command, status, user, agent type and dates and
//! paged on the server. Every filter and the page live in the URL, in the
//! API's own names (`?agentIds=…&commands=execute&startDate=now-7d&page=2`),
//! so a reload or a shared link shows the same. A row opens to the action's
//! parameters, each host's state and output. Live on the push channel.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use serde_json::Value;
use warden_core::fleet_api::AgentSortField;
use warden_core::paths;
use warden_core::response_actions::{
    ActionDetails, ActionListQuery, ActionOutput, ActionStatus, DEFAULT_PAGE_SIZE, ENDPOINT_ZIP_PASSCODE, EndpointAuthzResponse, Outcome, OutputType,
    ProcessEntry, ResponseAgentType, ResponseCommand, cancel_refusal, host_outcome, outcome, resolve_date,
};

use crate::api::{self, ApiError, ApiResult};
use crate::app::{console_url, href};
use crate::components::async_view::AsyncView;
use crate::components::form::Field;
use crate::components::pager::Pager;
use crate::components::states::{ErrorMessage, Loading};
use crate::components::time::{ago_text, parse_time, use_now, utc_time};
use crate::components::toast::use_toasts;
use crate::components::tooltip::Tooltip;
use crate::live::{Topic, use_live};

/// The start of the period, as the period menu offers it; "All time" sends no start at all.
const PERIODS: [(&str, &str); 4] = [("", "All time"), ("now-24h", "Last 24 hours"), ("now-7d", "Last 7 days"), ("now-30d", "Last 30 days")];
const CUSTOM: &str = "custom";
const PAGE_SIZES: [u64; 4] = [10, 20, 50, 100];
const STATUSES: [(ActionStatus, &str); 3] =
    [(ActionStatus::Pending, "Pending"), (ActionStatus::Successful, "Successful"), (ActionStatus::Failed, "Failed")];

/// The query of an address without filters: page 1, the API's page size.
fn unfiltered() -> ActionListQuery {
    ActionListQuery { page: 1, page_size: DEFAULT_PAGE_SIZE, ..ActionListQuery::default() }
}

/// The address that shows `query` (outputs are the page's business, not the URL's).
fn url_of(query: &ActionListQuery) -> String {
    let query = ActionListQuery { with_outputs: Vec::new(), ..query.clone() };
    let pairs = query.to_pairs();
    let params: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    paths::with_query("/response-actions", &params)
}

fn filtered(query: &ActionListQuery) -> bool {
    ActionListQuery { page: 1, page_size: DEFAULT_PAGE_SIZE, with_outputs: Vec::new(), ..query.clone() } != unfiltered()
}

/// Adds `item` to `list` or takes it out.
fn toggle<T: PartialEq>(list: &mut Vec<T>, item: T, on: bool) {
    list.retain(|x| *x != item);
    if on {
        list.push(item);
    }
}

/// "expires in 13 days", from the action's expiry.
pub fn expires_text(expiration: &str, now_ms: f64) -> String {
    let Some(at) = parse_time(expiration) else { return String::new() };
    let secs = ((at - now_ms) / 1000.0).ceil();
    if secs <= 0.0 {
        return "expiring now".to_owned();
    }
    let secs = secs as u64;
    let (count, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("expires in {count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// The action's state as a badge: pending, successful, failed, and two
/// kinds of failure with their own look: cancelled and expired. The words
/// are the core's [`outcome`], as the console and the agent page show them.
pub fn action_badge(action: &ActionDetails) -> impl IntoView + use<> {
    let outcome = outcome(action);
    let title = match outcome {
        Outcome::Canceled => {
            let by: Vec<&str> = action.agent_state.values().filter_map(|s| s.canceled_by.as_deref()).collect();
            if by.is_empty() { "Failed: cancelled".to_owned() } else { format!("Failed: cancelled by {}", by.join(", ")) }
        }
        Outcome::Expired => "Failed: its agents did not answer before it expired".to_owned(),
        Outcome::Pending => "Waiting for its agents".to_owned(),
        Outcome::Successful => "Every agent completed it".to_owned(),
        Outcome::Failed => "At least one agent failed it".to_owned(),
    };
    view! {
        <span class=format!("badge {}", outcome_class(outcome)) title=title data-status=action.status.as_str() data-cancelled=action.was_canceled.then_some("true")>
            {outcome.label()}
        </span>
    }
}

/// The badge class of an outcome.
pub fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pending => "ra-pending",
        Outcome::Successful => "ra-successful",
        Outcome::Failed => "ra-failed",
        Outcome::Canceled => "ra-cancelled",
        Outcome::Expired => "ra-expired",
    }
}

/// One host's state within an action.
fn host_state(action: &ActionDetails, agent_id: &str) -> (String, &'static str) {
    let outcome = host_outcome(action, agent_id);
    let canceled_by = action.agent_state.get(agent_id).and_then(|s| s.canceled_by.as_ref());
    let label = match (outcome, canceled_by) {
        (Outcome::Canceled, Some(by)) => format!("Cancelled by {by}"),
        _ => outcome.label().to_owned(),
    };
    (label, outcome_class(outcome))
}

/// The agent's page, by its host name.
pub fn host_link(action: &ActionDetails, agent_id: &str) -> impl IntoView + use<> {
    let name = action.host_name(agent_id).to_owned();
    view! { <A href=href(&format!("/fleet/agents/{}", paths::encode(agent_id)))>{name}</A> }
}

/// When it was sent: how long ago, the exact time on hover and for screen readers.
pub fn sent_at(action: &ActionDetails, now: ReadSignal<f64>) -> impl IntoView + use<> {
    let started = action.started_at.clone();
    let (datetime, exact) = (started.clone(), utc_time(&started));
    let title = exact.clone();
    view! {
        <time datetime=datetime title=title>
            <span aria-hidden="true">{move || ago_text(Some(&started), now.get())}</span>
            <span class="sr-only">{exact}</span>
        </time>
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn bytes(value: Option<&Value>) -> String {
    let Some(n) = value.and_then(Value::as_f64) else { return "—".to_owned() };
    match n {
        n if n >= 1_073_741_824.0 => format!("{:.1} GB", n / 1_073_741_824.0),
        n if n >= 1_048_576.0 => format!("{:.1} MB", n / 1_048_576.0),
        n if n >= 1024.0 => format!("{:.1} KB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// Keys and values of an object, as a definition list.
fn facts_of(object: &Value) -> AnyView {
    match object {
        Value::Object(map) if !map.is_empty() => view! {
            <dl class="facts">
                {map.iter().map(|(key, value)| view! { <dt>{key.clone()}</dt><dd class="cell-wrap"><code>{text_of(value)}</code></dd> }).collect_view()}
            </dl>
        }
        .into_any(),
        _ => view! { <p class="muted">"None"</p> }.into_any(),
    }
}

fn parameters_view(action: &ActionDetails) -> AnyView {
    match action.cancelled_action_id() {
        Some(id) => view! { <p>"Cancels action " <code>{id.to_owned()}</code></p> }.into_any(),
        None => facts_of(&action.parameters),
    }
}

/// A block of program output, scrollable and reachable by keyboard.
fn output_block(label: &'static str, text: String, truncated: bool) -> impl IntoView {
    let empty = text.is_empty();
    view! {
        <div class="ra-stream">
            <h5>{label}</h5>
            {if empty {
                view! { <p class="muted">"(empty)"</p> }.into_any()
            } else {
                view! { <pre class="ra-output" tabindex="0" aria-label=label>{text}</pre> }.into_any()
            }}
            {truncated.then(|| view! { <p class="ra-note">"Truncated: the agent kept only the beginning of the " {label} "."</p> })}
        </div>
    }
}

/// What one agent reported, read by command (Kibana's output shapes). With
/// `shortcut` (the console), each process row offers kill and suspend: the
/// callback gets the line to put on the command line.
pub fn output_view(action: &ActionDetails, agent_id: &str, output: &ActionOutput, shortcut: Option<Callback<String>>) -> AnyView {
    let content = &output.content;
    if output.output_type == OutputType::Text {
        return view! { <pre class="ra-output" tabindex="0" aria-label="Output">{text_of(content)}</pre> }.into_any();
    }
    let text = |key: &str| content.get(key).map(text_of).unwrap_or_default();
    let flag = |key: &str| content.get(key).and_then(Value::as_bool).unwrap_or(false);
    match action.command {
        ResponseCommand::RunningProcesses => {
            let entries: Vec<ProcessEntry> = content.get("entries").cloned().and_then(|e| serde_json::from_value(e).ok()).unwrap_or_default();
            if entries.is_empty() {
                return view! { <p class="muted">"The agent reported no running process."</p> }.into_any();
            }
            view! {
                <div class="table-scroll ra-processes" tabindex="0" role="region" aria-label="Running processes">
                    <table class="table">
                        <thead><tr><th>"Command"</th><th>"PID"</th><th>"Entity id"</th><th>"User"</th>
                            {shortcut.map(|_| view! { <th><span class="sr-only">"Act on it"</span></th> })}</tr></thead>
                        <tbody>
                            {entries.into_iter().map(|p| {
                                let pid = p.pid;
                                let buttons = shortcut.map(|fill| view! {
                                    <td><span class="ra-process-actions">
                                        <button type="button" class="button button-small" title="Put kill-process for this PID on the command line"
                                            on:click=move |_| fill.run(format!("kill-process --pid {pid} "))>"Kill"</button>
                                        <button type="button" class="button button-small" title="Put suspend-process for this PID on the command line"
                                            on:click=move |_| fill.run(format!("suspend-process --pid {pid} "))>"Suspend"</button>
                                    </span></td>
                                });
                                view! {
                                    <tr><td class="cell-wrap"><code>{p.command}</code></td><td>{p.pid}</td><td><code>{p.entity_id}</code></td><td>{p.user}</td>{buttons}</tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }
            .into_any()
        }
        ResponseCommand::Execute | ResponseCommand::Runscript => {
            let file = content.get("output_file_id").and_then(Value::as_str).map(str::to_owned);
            view! {
                <dl class="facts">
                    <dt>"Exit code"</dt><dd>{text("code")}</dd>
                    {content.get("shell").map(|_| view! { <dt>"Shell"</dt><dd>{text("shell")}</dd> })}
                    {content.get("cwd").map(|_| view! { <dt>"Directory"</dt><dd><code>{text("cwd")}</code></dd> })}
                </dl>
                {output_block("stdout", text("stdout"), flag("stdout_truncated"))}
                {output_block("stderr", text("stderr"), flag("stderr_truncated"))}
                {file.map(|id| view! { <p class="ra-note">"The whole output is kept on the host, in output file " <code>{id}</code> "."</p> })}
            }
            .into_any()
        }
        ResponseCommand::GetFile => {
            let download = api::response_actions::file_download_href(&action.id, agent_id);
            let files: Vec<Value> = content.get("contents").and_then(Value::as_array).cloned().unwrap_or_default();
            view! {
                <p class="ra-download">
                    <a href=download download class="button">"Download the file (zip)"</a>
                    <span class="muted">" Passcode: " <code>{ENDPOINT_ZIP_PASSCODE}</code></span>
                </p>
                <ul class="plain-list">
                    {files.into_iter().map(|f| {
                        let path = f.get("path").map(text_of).unwrap_or_default();
                        view! { <li><code>{path}</code> " " <span class="muted">{bytes(f.get("size"))}</span></li> }
                    }).collect_view()}
                </ul>
            }
            .into_any()
        }
        ResponseCommand::Upload => view! {
            <dl class="facts">
                <dt>"Saved to"</dt><dd><code>{text("path")}</code></dd>
                <dt>"Free disk space"</dt><dd>{bytes(content.get("disk_free_space"))}</dd>
            </dl>
        }
        .into_any(),
        _ => facts_of(content),
    }
}

/// Every agent's output of the opened actions, by action id: read apart from
/// the list so opening a row does not redraw the table.
type Outputs = BTreeMap<String, ApiResult<BTreeMap<String, ActionOutput>>>;

/// What the rows share with the page (all of it owned by the page, so a
/// row may read it while the list reloads).
#[derive(Clone, Copy)]
struct Rows {
    expanded: RwSignal<BTreeSet<String>>,
    outputs: LocalResource<Outputs>,
    now: ReadSignal<f64>,
    authz: LocalResource<ApiResult<EndpointAuthzResponse>>,
    /// The action whose cancel dialog is open.
    cancelling: RwSignal<Option<ActionDetails>>,
}

/// An opened row: parameters, the action's facts, and each host's state and output.
fn details_view(action: &ActionDetails, rows: Rows) -> impl IntoView + use<> {
    let facts = view! {
        <dl class="facts">
            <dt>"Action id"</dt><dd><code>{action.id.clone()}</code></dd>
            <dt>"Agent type"</dt><dd>{action.agent_type.title()}</dd>
            <dt>"Sent"</dt><dd>{utc_time(&action.started_at)}</dd>
            <dt>"Completed"</dt><dd>{action.completed_at.as_deref().map_or_else(|| "—".to_owned(), utc_time)}</dd>
            <dt>"Expires"</dt><dd>{utc_time(&action.expiration)}</dd>
            {action.rule_name.clone().map(|rule| view! { <dt>"Rule"</dt><dd>{rule}</dd> })}
        </dl>
    };
    let errors = action.errors.clone().filter(|e| !e.is_empty()).map(|errors| {
        view! { <div class="state state-error ra-errors" role="note"><ul class="plain-list">{errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul></div> }
    });
    let hosts = action
        .agents
        .iter()
        .map(|agent_id| {
            let state = action.agent_state.get(agent_id);
            let (label, class) = host_state(action, agent_id);
            let errors = state.and_then(|s| s.errors.clone()).unwrap_or_default();
            let completed = state.and_then(|s| s.completed_at.clone());
            let (this, agent) = (action.clone(), agent_id.clone());
            let output = move || {
                let Some(all) = rows.outputs.get() else { return view! { <Loading label="Loading output…" /> }.into_any() };
                match all.get(&this.id) {
                    None => view! { <Loading label="Loading output…" /> }.into_any(),
                    Some(Err(err)) => view! { <ErrorMessage message=err.message.clone() /> }.into_any(),
                    Some(Ok(outputs)) => match outputs.get(&agent) {
                        Some(output) => output_view(&this, &agent, output, None),
                        None => view! { <p class="muted">"No output."</p> }.into_any(),
                    },
                }
            };
            view! {
                <section class="ra-host" data-testid="ra-host" data-agent=agent_id.clone()>
                    <h4>
                        {host_link(action, agent_id)} " " <span class=format!("badge {class}")>{label}</span> " "
                        <A href=href(&console_url(agent_id, action.agent_type)) attr:class="button button-small">"Console"</A>
                    </h4>
                    {completed.map(|at| view! { <p class="muted small">"Completed " {utc_time(&at)}</p> })}
                    {(!errors.is_empty()).then(|| view! {
                        <ul class="plain-list ra-host-errors">{errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
                    })}
                    {output}
                </section>
            }
        })
        .collect_view();
    view! {
        <div class="ra-details">
            <div class="ra-details-grid">
                <section><h3>"Parameters"</h3>{parameters_view(action)}</section>
                <section><h3>"Action"</h3>{facts}</section>
            </div>
            {errors}
            <h3>"Hosts"</h3>
            <div class="ra-hosts">{hosts}</div>
        </div>
    }
}

/// One action: its row, and its details under it when opened.
fn action_rows(action: ActionDetails, rows: Rows) -> impl IntoView {
    let id = action.id.clone();
    let details_id = format!("ra-details-{id}");
    let open = {
        let id = id.clone();
        move || rows.expanded.with(|e| e.contains(&id))
    };
    let flip = {
        let id = id.clone();
        move |_| {
            rows.expanded.update(|e| {
                if !e.remove(&id) {
                    e.insert(id.clone());
                }
            })
        }
    };
    let command = action.command.console_name();
    let hosts = action.agents.iter().map(|agent| host_link(&action, agent)).collect_view();
    let summary = format!("{command} on {}", action.agents.iter().map(|a| action.host_name(a)).collect::<Vec<_>>().join(", "));
    let summary_label = summary.clone();
    let pending = action.status == ActionStatus::Pending;
    let expiration = action.expiration.clone();
    let now = rows.now;
    let (open_label, open_arrow) = (open.clone(), open.clone());
    let details = {
        let action = action.clone();
        move || open().then(|| view! { <tr class="ra-details-row"><td colspan="8" id=details_id.clone()>{details_view(&action, rows)}</td></tr> })
    };
    view! {
        <tbody class="ra-action" data-testid="ra-row" data-id=id.clone() data-command=action.command.as_str()>
            <tr>
                <td>
                    <button type="button" class="button button-ghost ra-toggle" aria-expanded=move || open_label().to_string()
                        aria-controls=format!("ra-details-{id}") aria-label=format!("Details of {summary}") on:click=flip>
                        <span aria-hidden="true">{move || if open_arrow() { "▾" } else { "▸" }}</span>
                    </button>
                </td>
                <td><code class="ra-command">{command}</code></td>
                <td><span class="links-inline">{hosts}</span></td>
                <td>
                    {action.created_by.clone()}
                    {action.rule_name.clone().map(|rule| view! { <div class="muted small">{format!("rule: {rule}")}</div> })}
                </td>
                <td>{sent_at(&action, now)}</td>
                <td class="cell-wrap">{action.comment.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| "—".to_owned())}</td>
                <td>
                    {action_badge(&action)}
                    {pending.then(|| view! { <div class="muted small" data-testid="ra-expires">{move || expires_text(&expiration, now.get())}</div> })}
                </td>
                <td>{pending.then(|| cancel_button(action.clone(), summary_label, rows))}</td>
            </tr>
            {details}
        </tbody>
    }
}

/// Cancel, for a pending action: disabled, with the reason in a tooltip,
/// when the core's cancel rule refuses it to this user.
fn cancel_button(action: ActionDetails, summary: String, rows: Rows) -> impl IntoView {
    move || {
        let why = match rows.authz.get() {
            None => Some("Checking what you may do…".to_owned()),
            Some(Err(err)) => Some(err.message),
            Some(Ok(authz)) => cancel_refusal(&authz.canceller(), &action, &[]).map(|refusal| refusal.message),
        };
        let disabled = why.is_some();
        let (action, summary) = (action.clone(), summary.clone());
        view! {
            <Tooltip text=Signal::stored(why)>
                <button type="button" class="button" data-testid="ra-cancel" disabled=disabled aria-label=format!("Cancel {summary}")
                    on:click=move |_| rows.cancelling.set(Some(action.clone()))>
                    "Cancel"
                </button>
            </Tooltip>
        }
    }
}

/// Asks which still-pending hosts to stop the action on, and why; checks the
/// choice with the core's cancel rule against the action as it is now before
/// sending, and shows the server's refusal in place.
#[component]
fn CancelDialog(action: ActionDetails, authz: EndpointAuthzResponse, on_close: Callback<()>, on_done: Callback<ActionDetails>) -> impl IntoView {
    let pending: Vec<String> = action.pending_agents().into_iter().map(str::to_owned).collect();
    let chosen = RwSignal::new(pending.clone());
    let comment = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let send = {
        let (id, authz) = (action.id.clone(), authz.clone());
        Action::new_local(move |(hosts, comment): &(Vec<String>, String)| {
            let (id, authz, hosts, comment) = (id.clone(), authz.clone(), hosts.clone(), comment.clone());
            async move {
                // A host may have answered since the dialog opened.
                let now = api::response_actions::get(&id).await?;
                if let Some(refusal) = cancel_refusal(&authz.canceller(), &now, &hosts) {
                    return Err(ApiError { status: refusal.status, message: refusal.message });
                }
                api::response_actions::cancel(&now, hosts, &comment).await
            }
        })
    };
    Effect::new(move |_| match send.value().get() {
        Some(Ok(cancel)) => on_done.run(cancel),
        Some(Err(err)) => error.set(Some(err.message)),
        None => {}
    });
    let submit = {
        let action = action.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let hosts = chosen.get_untracked();
            if hosts.is_empty() {
                return error.set(Some("Choose at least one host".to_owned()));
            }
            if let Some(refusal) = cancel_refusal(&authz.canceller(), &action, &hosts) {
                return error.set(Some(refusal.message));
            }
            error.set(None);
            send.dispatch((hosts, comment.get_untracked()));
        }
    };
    let hosts = action.agents.iter().map(|a| action.host_name(a)).collect::<Vec<_>>().join(", ");
    let choice = (pending.len() > 1).then(|| {
        let boxes = pending
            .iter()
            .map(|agent| {
                let (mine, toggled, name) = (agent.clone(), agent.clone(), action.host_name(agent).to_owned());
                view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || chosen.with(|c| c.contains(&mine))
                            on:change=move |ev| chosen.update(|c| toggle(c, toggled.clone(), event_target_checked(&ev))) />
                        {name}
                    </label>
                }
            })
            .collect_view();
        view! { <fieldset data-testid="ra-cancel-hosts"><legend>"Stop it on"</legend>{boxes}</fieldset> }
    });
    view! {
        <div class="dialog-backdrop">
            <form class="dialog ra-dialog" role="dialog" aria-modal="true" aria-labelledby="ra-cancel-title" data-testid="ra-cancel-dialog"
                on:submit=submit on:keydown=move |ev| if ev.key() == "Escape" { on_close.run(()) }>
                <h2 id="ra-cancel-title">"Cancel this action?"</h2>
                <p>"The agents still working on it are asked to stop. What they have already done is not undone."</p>
                <dl class="facts">
                    <dt>"Command"</dt><dd><code>{action.command.console_name()}</code></dd>
                    <dt>"Hosts"</dt><dd>{hosts}</dd>
                    <dt>"Sent by"</dt><dd>{action.created_by.clone()}</dd>
                    <dt>"Sent"</dt><dd>{utc_time(&action.started_at)}</dd>
                    {action.comment.clone().map(|c| view! { <dt>"Comment"</dt><dd class="cell-wrap">{c}</dd> })}
                    <dt>"Parameters"</dt><dd>{parameters_view(&action)}</dd>
                </dl>
                {choice}
                <Field label="Why (optional)">
                    <textarea name="comment" rows="3" autofocus bind:value=comment></textarea>
                </Field>
                {move || error.get().map(|message| view! { <ErrorMessage message /> })}
                <div class="actions-row">
                    <button type="button" class="button" on:click=move |_| on_close.run(())>"Close"</button>
                    <button type="submit" class="button button-danger" disabled=send.pending()>"Cancel action"</button>
                </div>
            </form>
        </div>
    }
}

/// A choice of several values in a disclosure: `Commands: any ▸`, opened to checkboxes.
#[component]
fn Pick(
    label: &'static str,
    testid: &'static str,
    #[prop(into)] options: Signal<Vec<(String, String)>>,
    #[prop(into)] chosen: Signal<Vec<String>>,
    on_toggle: Callback<(String, bool)>,
) -> impl IntoView {
    let summary = move || {
        let chosen = chosen.get();
        match chosen.as_slice() {
            [] => "any".to_owned(),
            [one] => options.with(|o| o.iter().find(|(v, _)| v == one).map_or_else(|| one.clone(), |(_, text)| text.clone())),
            many => format!("{} chosen", many.len()),
        }
    };
    view! {
        <details class="ra-pick" data-testid=testid
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape"
                    && let Some(details) = ev.current_target().and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                {
                    let _ = details.remove_attribute("open");
                    // Focus stays on the control, not on a checkbox now hidden.
                    if let Ok(Some(summary)) = details.query_selector("summary")
                        && let Ok(summary) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(summary)
                    {
                        let _ = summary.focus();
                    }
                }
            }>
            <summary>{label} ": " <span class="ra-pick-value">{summary}</span></summary>
            <fieldset class="ra-pick-list">
                <legend class="sr-only">{label}</legend>
                <For each=move || options.get() key=|(value, _)| value.clone() let:option>
                    {
                        let (value, text) = option;
                        let mine = value.clone();
                        view! {
                            <label class="check">
                                <input type="checkbox" prop:checked=move || chosen.with(|c| c.contains(&mine))
                                    on:change=move |ev| on_toggle.run((value.clone(), event_target_checked(&ev))) />
                                {text}
                            </label>
                        }
                    }
                </For>
            </fieldset>
        </details>
    }
}

#[component]
pub fn ResponseActionsPage() -> impl IntoView {
    crate::components::page_style::use_page_style("response_actions.css");
    let query_map = use_query_map();
    let parsed = Memo::new(move |_| query_map.with(|map| ActionListQuery::parse(map.into_iter().map(|(key, value)| (key.as_ref(), value)))));
    let current = move || parsed.get().unwrap_or_else(|_| unfiltered());
    let navigate = use_navigate();
    // Every change of filter is a navigation, so the URL always says what is shown.
    let show = Callback::new(move |next: ActionListQuery| navigate(&url_of(&next), Default::default()));
    let change = move |edit: &dyn Fn(&mut ActionListQuery)| {
        let mut next = parsed.get_untracked().unwrap_or_else(|_| unfiltered());
        edit(&mut next);
        next.page = 1;
        show.run(next);
    };

    let live = use_live(Topic::ResponseActions);
    let now = use_now();
    let expanded = RwSignal::new(BTreeSet::<String>::new());
    let list = LocalResource::new(move || {
        live.track();
        let query = parsed.get();
        async move {
            let query = query.map_err(|message| ApiError { status: 400, message: format!("This address's filters are not valid: {message}") })?;
            api::response_actions::list(&query).await
        }
    });
    let outputs = LocalResource::new(move || {
        live.track();
        let ids: Vec<String> = expanded.get().into_iter().collect();
        async move {
            let fetched = futures::future::join_all(ids.iter().map(|id| api::response_actions::get(id))).await;
            ids.into_iter().zip(fetched).map(|(id, action)| (id, action.map(|a| a.outputs.unwrap_or_default()))).collect::<Outputs>()
        }
    });
    let authz = LocalResource::new(api::response_actions::authz);
    let cancelling = RwSignal::new(None::<ActionDetails>);
    let rows = Rows { expanded, outputs, now, authz, cancelling };
    let toasts = use_toasts();
    let dialog = move || {
        let action = cancelling.get()?;
        let authz = authz.get_untracked().and_then(Result::ok)?;
        let on_done = Callback::new(move |cancel: ActionDetails| {
            cancelling.set(None);
            let hosts: Vec<&str> = cancel.agents.iter().map(|a| cancel.host_name(a)).collect();
            toasts.show(format!("Cancel sent to {}", hosts.join(", ")));
        });
        Some(view! { <CancelDialog action authz on_close=Callback::new(move |()| cancelling.set(None)) on_done /> })
    };
    // The hosts to choose from: Fleet's first 100 by name.
    let agents = LocalResource::new(move || async move {
        let query =
            api::fleet::AgentListQuery { page: 1, per_page: 100, sort: AgentSortField::Hostname, descending: false, show_inactive: true, kuery: "" };
        api::fleet::list_agents(&query).await
    });
    let host_options = Signal::derive(move || {
        let mut options: Vec<(String, String)> = agents
            .get()
            .and_then(Result::ok)
            .map(|list| {
                list.items
                    .into_iter()
                    .map(|a| {
                        let name = a.local_metadata.pointer("/host/hostname").and_then(Value::as_str).unwrap_or("(unnamed)").to_owned();
                        (a.id.to_string(), name)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A host the URL names but the list does not.
        for id in current().agent_ids {
            if !options.iter().any(|(value, _)| *value == id) {
                options.push((id.clone(), id));
            }
        }
        options
    });
    let command_options =
        Signal::stored(ResponseCommand::ALL.iter().map(|c| (c.as_str().to_owned(), c.console_name().to_owned())).collect::<Vec<_>>());
    let type_options = Signal::stored(ResponseAgentType::ALL.iter().map(|t| (t.as_str().to_owned(), t.title().to_owned())).collect::<Vec<_>>());

    // The period: a preset start, or a custom range of ISO times or date math.
    let preset = move || {
        let query = current();
        match (query.start_date.as_deref(), query.end_date.as_deref()) {
            (None, None) => String::new(),
            (Some(start), None) if PERIODS.iter().any(|(value, _)| *value == start) => start.to_owned(),
            _ => CUSTOM.to_owned(),
        }
    };
    let custom = RwSignal::new(false);
    let custom_shown = move || custom.get() || preset() == CUSTOM;
    let from_input = RwSignal::new(String::new());
    let to_input = RwSignal::new(String::new());
    let users_input = RwSignal::new(String::new());
    let date_error = RwSignal::new(None::<String>);
    // The inputs follow the address (a reload, Back).
    Effect::new(move |_| {
        let query = current();
        from_input.set(query.start_date.unwrap_or_default());
        to_input.set(query.end_date.unwrap_or_default());
        users_input.set(query.user_ids.join(", "));
    });
    let on_period = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        date_error.set(None);
        if value == CUSTOM {
            custom.set(true);
        } else {
            custom.set(false);
            change(&|q| (q.start_date, q.end_date) = (Some(value.clone()).filter(|v| !v.is_empty()), None));
        }
    };
    let on_filters = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (from, to) = (from_input.get_untracked().trim().to_owned(), to_input.get_untracked().trim().to_owned());
        let at = web_sys::js_sys::Date::now() as i64;
        let check = |text: &str, end: bool| if text.is_empty() { Ok(None) } else { resolve_date(text, at, end).map(Some) };
        if custom_shown() {
            match (check(&from, false), check(&to, true)) {
                (Err(message), _) => return date_error.set(Some(format!("From: {message}"))),
                (_, Err(message)) => return date_error.set(Some(format!("To: {message}"))),
                (Ok(Some(start)), Ok(Some(end))) if start > end => return date_error.set(Some("From must come before To".to_owned())),
                _ => {}
            }
        }
        date_error.set(None);
        let users: Vec<String> = users_input.get_untracked().split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        let dates = custom_shown().then(|| (Some(from).filter(|f| !f.is_empty()), Some(to).filter(|t| !t.is_empty())));
        change(&|q| {
            q.user_ids = users.clone();
            if let Some((start, end)) = dates.clone() {
                (q.start_date, q.end_date) = (start, end);
            }
        });
    };
    let on_page = Callback::new(move |page: usize| {
        let mut next = current();
        next.page = page as u64;
        show.run(next);
    });
    let on_page_size = move |ev: leptos::ev::Event| {
        let size = event_target_value(&ev).parse().unwrap_or(DEFAULT_PAGE_SIZE);
        change(&|q| q.page_size = size);
    };

    view! {
        <section class="page">
            <h1>"Response actions"</h1>
            <p class="lead">"Every action taken on every endpoint: who sent what to which hosts, when, and how it ended."</p>
            <div class="chips" role="group" aria-label="Filter by status">
                {STATUSES.into_iter().map(|(status, label)| view! {
                    <button type="button" class=format!("chip ra-chip-{}", status.as_str()) data-testid=format!("ra-status-{}", status.as_str())
                        aria-pressed=move || current().statuses.contains(&status).to_string()
                        on:click=move |_| {
                            let on = !current().statuses.contains(&status);
                            change(&|q| toggle(&mut q.statuses, status, on));
                        }>
                        {label}
                    </button>
                }).collect_view()}
            </div>
            <div class="toolbar ra-filters">
                <Pick label="Hosts" testid="ra-filter-hosts" options=host_options chosen=Signal::derive(move || current().agent_ids)
                    on_toggle=Callback::new(move |(id, on): (String, bool)| change(&|q| toggle(&mut q.agent_ids, id.clone(), on))) />
                <Pick label="Commands" testid="ra-filter-commands" options=command_options
                    chosen=Signal::derive(move || current().commands.iter().map(|c| c.as_str().to_owned()).collect())
                    on_toggle=Callback::new(move |(value, on): (String, bool)| if let Some(command) = ResponseCommand::parse(&value) {
                        change(&|q| toggle(&mut q.commands, command, on));
                    }) />
                <Pick label="Agent types" testid="ra-filter-types" options=type_options
                    chosen=Signal::derive(move || current().agent_types.iter().map(|t| t.as_str().to_owned()).collect())
                    on_toggle=Callback::new(move |(value, on): (String, bool)| if let Some(agent_type) = ResponseAgentType::parse(&value) {
                        change(&|q| toggle(&mut q.agent_types, agent_type, on));
                    }) />
                <label class="toolbar-field">
                    <span class="field-label">"Period"</span>
                    <select name="period" data-testid="ra-period" on:change=on_period>
                        {PERIODS.into_iter().map(|(value, label)| view! {
                            <option value=value selected=move || !custom_shown() && preset() == value>{label}</option>
                        }).collect_view()}
                        <option value=CUSTOM selected=custom_shown>"Custom range…"</option>
                    </select>
                </label>
            </div>
            <form class="toolbar" on:submit=on_filters role="search" aria-label="Filter by user and dates">
                <label class="toolbar-field">
                    <span class="field-label">"Users"</span>
                    <input type="text" name="users" placeholder="e.g. admin, soc1" bind:value=users_input />
                </label>
                <Show when=custom_shown>
                    <label class="toolbar-field">
                        <span class="field-label">"From"</span>
                        <input type="text" name="from" class="ra-date" placeholder="now-7d or 2026-11-24" bind:value=from_input />
                    </label>
                    <label class="toolbar-field">
                        <span class="field-label">"To"</span>
                        <input type="text" name="to" class="ra-date" placeholder="now" bind:value=to_input />
                    </label>
                </Show>
                <button type="submit" class="button">"Apply"</button>
            </form>
            {move || date_error.get().map(|message| view! { <div class="field-error ra-date-error" role="alert">{message}</div> })}
            <AsyncView resource=list loading="Loading response actions…" let:found>
                {
                    let query = current();
                    let empty = if filtered(&query) {
                        view! { <div class="state state-empty">"No response action matches these filters."</div> }.into_any()
                    } else {
                        view! {
                            <div class="state state-empty" data-testid="ra-empty">
                                <strong>"No response actions yet"</strong>
                                <p class="muted">"Actions sent to endpoints (isolate, release, processes, execute…) from the console or the API appear here as they happen."</p>
                            </div>
                        }
                        .into_any()
                    };
                    if found.data.is_empty() {
                        empty
                    } else {
                        view! {
                            <div class="table-scroll">
                                <table class="table ra-table" data-testid="response-actions">
                                    <thead><tr>
                                        <th><span class="sr-only">"Details"</span></th>
                                        <th>"Command"</th><th>"Hosts"</th><th>"Who"</th><th>"When"</th><th>"Comment"</th><th>"Status"</th>
                                        <th><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    {found.data.into_iter().map(|action| action_rows(action, rows)).collect_view()}
                                </table>
                            </div>
                            <div class="ra-paging">
                                <label class="toolbar-field">
                                    <span class="field-label">"Per page"</span>
                                    <select name="pageSize" on:change=on_page_size>
                                        {PAGE_SIZES.into_iter().map(|size| view! { <option value=size selected=size == query.page_size>{size}</option> }).collect_view()}
                                    </select>
                                </label>
                                <Pager total=found.total as usize page=found.page as usize per_page=found.page_size as usize on_page />
                            </div>
                        }
                        .into_any()
                    }
                }
            </AsyncView>
            {dialog}
        </section>
    }
}

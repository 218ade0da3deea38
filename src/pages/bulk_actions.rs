//! Bulk response actions: the dialog the Fleet view opens to send one
//! command to many hosts (pick the command and its parameters, see how many
//! hosts can take it and why the others cannot, then send), and the page of
//! one bulk action (`/response-actions/bulk/:id?outcome=failed&page=2`): its
//! counts by state, live, a page of its hosts, a way to each host's action in
//! the history, and "Cancel pending hosts". The filter and page live in the
//! address, so a reload shows the same.

use leptos::lazy;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use serde_json::{Map, Value};
use warden_core::fleet_api::BulkTarget;
use warden_core::paths;
use warden_core::response_actions::bulk::{
    BulkHost, BulkHostsQuery, BulkPreview, BulkResponseActionRequest, BulkStatus, MAX_HOSTS_PER_ACTION, bulk_cancel_refusal,
};
use warden_core::response_actions::{ActionStatus, Outcome, ResponseCommand};

use crate::api::{self, ApiError};
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::data_table::{Column, DataTable};
use crate::components::form::Field;
use crate::components::page_style::use_page_style;
use crate::components::pager::Pager;
use crate::components::states::ErrorMessage;
use crate::components::time::{ago_text, use_now, utc_time};
use crate::components::toast::use_toasts;
use crate::components::tooltip::Tooltip;
use crate::live::{Topic, use_live};
use crate::pages::response_actions::outcome_class;

/// The states a bulk's hosts are counted by (the core's one outcome), in the order shown.
const OUTCOMES: [Outcome; 5] = [Outcome::Pending, Outcome::Successful, Outcome::Failed, Outcome::Canceled, Outcome::Expired];

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The address of a bulk's page showing `query`.
fn url_of(id: &str, query: &BulkHostsQuery) -> String {
    let pairs = query.to_pairs();
    let params: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    paths::with_query(&format!("/response-actions/bulk/{}", paths::encode(id)), &params)
}

// ---- sending ----

/// What the Fleet view selected: agent ids, or every agent its filter matches.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkSelection {
    pub agents: BulkTarget,
    /// With a kuery: the view shows inactive agents too.
    pub include_inactive: bool,
    /// How many hosts, as the view counted them.
    pub count: usize,
    /// How the dialog names them: "web-1, web-2 and 3 more", or the filter.
    pub summary: String,
}

/// The fields of the commands' parameters, as typed.
#[derive(Clone, Copy)]
struct ParameterFields {
    path: RwSignal<String>,
    line: RwSignal<String>,
    timeout: RwSignal<String>,
    script: RwSignal<String>,
    input: RwSignal<String>,
}

impl ParameterFields {
    /// The parameters for `command` (the server checks them, with the
    /// single-host route's messages).
    fn for_command(&self, command: ResponseCommand) -> Option<Value> {
        let mut params = Map::new();
        let text = |signal: RwSignal<String>| Value::String(signal.get_untracked().trim().to_owned());
        match command {
            ResponseCommand::GetFile | ResponseCommand::Scan => {
                params.insert("path".into(), text(self.path));
            }
            ResponseCommand::Execute => {
                params.insert("command".into(), text(self.line));
                let timeout = self.timeout.get_untracked().trim().to_owned();
                if !timeout.is_empty() {
                    params.insert("timeout".into(), timeout.parse::<u64>().map(Value::from).unwrap_or(Value::String(timeout)));
                }
            }
            ResponseCommand::Runscript => {
                params.insert("scriptId".into(), text(self.script));
                let input = self.input.get_untracked();
                if !input.trim().is_empty() {
                    params.insert("scriptInput".into(), Value::String(input));
                }
            }
            _ => return None,
        }
        Some(Value::Object(params))
    }
}

/// The send dialog, in its own wasm chunk fetched the first time it opens,
/// so the Fleet view users open all day stays as light as it was.
#[lazy]
pub fn bulk_send_dialog(selection: BulkSelection, commands: Vec<ResponseCommand>, on_close: Callback<()>) -> AnyView {
    view! { <BulkSendDialog selection commands on_close /> }.into_any()
}

/// Sends one command to the selection: pick it and its parameters, check
/// how many hosts can take it (and why the others cannot), then send; on
/// success, opens the bulk's page.
#[component]
fn BulkSendDialog(selection: BulkSelection, commands: Vec<ResponseCommand>, on_close: Callback<()>) -> impl IntoView {
    use_page_style("response_actions.css");
    use_page_style("bulk_actions.css");
    let first = commands.first().copied().unwrap_or(ResponseCommand::Isolate);
    let command = RwSignal::new(first);
    let fields = ParameterFields {
        path: RwSignal::new(String::new()),
        line: RwSignal::new(String::new()),
        timeout: RwSignal::new(String::new()),
        script: RwSignal::new(String::new()),
        input: RwSignal::new(String::new()),
    };
    let comment = RwSignal::new(String::new());
    let checked = RwSignal::new(None::<BulkPreview>);
    let error = RwSignal::new(None::<String>);
    let request = {
        let selection = selection.clone();
        move || {
            let command = command.get_untracked();
            BulkResponseActionRequest {
                command,
                agents: selection.agents.clone(),
                include_inactive: selection.include_inactive,
                parameters: fields.for_command(command),
                comment: Some(comment.get_untracked().trim().to_owned()).filter(|c| !c.is_empty()),
            }
        }
    };
    let check = Action::new_local(|request: &BulkResponseActionRequest| {
        let request = request.clone();
        async move { api::bulk_actions::preview(&request).await }
    });
    let send = Action::new_local(|request: &BulkResponseActionRequest| {
        let request = request.clone();
        async move { api::bulk_actions::create(&request).await }
    });
    Effect::new(move |_| match check.value().get() {
        Some(Ok(preview)) => checked.set(Some(preview)),
        Some(Err(err)) => error.set(Some(err.message)),
        None => {}
    });
    let navigate = use_navigate();
    let toasts = use_toasts();
    Effect::new(move |_| match send.value().get() {
        Some(Ok(created)) => {
            toasts.show(format!("{} sent to {}", created.command.console_name(), plural(created.hosts, "host", "hosts")));
            on_close.run(());
            navigate(&url_of(&created.bulk_id, &BulkHostsQuery::default()), Default::default());
        }
        Some(Err(err)) => error.set(Some(err.message)),
        None => {}
    });
    let on_check = {
        let request = request.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            error.set(None);
            match checked.get_untracked() {
                None => {
                    check.dispatch(request());
                }
                Some(_) => {
                    send.dispatch(request());
                }
            }
        }
    };
    let on_command = move |ev: leptos::ev::Event| {
        if let Some(next) = ResponseCommand::parse(&event_target_value(&ev)) {
            command.set(next);
        }
    };
    let back = move |_| {
        checked.set(None);
        error.set(None);
    };
    let commands = StoredValue::new(commands);
    let options = move || {
        commands.with_value(|commands| {
            commands
                .iter()
                .map(|c| {
                    let value = c.as_str();
                    view! { <option value=value selected=move || command.get().as_str() == value>{c.console_name()}</option> }
                })
                .collect_view()
        })
    };
    // The library is read the first time runscript is chosen.
    let scripts = LocalResource::new(move || {
        let wanted = command.get() == ResponseCommand::Runscript;
        async move { if wanted { api::response_actions::scripts().await } else { Ok(Vec::new()) } }
    });
    let parameters = move || {
        match command.get() {
        ResponseCommand::GetFile | ResponseCommand::Scan => view! {
            <Field label="Path on each host"><input type="text" name="path" required placeholder="/var/log/auth.log" bind:value=fields.path /></Field>
        }
        .into_any(),
        ResponseCommand::Execute => view! {
            <Field label="Command line"><input type="text" name="line" required placeholder="ls -la /tmp" bind:value=fields.line /></Field>
            <Field label="Timeout in seconds (optional)"><input type="text" inputmode="numeric" name="timeout" placeholder="14400" bind:value=fields.timeout /></Field>
        }
        .into_any(),
        ResponseCommand::Runscript => view! {
            <Field label="Script (from the scripts library)">
                <select name="script" required on:change=move |ev| fields.script.set(event_target_value(&ev))>
                    <option value="" selected=move || fields.script.get().is_empty()>"Choose a script"</option>
                    {move || match scripts.get() {
                        Some(Ok(list)) => list.into_iter().map(|script| {
                            let id = script.id.clone();
                            let chosen = id.clone();
                            view! { <option value=id selected=move || fields.script.get() == chosen>{script.name}</option> }
                        }).collect_view().into_any(),
                        Some(Err(err)) => view! { <option value="" disabled=true>{err.message}</option> }.into_any(),
                        None => view! { <option value="" disabled=true>"Loading the library…"</option> }.into_any(),
                    }}
                </select>
            </Field>
            <Field label="Script input (optional)"><input type="text" name="input" bind:value=fields.input /></Field>
        }
        .into_any(),
        _ => ().into_any(),
    }
    };
    let count = selection.count;
    let described = StoredValue::new(selection.summary.clone());
    let form = move || {
        view! {
            <p class="muted">{described.get_value()}</p>
            <Field label="Command">
                <select name="command" autofocus on:change=on_command data-testid="bulk-command">{options()}</select>
            </Field>
            {parameters}
            <Field label="Comment (optional)">
                <textarea name="comment" rows="2" bind:value=comment></textarea>
            </Field>
        }
    };
    let summary = move |preview: BulkPreview| {
        let name = preview.command.console_name();
        let more = preview.refused_total.saturating_sub(preview.refused.len());
        view! {
            <div data-testid="bulk-preview" data-eligible=preview.eligible data-refused=preview.refused_total>
                <p class="bulk-summary">
                    <code class="ra-command">{name}</code> " goes to " <strong>{plural(preview.eligible, "host", "hosts")}</strong>
                    " of the " {preview.selected} " selected"
                    {(preview.actions > 1).then(|| format!(", as {} actions of at most {MAX_HOSTS_PER_ACTION} hosts", preview.actions))} "."
                </p>
                {(preview.refused_total > 0).then(|| view! {
                    <p>{format!("{} cannot take it:", plural(preview.refused_total, "host", "hosts"))}</p>
                    <ul class="plain-list bulk-refused" data-testid="bulk-refused" tabindex="0" aria-label="Hosts that cannot take it">
                        {preview.refused.into_iter().map(|r| view! {
                            <li><strong>{r.host_name.unwrap_or_else(|| r.agent_id.clone())}</strong> ": " {r.reason}</li>
                        }).collect_view()}
                        {(more > 0).then(|| view! { <li class="muted">{format!("and {more} more")}</li> })}
                    </ul>
                })}
                {(preview.eligible == 0).then(|| view! { <ErrorMessage message=format!("None of the selected hosts can take {name}.") /> })}
            </div>
        }
    };
    let pending = Signal::derive(move || check.pending().get() || send.pending().get());
    view! {
        <div class="dialog-backdrop">
            <form class="dialog ra-dialog bulk-dialog" role="dialog" aria-modal="true" aria-labelledby="bulk-title" data-testid="bulk-dialog"
                on:submit=on_check on:keydown=move |ev| if ev.key() == "Escape" { on_close.run(()) }>
                <h2 id="bulk-title">{format!("Response action for {}", plural(count, "host", "hosts"))}</h2>
                {move || match checked.get() {
                    None => form().into_any(),
                    Some(preview) => summary(preview).into_any(),
                }}
                {move || error.get().map(|message| view! { <ErrorMessage message /> })}
                <div class="actions-row">
                    <button type="button" class="button" on:click=move |_| on_close.run(())>"Close"</button>
                    {move || match checked.get() {
                        None => view! {
                            <button type="submit" class="button button-primary" disabled=pending>"Check hosts"</button>
                        }
                        .into_any(),
                        Some(preview) => {
                            let eligible = preview.eligible;
                            view! {
                                <button type="button" class="button" on:click=back>"Back"</button>
                                <button type="submit" class="button button-primary" data-testid="bulk-send" disabled=move || pending.get() || eligible == 0>
                                    {format!("Send to {}", plural(eligible, "host", "hosts"))}
                                </button>
                            }
                            .into_any()
                        }
                    }}
                </div>
            </form>
        </div>
    }
}

// ---- one bulk action ----

/// A host's state, with the history's badge.
fn outcome_badge(outcome: Outcome) -> impl IntoView + use<> {
    view! { <span class=format!("badge {}", outcome_class(outcome)) data-outcome=outcome.as_str()>{outcome.label()}</span> }
}

fn status_badge(status: ActionStatus) -> impl IntoView + use<> {
    let outcome = match status {
        ActionStatus::Pending => Outcome::Pending,
        ActionStatus::Successful => Outcome::Successful,
        ActionStatus::Failed => Outcome::Failed,
    };
    view! { <span class=format!("badge {}", outcome_class(outcome)) data-testid="bulk-status" data-status=status.as_str()>{outcome.label()}</span> }
}

/// The hosts' states as one bar, described in words for screen readers.
fn progress_bar(bulk: &BulkStatus) -> impl IntoView + use<> {
    let total = bulk.counts.total.max(1) as f64;
    let answered = bulk.counts.total - bulk.counts.pending;
    let words: Vec<String> =
        OUTCOMES.iter().filter(|o| bulk.counts.of(**o) > 0).map(|o| format!("{} {}", bulk.counts.of(*o), o.label().to_lowercase())).collect();
    let description = format!("{answered} of {} answered: {}", plural(bulk.counts.total, "host", "hosts"), words.join(", "));
    let segments = OUTCOMES
        .iter()
        .filter(|o| bulk.counts.of(**o) > 0)
        .map(|o| {
            let width = format!("width: {:.3}%", bulk.counts.of(*o) as f64 * 100.0 / total);
            view! { <span class=format!("bulk-bar-part {}", outcome_class(*o)) style=width></span> }
        })
        .collect_view();
    view! {
        <div class="bulk-progress">
            <div class="bulk-bar" role="img" aria-label=description.clone()>{segments}</div>
            <p class="muted small" aria-hidden="true">{description}</p>
        </div>
    }
}

/// The history, narrowed to this host's actions of this command since the bulk was sent.
fn history_href(bulk_command: ResponseCommand, started_at: &str, agent_id: &str) -> String {
    href(&paths::with_query("/response-actions", &[("agentIds", agent_id), ("commands", bulk_command.as_str()), ("startDate", started_at)]))
}

#[component]
pub fn BulkActionPage() -> impl IntoView {
    use_page_style("response_actions.css");
    use_page_style("bulk_actions.css");
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let query_map = use_query_map();
    let parsed = Memo::new(move |_| query_map.with(|map| BulkHostsQuery::parse(map.into_iter().map(|(key, value)| (key.as_ref(), value)))));
    let current = move || parsed.get().unwrap_or_default();
    let navigate = use_navigate();
    let show = Callback::new(move |next: BulkHostsQuery| navigate(&url_of(&id(), &next), Default::default()));

    let live = use_live(Topic::ResponseActions);
    let now = use_now();
    let toasts = use_toasts();
    let cancel = Action::new_local(move |comment: &String| {
        let (id, comment) = (id(), comment.clone());
        async move { api::bulk_actions::cancel(&id, &comment).await }
    });
    let bulk = LocalResource::new(move || {
        live.track();
        cancel.version().track();
        let (id, query) = (id(), parsed.get());
        async move {
            let query = query.map_err(|message| ApiError { status: 400, message: format!("This address's filters are not valid: {message}") })?;
            api::bulk_actions::status(&id, &query).await
        }
    });
    let authz = LocalResource::new(api::response_actions::authz);
    // The last answer, for what lives outside the view of it (the dialog).
    let pending_now = RwSignal::new(0usize);
    Effect::new(move |_| {
        if let Some(Ok(bulk)) = bulk.get() {
            pending_now.set(bulk.counts.pending);
        }
    });
    let confirming = RwSignal::new(false);
    let cancel_comment = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(answer)) = cancel.value().get() {
            confirming.set(false);
            let hosts: usize = answer.sent.iter().map(|s| s.hosts).sum();
            let mut message = format!("Cancel sent to {}", plural(hosts, "pending host", "pending hosts"));
            if let Some(refused) = answer.refused.first() {
                message.push_str(&format!("; {} refused: {}", plural(answer.refused.len(), "action", "actions"), refused.message));
            }
            toasts.show(message);
        }
    });
    let cancel_error = Signal::derive(move || match cancel.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });
    let filter_to = move |outcome: Option<Outcome>| {
        let mut next = current();
        next.outcome = if next.outcome == outcome { None } else { outcome };
        next.page = 1;
        show.run(next);
    };
    let on_page = Callback::new(move |page: usize| {
        let mut next = current();
        next.page = page as u64;
        show.run(next);
    });

    let cancel_button = move |command: ResponseCommand, pending: usize| {
        move || {
            let why = match authz.get() {
                None => Some("Checking what you may do…".to_owned()),
                Some(Err(err)) => Some(err.message),
                Some(Ok(authz)) => bulk_cancel_refusal(&authz.canceller(), command).map(|refusal| refusal.message),
            }
            .or_else(|| (pending == 0).then(|| "No host is pending: nothing to cancel".to_owned()));
            let disabled = why.is_some();
            view! {
                <Tooltip text=Signal::stored(why)>
                    <button type="button" class="button button-danger" data-testid="bulk-cancel" disabled=disabled on:click=move |_| confirming.set(true)>
                        "Cancel pending hosts"
                    </button>
                </Tooltip>
            }
        }
    };

    let columns = move |command: ResponseCommand, started_at: String| {
        vec![
            Column::new("Host", |host: &BulkHost| {
                let (link, name) = (href(&format!("/fleet/agents/{}", paths::encode(&host.agent_id))), host.host_name.clone());
                view! { <A href=link>{name}</A> }
            }),
            Column::new("State", |host: &BulkHost| outcome_badge(host.outcome)),
            Column::new("Completed", |host: &BulkHost| host.completed_at.as_deref().map_or_else(|| "—".to_owned(), utc_time)),
            Column::new("Details", |host: &BulkHost| {
                let text = match (&host.canceled_by, host.errors.is_empty()) {
                    (Some(by), _) => format!("Cancelled by {by}"),
                    (None, false) => host.errors.join("; "),
                    (None, true) => String::new(),
                };
                view! { <span class="cell-wrap">{text}</span> }
            }),
            Column::new("Action", move |host: &BulkHost| {
                let link = history_href(command, &started_at, &host.agent_id);
                let label = format!("{} on {} in the history", command.console_name(), host.host_name);
                view! { <a href=link aria-label=label title=host.action_id.clone()>"In the history"</a> }
            }),
        ]
    };

    view! {
        <section class="page bulk-page">
            <p><A href=href("/response-actions")>"← Response actions"</A></p>
            <AsyncView resource=bulk loading="Loading the bulk action…" let:bulk>
                {
                    let query = current();
                    let command = bulk.command;
                    let name = command.console_name();
                    let selection = match &bulk.kuery {
                        Some(kuery) if kuery.trim().is_empty() => view! { "every agent" }.into_any(),
                        Some(kuery) => view! { "agents matching " <code>{kuery.clone()}</code> }.into_any(),
                        None => view! { {plural(bulk.selected, "host chosen by id", "hosts chosen by id")} }.into_any(),
                    };
                    let started = bulk.started_at.clone();
                    let history = href(&paths::with_query(
                        "/response-actions",
                        &[("commands", command.as_str()), ("userIds", &bulk.created_by), ("startDate", &bulk.started_at)],
                    ));
                    let params = match &bulk.parameters {
                        Value::Object(map) if !map.is_empty() => map.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
                        _ => "none".to_owned(),
                    };
                    let empty = match query.outcome {
                        Some(outcome) => format!("No host is {}.", outcome.label().to_lowercase()),
                        None => "This bulk action has no hosts.".to_owned(),
                    };
                    let chips = std::iter::once((None, "All", bulk.counts.total))
                        .chain(OUTCOMES.iter().map(|o| (Some(*o), o.label(), bulk.counts.of(*o))))
                        .map(|(outcome, label, count)| {
                            let key = outcome.map_or("all", |o| o.as_str());
                            let class = outcome.map_or("chip".to_owned(), |o| format!("chip bulk-chip-{}", o.as_str()));
                            view! {
                                <button type="button" class=class data-testid=format!("bulk-count-{key}") data-count=count
                                    aria-pressed=(query.outcome == outcome).to_string() on:click=move |_| filter_to(outcome)>
                                    {label} " " <span class="count">{count}</span>
                                </button>
                            }
                        })
                        .collect_view();
                    let refused = (bulk.refused_total > 0).then(|| {
                        let more = bulk.refused_total.saturating_sub(bulk.refused.len());
                        view! {
                            <details class="bulk-left-out" data-testid="bulk-left-out">
                                <summary>{format!("{} of the selection could not take it", plural(bulk.refused_total, "host", "hosts"))}</summary>
                                <ul class="plain-list bulk-refused">
                                    {bulk.refused.iter().map(|r| view! {
                                        <li><strong>{r.host_name.clone().unwrap_or_else(|| r.agent_id.clone())}</strong> ": " {r.reason.clone()}</li>
                                    }).collect_view()}
                                    {(more > 0).then(|| view! { <li class="muted">{format!("and {more} more")}</li> })}
                                </ul>
                            </details>
                        }
                    });
                    let (datetime, exact) = (started.clone(), utc_time(&started));
                    let lead = format!("{} to {}, sent by {} ", name, plural(bulk.counts.total, "host", "hosts"), bulk.created_by);
                    let progress = progress_bar(&bulk);
                    let cancel = cancel_button(command, bulk.counts.pending);
                    let columns = columns(command, bulk.started_at.clone());
                    let (hosts_total, page, page_size) = (bulk.hosts_total, bulk.page as usize, bulk.page_size as usize);
                    view! {
                        <h1>"Bulk " <code class="ra-command">{name}</code> " " {status_badge(bulk.status)}</h1>
                        <p class="lead">
                            {lead}
                            <time datetime=datetime title=exact>{move || ago_text(Some(&started), now.get())}</time> "."
                        </p>
                        <div class="grid">
                            <div class="panel">
                                <dl class="facts">
                                    <dt>"Selection"</dt><dd>{selection}</dd>
                                    <dt>"Parameters"</dt><dd class="cell-wrap"><code>{params}</code></dd>
                                    <dt>"Comment"</dt><dd class="cell-wrap">{bulk.comment.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                                    <dt>"Sent"</dt><dd>{utc_time(&bulk.started_at)}</dd>
                                    <dt>"Actions"</dt>
                                    <dd>
                                        {plural(bulk.action_ids.len(), "action", "actions")} " of at most " {MAX_HOSTS_PER_ACTION} " hosts · "
                                        <a href=history>"See them in the history"</a>
                                    </dd>
                                    <dt>"Bulk id"</dt><dd><code>{bulk.bulk_id.clone()}</code></dd>
                                </dl>
                            </div>
                            <div class="panel">
                                <h2 class="section-title">"Progress"</h2>
                                {progress}
                                <div class="actions-row bulk-actions-row">{cancel}</div>
                            </div>
                        </div>
                        {refused}
                        <div class="chips" role="group" aria-label="Filter hosts by state">{chips}</div>
                        <DataTable rows=bulk.hosts columns empty testid="bulk-hosts"
                            row_id=|host: &BulkHost| ("bulk-host".to_owned(), host.host_name.clone()) />
                        <Pager total=hosts_total page per_page=page_size on_page />
                    }
                }
            </AsyncView>
            {move || confirming.get().then(|| view! {
                <ConfirmDialog title="Cancel the pending hosts?" confirm="Cancel pending hosts" danger=true
                    pending=cancel.pending() error=cancel_error
                    on_confirm=Callback::new(move |()| { cancel.dispatch(cancel_comment.get_untracked()); })
                    on_cancel=Callback::new(move |()| confirming.set(false))>
                    <p>{move || format!("The agents of the {} still pending are asked to stop. Hosts that already answered keep their answer.", plural(pending_now.get(), "host", "hosts"))}</p>
                    <Field label="Why (optional)">
                        <textarea name="comment" rows="2" bind:value=cancel_comment></textarea>
                    </Field>
                </ConfirmDialog>
            })}
        </section>
    }
}

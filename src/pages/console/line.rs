//! The command line and what it drives: the lines entered so far, the
//! input with its hint, the ↑ history, the `cancel --action` selector and
//! the runscript picker, and sending a checked line as a response action.

use leptos::prelude::*;
use serde_json::{Value, json};
use warden_core::console::{
    CommandSpec, Input, cancel_action_id, cancel_choices, cancel_precheck, cancel_unavailable, command_unavailable, commands, complete,
    filter_history, hint, parse, remember, split,
};
use warden_core::response_actions::{ActionDetails, EndpointScript, ResponseActionRequest, ResponseAgentType, ResponseCommand};

use super::results::{EntryView, Shared};
use super::{Answer, ENTRY_CAP, Entry, HostInfo, load, now_iso, save, storage_key};
use crate::api::{self, ApiResult};
use crate::components::time::{ago_text, use_now};
use crate::live::{Topic, use_live};

/// A line the popup above the input offers.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    /// What the input becomes when it is picked.
    fill: String,
    label: String,
    detail: String,
}

/// What the popup above the input shows.
#[derive(Debug, Clone, PartialEq)]
struct Popup {
    title: &'static str,
    choices: Vec<Choice>,
    /// Shown when there is nothing to pick, and why.
    empty: String,
}

/// `cancel --action <id>`, keeping a comment already typed.
fn cancel_line(input: &str, id: &str) -> String {
    let comment = split(input).ok().and_then(|l| l.args.into_iter().find(|(n, _)| n == "comment").and_then(|(_, v)| v));
    match comment {
        Some(comment) => format!("cancel --action {id} --comment {}", quoted(&comment)),
        None => format!("cancel --action {id} "),
    }
}

fn quoted(text: &str) -> String {
    if text.contains('"') { format!("'{text}'") } else { format!("\"{text}\"") }
}

/// Whether the line names `arg` without a value yet (`runscript --script`).
fn awaits_value(input: &str, command: &str, arg: &str) -> bool {
    split(input).is_ok_and(|l| l.name == command && l.args.iter().any(|(n, v)| n == arg && v.is_none()))
}

#[component]
pub fn CommandLine(
    agent_id: String,
    agent_type: ResponseAgentType,
    username: String,
    entries: RwSignal<Vec<Entry>>,
    host: LocalResource<ApiResult<HostInfo>>,
) -> impl IntoView {
    let live = use_live(Topic::ResponseActions);
    let now = use_now();
    let authz = LocalResource::new(api::response_actions::authz);
    let pending = {
        let agent_id = agent_id.clone();
        LocalResource::new(move || {
            live.track();
            let agent_id = agent_id.clone();
            async move { api::response_actions::pending_of(&agent_id).await }
        })
    };
    let scripts = LocalResource::new(move || async move {
        match agent_type {
            ResponseAgentType::Endpoint => api::response_actions::scripts().await.unwrap_or_default(),
            _ => Vec::new(),
        }
    });
    let history_key = storage_key(&username, "history");
    let history = RwSignal::new(load::<Vec<String>>(&history_key));
    Effect::new(move |_| history.with(|h| save(&history_key, h)));

    let input = RwSignal::new(String::new());
    let history_open = RwSignal::new(false);
    let history_filter = RwSignal::new(String::new());
    let highlight = RwSignal::new(0usize);
    // The line the host's warning was shown for: Enter again sends it.
    let confirming = RwSignal::new(None::<String>);
    let file = RwSignal::new_local(None::<web_sys::File>);
    let input_ref = NodeRef::<leptos::html::Input>::new();
    let filter_ref = NodeRef::<leptos::html::Input>::new();
    let output_ref = NodeRef::<leptos::html::Div>::new();

    let who = Memo::new(move |_| match authz.get() {
        Some(Ok(authz)) => Some(authz),
        _ => None,
    });
    let info = Memo::new(move |_| match host.get() {
        Some(Ok(info)) => Some(info),
        _ => None,
    });
    // This host's pending actions this user may cancel, and why cancel is off.
    let cancelable = Memo::new({
        let agent_id = agent_id.clone();
        move |_| {
            let (Some(who), Some(Ok(actions))) = (who.get(), pending.get()) else {
                return (Vec::<ActionDetails>::new(), Some("Reading this host's pending actions…".to_owned()));
            };
            let choices = cancel_choices(&who.canceller(), &agent_id, &actions);
            let reason = cancel_unavailable(&choices);
            (choices.into_iter().filter(|c| c.refusal.is_none()).map(|c| c.action.clone()).collect(), reason)
        }
    });
    // Each command with why this user may not run it here.
    let availability = Memo::new({
        let agent_id = agent_id.clone();
        move |_| {
            let who = who.get();
            let info = info.get();
            commands(agent_type)
                .iter()
                .map(|spec| {
                    let reason = match (&who, &info) {
                        (Some(who), Some(info)) => command_unavailable(spec, agent_type, who, &info.capabilities, &info.name)
                            .or_else(|| (spec.command == Some(ResponseCommand::Cancel)).then(|| cancel_unavailable_text(cancelable))?),
                        (Some(who), None) => {
                            command_unavailable(spec, agent_type, who, &[], &agent_id).filter(|_| agent_type != ResponseAgentType::Endpoint)
                        }
                        _ => None,
                    };
                    (*spec, reason)
                })
                .collect::<Vec<(CommandSpec, Option<String>)>>()
        }
    });
    let reason_for = move |name: &str| availability.with(|a| a.iter().find(|(s, _)| s.name == name).and_then(|(_, r)| r.clone()));

    // An action the line names that is not one of the cancelable ones: read it, to say why.
    let named = Memo::new(move |_| {
        let id = cancel_action_id(&input.get())?;
        (!cancelable.with(|(list, _)| list.iter().any(|a| a.id == id))).then_some(id)
    });
    let named_action = LocalResource::new(move || {
        live.track();
        let id = named.get();
        async move {
            match id {
                Some(id) => Some(api::response_actions::get(&id).await),
                None => None,
            }
        }
    });

    let popup = Memo::new(move |_| {
        let line = input.get();
        if history_open.get() {
            let filter = history_filter.get();
            let choices = history.with(|h| {
                filter_history(h, &filter).into_iter().map(|l| Choice { fill: l.to_owned(), label: l.to_owned(), detail: String::new() }).collect()
            });
            return Some(Popup { title: "Previously entered commands", choices, empty: "No commands have been entered".into() });
        }
        if split(&line).is_ok_and(|l| l.name == "cancel") && cancel_action_id(&line).is_none() {
            let (actions, reason) = cancelable.get();
            let now_ms = now.get();
            let choices = actions
                .iter()
                .map(|a| Choice {
                    fill: cancel_line(&line, &a.id),
                    label: format!("{} · {} · {}", a.command.console_name(), a.created_by, ago_text(Some(&a.started_at), now_ms)),
                    detail: a.comment.clone().map_or_else(|| a.id.clone(), |c| format!("{c} · {}", a.id)),
                })
                .collect();
            return Some(Popup { title: "Select a pending action to cancel", choices, empty: reason.unwrap_or_default() });
        }
        if agent_type == ResponseAgentType::Endpoint && awaits_value(&line, "runscript", "script") {
            let choices = scripts.get().unwrap_or_default().iter().map(|s: &EndpointScript| script_choice(&line, s)).collect();
            return Some(Popup { title: "Scripts library", choices, empty: "The scripts library is empty".into() });
        }
        None
    });
    // A new popup starts at its first line.
    Effect::new(move |_| {
        popup.track();
        highlight.set(0);
    });

    let focus_input = move || {
        if let Some(el) = input_ref.get_untracked() {
            let _ = el.focus();
        }
    };
    let pick = move |fill: String| {
        input.set(fill);
        history_open.set(false);
        history_filter.set(String::new());
        focus_input();
    };

    let next_n = StoredValue::new(entries.with_untracked(|l| l.iter().map(|e| e.n).max().unwrap_or(0)) + 1);
    let by = StoredValue::new(username.clone());
    // Adds a line with its first answer; its number, to answer it again later.
    let push = move |line: &str, answer: Answer| -> u64 {
        let n = next_n.get_value();
        next_n.set_value(n + 1);
        let entry = Entry { n, input: line.to_owned(), at: now_iso(), by: by.get_value(), answer };
        entries.update(|list| {
            list.push(entry);
            let extra = list.len().saturating_sub(ENTRY_CAP);
            list.drain(..extra);
        });
        n
    };
    let answer = move |n: u64, answer: Answer| {
        entries.update(|list| {
            if let Some(entry) = list.iter_mut().find(|e| e.n == n) {
                entry.answer = answer;
            }
        })
    };

    let send = {
        let agent_id = agent_id.clone();
        move |line: String, command: ResponseCommand, parameters: Value, comment: Option<String>| {
            let n = push(&line, Answer::Sending);
            let request = ResponseActionRequest {
                endpoint_ids: vec![agent_id.clone()],
                agent_type: Some(agent_type),
                parameters: parameters.as_object().is_some_and(|p| !p.is_empty()).then_some(parameters),
                comment,
                ..ResponseActionRequest::default()
            };
            let chosen = file.get_untracked();
            leptos::task::spawn_local(async move {
                let sent = match (command, chosen) {
                    (ResponseCommand::Upload, Some(file)) => api::response_actions::upload(&file, &request).await,
                    _ => api::response_actions::send(command, &request).await,
                };
                answer(
                    n,
                    match sent {
                        Ok(action) => Answer::Action { id: action.id },
                        Err(err) => Answer::SendFailed { message: err.message },
                    },
                );
            });
        }
    };

    let submit = {
        let agent_id = agent_id.clone();
        move || {
            let line = input.get_untracked();
            if line.trim().is_empty() {
                return;
            }
            history.update(|h| remember(h, &line));
            input.set(String::new());
            let parsed = match parse(&line, agent_type) {
                Err(message) => {
                    push(&line, Answer::Error { message });
                    return;
                }
                Ok(Input::Clear) => {
                    entries.set(Vec::new());
                    return;
                }
                Ok(Input::Help) => {
                    push(&line, Answer::Help);
                    return;
                }
                Ok(Input::CommandHelp(spec)) => {
                    push(&line, Answer::CommandHelp { name: spec.name.to_owned() });
                    return;
                }
                Ok(Input::Command(parsed)) => parsed,
            };
            let Some(command) = parsed.spec.command else {
                // status: what the console knows of the host now.
                let lines = info.get_untracked().map_or_else(
                    || vec!["The host's status is still being read".to_owned()],
                    |i| i.facts.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
                );
                push(&line, Answer::Text { lines });
                return;
            };
            // A cancel names its action: whether that one may be cancelled is
            // said below, more precisely than "nothing pending here".
            let refusal = match command {
                ResponseCommand::Cancel => who.get_untracked().and_then(|w| command_unavailable(&parsed.spec, agent_type, &w, &[], "")),
                _ => reason_for(parsed.spec.name),
            };
            if let Some(message) = refusal {
                push(&line, Answer::Error { message });
                return;
            }
            // A host that cannot answer now: say so, and send on a second Enter.
            let warned = info.get_untracked().and_then(|i| i.status).and_then(|s| s.response_warning()).is_some();
            if warned && confirming.get_untracked().as_deref() != Some(line.as_str()) {
                confirming.set(Some(line.clone()));
                input.set(line.clone());
                return;
            }
            confirming.set(None);
            let mut parameters = parsed.parameters.clone();
            match (command, agent_type) {
                (ResponseCommand::Upload, _) if file.with_untracked(Option::is_none) => {
                    push(&line, Answer::Error { message: "Choose the file to send with the file picker under the command line (--file)".into() });
                    return;
                }
                (ResponseCommand::Runscript, ResponseAgentType::Endpoint) => {
                    let name = parameters["scriptName"].as_str().unwrap_or_default().to_owned();
                    let Some(script) = scripts.get_untracked().unwrap_or_default().into_iter().find(|s| s.name == name || s.id == name) else {
                        push(&line, Answer::Error { message: format!("The scripts library has no script named {name}") });
                        return;
                    };
                    let mut resolved = json!({ "scriptId": script.id });
                    if let Some(input) = parameters["scriptInput"].as_str() {
                        resolved["scriptInput"] = json!(input);
                    }
                    if let Some(timeout) = parameters.get("timeout") {
                        resolved["timeout"] = timeout.clone();
                    }
                    parameters = resolved;
                }
                _ => {}
            }
            let comment = parsed.comment.clone();
            if command == ResponseCommand::Cancel {
                let id = parameters["id"].as_str().unwrap_or_default().to_owned();
                if cancelable.with_untracked(|(list, _)| list.iter().any(|a| a.id == id)) {
                    send(line, command, parameters, comment);
                    return;
                }
                // Not one this user may cancel here: read it, and send only if it still may be.
                let (agent_id, send) = (agent_id.clone(), send.clone());
                leptos::task::spawn_local(async move {
                    let who = who.get_untracked();
                    match (api::response_actions::get(&id).await, who) {
                        (Ok(action), Some(who)) => match cancel_precheck(&who.canceller(), &agent_id, &action) {
                            Some(message) => {
                                push(&line, Answer::Error { message });
                            }
                            None => send(line, command, parameters, comment),
                        },
                        (Err(err), _) => {
                            push(&line, Answer::Error { message: err.message });
                        }
                        (Ok(_), None) => {
                            push(&line, Answer::Error { message: "Your permissions are still being read; try again".into() });
                        }
                    }
                });
                return;
            }
            send(line, command, parameters, comment);
        }
    };

    let on_keydown = {
        let submit = submit.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            let choices = popup.with_untracked(|p| p.as_ref().map(|p| p.choices.clone()).unwrap_or_default());
            match ev.key().as_str() {
                "Enter" => {
                    ev.prevent_default();
                    match choices.get(highlight.get_untracked()) {
                        Some(choice) if !choices.is_empty() => pick(choice.fill.clone()),
                        _ => submit(),
                    }
                }
                "ArrowUp" if !choices.is_empty() => {
                    ev.prevent_default();
                    highlight.update(|h| *h = h.checked_sub(1).unwrap_or(choices.len() - 1));
                }
                "ArrowDown" if !choices.is_empty() => {
                    ev.prevent_default();
                    highlight.update(|h| *h = (*h + 1) % choices.len());
                }
                "ArrowUp" => {
                    ev.prevent_default();
                    history_filter.set(String::new());
                    history_open.set(true);
                    request_animation_frame(move || {
                        if let Some(el) = filter_ref.get_untracked() {
                            let _ = el.focus();
                        }
                    });
                }
                "Tab" => {
                    let completed = match choices.get(highlight.get_untracked()) {
                        Some(choice) => Some(choice.fill.clone()),
                        None => complete(&input.get_untracked(), agent_type),
                    };
                    if let Some(line) = completed {
                        ev.prevent_default();
                        pick(line);
                    }
                }
                "Escape" => {
                    confirming.set(None);
                    history_open.set(false);
                }
                _ => {}
            }
        }
    };
    let on_filter_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let count = popup.with_untracked(|p| p.as_ref().map_or(0, |p| p.choices.len()));
        match ev.key().as_str() {
            "ArrowUp" if count > 0 => {
                ev.prevent_default();
                highlight.update(|h| *h = h.checked_sub(1).unwrap_or(count - 1));
            }
            "ArrowDown" if count > 0 => {
                ev.prevent_default();
                highlight.update(|h| *h = (*h + 1) % count);
            }
            "Enter" => {
                ev.prevent_default();
                let chosen = popup.with_untracked(|p| p.as_ref().and_then(|p| p.choices.get(highlight.get_untracked()).cloned()));
                match chosen {
                    Some(choice) => pick(choice.fill),
                    None => {
                        history_open.set(false);
                        focus_input();
                    }
                }
            }
            "Escape" => {
                ev.prevent_default();
                history_open.set(false);
                focus_input();
            }
            _ => {}
        }
    };

    // What the line under the input says.
    let hint_line = Memo::new({
        let agent_id = agent_id.clone();
        move |_| {
            let line = input.get();
            if confirming.with(|c| c.as_ref() == Some(&line)) {
                let status = info.with(|i| i.as_ref().and_then(|i| i.status));
                let warning = status.and_then(|s| s.response_warning()).unwrap_or_default();
                let label = status.map(|s| s.label()).unwrap_or_default();
                return (format!("This host is {label}. {warning} Press Enter again to send it anyway, Escape to stop."), "warning");
            }
            if let Some(id) = cancel_action_id(&line) {
                if let Some(action) = cancelable.with(|(list, _)| list.iter().find(|a| a.id == id).cloned()) {
                    let when = ago_text(Some(&action.started_at), now.get());
                    return (format!("Cancels {} sent by {} {when} ({id})", action.command.console_name(), action.created_by), "ok");
                }
                return match (named_action.get().flatten(), who.get()) {
                    (Some(Ok(action)), Some(who)) => match cancel_precheck(&who.canceller(), &agent_id, &action) {
                        Some(message) => (message, "error"),
                        None => (format!("Cancels {} sent by {}", action.command.console_name(), action.created_by), "ok"),
                    },
                    (Some(Err(err)), _) => (err.message, "error"),
                    _ => (format!("Reading action {id}…"), "ok"),
                };
            }
            let typed = hint(&line, agent_type);
            if typed.error {
                return (typed.text, "error");
            }
            if let Some(name) = line.split_whitespace().next()
                && let Some(reason) = reason_for(name)
            {
                return (format!("Not available: {reason}"), "error");
            }
            (typed.text, "ok")
        }
    });
    let is_upload = Memo::new(move |_| split(&input.get()).is_ok_and(|l| l.name == "upload"));

    // The newest line stays in view while the analyst has not scrolled up
    // to read older ones: on a new line and when a result comes in.
    let following = StoredValue::new(true);
    let follow = Callback::new(move |()| {
        if following.get_value() {
            request_animation_frame(move || {
                if let Some(el) = output_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    Effect::new(move |_| {
        entries.track();
        following.set_value(true);
        follow.run(());
    });
    let on_scroll = move |_| {
        if let Some(el) = output_ref.get_untracked() {
            following.set_value(el.scroll_top() + el.client_height() >= el.scroll_height() - 40);
        }
    };

    let shared = Shared {
        agent_id: agent_id.clone(),
        availability: availability.into(),
        now,
        live,
        choose: Callback::new(move |line: String| pick(line)),
        follow,
    };
    let submit_click = submit.clone();

    view! {
        <div class="console-output" node_ref=output_ref data-testid="console-output" aria-live="polite" on:scroll=on_scroll>
            <For each=move || entries.get() key=Entry::key let:entry>
                <EntryView entry shared=shared.clone() />
            </For>
            {move || entries.with(Vec::is_empty).then(|| view! {
                <p class="muted console-empty">"Type help for the commands of this host, or ↑ for the ones you entered before."</p>
            })}
        </div>
        <div class="console-line">
            {move || popup.get().map(|popup| view! {
                <div class="console-popup" role="listbox" aria-label=popup.title data-testid="console-popup">
                    <p class="console-popup-title">{popup.title}</p>
                    {history_open.get().then(|| view! {
                        <input type="search" class="input" placeholder="Filter previously entered actions" node_ref=filter_ref
                            aria-label="Filter previously entered actions"
                            prop:value=move || history_filter.get()
                            on:input=move |ev| history_filter.set(event_target_value(&ev))
                            on:keydown=on_filter_keydown />
                    })}
                    {if popup.choices.is_empty() {
                        view! { <p class="muted" data-testid="console-popup-empty">{popup.empty.clone()}</p> }.into_any()
                    } else {
                        popup.choices.into_iter().enumerate().map(|(i, choice)| {
                            let fill = choice.fill.clone();
                            view! {
                                <div class="console-choice" role="option" aria-selected=move || (highlight.get() == i).to_string()
                                    class:highlighted=move || highlight.get() == i
                                    on:mousedown=move |ev| { ev.prevent_default(); pick(fill.clone()); }>
                                    <span>{choice.label}</span>
                                    <span class="muted">{choice.detail}</span>
                                </div>
                            }
                        }).collect_view().into_any()
                    }}
                </div>
            })}
            <form class="console-form" on:submit=move |ev| { ev.prevent_default(); submit_click(); }>
                <span class="console-prompt" aria-hidden="true">">"</span>
                <input type="text" class="console-input" node_ref=input_ref autofocus spellcheck="false" autocomplete="off"
                    placeholder="Submit response action" aria-label="Command"
                    class:invalid=move || hint_line.with(|(_, kind)| *kind == "error")
                    prop:value=move || input.get()
                    on:input=move |ev| { input.set(event_target_value(&ev)); history_open.set(false); }
                    on:keydown=on_keydown />
                <button type="submit" class="button button-primary">"Run"</button>
            </form>
            {move || is_upload.get().then(|| view! {
                <label class="console-file">"File to upload: "
                    <input type="file" data-testid="console-file" on:change=move |ev| {
                        let chosen = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlInputElement>(event_target::<web_sys::EventTarget>(&ev))
                            .ok()
                            .and_then(|el| el.files())
                            .and_then(|files| files.get(0));
                        file.set(chosen);
                    } />
                </label>
            })}
            <p class=move || format!("console-hint console-hint-{}", hint_line.get().1) data-testid="console-hint">{move || hint_line.get().0}</p>
        </div>
    }
}

fn cancel_unavailable_text(cancelable: Memo<(Vec<ActionDetails>, Option<String>)>) -> Option<String> {
    cancelable.with(|(_, reason)| reason.clone())
}

fn script_choice(line: &str, script: &EndpointScript) -> Choice {
    let fill = format!("{} {} ", line.trim_end(), quoted(&script.name));
    Choice { fill, label: script.name.clone(), detail: script.description.clone() }
}

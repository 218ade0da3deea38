//! How a console line answers: the echo of what was entered, then help, a
//! command's help, a refusal, `status`, or a response action that shows
//! "Action pending." with a spinner until its outcome comes over the push
//! channel, and then its output in place.

use leptos::prelude::*;
use warden_core::console::{BUILTIN_COMMANDS, CommandSpec, help_text};
use warden_core::response_actions::{ActionDetails, Outcome, ResponseCommand, host_outcome};

use super::{Answer, Entry};
use crate::api::{self, ApiResult};
use crate::components::time::{parse_time, utc_time};
use crate::pages::response_actions::{outcome_class, output_view};

/// After this long, a pending line says the analyst may go on (Kibana's hint).
const STILL_WORKING_MS: f64 = 15_000.0;

/// What every line of one console reads.
#[derive(Clone)]
pub struct Shared {
    pub agent_id: String,
    /// Each command, with why this user may not run it here.
    pub availability: Signal<Vec<(CommandSpec, Option<String>)>>,
    pub now: ReadSignal<f64>,
    pub live: crate::live::LiveVersion,
    /// Puts a line on the command line (a process row's kill/suspend).
    pub choose: Callback<String>,
    /// Keeps the newest line in view after a result grows.
    pub follow: Callback<()>,
}

#[component]
pub fn EntryView(entry: Entry, shared: Shared) -> impl IntoView {
    let answer = match entry.answer {
        Answer::Help => help_view(&shared).into_any(),
        Answer::CommandHelp { name } => {
            let spec = shared.availability.with_untracked(|a| a.iter().find(|(s, _)| s.name == name).map(|(s, _)| *s));
            spec.map(command_help_view).into_any()
        }
        Answer::Error { message } => view! { <div class="console-error" role="alert">{message}</div> }.into_any(),
        Answer::Text { lines } => view! {
            <ul class="plain-list console-text" data-testid="console-status">{lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
        }
        .into_any(),
        Answer::Sending => view! {
            <p class="console-pending"><span class="spinner" aria-hidden="true"></span>"Sending…"</p>
        }
        .into_any(),
        Answer::Action { id } => view! { <ActionResult id entered_at=entry.at.clone() shared=shared.clone() /> }.into_any(),
        Answer::SendFailed { message } => view! {
            <div class="console-error" role="alert">
                <strong>"Failed to create action request."</strong>
                <p>"The following error was encountered:"</p>
                <p data-testid="console-send-error">{message}</p>
            </div>
        }
        .into_any(),
    };
    view! {
        <div class="console-entry" data-testid="console-entry">
            <p class="console-echo">
                <span class="console-prompt" aria-hidden="true">">"</span>
                <code>{entry.input}</code>
                <time class="muted" datetime=entry.at.clone()>{utc_time(&entry.at)}</time>
            </p>
            {answer}
        </div>
    }
}

/// `help`: the commands of this host's agent type, each with why it is
/// unavailable when it is, then the console's own commands and tips.
fn help_view(shared: &Shared) -> impl IntoView + use<> {
    let availability = shared.availability;
    view! {
        <div class="console-help" data-testid="console-help">
            <h4>"Response actions"</h4>
            <dl class="console-commands">
                {move || availability.get().into_iter().map(|(spec, reason)| {
                    let disabled = reason.is_some();
                    view! {
                        <dt><code class="badge" class:disabled=disabled data-command=spec.name>{spec.name}</code></dt>
                        <dd>{spec.about}{reason.map(|r| view! { <span class="console-unavailable">" — not available: " {r}</span> })}</dd>
                    }
                }).collect_view()}
            </dl>
            <h4>"Supporting commands & parameters"</h4>
            <dl class="console-commands">
                {BUILTIN_COMMANDS.iter().map(|(name, about)| view! { <dt><code class="badge">{*name}</code></dt><dd>{*about}</dd> }).collect_view()}
                <dt><code class="badge">"--comment"</code></dt><dd>"Add comment to any action Ex: isolate --comment your comment"</dd>
                <dt><code class="badge">"--help"</code></dt><dd>"Command assistance Ex: isolate --help"</dd>
            </dl>
            <p class="muted">"For more help with the individual commands use the --help argument. Ex: processes --help"</p>
            <ul class="plain-list muted">
                <li>"A value that contains -- must be escaped as \\-\\- (execute --command \"grep \\-\\-count x\")."</li>
                <li>"You may enter the next command without waiting for the last one to finish."</li>
                <li>"Leaving or closing the console does not stop the actions it sent."</li>
            </ul>
        </div>
    }
}

/// `<command> --help`: About, Usage, the parameters and an example.
fn command_help_view(spec: CommandSpec) -> impl IntoView {
    view! {
        <dl class="console-usage" data-testid="console-usage">
            {help_text(&spec).into_iter().map(|(section, lines)| view! {
                <dt>{section}</dt>
                <dd>{lines.into_iter().map(|l| view! { <div><code>{l}</code></div> }).collect_view()}</dd>
            }).collect_view()}
        </dl>
    }
}

/// A sent action: pending with a spinner, then its outcome for this host
/// (the core's [`host_outcome`], as in the history) and its output.
#[component]
fn ActionResult(id: String, entered_at: String, shared: Shared) -> impl IntoView {
    let details = RwSignal::new(None::<ApiResult<ActionDetails>>);
    let agent_id = shared.agent_id.clone();
    // Read at once, then again on each push while it is pending here.
    {
        let (id, agent_id, follow) = (id.clone(), agent_id.clone(), shared.follow);
        Effect::new(move |_| {
            shared.live.track();
            let done = details.with_untracked(|d| matches!(d, Some(Ok(a)) if host_outcome(a, &agent_id) != Outcome::Pending));
            if done {
                return;
            }
            let id = id.clone();
            leptos::task::spawn_local(async move {
                let read = api::response_actions::get(&id).await;
                // The line may be gone (clear) by the time the answer comes.
                if details.try_set(Some(read)).is_none() {
                    follow.run(());
                }
            });
        });
    }
    let entered = parse_time(&entered_at).unwrap_or_default();
    let (now, choose) = (shared.now, shared.choose);
    move || match details.get() {
        None => pending_view(entered, now, "Action pending.").into_any(),
        Some(Err(err)) => view! { <div class="console-error" role="alert">{err.message}</div> }.into_any(),
        Some(Ok(action)) => {
            let outcome = host_outcome(&action, &agent_id);
            let title = outcome.console_title(action.command);
            if outcome == Outcome::Pending {
                return pending_view(entered, now, title).into_any();
            }
            let state = action.agent_state.get(&agent_id);
            let errors = state.and_then(|s| s.errors.clone()).unwrap_or_default();
            let output = action.outputs.as_ref().and_then(|o| o.get(&agent_id)).map(|o| output_view(&action, &agent_id, o, Some(choose)));
            let isolation = (outcome == Outcome::Successful).then_some(action.command).and_then(|c| match c {
                ResponseCommand::Isolate => Some("The host is isolated: it talks to Warden only."),
                ResponseCommand::Unisolate => Some("The host is released: its network is back."),
                _ => None,
            });
            view! {
                <div class="console-result" data-testid="console-result" data-outcome=outcome.as_str() data-action=action.id.clone()>
                    <p class=format!("console-title {}", outcome_class(outcome))>{title}</p>
                    {isolation.map(|text| view! { <p>{text}</p> })}
                    {(!errors.is_empty()).then(|| view! {
                        <ul class="plain-list console-errors">{errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
                    })}
                    {output}
                    <p class="muted small">"Action " <code>{action.id.clone()}</code></p>
                </div>
            }
            .into_any()
        }
    }
}

fn pending_view(entered: f64, now: ReadSignal<f64>, title: &'static str) -> impl IntoView {
    view! {
        <div class="console-pending" data-testid="console-pending">
            <p><span class="spinner" aria-hidden="true"></span>{title}</p>
            {move || (now.get() - entered > STILL_WORKING_MS).then(|| view! {
                <p class="muted">"Hint: We are still working on this task. You may leave the console or place another command while this command is processing."</p>
            })}
        </div>
    }
}

//! Background work and its health: each recurring task with its last and
//! next run, duration, failures and last error, the one-off queue per type,
//! and "Run now" for users with tasks:admin. Live on the push channel.

use leptos::prelude::*;
use warden_core::authz::Privilege;
use warden_core::tasks::{TaskHealth, TaskStatus};

use crate::api;
use crate::components::async_view::AsyncView;
use crate::components::data_table::{Column, DataTable};
use crate::components::time::{ago, until, use_now};
use crate::components::toast::use_toasts;
use crate::components::tooltip::Tooltip;
use crate::live::{Topic, use_live};
use crate::session::use_session;

fn every(interval_ms: Option<i64>) -> String {
    match interval_ms {
        None => "one-off".into(),
        Some(ms) if ms % 3_600_000 == 0 => format!("every {} h", ms / 3_600_000),
        Some(ms) if ms % 60_000 == 0 => format!("every {} min", ms / 60_000),
        Some(ms) => format!("every {} s", ms / 1000),
    }
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

fn is_running(task: &TaskHealth) -> bool {
    matches!(task.status, TaskStatus::Running | TaskStatus::Claiming)
}

/// The status badge: failing, running or idle.
fn state(task: &TaskHealth) -> (&'static str, &'static str) {
    if task.last_error.is_some() || task.failed > 0 {
        ("badge status-error", "failing")
    } else if is_running(task) {
        ("badge status-updating", "running")
    } else {
        ("badge status-online", "idle")
    }
}

#[component]
pub fn TasksPage() -> impl IntoView {
    let session = use_session();
    let may_run = move || session.user().is_some_and(|u| u.can(Privilege::TasksAdmin));
    let live = use_live(Topic::Tasks);
    let now = use_now();
    let toasts = use_toasts();
    // Which task's "Run now" answered what, shown on its row.
    let run_now = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { (id.clone(), api::tasks::run_soon(&id).await) }
    });
    let health = LocalResource::new(move || {
        live.track();
        run_now.version().track();
        api::tasks::health()
    });
    Effect::new(move |_| {
        if let Some((id, Ok(()))) = run_now.value().get() {
            toasts.show(format!("{id} will run within a moment"));
        }
    });
    let run_error = move |id: &Option<String>| match run_now.value().get() {
        Some((failed, Err(err))) if Some(&failed) == id.as_ref() => Some(err.message),
        _ => None,
    };

    let columns = move || {
        vec![
            Column::new("Task", |task: &TaskHealth| {
                view! {
                    <div class="strong">{task.title.clone()}</div>
                    <code class="muted">{task.id.clone().unwrap_or_else(|| format!("{} ({} queued)", task.task_type, task.count))}</code>
                }
            }),
            Column::new("Schedule", |task: &TaskHealth| every(task.interval_ms)),
            Column::new("Status", |task: &TaskHealth| {
                let (class, text) = state(task);
                view! { <span class=class>{text}</span> }
            }),
            Column::new("Last run", move |task: &TaskHealth| {
                let last_run = task.last_run_at;
                view! { <span data-testid="last-run">{move || last_run.map(|t| ago(t as f64, now.get())).unwrap_or_else(|| "never".into())}</span> }
            }),
            Column::new("Took", |task: &TaskHealth| duration(task.last_duration_ms)),
            Column::new("Next run", move |task: &TaskHealth| {
                let next_run = task.next_run_at;
                move || next_run.map(|t| until(t as f64, now.get())).unwrap_or_else(|| "—".into())
            }),
            Column::new(
                "Runs / failures",
                |task: &TaskHealth| view! { <span data-testid="runs">{format!("{} / {}", task.runs, task.failures)}</span> },
            ),
            Column::new("Last result", move |task: &TaskHealth| {
                let id = task.id.clone();
                view! {
                    <div class="cell-wrap">
                        {task.last_error.clone().map(|e| view! { <div class="warn-inline" data-testid="last-error">{e}</div> })}
                        {task.last_result.clone().map(|r| view! { <div class="muted" data-testid="last-result">{r}</div> })}
                        {move || run_error(&id).map(|message| view! { <div class="warn-inline" role="alert">{message}</div> })}
                    </div>
                }
            }),
            Column::actions(move |task: &TaskHealth| {
                let running = is_running(task);
                let title = task.title.clone();
                task.id.clone().filter(|_| may_run()).map(|id| {
                    let why = Signal::derive(move || running.then(|| "Running now: it can be run again once it finishes".to_owned()));
                    view! {
                        <Tooltip text=why>
                            <button type="button" class="button" disabled=move || running || run_now.pending().get()
                                aria-label=format!("Run {title} now")
                                on:click=move |_| { run_now.dispatch(id.clone()); }>
                                "Run now"
                            </button>
                        </Tooltip>
                    }
                })
            }),
        ]
    };

    view! {
        <section class="page">
            <h1>"Tasks"</h1>
            <p class="lead">"Warden's background work. Any Warden node may run a task; a node that stops is replaced within a lease."</p>
            <AsyncView resource=health loading="Loading tasks…" let:report>
                {
                    let overall = if report.status == "OK" { "badge status-online" } else { "badge status-degraded" };
                    view! {
                        <p class="toolbar">
                            <span class=overall data-testid="task-manager-status">{report.status.clone()}</span>
                            <span class="muted">{format!("answered by {} · polls every {} s · lease {} s · {} workers",
                                report.id, report.configuration.poll_interval_ms / 1000, report.configuration.lease_ms / 1000, report.configuration.max_workers)}</span>
                        </p>
                        <DataTable rows=report.tasks columns=columns() empty="No tasks yet." testid="tasks"
                            row_id=|task: &TaskHealth| (format!("task-{}", task.id.clone().unwrap_or_else(|| task.task_type.clone())), task.title.clone()) />
                    }
                }
            </AsyncView>
        </section>
    }
}

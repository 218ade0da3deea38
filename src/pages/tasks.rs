//! Background work and its health: each recurring task with its last and
//! next run, duration, failures and last error, the one-off queue per type,
//! and "Run now" for users with tasks:admin. Live every 5 seconds.

use std::time::Duration;

use leptos::prelude::*;
use warden_core::authz::Privilege;
use warden_core::paths;
use warden_core::tasks::{TaskHealth, TaskManagerHealth, TaskStatus};

use crate::api;
use crate::components::states::{ErrorMessage, Loading};
use crate::components::time::{ago, until, use_now, use_tick};
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

#[component]
pub fn TasksPage() -> impl IntoView {
    let session = use_session();
    let may_run = move || session.user().is_some_and(|u| u.can(Privilege::TasksAdmin));
    let tick = use_tick(Duration::from_secs(5));
    let now = use_now();
    let changed = RwSignal::new(0u32);
    let health = LocalResource::new(move || {
        tick.track();
        changed.track();
        async move { api::get::<TaskManagerHealth>(paths::TASK_HEALTH).await }
    });
    // Which task's "Run now" answered what, shown on its row.
    let run_error = RwSignal::new(None::<(String, String)>);
    let run_now = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { (id.clone(), api::post_empty(&paths::task_run_soon(&id)).await) }
    });
    Effect::new(move |_| match run_now.value().get() {
        Some((_, Ok(()))) => {
            run_error.set(None);
            changed.update(|c| *c += 1);
        }
        Some((id, Err(err))) => run_error.set(Some((id, err.message))),
        None => {}
    });

    let row = move |task: TaskHealth| {
        let id = task.id.clone();
        let running = matches!(task.status, TaskStatus::Running | TaskStatus::Claiming);
        let status_class = if task.last_error.is_some() || task.failed > 0 {
            "badge status-error"
        } else if running {
            "badge status-updating"
        } else {
            "badge status-online"
        };
        let status_text = if running {
            "running"
        } else if task.last_error.is_some() || task.failed > 0 {
            "failing"
        } else {
            "idle"
        };
        let last_run = task.last_run_at;
        let next_run = task.next_run_at;
        let row_id = id.clone();
        let row_error = move || run_error.get().filter(|(failed, _)| Some(failed) == row_id.as_ref()).map(|(_, message)| message);
        view! {
            <tr data-testid=format!("task-{}", task.id.clone().unwrap_or_else(|| task.task_type.clone()))>
                <td>
                    <div class="strong">{task.title.clone()}</div>
                    <code class="muted">{task.id.clone().unwrap_or_else(|| format!("{} ({} queued)", task.task_type, task.count))}</code>
                </td>
                <td>{every(task.interval_ms)}</td>
                <td><span class=status_class>{status_text}</span></td>
                <td data-testid="last-run">{move || last_run.map(|t| ago(t as f64, now.get())).unwrap_or_else(|| "never".into())}</td>
                <td>{duration(task.last_duration_ms)}</td>
                <td>{move || next_run.map(|t| until(t as f64, now.get())).unwrap_or_else(|| "—".into())}</td>
                <td data-testid="runs">{format!("{} / {}", task.runs, task.failures)}</td>
                <td class="cell-wrap">
                    {task.last_error.clone().map(|e| view! { <div class="warn-inline" data-testid="last-error">{e}</div> })}
                    {task.last_result.clone().map(|r| view! { <div class="muted" data-testid="last-result">{r}</div> })}
                    {move || row_error().map(|message| view! { <div class="warn-inline" role="alert">{message}</div> })}
                </td>
                <td>
                    {id.clone().filter(|_| may_run()).map(|id| {
                        let title = task.title.clone();
                        view! {
                            <button type="button" class="button" disabled=move || running || run_now.pending().get()
                                aria-label=format!("Run {title} now")
                                on:click=move |_| { run_now.dispatch(id.clone()); }>
                                "Run now"
                            </button>
                        }
                    })}
                </td>
            </tr>
        }
    };

    view! {
        <section class="page">
            <h1>"Tasks"</h1>
            <p class="lead">"Warden's background work. Any Warden node may run a task; a node that stops is replaced within a lease."</p>
            <Transition fallback=|| view! { <Loading label="Loading tasks…" /> }>
                {move || Suspend::new(async move {
                    match health.await {
                        Err(err) => view! { <ErrorMessage message=err.message /> }.into_any(),
                        Ok(report) if report.tasks.is_empty() => view! { <div class="state state-empty">"No tasks yet."</div> }.into_any(),
                        Ok(report) => {
                            let overall = if report.status == "OK" { "badge status-online" } else { "badge status-degraded" };
                            view! {
                                <p class="toolbar">
                                    <span class=overall data-testid="task-manager-status">{report.status.clone()}</span>
                                    <span class="muted">{format!("answered by {} · polls every {} s · lease {} s · {} workers",
                                        report.id, report.configuration.poll_interval_ms / 1000, report.configuration.lease_ms / 1000, report.configuration.max_workers)}</span>
                                </p>
                                <div class="table-scroll">
                                    <table class="table" data-testid="tasks">
                                        <thead><tr>
                                            <th>"Task"</th><th>"Schedule"</th><th>"Status"</th><th>"Last run"</th><th>"Took"</th>
                                            <th>"Next run"</th><th>"Runs / failures"</th><th>"Last result"</th><th><span class="sr-only">"Actions"</span></th>
                                        </tr></thead>
                                        <tbody>{report.tasks.into_iter().map(row).collect_view()}</tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

use leptos::prelude::*;
use leptos_router::components::A;

use warden_core::authz::Section;

use crate::api;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::session::use_session;

/// Home: who you are, what you may open, and whether Warden is healthy.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let session = use_session();
    let status = LocalResource::new(api::session::status);
    let user = move || session.user();
    view! {
        <section class="page">
            <h1>{move || user().map(|u| format!("Welcome, {}", u.full_name.unwrap_or(u.username))).unwrap_or_default()}</h1>
            <p class="lead">"Which endpoints are protected, which went dark, what was done about it, and what is still in flight."</p>
            <div class="grid">
                <div class="panel">
                    <h2>"Your access"</h2>
                    <p class="muted">"Roles: " {move || user().map(|u| u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()}</p>
                    <ul class="links">
                        {move || user().map(|u| Section::ALL.into_iter().filter(|s| s.visible_to(&u.privileges)).map(|s| view! {
                            <li><A href=href(s.path())>{s.title()}</A></li>
                        }).collect_view())}
                    </ul>
                </div>
                <div class="panel" data-testid="system-status">
                    <h2>"System status"</h2>
                    <AsyncView resource=status let:status>
                        <dl class="facts">
                            <dt>"Overall"</dt><dd class=format!("level-{}", status.status.overall.level)>{status.status.overall.level.clone()}</dd>
                            <dt>"Database"</dt><dd>{format!("{} ({})", status.status.database.engine, status.status.database.level)}</dd>
                            <dt>"Version"</dt><dd>{status.version.number.clone()}</dd>
                            <dt>"Up for"</dt><dd>{format_uptime(status.uptime_ms)}</dd>
                        </dl>
                    </AsyncView>
                </div>
            </div>
        </section>
    }
}

fn format_uptime(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

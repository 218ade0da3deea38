use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn TasksPage() -> impl IntoView {
    view! {
        <Planned
            title="Tasks"
            summary="Warden's background work and its health."
            items=&["Each task type with its last run, next run, duration and failures", "Run now, for administrators"]
        />
    }
}

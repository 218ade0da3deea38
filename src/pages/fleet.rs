use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn FleetPage() -> impl IntoView {
    view! {
        <Planned
            title="Fleet"
            summary="Which endpoints are protected, which went dark, and why."
            items=&["Every enrolled agent with its status: online, offline, uninstalled, orphaned (Detached Endpoint) and more", "Status counts that filter the list, search and paging over thousands of agents", "Agent details with the activity log, and force-unenroll for Fleet administrators"]
        />
    }
}

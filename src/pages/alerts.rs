//! Placeholder until the page lands (being built on its own branch).

use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn AlertsPage() -> impl IntoView {
    view! { <Planned title="Alerts" summary="Coming with this issue." items=&[] /> }
}

//! Placeholder until the page lands (being built on its own branch).

use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn CasesPage() -> impl IntoView {
    view! { <Planned title="Cases" summary="Coming with this issue." items=&[] /> }
}

#[component]
pub fn CasePage() -> impl IntoView {
    view! { <Planned title="Cases" summary="Coming with this issue." items=&[] /> }
}

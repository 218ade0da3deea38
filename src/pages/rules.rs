//! Placeholder until the page lands.

use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn RulesPage() -> impl IntoView {
    view! { <Planned title="Rules" summary="Coming with this issue." items=&[] /> }
}

#[component]
pub fn RulePage() -> impl IntoView {
    view! { <Planned title="Rules" summary="Coming with this issue." items=&[] /> }
}

//! Placeholder until the page lands.

use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn NewRulePage() -> impl IntoView {
    view! { <Planned title="Rules" summary="Coming with this issue." items=&[] /> }
}

#[component]
pub fn EditRulePage() -> impl IntoView {
    view! { <Planned title="Rules" summary="Coming with this issue." items=&[] /> }
}

use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn ResponseActionsPage() -> impl IntoView {
    view! {
        <Planned
            title="Response actions"
            summary="Every response action taken on every endpoint"
            items=&["who did what, when, and how it ended.:A searchable history of actions with their status (pending, successful, failed, cancelled)", "The output of each action", "Live updates while actions are in flight"]
        />
    }
}

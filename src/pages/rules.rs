use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn RulesPage() -> impl IntoView {
    view! {
        <Planned
            title="Rules"
            summary="Detection and compliance rules, and what they do when they fire."
            items=&["Rules with their schedule and actions", "System actions (such as opening a case) with their own parameter editors", "Rules that run as the user who last saved them"]
        />
    }
}

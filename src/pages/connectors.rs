use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn ConnectorsPage() -> impl IntoView {
    view! {
        <Planned
            title="Connectors"
            summary="The outside systems Warden's actions reach."
            items=&["Connectors such as webhooks and Microsoft Defender for Endpoint, created and tested here", "System connectors kept out of this list, as in Kibana"]
        />
    }
}

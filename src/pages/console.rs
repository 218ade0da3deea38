use leptos::prelude::*;

use crate::components::planned::Planned;

#[component]
pub fn ConsolePage() -> impl IntoView {
    view! {
        <Planned
            title="Console"
            summary="The responder console"
            items=&["type response commands against one endpoint, with history and keyboard shortcuts.:Commands such as isolate, release, processes, kill-process, get-file, execute and scan, each allowed by your role", "The pending actions of the endpoint, with cancel where the target supports it (Microsoft Defender for Endpoint)", "Command history, tab completion and help in the console"]
        />
    }
}

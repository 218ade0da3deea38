use leptos::prelude::*;
use warden_core::fleet::AgentStatus;

/// A status badge whose tooltip says why: uninstalled and Detached Endpoint
/// look different from offline.
#[component]
pub fn StatusBadge(status: AgentStatus) -> impl IntoView {
    view! {
        <span class=format!("badge status-{}", status.as_str()) title=status.explanation() data-status=status.as_str()>
            {if status.needs_attention() { "⚠ " } else { "" }}
            {status.label()}
        </span>
    }
}

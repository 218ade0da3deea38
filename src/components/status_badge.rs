use leptos::prelude::*;
use warden_core::fleet::AgentStatus;
use warden_core::rules::AlertStatus;

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

/// An alert's state: active needs attention; recovered is over; untracked
/// means its rule was disabled while it was active.
#[component]
pub fn AlertStatusBadge(status: AlertStatus) -> impl IntoView {
    let (label, explanation) = match status {
        AlertStatus::Active => ("Active", "The condition holds now"),
        AlertStatus::Recovered => ("Recovered", "The condition no longer holds"),
        AlertStatus::Untracked => ("Untracked", "Its rule was disabled or changed while the alert was active"),
    };
    view! {
        <span class=format!("badge alert-{}", status.as_str()) title=explanation data-status=status.as_str()>{label}</span>
    }
}

//! Says why a control is disabled: shown on hover and on keyboard focus (the
//! wrapper takes focus, since a disabled button cannot), and read by screen
//! readers with the control.

use leptos::prelude::*;

#[component]
pub fn Tooltip(#[prop(into)] text: Signal<Option<String>>, children: Children) -> impl IntoView {
    view! {
        <span class="tooltip" tabindex=move || text.get().map(|_| "0")>
            {children()}
            {move || text.get().map(|text| view! { <span class="tooltip-text" role="tooltip">{text}</span> })}
        </span>
    }
}

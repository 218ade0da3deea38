//! "Are you sure?" for what cannot be undone: a modal with Cancel focused,
//! Escape to leave, the request's error in place, and the confirm button
//! disabled while the request runs.

use leptos::prelude::*;

use crate::components::states::ErrorMessage;

#[component]
pub fn ConfirmDialog(
    #[prop(into)] title: String,
    #[prop(into)] confirm: String,
    /// Red, for what destroys or revokes.
    #[prop(optional)]
    danger: bool,
    #[prop(into)] pending: Signal<bool>,
    #[prop(into)] error: Signal<Option<String>>,
    on_confirm: Callback<()>,
    on_cancel: Callback<()>,
    children: Children,
) -> impl IntoView {
    let confirm_class = if danger { "button button-danger" } else { "button button-primary" };
    view! {
        <div class="dialog-backdrop">
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-title"
                on:keydown=move |ev| if ev.key() == "Escape" { on_cancel.run(()) }>
                <h2 id="confirm-title">{title}</h2>
                {children()}
                {move || error.get().map(|message| view! { <ErrorMessage message /> })}
                <div class="actions-row">
                    <button type="button" class="button" autofocus on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="button" class=confirm_class disabled=pending on:click=move |_| on_confirm.run(())>{confirm}</button>
                </div>
            </div>
        </div>
    }
}

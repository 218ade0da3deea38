use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use warden_core::api::CurrentUser;
use warden_core::authz::Privilege;

use crate::app::href;
use crate::session::use_session;

/// The signed-in user, with their roles and a sign-out item.
#[component]
pub fn UserMenu(user: CurrentUser) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let sign_out = Action::new_local(move |_: &()| async move { session.sign_out().await });
    Effect::new(move |_| match sign_out.value().get() {
        Some(Ok(())) => navigate("/login", Default::default()),
        Some(Err(err)) => error.set(Some(err.message)),
        None => {}
    });
    let may_keys = user.can(Privilege::ApiKeysManageOwn);
    let label = user.full_name.clone().unwrap_or_else(|| user.username.clone());
    let roles = user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
    view! {
        <div class="user-menu" on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
            <button
                type="button"
                class="button button-ghost"
                aria-haspopup="true"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
                data-testid="user-menu"
            >
                {label.clone()} " ▾"
            </button>
            <Show when=move || open.get()>
                <div class="user-menu-panel">
                    <div class="user-menu-name">{user.username.clone()}</div>
                    <div class="user-menu-roles">{roles.clone()}</div>
                    {may_keys.then(|| view! { <p><A href=href("/api-keys") on:click=move |_| open.set(false)>"API keys"</A></p> })}
                    {move || error.get().map(|message| view! { <div class="user-menu-error" role="alert">{message}</div> })}
                    <button
                        type="button"
                        class="button"
                        disabled=move || sign_out.pending().get()
                        on:click=move |_| { sign_out.dispatch(()); }
                    >
                        "Sign out"
                    </button>
                </div>
            </Show>
        </div>
    }
}

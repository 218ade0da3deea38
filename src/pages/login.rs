use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use warden_core::api::LoginRequest;
use warden_core::paths;

use crate::api;
use crate::components::theme::ThemeToggle;
use crate::session::{AuthState, use_session};

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let query = use_query_map();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let login = Action::new_local(|request: &LoginRequest| {
        let request = request.clone();
        async move { api::session::login(&request).await }
    });
    let next = move || paths::safe_return_path(query.read_untracked().get("next").as_deref()).to_owned();

    // Signed in (now or already): go where the user was heading.
    Effect::new(move |_| {
        if let Some(Ok(user)) = login.value().get() {
            session.sign_in(user);
        }
        if matches!(session.0.get(), AuthState::SignedIn(_)) {
            navigate(&next(), Default::default());
        }
    });
    let error = move || match login.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        login.dispatch(LoginRequest { username: username.get_untracked(), password: password.get_untracked() });
    };

    view! {
        <div class="login">
            <form class="login-card" on:submit=on_submit aria-labelledby="login-title">
                <h1 id="login-title"><img src="favicon.svg" alt="" />"Warden"</h1>
                <p class="login-sub">"Sign in to the SOC console"</p>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required autofocus bind:value=username />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required bind:value=password />
                {move || error().map(|message| view! { <div class="state state-error" role="alert">{message}</div> })}
                <div class="login-actions">
                    <button type="submit" class="button button-primary" disabled=move || login.pending().get()>
                        {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                    <ThemeToggle />
                </div>
            </form>
        </div>
    }
}

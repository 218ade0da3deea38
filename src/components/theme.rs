//! Dark theme by default, a light one on request; the choice is kept in
//! localStorage (index.html applies it before the app loads).

use leptos::prelude::*;

const KEY: &str = "warden-theme";

fn current() -> String {
    document().document_element().and_then(|html| html.get_attribute("data-theme")).unwrap_or_else(|| "dark".to_owned())
}

fn apply(theme: &str) {
    if let Some(html) = document().document_element() {
        let _ = html.set_attribute("data-theme", theme);
    }
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(KEY, theme);
    }
}

#[component]
pub fn ThemeToggle() -> impl IntoView {
    let theme = RwSignal::new(current());
    let toggle = move |_| {
        let next = if theme.get_untracked() == "dark" { "light" } else { "dark" };
        apply(next);
        theme.set(next.to_owned());
    };
    view! {
        <button
            type="button"
            class="button button-ghost"
            on:click=toggle
            aria-label=move || format!("Switch to {} theme", if theme.get() == "dark" { "light" } else { "dark" })
            title="Toggle light and dark theme"
        >
            {move || if theme.get() == "dark" { "☀ Light" } else { "☾ Dark" }}
        </button>
    }
}

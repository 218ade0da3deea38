//! Tabs whose choice lives in the URL (`?tab=test`), so a reload or a shared
//! link opens the same tab; arrow keys move between them, as WAI-ARIA's tabs.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate, use_query_map};
use wasm_bindgen::JsCast;

/// The tab the URL names, or the first.
pub fn current_tab(tabs: &'static [(&'static str, &'static str)]) -> Memo<&'static str> {
    let query = use_query_map();
    Memo::new(move |_| {
        let asked = query.with(|q| q.get("tab").unwrap_or_default());
        tabs.iter().find(|(id, _)| *id == asked).or(tabs.first()).map(|(id, _)| *id).unwrap_or_default()
    })
}

/// The tab list and, as its children, the panel of the [`current_tab`].
#[component]
pub fn Tabs(label: &'static str, tabs: &'static [(&'static str, &'static str)], current: Memo<&'static str>, children: Children) -> impl IntoView {
    let navigate = use_navigate();
    let location = use_location();
    let open = Callback::new(move |id: &'static str| {
        let path = location.pathname.get_untracked();
        let base = crate::app::base_path();
        let path = path.strip_prefix(base.as_ref()).unwrap_or(&path).to_owned();
        navigate(&format!("{path}?tab={id}"), Default::default());
    });
    let step = move |by: isize| {
        let at = tabs.iter().position(|(id, _)| *id == current.get_untracked()).unwrap_or(0) as isize;
        let next = tabs[(at + by).rem_euclid(tabs.len() as isize) as usize].0;
        open.run(next);
        // Focus follows the selection, as WAI-ARIA's tabs pattern asks.
        if let Some(tab) = document().get_element_by_id(&format!("tab-{next}")).and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = tab.focus();
        }
    };
    view! {
        <div class="tabs" role="tablist" aria-label=label
            on:keydown=move |ev| match ev.key().as_str() {
                "ArrowRight" => step(1),
                "ArrowLeft" => step(-1),
                _ => {}
            }>
            {tabs.iter().map(|&(id, title)| view! {
                <button type="button" role="tab" class="tab" id=format!("tab-{id}") aria-controls="tabpanel"
                    aria-selected=move || (current.get() == id).to_string()
                    tabindex=move || if current.get() == id { "0" } else { "-1" }
                    on:click=move |_| open.run(id)>
                    {title}
                </button>
            }).collect_view()}
        </div>
        <div role="tabpanel" id="tabpanel" aria-labelledby=move || format!("tab-{}", current.get())>{children()}</div>
    }
}

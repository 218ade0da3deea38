use leptos::prelude::*;

/// A page whose capability is not built yet: it says what will be here and
/// does not pretend to work.
#[component]
pub fn Planned(title: &'static str, summary: &'static str, items: &'static [&'static str]) -> impl IntoView {
    view! {
        <section class="page">
            <h1>{title}</h1>
            <p class="lead">{summary}</p>
            <div class="notice">
                <strong>"Not available yet."</strong>
                " This part of Warden is being built. When it lands, it will offer:"
                <ul>{items.iter().map(|item| view! { <li>{*item}</li> }).collect_view()}</ul>
            </div>
        </section>
    }
}

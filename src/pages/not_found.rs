use leptos::prelude::*;
use leptos_router::components::A;

use crate::app::href;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    view! {
        <section class="page fullpage">
            <h1>"Page not found"</h1>
            <p class="lead">"There is nothing at this address in Warden."</p>
            <A href=href("/")>"Go to the overview"</A>
        </section>
    }
}

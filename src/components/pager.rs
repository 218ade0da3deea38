//! "21–40 of 9,000" with Previous and Next.

use leptos::prelude::*;

#[component]
pub fn Pager(total: usize, page: usize, per_page: usize, on_page: Callback<usize>) -> impl IntoView {
    let pages = total.div_ceil(per_page.max(1)).max(1);
    let current = page.clamp(1, pages);
    let first = if total == 0 { 0 } else { (current - 1) * per_page + 1 };
    let last = (current * per_page).min(total);
    view! {
        <nav class="paging" aria-label="Pages">
            <span>{format!("{first}–{last} of {total}")}</span>
            <button type="button" class="button" disabled={current <= 1} on:click=move |_| on_page.run(current - 1)>"Previous"</button>
            <button type="button" class="button" disabled={current >= pages} on:click=move |_| on_page.run(current + 1)>"Next"</button>
        </nav>
    }
}

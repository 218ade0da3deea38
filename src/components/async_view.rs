//! Data from the server, the same way on every page: a spinner the first
//! time, the last answer kept on screen while a refetch runs (Transition),
//! and an error in place when the request fails.

use leptos::prelude::*;

use crate::api::ApiResult;
use crate::components::states::{ErrorMessage, Loading};

/// Renders `children` with the resource's value once it is there:
/// `<AsyncView resource=agents loading="Loading agents…" let:list> … </AsyncView>`.
///
/// When the resource reloads, what the children owned (signals, memos,
/// stored values, `Signal`s made with `.into()` in their props) is disposed
/// at once, but the old children stay on screen until the new answer comes,
/// and their closures still run if a signal they follow changes meanwhile.
/// A closure that then reads something the children owned panics (and the
/// wasm traps, so the new answer never shows). So make what the children's
/// closures follow in the page, outside the `AsyncView`, and read the
/// children's own values with `try_` (see `pages/cases.rs`, `CaseWork`).
#[component]
pub fn AsyncView<T, CF, CV>(
    resource: LocalResource<ApiResult<T>>, #[prop(default = "Loading…")] loading: &'static str, children: CF
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    CF: Fn(T) -> CV + Clone + Send + Sync + 'static,
    CV: IntoView + 'static,
{
    view! {
        <Transition fallback=move || view! { <Loading label=loading /> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(value) => children(value).into_any(),
                        Err(err) => view! { <ErrorMessage message=err.message /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

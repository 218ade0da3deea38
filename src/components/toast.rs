//! Short confirmations ("Agent unenrolled") in one corner, announced to
//! screen readers, each gone after a few seconds or when dismissed.

use std::time::Duration;

use leptos::prelude::*;

const SHOWN_FOR: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
pub struct Toasts(RwSignal<Vec<(u64, String)>>, StoredValue<u64>);

impl Toasts {
    pub fn show(&self, message: impl Into<String>) {
        let id = self.1.get_value() + 1;
        self.1.set_value(id);
        self.0.update(|all| all.push((id, message.into())));
        let all = self.0;
        set_timeout(move || all.update(|all| all.retain(|(shown, _)| *shown != id)), SHOWN_FOR);
    }

    fn dismiss(&self, id: u64) {
        self.0.update(|all| all.retain(|(shown, _)| *shown != id));
    }
}

pub fn provide_toasts() {
    provide_context(Toasts(RwSignal::new(Vec::new()), StoredValue::new(0)));
}

pub fn use_toasts() -> Toasts {
    use_context::<Toasts>().unwrap_or_else(|| {
        provide_toasts();
        expect_context()
    })
}

/// Where the toasts appear; once, in the layout.
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || toasts.0.get() key=|(id, _)| *id let:toast>
                <div class="toast" data-testid="toast">
                    <span>{toast.1}</span>
                    <button type="button" class="button button-ghost" aria-label="Dismiss" on:click=move |_| toasts.dismiss(toast.0)>"×"</button>
                </div>
            </For>
        </div>
    }
}

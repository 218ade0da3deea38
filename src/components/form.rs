//! Form controls with their label and an error slot, so every form reads
//! and reports the same way.

use leptos::prelude::*;

/// A labelled control: `<Field label="Name"><input … /></Field>`, with the
/// field's own error under it.
#[component]
pub fn Field(label: &'static str, #[prop(optional, into)] error: Signal<Option<String>>, children: Children) -> impl IntoView {
    view! {
        <label class="field">
            <span class="field-label">{label}</span>
            {children()}
            {move || error.get().map(|message| view! { <span class="field-error" role="alert">{message}</span> })}
        </label>
    }
}

/// A choice among fixed options, as `(value, label)`.
#[component]
pub fn Select(label: &'static str, name: &'static str, options: &'static [(&'static str, &'static str)], value: RwSignal<String>) -> impl IntoView {
    view! {
        <Field label>
            <select name=name on:change=move |ev| value.set(event_target_value(&ev))>
                {options.iter().map(|&(option, text)| view! { <option value=option selected=move || value.get() == option>{text}</option> }).collect_view()}
            </select>
        </Field>
    }
}

/// A checkbox with its label on the right.
#[component]
pub fn Checkbox(#[prop(into)] label: String, #[prop(into)] checked: Signal<bool>, on_change: Callback<bool>) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" prop:checked=checked on:change=move |ev| on_change.run(event_target_checked(&ev)) />
            {label}
        </label>
    }
}

/// Several lines of text (a request body, headers), with its label and error slot.
#[component]
pub fn TextArea(
    label: &'static str,
    name: &'static str,
    value: RwSignal<String>,
    #[prop(default = 6)] rows: u32,
    #[prop(optional, into)] placeholder: &'static str,
    #[prop(optional, into)] error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <Field label error>
            <textarea name=name rows=rows placeholder=placeholder spellcheck="false" bind:value=value></textarea>
        </Field>
    }
}

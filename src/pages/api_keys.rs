//! Personal API keys: list, create (the secret is shown once, with a copy
//! button) and invalidate. Scripts send `Authorization: ApiKey <encoded>`.

use leptos::prelude::*;
use warden_core::api_keys::{ApiKeyInfo, CreateApiKeyRequest, CreateApiKeyResponse};
use warden_core::authz::{Privilege, Role};

use crate::api;
use crate::components::async_view::AsyncView;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::data_table::{Column, DataTable};
use crate::components::form::{Checkbox, Field, Select};
use crate::components::states::ErrorMessage;
use crate::components::time::{ago, until, use_now};
use crate::components::toast::use_toasts;
use crate::session::use_session;

const EXPIRATIONS: [(&str, &str); 5] = [("30d", "30 days"), ("7d", "7 days"), ("1d", "1 day"), ("90d", "90 days"), ("", "Never")];

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let session = use_session();
    let user = move || session.user();
    let may_manage = move || user().is_some_and(|u| u.can(Privilege::ApiKeysManageOwn));
    let admin = move || user().is_some_and(|u| u.can(Privilege::UsersAdmin));
    let now = use_now();
    let toasts = use_toasts();

    let name = RwSignal::new(String::new());
    let expiration = RwSignal::new("30d".to_owned());
    let limited_to = RwSignal::new(Vec::<Role>::new());
    let create = Action::new_local(move |request: &CreateApiKeyRequest| {
        let request = request.clone();
        async move { api::api_keys::create(&request).await }
    });
    let invalidate = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::api_keys::invalidate(&id).await }
    });
    let keys = LocalResource::new(move || {
        create.version().track();
        invalidate.version().track();
        async move {
            match api::api_keys::list().await {
                // Not an error to show: the page says why instead.
                Err(err) if err.status == 403 => Ok(None),
                other => other.map(Some),
            }
        }
    });

    let created = RwSignal::new(None::<CreateApiKeyResponse>);
    Effect::new(move |_| {
        if let Some(Ok(key)) = create.value().get() {
            created.set(Some(key));
            name.set(String::new());
            limited_to.set(Vec::new());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let expiration = Some(expiration.get_untracked()).filter(|e| !e.is_empty());
        let roles = limited_to.get_untracked();
        let role_descriptors = (!roles.is_empty()).then(|| roles.iter().map(|r| (r.as_str().to_owned(), serde_json::json!({}))).collect());
        create.dispatch(CreateApiKeyRequest { name: name.get_untracked(), expiration, role_descriptors });
    };

    let confirming = RwSignal::new(None::<ApiKeyInfo>);
    Effect::new(move |_| {
        if let Some(Ok(_)) = invalidate.value().get()
            && let Some(key) = confirming.get_untracked()
        {
            confirming.set(None);
            toasts.show(format!("Key “{}” invalidated", key.name));
        }
    });
    let invalidate_error = Signal::derive(move || match invalidate.value().get() {
        Some(Err(err)) => Some(err.message),
        _ => None,
    });
    let copied = RwSignal::new(false);
    let copy = move |text: String| {
        let clipboard = window().navigator().clipboard();
        let promise = clipboard.write_text(&text);
        leptos::task::spawn_local(async move {
            copied.set(wasm_bindgen_futures::JsFuture::from(promise).await.is_ok());
        });
    };

    let columns = move || {
        let mut columns = vec![Column::new("Name", |key: &ApiKeyInfo| {
            view! { <div class="strong">{key.name.clone()}</div><code class="muted">{key.id.clone()}</code> }
        })];
        if admin() {
            columns.push(Column::new("Owner", |key: &ApiKeyInfo| key.username.clone()));
        }
        columns.extend([
            Column::new("State", move |key: &ApiKeyInfo| {
                let (class, text) = key_state(key, now.get_untracked());
                view! { <span class=class data-testid="key-state">{text}</span> }
            }),
            Column::new("Roles", |key: &ApiKeyInfo| {
                if key.roles.is_empty() { "all of the owner's".to_owned() } else { key.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ") }
            }),
            Column::new("Created", move |key: &ApiKeyInfo| {
                let creation = key.creation;
                move || ago(creation as f64, now.get())
            }),
            Column::new("Expires", move |key: &ApiKeyInfo| {
                let expiration = key.expiration;
                move || expiration.map(|t| until(t as f64, now.get()).replace("due now", "expired")).unwrap_or_else(|| "never".into())
            }),
            Column::actions(move |key: &ApiKeyInfo| {
                let target = key.clone();
                (key_state(key, now.get_untracked()).1 == "active").then(|| {
                    view! { <button type="button" class="button button-danger" on:click=move |_| confirming.set(Some(target.clone()))>"Invalidate"</button> }
                })
            }),
        ]);
        columns
    };

    view! {
        <section class="page">
            <h1>"API keys"</h1>
            <p class="lead">"Keys for scripts and integrations. A key acts as you (or with fewer of your roles) and is sent as "
                <code>"Authorization: ApiKey <encoded>"</code> "."</p>
            <Show when=may_manage fallback=|| view! {
                <div class="state state-empty">"Your roles do not allow API keys (needs api_keys:manage_own)."</div>
            }>
                <form class="panel" on:submit=on_submit aria-labelledby="new-key-title">
                    <h2 id="new-key-title">"New key"</h2>
                    <div class="form-grid">
                        <Field label="Name"><input name="name" required maxlength="256" placeholder="nightly export" bind:value=name /></Field>
                        <Select label="Expires after" name="expiration" options=&EXPIRATIONS value=expiration />
                        <button type="submit" class="button button-primary" disabled=move || create.pending().get()>"Create key"</button>
                    </div>
                    <fieldset class="fieldset">
                        <legend class="muted">"Limit to some of your roles (none ticked: all of them)"</legend>
                        {move || user().map(|u| u.roles).unwrap_or_default().into_iter().map(|role| view! {
                            <Checkbox label=role.as_str() checked=Signal::derive(move || limited_to.get().contains(&role))
                                on_change=Callback::new(move |on: bool| limited_to.update(|roles| { roles.retain(|r| *r != role); if on { roles.push(role); } })) />
                        }).collect_view()}
                    </fieldset>
                    {move || match create.value().get() { Some(Err(err)) => Some(view! { <ErrorMessage message=err.message /> }), _ => None }}
                </form>
            </Show>
            {move || created.get().map(|key| {
                let encoded = key.encoded.clone();
                view! {
                    <div class="notice" role="status" data-testid="new-key">
                        <h2>{format!("Key “{}” created", key.name)}</h2>
                        <p>"Copy it now: Warden keeps only a hash and will never show it again."</p>
                        <div class="secret">
                            <code data-testid="encoded-key">{key.encoded.clone()}</code>
                            <button type="button" class="button" on:click=move |_| copy(encoded.clone())>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                        </div>
                        <p class="muted">{format!("id {} · use it as: curl -H 'Authorization: ApiKey {}' …", key.id, key.encoded)}</p>
                        <button type="button" class="button" on:click=move |_| { created.set(None); copied.set(false); }>"Done"</button>
                    </div>
                }
            })}
            <div class="panel">
                <h2>{move || if admin() { "Everyone's keys" } else { "Your keys" }}</h2>
                <AsyncView resource=keys loading="Loading keys…" let:list>
                    {match list {
                        None => view! { <div class="state state-empty">"No keys: your roles do not allow them."</div> }.into_any(),
                        Some(list) => view! {
                            <DataTable rows=list columns=columns() empty="No API keys yet." testid="api-keys"
                                row_id=|key: &ApiKeyInfo| ("api-key-row".to_owned(), key.name.clone()) />
                        }.into_any(),
                    }}
                </AsyncView>
            </div>
            {move || confirming.get().map(|key| {
                let id = key.id.clone();
                view! {
                    <ConfirmDialog title=format!("Invalidate “{}”?", key.name) confirm="Invalidate" danger=true
                        pending=invalidate.pending() error=invalidate_error
                        on_confirm=Callback::new(move |()| { invalidate.dispatch(id.clone()); })
                        on_cancel=Callback::new(move |()| confirming.set(None))>
                        <p>"Every call with this key is refused from now on. This cannot be undone."</p>
                    </ConfirmDialog>
                }
            })}
        </section>
    }
}

/// Active, expired or invalidated, with its badge class.
fn key_state(key: &ApiKeyInfo, now_ms: f64) -> (&'static str, &'static str) {
    if key.invalidated {
        ("badge status-unenrolled", "invalidated")
    } else if key.expiration.is_some_and(|at| (at as f64) <= now_ms) {
        ("badge status-offline", "expired")
    } else {
        ("badge status-online", "active")
    }
}

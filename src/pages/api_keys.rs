//! Personal API keys: list, create (the secret is shown once, with a copy
//! button) and invalidate. Scripts send `Authorization: ApiKey <encoded>`.

use leptos::prelude::*;
use warden_core::api_keys::{ApiKeyInfo, ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, InvalidateApiKeyRequest, InvalidateApiKeyResponse};
use warden_core::authz::{Privilege, Role};
use warden_core::paths;

use crate::api;
use crate::components::states::{ErrorMessage, Loading};
use crate::components::time::{ago, until, use_now};
use crate::session::use_session;

const EXPIRATIONS: [(&str, &str); 5] = [("30d", "30 days"), ("7d", "7 days"), ("1d", "1 day"), ("90d", "90 days"), ("", "Never")];

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let session = use_session();
    let user = move || session.user();
    let may_manage = move || user().is_some_and(|u| u.can(Privilege::ApiKeysManageOwn));
    let admin = move || user().is_some_and(|u| u.can(Privilege::UsersAdmin));
    let now = use_now();
    let changed = RwSignal::new(0u32);
    let keys = LocalResource::new(move || {
        changed.track();
        async move { api::get::<ApiKeyList>(paths::API_KEYS).await.map(|list| list.api_keys) }
    });

    let name = RwSignal::new(String::new());
    let expiration = RwSignal::new("30d".to_owned());
    let limited_to = RwSignal::new(Vec::<Role>::new());
    let create = Action::new_local(move |request: &CreateApiKeyRequest| {
        let request = request.clone();
        async move { api::post::<_, CreateApiKeyResponse>(paths::API_KEYS, &request).await }
    });
    let created = RwSignal::new(None::<CreateApiKeyResponse>);
    Effect::new(move |_| {
        if let Some(Ok(key)) = create.value().get() {
            created.set(Some(key));
            name.set(String::new());
            limited_to.set(Vec::new());
            changed.update(|c| *c += 1);
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
    let invalidate = Action::new_local(move |id: &String| {
        let request = InvalidateApiKeyRequest { ids: vec![id.clone()] };
        async move { api::delete::<_, InvalidateApiKeyResponse>(paths::API_KEYS, &request).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = invalidate.value().get() {
            confirming.set(None);
            changed.update(|c| *c += 1);
        }
    });
    let copied = RwSignal::new(false);
    let copy = move |text: String| {
        let clipboard = window().navigator().clipboard();
        let promise = clipboard.write_text(&text);
        leptos::task::spawn_local(async move {
            copied.set(wasm_bindgen_futures::JsFuture::from(promise).await.is_ok());
        });
    };

    let row = move |key: ApiKeyInfo| {
        let expired = key.expiration.is_some_and(|at| (at as f64) <= now.get_untracked());
        let state = if key.invalidated {
            ("badge status-unenrolled", "invalidated")
        } else if expired {
            ("badge status-offline", "expired")
        } else {
            ("badge status-online", "active")
        };
        let roles =
            if key.roles.is_empty() { "all of the owner's".to_owned() } else { key.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ") };
        let creation = key.creation;
        let expiration = key.expiration;
        let active = !key.invalidated && !expired;
        let target = key.clone();
        view! {
            <tr data-testid="api-key-row" data-name=key.name.clone()>
                <td><div class="strong">{key.name.clone()}</div><code class="muted">{key.id.clone()}</code></td>
                <Show when=admin><td>{key.username.clone()}</td></Show>
                <td><span class=state.0 data-testid="key-state">{state.1}</span></td>
                <td>{roles}</td>
                <td>{move || ago(creation as f64, now.get())}</td>
                <td>{move || expiration.map(|t| until(t as f64, now.get()).replace("due now", "expired")).unwrap_or_else(|| "never".into())}</td>
                <td>
                    <Show when=move || active>
                        {
                            let target = target.clone();
                            view! { <button type="button" class="button button-danger" on:click=move |_| confirming.set(Some(target.clone()))>"Invalidate"</button> }
                        }
                    </Show>
                </td>
            </tr>
        }
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
                        <label>"Name"<input name="name" required maxlength="256" placeholder="nightly export" bind:value=name /></label>
                        <label>"Expires after"
                            <select name="expiration" on:change=move |ev| expiration.set(event_target_value(&ev))>
                                {EXPIRATIONS.into_iter().map(|(value, label)| view! { <option value=value selected=move || expiration.get() == value>{label}</option> }).collect_view()}
                            </select>
                        </label>
                        <button type="submit" class="button button-primary" disabled=move || create.pending().get()>"Create key"</button>
                    </div>
                    <fieldset class="fieldset">
                        <legend class="muted">"Limit to some of your roles (none ticked: all of them)"</legend>
                        {move || user().map(|u| u.roles).unwrap_or_default().into_iter().map(|role| view! {
                            <label class="check">
                                <input type="checkbox" prop:checked=move || limited_to.get().contains(&role)
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        limited_to.update(|roles| { roles.retain(|r| *r != role); if on { roles.push(role); } });
                                    } />
                                {role.as_str()}
                            </label>
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
                <Transition fallback=|| view! { <Loading label="Loading keys…" /> }>
                    {move || Suspend::new(async move {
                        match keys.await {
                            Err(err) if err.status == 403 => view! { <div class="state state-empty">"No keys: your roles do not allow them."</div> }.into_any(),
                            Err(err) => view! { <ErrorMessage message=err.message /> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <div class="state state-empty">"No API keys yet."</div> }.into_any(),
                            Ok(list) => view! {
                                <div class="table-scroll">
                                    <table class="table" data-testid="api-keys">
                                        <thead><tr>
                                            <th>"Name"</th><Show when=admin><th>"Owner"</th></Show><th>"State"</th><th>"Roles"</th>
                                            <th>"Created"</th><th>"Expires"</th><th><span class="sr-only">"Actions"</span></th>
                                        </tr></thead>
                                        <tbody>{list.into_iter().map(row).collect_view()}</tbody>
                                    </table>
                                </div>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </div>
            {move || confirming.get().map(|key| {
                let id = key.id.clone();
                view! {
                    <div class="dialog-backdrop">
                        <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="invalidate-title"
                            on:keydown=move |ev| if ev.key() == "Escape" { confirming.set(None) }>
                            <h2 id="invalidate-title">{format!("Invalidate “{}”?", key.name)}</h2>
                            <p>"Every call with this key is refused from now on. This cannot be undone."</p>
                            {move || match invalidate.value().get() { Some(Err(err)) => Some(view! { <ErrorMessage message=err.message /> }), _ => None }}
                            <div class="actions-row">
                                <button type="button" class="button" autofocus on:click=move |_| confirming.set(None)>"Cancel"</button>
                                <button type="button" class="button button-danger" disabled=move || invalidate.pending().get()
                                    on:click=move |_| { invalidate.dispatch(id.clone()); }>"Invalidate"</button>
                            </div>
                        </div>
                    </div>
                }
            })}
        </section>
    }
}

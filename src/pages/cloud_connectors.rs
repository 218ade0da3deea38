//! Cloud connectors, under Fleet: the list with each connector's
//! verification state, a form per provider to create one (its fields are
//! the core's `CloudProvider::vars()`; secrets are write-only), and one
//! connector with its last verification's results per policy template and
//! per permission (why each was denied or could not be checked), "Verify
//! now", its settings and delete. Live on `cloud_connector_changed`.
//! Reading needs fleet:read; creating, editing, verifying and deleting need
//! fleet:all (the server refuses the same).

use std::collections::BTreeMap;

use leptos::Params;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query};
use leptos_router::params::Params;
use serde_json::{Value, json};
use warden_core::authz::Privilege;
use warden_core::cloud_connectors::{
    AccountType, CloudConnector, CloudProvider, CreateCloudConnector, PermissionResult, PermissionStatus, TemplateResult, UpdateCloudConnector,
    VarSpec, VerificationStatus, check_vars, normalize_name,
};
use warden_core::paths;

use crate::api;
use crate::api::cloud_connectors::Usage;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::data_table::{Column, DataTable};
use crate::components::form::{Checkbox, Field};
use crate::components::page_style::use_page_style;
use crate::components::pager::Pager;
use crate::components::states::ErrorMessage;
use crate::components::tabs::{Tabs, current_tab};
use crate::components::time::{ago_text, parse_time, until, use_now, utc_time};
use crate::components::toast::use_toasts;
use crate::components::tooltip::Tooltip;
use crate::live::{Topic, use_live};
use crate::session::use_session;

const PER_PAGE: usize = 20;
const TABS: &[(&str, &str)] = &[("permissions", "Permissions"), ("policies", "Package policies"), ("settings", "Settings")];

/// The Fleet area's views, as links: path, title, and whether only that
/// path (not the ones below it) makes the link current. The shell's Fleet
/// link stays current on all of them.
const FLEET_VIEWS: &[(&str, &str, bool)] = &[("/fleet", "Agents", true), ("/fleet/cloud-connectors", "Cloud connectors", false)];

/// The Fleet area's sub-navigation.
#[component]
pub fn FleetNav() -> impl IntoView {
    use_page_style("fleet.css");
    view! {
        <nav class="subnav" aria-label="Fleet">
            {FLEET_VIEWS.iter().map(|&(path, title, exact)| view! { <A href=href(path) exact attr:class="subnav-link">{title}</A> }).collect_view()}
        </nav>
    }
}

fn may_edit() -> Signal<bool> {
    let session = use_session();
    Signal::derive(move || session.user().is_some_and(|u| u.can(Privilege::FleetAll)))
}

fn account_label(account: AccountType) -> &'static str {
    match account {
        AccountType::SingleAccount => "Single account",
        AccountType::OrganizationAccount => "Organization",
    }
}

/// A connector's verification state: a verifier at work shows as such,
/// whatever the last one came to.
#[component]
pub fn VerificationBadge(status: Option<VerificationStatus>, in_flight: bool) -> impl IntoView {
    let (key, label, why) = match (in_flight, status) {
        (true, _) => ("verifying", "Verifying…", "A verifier is checking its permissions now"),
        (false, Some(VerificationStatus::Success)) => ("success", "Success", "Every required permission was granted at the last verification"),
        (false, Some(VerificationStatus::Failed)) => {
            ("failed", "Failed", "The last verification found required permissions missing, or could not finish")
        }
        (false, _) => ("pending", "Pending", "Not verified since it was created or its credentials changed"),
    };
    view! { <span class=format!("badge cc-{key}") title=why data-testid="verification-status" data-status=key>{label}</span> }
}

#[component]
fn PermissionBadge(status: PermissionStatus) -> impl IntoView {
    let why = match status {
        PermissionStatus::Granted => "The cloud allows it",
        PermissionStatus::Denied => "The cloud denies it",
        PermissionStatus::Error => "It could not be checked",
        PermissionStatus::Skipped => "Optional, and not granted: the integration works without it",
    };
    view! { <span class=format!("badge cc-perm-{}", status.as_str()) title=why data-status=status.as_str()>{status.as_str()}</span> }
}

/// `/fleet/cloud-connectors` and `/fleet/cloud-connectors/:id`, one lazy
/// module for both: the list, or the connector the path names.
#[component]
pub fn CloudConnectorsArea() -> impl IntoView {
    use_page_style("fleet.css");
    let params = use_params_map();
    let one = Memo::new(move |_| params.with(|p| p.get("id").is_some()));
    move || if one.get() { view! { <ConnectorPage /> }.into_any() } else { view! { <ConnectorsPage /> }.into_any() }
}

// ---------------------------------------------------------------------------
// The form, for create and edit.

/// Every provider's variables, once each (a name belongs to one provider).
fn all_vars() -> impl Iterator<Item = &'static VarSpec> {
    CloudProvider::ALL.iter().flat_map(|provider| provider.vars().iter())
}

/// The fields of the create and edit forms. One value per variable of every
/// provider, so switching provider while creating loses nothing typed.
#[derive(Clone, Copy)]
struct ConnectorForm {
    name: RwSignal<String>,
    provider: RwSignal<CloudProvider>,
    account_type: RwSignal<AccountType>,
    values: StoredValue<BTreeMap<&'static str, RwSignal<String>>>,
    /// Editing: the secrets the connector has (empty fields keep them) and its text values.
    stored_secrets: RwSignal<Vec<String>>,
    stored_text: RwSignal<BTreeMap<String, String>>,
}

impl ConnectorForm {
    fn new() -> ConnectorForm {
        ConnectorForm {
            name: RwSignal::new(String::new()),
            provider: RwSignal::new(CloudProvider::Aws),
            account_type: RwSignal::new(AccountType::SingleAccount),
            values: StoredValue::new(all_vars().map(|spec| (spec.name, RwSignal::new(String::new()))).collect()),
            stored_secrets: RwSignal::new(Vec::new()),
            stored_text: RwSignal::new(BTreeMap::new()),
        }
    }

    fn value(&self, name: &str) -> RwSignal<String> {
        // Every name of `all_vars` has its signal; an unknown one gets a throwaway.
        self.values.with_value(|values| values.get(name).copied()).unwrap_or_else(|| RwSignal::new(String::new()))
    }

    /// Filled from a stored connector: its text values; secrets stay empty
    /// (the API never sends them back) and are kept unless typed again.
    fn fill(&self, connector: &CloudConnector) {
        self.name.set(connector.name.clone());
        self.provider.set(connector.cloud_provider);
        self.account_type.set(connector.account_type);
        let mut secrets = Vec::new();
        let mut text = BTreeMap::new();
        for spec in all_vars() {
            let value = match connector.vars.get(spec.name) {
                Some(var) if var.var_type == "password" => {
                    secrets.push(spec.name.to_owned());
                    String::new()
                }
                Some(var) => {
                    let value = var.value.as_str().unwrap_or_default().to_owned();
                    text.insert(spec.name.to_owned(), value.clone());
                    value
                }
                None => String::new(),
            };
            self.value(spec.name).set(value);
        }
        self.stored_secrets.set(secrets);
        self.stored_text.set(text);
    }

    /// The variables as the API takes them: what was typed, each secret as
    /// `{type: "password", value}`. Empty fields are left out: on edit they
    /// stay as stored, on create the core's check names the missing ones.
    fn vars(&self) -> BTreeMap<String, Value> {
        let mut vars = BTreeMap::new();
        for spec in self.provider.get_untracked().vars() {
            let value = self.value(spec.name).get_untracked();
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let kind = if spec.secret { "password" } else { "text" };
            vars.insert(spec.name.to_owned(), json!({"type": kind, "value": value}));
        }
        vars
    }

    /// The name and variables, checked by the core's rules (the server's own),
    /// so a mistake shows before the round trip.
    fn checked(&self, editing: bool) -> Result<(String, BTreeMap<String, Value>), String> {
        let name = normalize_name(&self.name.get_untracked())?;
        let vars = self.vars();
        let (secrets, text) = if editing { (self.stored_secrets.get_untracked(), self.stored_text.get_untracked()) } else { Default::default() };
        check_vars(self.provider.get_untracked(), &vars, &secrets, &text, editing)?;
        Ok((name, vars))
    }
}

/// Name, account type and the provider's variables.
#[component]
fn ConnectorFields(form: ConnectorForm, editing: bool) -> impl IntoView {
    view! {
        <div class="form-grid">
            <Field label="Name"><input name="name" required maxlength="255" autocomplete="off" placeholder="AWS production" bind:value=form.name /></Field>
            {(!editing).then(|| view! {
                <Field label="Provider">
                    <select name="provider" on:change=move |ev| if let Some(p) = CloudProvider::parse(&event_target_value(&ev)) { form.provider.set(p) }>
                        {CloudProvider::ALL.iter().map(|&p| view! {
                            <option value=p.as_str() selected=move || form.provider.get() == p>{p.label()}</option>
                        }).collect_view()}
                    </select>
                </Field>
            })}
            <Field label="Account type">
                <select name="account_type" on:change=move |ev| if let Some(a) = AccountType::parse(&event_target_value(&ev)) { form.account_type.set(a) }>
                    {AccountType::ALL.iter().map(|&a| view! {
                        <option value=a.as_str() selected=move || form.account_type.get() == a>{account_label(a)}</option>
                    }).collect_view()}
                </select>
            </Field>
        </div>
        {move || {
            let provider = form.provider.get();
            let fields = provider.vars().iter().map(|spec| {
                let value = form.value(spec.name);
                let stored = editing && spec.secret && form.stored_secrets.with(|s| s.iter().any(|n| n == spec.name));
                let label = match (spec.required, spec.secret) {
                    (true, true) => format!("{} (secret)", spec.label),
                    (true, false) => spec.label.to_owned(),
                    (false, true) => format!("{} (secret, optional)", spec.label),
                    (false, false) => format!("{} (optional)", spec.label),
                };
                let placeholder = if stored { "stored — leave empty to keep" } else { "" };
                let required = spec.required && !editing && !stored;
                view! {
                    <label class="field">
                        <span class="field-label">{label}</span>
                        <input name=spec.name required=required autocomplete=if spec.secret { "new-password" } else { "off" }
                            type=if spec.secret { "password" } else { "text" } placeholder=placeholder bind:value=value
                            data-stored=stored.then_some("true") />
                    </label>
                }
            }).collect_view();
            let secrets = provider.vars().iter().any(|spec| spec.secret);
            view! {
                <div class="form-grid cc-vars" data-provider=provider.as_str()>{fields}</div>
                {secrets.then(|| view! {
                    <p class="muted">{if editing {
                        "Secrets are write-only: Warden never shows them again. Leave a stored one empty to keep it; type a new value to replace it."
                    } else {
                        "Secrets are write-only: encrypted at rest and never shown again."
                    }}</p>
                })}
            }
        }}
    }
}

// ---------------------------------------------------------------------------
// The list.

/// What the list shows, as its URL says: `/fleet/cloud-connectors?page=2`.
#[derive(Params, Debug, Clone, PartialEq, Default)]
struct ListView {
    page: Option<usize>,
}

#[component]
fn ConnectorsPage() -> impl IntoView {
    let may_edit = may_edit();
    let navigate = use_navigate();
    let query = use_query::<ListView>();
    let page = move || query.with(|q| q.as_ref().ok().and_then(|q| q.page).unwrap_or(1).max(1));
    let live = use_live(Topic::CloudConnectors);
    let now = use_now();
    let form = ConnectorForm::new();
    let creating = RwSignal::new(false);
    let form_error = RwSignal::new(None::<String>);
    let create = Action::new_local(move |request: &CreateCloudConnector| {
        let request = request.clone();
        async move { api::cloud_connectors::create(&request).await }
    });
    let connectors = LocalResource::new(move || {
        live.track();
        create.version().track();
        let page = page();
        async move { api::cloud_connectors::list(page, PER_PAGE).await }
    });
    let open_created = navigate.clone();
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            open_created(&format!("/fleet/cloud-connectors/{}", paths::encode(&created.id)), Default::default());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.checked(false) {
            Err(message) => form_error.set(Some(message)),
            Ok((name, vars)) => {
                form_error.set(None);
                let request = CreateCloudConnector {
                    name,
                    cloud_provider: form.provider.get_untracked(),
                    account_type: Some(form.account_type.get_untracked()),
                    namespace: None,
                    vars,
                };
                create.dispatch(request);
            }
        }
    };
    let error = move || form_error.get().or_else(|| create.value().get().and_then(|r| r.err()).map(|e| e.message));
    let on_page =
        Callback::new(move |page: usize| navigate(&paths::with_query("/fleet/cloud-connectors", &[("page", &page.to_string())]), Default::default()));

    let columns = move || {
        vec![
            Column::new("Name", |c: &CloudConnector| {
                let name = c.name.clone();
                view! { <A href=href(&format!("/fleet/cloud-connectors/{}", paths::encode(&c.id)))>{name}</A> }
            }),
            Column::new("Provider", |c: &CloudConnector| c.cloud_provider.label()),
            Column::new(
                "Verification",
                |c: &CloudConnector| view! { <VerificationBadge status=c.verification_status in_flight=c.verification_in_flight /> },
            ),
            Column::new("Package policies", |c: &CloudConnector| c.package_policy_count.to_string()),
            Column::new("Last verification", move |c: &CloudConnector| last_verification(c, now)),
            Column::new("Next verification", move |c: &CloudConnector| next_verification(c, now)),
        ]
    };

    view! {
        <section class="page">
            <FleetNav />
            <div class="page-head">
                <h1>"Cloud connectors"</h1>
                <Show when=move || may_edit.get() && !creating.get()>
                    <button type="button" class="button button-primary" on:click=move |_| creating.set(true)>"New cloud connector"</button>
                </Show>
            </div>
            <p class="lead">"The cloud accounts Fleet's integrations read from. Warden checks each connector's permissions with a short-lived verifier: every required permission of every policy template that uses it."</p>
            <Show when=move || may_edit.get() && creating.get()>
                <form class="panel cc-form" on:submit=on_submit aria-labelledby="new-cloud-connector-title" novalidate>
                    <h2 id="new-cloud-connector-title">"New cloud connector"</h2>
                    <ConnectorFields form editing=false />
                    {move || error().map(|message| view! { <ErrorMessage message /> })}
                    <div class="actions-row">
                        <button type="button" class="button" on:click=move |_| { creating.set(false); form_error.set(None); }>"Cancel"</button>
                        <button type="submit" class="button button-primary" disabled=move || create.pending().get()>"Create cloud connector"</button>
                    </div>
                </form>
            </Show>
            <AsyncView resource=connectors loading="Loading cloud connectors…" let:list>
                <DataTable rows=list.items columns=columns()
                    empty="No cloud connectors yet. A connector holds the credentials an integration uses to read a cloud account."
                    testid="cloud-connectors" row_id=|c: &CloudConnector| ("cloud-connector-row".to_owned(), c.name.clone()) />
                {(list.total as usize > PER_PAGE).then(|| view! { <Pager total=list.total as usize page=page() per_page=PER_PAGE on_page /> })}
            </AsyncView>
        </section>
    }
}

/// "12 s ago" (and failed, when it did), or never.
fn last_verification(c: &CloudConnector, now: ReadSignal<f64>) -> impl IntoView + use<> {
    let finished = c.verification_finished_at.clone().or_else(|| c.verification_failed_at.clone());
    let title = finished.as_deref().map(utc_time);
    view! { <span title=title>{move || ago_text(finished.as_deref(), now.get())}</span> }
}

/// When the task will look at it again, as far as Warden can say.
fn next_verification(c: &CloudConnector, now: ReadSignal<f64>) -> impl IntoView + use<> {
    if c.verification_in_flight {
        return view! { <span class="muted">"in progress"</span> }.into_any();
    }
    if c.package_policy_count == 0 {
        return view! { <span class="muted" title="Only connectors that package policies use are verified">"— (not in use)"</span> }.into_any();
    }
    match c.next_verification_at.clone() {
        Some(at) => {
            let title = utc_time(&at);
            view! { <span title=title>{move || parse_time(&at).map(|t| until(t, now.get())).unwrap_or_default()}</span> }.into_any()
        }
        None => view! { <span title="It is due: the verifier task takes it at its next run">"next run"</span> }.into_any(),
    }
}

// ---------------------------------------------------------------------------
// One connector.

#[component]
fn ConnectorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let may_edit = may_edit();
    let navigate = use_navigate();
    let toasts = use_toasts();
    let now = use_now();
    let live = use_live(Topic::CloudConnectors);
    let tab = current_tab(TABS);

    let verify = Action::new_local(move |_: &()| {
        let id = id();
        async move { api::cloud_connectors::verify(&id).await }
    });
    let form = ConnectorForm::new();
    let form_error = RwSignal::new(None::<String>);
    let update = Action::new_local(move |request: &UpdateCloudConnector| {
        let (id, request) = (id(), request.clone());
        async move { api::cloud_connectors::update(&id, &request).await }
    });
    let delete = Action::new_local(move |force: &bool| {
        let (id, force) = (id(), *force);
        async move { api::cloud_connectors::delete(&id, force).await }
    });
    let connector = LocalResource::new(move || {
        live.track();
        verify.version().track();
        update.version().track();
        let id = id();
        async move { api::cloud_connectors::get(&id).await }
    });
    let usage = LocalResource::new(move || {
        live.track();
        let id = id();
        async move { api::cloud_connectors::usage(&id).await }
    });
    // What the buttons and the dialog follow, made here (outside the view
    // that each reload rebuilds).
    let loaded = Memo::new(move |_| connector.get().and_then(Result::ok));
    let in_flight = Memo::new(move |_| loaded.with(|c| c.as_ref().is_some_and(|c| c.verification_in_flight)));
    let in_use = Memo::new(move |_| loaded.with(|c| c.as_ref().map_or(0, |c| c.package_policy_count)));
    // The form is filled once, from the first answer, and again after a save:
    // live reloads never overwrite what is being typed.
    let filled = RwSignal::new(false);
    Effect::new(move |_| {
        if !filled.get_untracked()
            && let Some(c) = loaded.get()
        {
            form.fill(&c);
            filled.set(true);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(saved)) = update.value().get() {
            // Secrets typed are sent once: the form shows them as stored again.
            form.fill(&saved);
            toasts.show("Cloud connector saved");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = verify.value().get() {
            toasts.show("Verification requested: the verifier starts soon");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            toasts.show("Cloud connector deleted");
            navigate("/fleet/cloud-connectors", Default::default());
        }
    });
    let verify_error = move || verify.value().get().and_then(|r| r.err()).map(|e| e.message);
    let on_save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.checked(true) {
            Err(message) => form_error.set(Some(message)),
            Ok((name, vars)) => {
                form_error.set(None);
                let vars = (!vars.is_empty()).then_some(vars);
                update.dispatch(UpdateCloudConnector { name: Some(name), account_type: Some(form.account_type.get_untracked()), vars });
            }
        }
    };
    let save_error = move || form_error.get().or_else(|| update.value().get().and_then(|r| r.err()).map(|e| e.message));
    let confirming = RwSignal::new(false);
    let force = RwSignal::new(false);
    let delete_error = Signal::derive(move || delete.value().get().and_then(|r| r.err()).map(|e| e.message));

    view! {
        <section class="page">
            <FleetNav />
            <p><A href=href("/fleet/cloud-connectors")>"← Cloud connectors"</A></p>
            <AsyncView resource=connector loading="Loading cloud connector…" let:connector>
                <ConnectorSummary connector=connector.clone() now />
            </AsyncView>
            <Show when=move || may_edit.get() && loaded.with(Option::is_some)>
                <div class="actions-row actions-start">
                    <Tooltip text=Signal::derive(move || (in_use.get() == 0).then(|| "No package policy uses it: there are no permissions to verify".to_owned()))>
                        <button type="button" class="button button-primary" data-testid="verify-now"
                            disabled=move || verify.pending().get() || in_flight.get() || in_use.get() == 0
                            title=move || in_flight.get().then_some("A verification of it is in progress")
                            on:click=move |_| { verify.dispatch(()); }>
                            {move || if in_flight.get() { "Verifying…" } else { "Verify now" }}
                        </button>
                    </Tooltip>
                    <button type="button" class="button button-danger" on:click=move |_| { force.set(false); confirming.set(true); }>"Delete"</button>
                </div>
                {move || verify_error().map(|message| view! { <ErrorMessage message /> })}
            </Show>
            <Show when=move || loaded.with(Option::is_some)>
                <Tabs label="Cloud connector" tabs=TABS current=tab>
                    {move || match tab.get() {
                        "policies" => view! {
                            <AsyncView resource=usage loading="Loading package policies…" let:policies>
                                <DataTable rows=policies columns=usage_columns() testid="cloud-connector-usage"
                                    empty="No package policy uses it, so there is nothing to verify: an integration's package policy names it with cloud_connector_id." />
                            </AsyncView>
                        }.into_any(),
                        "settings" => if may_edit.get() {
                            view! {
                                <form class="panel cc-form" on:submit=on_save aria-label="Edit cloud connector" novalidate>
                                    <ConnectorFields form editing=true />
                                    {move || save_error().map(|message| view! { <ErrorMessage message /> })}
                                    <div class="actions-row">
                                        <button type="submit" class="button button-primary" disabled=move || update.pending().get()>"Save"</button>
                                    </div>
                                </form>
                            }.into_any()
                        } else {
                            view! { <p class="muted">"Changing a cloud connector needs fleet:all."</p> }.into_any()
                        },
                        _ => view! {
                            <AsyncView resource=connector let:connector>
                                <Results connector now />
                            </AsyncView>
                        }.into_any(),
                    }}
                </Tabs>
            </Show>
            <Show when=move || confirming.get()>
                <ConfirmDialog title="Delete this cloud connector?" confirm="Delete" danger=true
                    pending=delete.pending() error=delete_error
                    on_confirm=Callback::new(move |()| { delete.dispatch(force.get_untracked()); })
                    on_cancel=Callback::new(move |()| confirming.set(false))>
                    {move || match in_use.get() {
                        0 => view! { <p>"No package policy uses it. Its verification history goes with it."</p> }.into_any(),
                        n => view! {
                            <p>{format!("{n} package {} it: Warden refuses to delete it while they do, unless they are detached (they stay, without a cloud connector, and their integrations lose its credentials).", if n == 1 { "policy uses" } else { "policies use" })}</p>
                            <Checkbox label=format!(" Detach the {n} package {} and delete", if n == 1 { "policy" } else { "policies" })
                                checked=force on_change=Callback::new(move |on: bool| force.set(on)) />
                        }.into_any(),
                    }}
                </ConfirmDialog>
            </Show>
        </section>
    }
}

/// The heading and the facts: provider, variables (secrets only as stored),
/// when it was and will be verified, and why the last one failed.
#[component]
fn ConnectorSummary(connector: CloudConnector, now: ReadSignal<f64>) -> impl IntoView {
    let vars = connector
        .cloud_provider
        .vars()
        .iter()
        .map(|spec| {
            let shown = match connector.vars.get(spec.name) {
                Some(var) if var.var_type == "password" => {
                    view! { <span class="badge cc-stored" title="Write-only: Warden keeps it encrypted and never shows it">"stored"</span> }
                        .into_any()
                }
                Some(var) => view! { <code>{var.value.as_str().unwrap_or_default().to_owned()}</code> }.into_any(),
                None => view! { <span class="muted">"not set"</span> }.into_any(),
            };
            view! { <dt>{spec.label}</dt><dd data-var=spec.name>{shown}</dd> }
        })
        .collect_view();
    let failed = (connector.verification_status == Some(VerificationStatus::Failed) && !connector.verification_in_flight)
        .then(|| connector.verification_failed_reason.clone())
        .flatten();
    view! {
        <div class="page-head">
            <h1>{connector.name.clone()}</h1>
        </div>
        <p class="cc-badges">
            <VerificationBadge status=connector.verification_status in_flight=connector.verification_in_flight />
            <span class="badge cc-provider">{connector.cloud_provider.label()}</span>
        </p>
        {failed.map(|reason| view! { <div class="state state-error cc-reason" data-testid="failure-reason" role="status">{reason}</div> })}
        <div class="panel">
            <dl class="facts">
                <dt>"Account type"</dt><dd>{account_label(connector.account_type)}</dd>
                {vars}
                <dt>"Package policies"</dt><dd>{connector.package_policy_count}</dd>
                <dt>"Last verification"</dt><dd>{last_verification(&connector, now)}</dd>
                <dt>"Next verification"</dt><dd>{next_verification(&connector, now)}</dd>
                <dt>"Updated"</dt><dd>{utc_time(&connector.updated_at)}</dd>
            </dl>
        </div>
    }
}

/// The last verification's results: per package policy and template, each permission.
#[component]
fn Results(connector: CloudConnector, now: ReadSignal<f64>) -> impl IntoView {
    if connector.verification_permissions.is_empty() {
        let text = if connector.verification_in_flight {
            "The first verification is in progress."
        } else if connector.package_policy_count == 0 {
            "Not verified: no package policy uses it yet."
        } else {
            "Not verified yet. Its results show here, per policy template and permission."
        };
        return view! { <div class="state state-empty">{text}</div> }.into_any();
    }
    connector.verification_permissions.into_iter().map(|template| view! { <TemplateResults template now /> }).collect_view().into_any()
}

#[component]
fn TemplateResults(template: TemplateResult, now: ReadSignal<f64>) -> impl IntoView {
    let granted = template.permissions.iter().filter(|p| p.status == PermissionStatus::Granted).count();
    let total = template.permissions.len();
    let verified = template.last_verified_at.clone();
    let title = utc_time(&verified);
    let ok = template.status == VerificationStatus::Success;
    view! {
        <section class="panel cc-template" data-testid="template-result" data-template=template.policy_template.clone()>
            <h3>
                <span>{template.package_policy_name.clone()}</span>
                <span class="muted">{format!("{} · {}", template.package_name, template.policy_template)}</span>
                <span class=if ok { "badge cc-success" } else { "badge cc-failed" }>{if ok { "all required granted" } else { "required missing" }}</span>
            </h3>
            <p class="muted small">
                {format!("{granted} of {total} granted · verified ")}
                <span title=title>{move || ago_text(Some(&verified), now.get())}</span>
            </p>
            <DataTable rows=template.permissions columns=permission_columns() empty="No permissions checked." testid="permissions"
                row_id=|p: &PermissionResult| ("permission".to_owned(), p.action.clone()) />
        </section>
    }
}

fn permission_columns() -> Vec<Column<PermissionResult>> {
    vec![
        Column::new("Permission", |p: &PermissionResult| view! { <code>{p.action.clone()}</code> }),
        Column::new("Needed", |p: &PermissionResult| if p.required { "required" } else { "optional" }),
        Column::new("Result", |p: &PermissionResult| view! { <PermissionBadge status=p.status /> }),
        Column::new("Why", |p: &PermissionResult| {
            let message = p.message.clone().unwrap_or_default();
            // The code, unless the message already starts with it.
            let code =
                p.error_code.clone().filter(|code| !message.starts_with(code.as_str())).map(|code| view! { <code class="cc-code">{code}</code> " " });
            view! { <span class="cell-wrap">{code}{message}</span> }
        }),
    ]
}

fn usage_columns() -> Vec<Column<Usage>> {
    vec![
        Column::new("Package policy", |u: &Usage| u.name.clone()),
        Column::new("Integration", |u: &Usage| {
            let title = u.package.title.clone().unwrap_or_else(|| u.package.name.clone());
            format!("{title} {}", u.package.version)
        }),
        Column::new("Agent policy", |u: &Usage| u.policy_ids.join(", ")),
    ]
}

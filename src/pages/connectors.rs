//! Connectors: the list (never system actions), a form per type to create and
//! edit (secrets are write-only; Microsoft Defender for Endpoint's fields are
//! checked by the core's rules before sending), a Test tab that runs one with
//! params (MDE's runs `testConnector`: a token and one API call), delete
//! with a confirmation, and each connector's change history. Reading needs
//! actions:read; creating, editing, testing and deleting need actions:all.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde_json::{Map, Value, json};
use warden_core::actions::{
    Connector, ConnectorExecution, ConnectorType, CreateConnectorRequest, EMAIL, ExecuteConnectorResponse, ExecutionStatus,
    MICROSOFT_DEFENDER_ENDPOINT, SERVER_LOG, UpdateConnectorRequest, WEBHOOK, connector_type_name,
};
use warden_core::authz::Privilege;
use warden_core::mde::{CLIENT_SECRET, CONFIG_FIELDS, config_default};

use crate::api;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::audit::history_columns;
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::data_table::{Column, DataTable};
use crate::components::form::{Checkbox, Field, Select, TextArea};
use crate::components::states::ErrorMessage;
use crate::components::tabs::{Tabs, current_tab};
use crate::components::toast::use_toasts;
use crate::live::{Topic, use_live};
use crate::session::use_session;

const METHODS: [(&str, &str); 5] = [("post", "POST"), ("put", "PUT"), ("patch", "PATCH"), ("get", "GET"), ("delete", "DELETE")];
const LEVELS: [(&str, &str); 5] = [("info", "info"), ("debug", "debug"), ("warn", "warn"), ("error", "error"), ("trace", "trace")];
const TABS: &[(&str, &str)] = &[("details", "Details"), ("test", "Test"), ("executions", "Executions"), ("history", "History")];

fn may_edit() -> Signal<bool> {
    let session = use_session();
    Signal::derive(move || session.user().is_some_and(|u| u.can(Privilege::ActionsAll)))
}

/// The fields of the create and edit forms; which ones show depends on the type.
#[derive(Clone, Copy)]
struct ConnectorForm {
    name: RwSignal<String>,
    type_id: RwSignal<String>,
    url: RwSignal<String>,
    method: RwSignal<String>,
    /// `Name: value`, one per line.
    headers: RwSignal<String>,
    /// Webhook: basic authentication; email: log in to the SMTP server.
    basic_auth: RwSignal<bool>,
    user: RwSignal<String>,
    password: RwSignal<String>,
    host: RwSignal<String>,
    port: RwSignal<String>,
    /// Email: TLS from the first byte (port 465) rather than STARTTLS.
    secure: RwSignal<bool>,
    from: RwSignal<String>,
    /// Microsoft Defender for Endpoint: the values of `CONFIG_FIELDS`, in order.
    mde: [RwSignal<String>; 5],
    client_secret: RwSignal<String>,
}

impl ConnectorForm {
    fn new(type_id: &str) -> ConnectorForm {
        ConnectorForm {
            name: RwSignal::new(String::new()),
            type_id: RwSignal::new(type_id.to_owned()),
            url: RwSignal::new(String::new()),
            method: RwSignal::new("post".to_owned()),
            headers: RwSignal::new(String::new()),
            basic_auth: RwSignal::new(false),
            user: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            host: RwSignal::new(String::new()),
            port: RwSignal::new("587".to_owned()),
            secure: RwSignal::new(false),
            from: RwSignal::new(String::new()),
            mde: CONFIG_FIELDS.map(|(key, _)| RwSignal::new(config_default(key).unwrap_or_default().to_owned())),
            client_secret: RwSignal::new(String::new()),
        }
    }

    /// Filled from a stored connector; secrets stay empty (they are never sent back).
    fn of(connector: &Connector) -> ConnectorForm {
        let form = ConnectorForm::new(&connector.connector_type_id);
        let config = connector.config.clone().unwrap_or_default();
        let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        form.name.set(connector.name.clone());
        form.url.set(text("url"));
        form.method.set(Some(text("method")).filter(|m| !m.is_empty()).unwrap_or_else(|| "post".into()));
        let headers = config
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| h.iter().map(|(name, value)| format!("{name}: {}", value.as_str().unwrap_or_default())).collect::<Vec<_>>().join("\n"));
        form.headers.set(headers.unwrap_or_default());
        form.basic_auth.set(match connector.connector_type_id.as_str() {
            EMAIL => config.get("hasAuth").and_then(Value::as_bool).unwrap_or(true),
            _ => config.get("authType").and_then(Value::as_str).is_some(),
        });
        form.host.set(text("host"));
        if let Some(port) = config.get("port").and_then(Value::as_u64) {
            form.port.set(port.to_string());
        }
        form.secure.set(config.get("secure").and_then(Value::as_bool).unwrap_or(false));
        form.from.set(text("from"));
        if connector.connector_type_id == MICROSOFT_DEFENDER_ENDPOINT {
            for ((key, _), value) in CONFIG_FIELDS.iter().zip(form.mde) {
                value.set(text(key));
            }
        }
        form
    }

    fn config(&self) -> Result<Map<String, Value>, String> {
        let mut config = Map::new();
        if self.type_id.get_untracked() == WEBHOOK {
            config.insert("url".into(), json!(self.url.get_untracked().trim()));
            config.insert("method".into(), json!(self.method.get_untracked()));
            let mut headers = Map::new();
            for line in self.headers.get_untracked().lines().filter(|l| !l.trim().is_empty()) {
                let (name, value) = line.split_once(':').ok_or_else(|| format!("A header needs `Name: value`: {line}"))?;
                headers.insert(name.trim().to_owned(), json!(value.trim()));
            }
            config.insert("headers".into(), if headers.is_empty() { Value::Null } else { Value::Object(headers) });
            let basic = self.basic_auth.get_untracked();
            config.insert("hasAuth".into(), json!(basic));
            config.insert("authType".into(), if basic { json!("webhook-authentication-basic") } else { Value::Null });
        }
        if self.type_id.get_untracked() == EMAIL {
            let port: u16 = self.port.get_untracked().trim().parse().map_err(|_| "The port is a number from 1 to 65535".to_owned())?;
            config.insert("service".into(), json!("other"));
            config.insert("host".into(), json!(self.host.get_untracked().trim()));
            config.insert("port".into(), json!(port));
            config.insert("secure".into(), json!(self.secure.get_untracked()));
            config.insert("from".into(), json!(self.from.get_untracked().trim()));
            config.insert("hasAuth".into(), json!(self.basic_auth.get_untracked()));
        }
        if self.type_id.get_untracked() == MICROSOFT_DEFENDER_ENDPOINT {
            for ((key, _), value) in CONFIG_FIELDS.iter().zip(self.mde) {
                config.insert((*key).into(), json!(value.get_untracked().trim()));
            }
            // The server's rules, so a mistake shows before the round trip.
            warden_core::mde::validate_config(&config).map_err(|err| err.to_string())?;
            warden_core::mde::validate_secrets(&self.secrets()).map_err(|err| err.to_string())?;
        }
        Ok(config)
    }

    fn secrets(&self) -> Map<String, Value> {
        let mut secrets = Map::new();
        if matches!(self.type_id.get_untracked().as_str(), WEBHOOK | EMAIL) && self.basic_auth.get_untracked() {
            secrets.insert("user".into(), json!(self.user.get_untracked()));
            secrets.insert("password".into(), json!(self.password.get_untracked()));
        }
        if self.type_id.get_untracked() == MICROSOFT_DEFENDER_ENDPOINT {
            secrets.insert(CLIENT_SECRET.into(), json!(self.client_secret.get_untracked()));
        }
        secrets
    }
}

/// The fields the form's type has.
#[component]
fn TypeFields(form: ConnectorForm, editing: bool) -> impl IntoView {
    move || {
        match form.type_id.get().as_str() {
        WEBHOOK => view! {
            <div class="form-grid">
                <Field label="URL"><input name="url" type="url" required placeholder="https://hooks.example.com/warden" bind:value=form.url /></Field>
                <Select label="Method" name="method" options=&METHODS value=form.method />
            </div>
            <TextArea label="Headers (Name: value, one per line)" name="headers" value=form.headers rows=3 placeholder="Content-Type: application/json" />
            <Checkbox label=" Basic authentication" checked=form.basic_auth on_change=Callback::new(move |on: bool| form.basic_auth.set(on)) />
            <LoginFields form editing />
        }
        .into_any(),
        EMAIL => view! {
            <div class="form-grid">
                <Field label="SMTP host"><input name="host" required placeholder="smtp.example.com" bind:value=form.host /></Field>
                <Field label="Port"><input name="port" required inputmode="numeric" bind:value=form.port /></Field>
                <Field label="From"><input name="from" type="email" required placeholder="warden@example.com" bind:value=form.from /></Field>
            </div>
            <Checkbox label=" TLS from the start (port 465); otherwise STARTTLS when the server offers it" checked=form.secure
                on_change=Callback::new(move |on: bool| form.secure.set(on)) />
            <Checkbox label=" Log in to the server" checked=form.basic_auth on_change=Callback::new(move |on: bool| form.basic_auth.set(on)) />
            <LoginFields form editing />
        }
        .into_any(),
        MICROSOFT_DEFENDER_ENDPOINT => view! {
            <div class="form-grid">
                {CONFIG_FIELDS.iter().zip(form.mde).map(|(&(key, label), value)| view! {
                    <Field label><input name=key required autocomplete="off" bind:value=value /></Field>
                }).collect_view()}
                <Field label="Client secret">
                    <input name=CLIENT_SECRET type="password" required autocomplete="new-password" bind:value=form.client_secret />
                </Field>
            </div>
            <p class="muted">{if editing { "The client secret is write-only: enter it again to save." } else { "An Entra ID application with the Machine.Isolate, Machine.LiveResponse, Machine.Read.All and Library.Manage permissions." }}</p>
        }
        .into_any(),
        _ => view! { <p class="muted">"Writes a line to Warden's log: nothing to configure."</p> }.into_any(),
    }
    }
}

/// User and password, while the form's authentication is on; write-only.
#[component]
fn LoginFields(form: ConnectorForm, editing: bool) -> impl IntoView {
    view! {
        <Show when=move || form.basic_auth.get()>
            <p class="muted">{if editing { "Secrets are write-only: enter the user and password again to keep them." } else { "" }}</p>
            <div class="form-grid">
                <Field label="User"><input name="user" required autocomplete="off" bind:value=form.user /></Field>
                <Field label="Password"><input name="password" type="password" required autocomplete="new-password" bind:value=form.password /></Field>
            </div>
        </Show>
    }
}

#[component]
pub fn ConnectorsPage() -> impl IntoView {
    let may_edit = may_edit();
    let navigate = use_navigate();
    let types = LocalResource::new(api::actions::types);
    let form = ConnectorForm::new(SERVER_LOG);
    let form_error = RwSignal::new(None::<String>);
    let create = Action::new_local(move |request: &CreateConnectorRequest| {
        let request = request.clone();
        async move { api::actions::create(&request).await }
    });
    let live = use_live(Topic::Connectors);
    let connectors = LocalResource::new(move || {
        live.track();
        create.version().track();
        api::actions::list()
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            navigate(&format!("/connectors/{}?tab=test", created.id), Default::default());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.config() {
            Err(message) => form_error.set(Some(message)),
            Ok(config) => {
                form_error.set(None);
                let request = CreateConnectorRequest {
                    name: form.name.get_untracked(),
                    connector_type_id: form.type_id.get_untracked(),
                    config,
                    secrets: form.secrets(),
                };
                create.dispatch(request);
            }
        }
    };
    let error = move || form_error.get().or_else(|| create.value().get().and_then(|r| r.err()).map(|e| e.message));

    let columns = || {
        vec![
            Column::new("Name", |c: &Connector| {
                let name = c.name.clone();
                view! { <A href=href(&format!("/connectors/{}", c.id))>{name}</A> }
            }),
            Column::new("Type", |c: &Connector| connector_type_name(&c.connector_type_id).to_owned()),
            Column::new("Used by", |c: &Connector| match c.referenced_by_count.unwrap_or(0) {
                0 => "no rule".to_owned(),
                1 => "1 rule".to_owned(),
                n => format!("{n} rules"),
            }),
            Column::new("Preconfigured", |c: &Connector| if c.is_preconfigured { "yes" } else { "—" }),
            Column::new("Secrets", |c: &Connector| {
                if c.is_missing_secrets == Some(true) {
                    view! { <span class="warn-inline">"⚠ cannot be decrypted: enter them again"</span> }.into_any()
                } else {
                    "—".into_any()
                }
            }),
        ]
    };

    view! {
        <section class="page">
            <h1>"Connectors"</h1>
            <p class="lead">"The outside systems Warden's actions reach: webhooks, email, Warden's own log, and Microsoft Defender for Endpoint (response actions on its hosts). Rules use them when they fire."</p>
            <Show when=move || may_edit.get()>
                <form class="panel" on:submit=on_submit aria-labelledby="new-connector-title">
                    <h2 id="new-connector-title">"New connector"</h2>
                    <div class="form-grid">
                        <Field label="Name"><input name="name" required maxlength="256" placeholder="SOC webhook" bind:value=form.name /></Field>
                        <Field label="Type">
                            <select name="type" on:change=move |ev| form.type_id.set(event_target_value(&ev))>
                                {move || types.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|t: ConnectorType| {
                                    let id = t.id.clone();
                                    let label = if t.enabled_in_license { t.name.clone() } else { format!("{} (needs a {} licence)", t.name, t.minimum_license_required.as_str()) };
                                    view! { <option value=t.id.clone() disabled=!t.enabled_in_license selected=move || form.type_id.get() == id>{label}</option> }
                                }).collect_view()}
                            </select>
                        </Field>
                    </div>
                    <TypeFields form editing=false />
                    {move || error().map(|message| view! { <ErrorMessage message /> })}
                    <div class="actions-row">
                        <button type="submit" class="button button-primary" disabled=move || create.pending().get()>"Create connector"</button>
                    </div>
                </form>
            </Show>
            <div class="panel">
                <h2>"Connectors"</h2>
                <AsyncView resource=connectors loading="Loading connectors…" let:list>
                    <DataTable rows=list columns=columns() empty="No connectors yet." testid="connectors"
                        row_id=|c: &Connector| ("connector-row".to_owned(), c.name.clone()) />
                </AsyncView>
            </div>
        </section>
    }
}

#[component]
pub fn ConnectorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let may_edit = may_edit();
    let tab = current_tab(TABS);
    let toasts = use_toasts();
    let navigate = use_navigate();

    let update = Action::new_local(move |request: &UpdateConnectorRequest| {
        let (id, request) = (id(), request.clone());
        async move { api::actions::update(&id, &request).await }
    });
    let delete = Action::new_local(move |_: &()| {
        let id = id();
        async move { api::actions::delete(&id).await }
    });
    let live = use_live(Topic::Connectors);
    let connector = LocalResource::new(move || {
        update.version().track();
        let id = id();
        async move { api::actions::get(&id).await }
    });
    // Read while its tab is open.
    let history = LocalResource::new(move || {
        live.track();
        update.version().track();
        let open = tab.get() == "history";
        let id = id();
        async move { if open { api::actions::history(&id).await } else { Ok(Vec::new()) } }
    });
    // Read when its tab opens, so it includes the runs of the Test tab.
    let executions = LocalResource::new(move || {
        live.track();
        let open = tab.get() == "executions";
        let id = id();
        async move { if open { api::actions::executions(&id).await } else { Ok(Vec::new()) } }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = update.value().get() {
            toasts.show("Connector saved");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            toasts.show("Connector deleted");
            navigate("/connectors", Default::default());
        }
    });
    let confirming = RwSignal::new(false);
    let delete_error = Signal::derive(move || delete.value().get().and_then(|r| r.err()).map(|e| e.message));

    view! {
        <section class="page">
            <p><A href=href("/connectors")>"← Connectors"</A></p>
            <AsyncView resource=connector loading="Loading connector…" let:connector>
                {
                    let form = ConnectorForm::of(&connector);
                    let form_error = RwSignal::new(None::<String>);
                    let type_id = connector.connector_type_id.clone();
                    let uses = connector.referenced_by_count.unwrap_or(0);
                    let preconfigured = connector.is_preconfigured;
                    let on_save = move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        match form.config() {
                            Err(message) => form_error.set(Some(message)),
                            Ok(config) => {
                                form_error.set(None);
                                update.dispatch(UpdateConnectorRequest { name: form.name.get_untracked(), config, secrets: form.secrets() });
                            }
                        }
                    };
                    let save_error = move || form_error.get().or_else(|| update.value().get().and_then(|r| r.err()).map(|e| e.message));
                    view! {
                        <h1>{connector.name.clone()} " " <span class="badge status-offline">{connector_type_name(&connector.connector_type_id).to_owned()}</span></h1>
                        <Tabs label="Connector" tabs=TABS current=tab>
                        {move || match tab.get() {
                            "test" => view! { <TestPanel id=connector.id.clone() type_id=type_id.clone() may_run=may_edit /> }.into_any(),
                            "executions" => view! {
                                <AsyncView resource=executions let:runs>
                                    <DataTable rows=runs columns=execution_columns() empty="Not run yet." testid="connector-executions" />
                                </AsyncView>
                            }.into_any(),
                            "history" => view! {
                                <AsyncView resource=history let:changes>
                                    <DataTable rows=changes columns=history_columns() empty="No changes recorded." testid="connector-history" />
                                </AsyncView>
                            }.into_any(),
                            _ => if may_edit.get() && !preconfigured {
                                view! {
                                    <form class="panel" on:submit=on_save aria-label="Edit connector">
                                        <Field label="Name"><input name="name" required maxlength="256" bind:value=form.name /></Field>
                                        <TypeFields form editing=true />
                                        {move || save_error().map(|message| view! { <ErrorMessage message /> })}
                                        <div class="actions-row">
                                            <button type="button" class="button button-danger" on:click=move |_| confirming.set(true)>"Delete"</button>
                                            <button type="submit" class="button button-primary" disabled=move || update.pending().get()>"Save"</button>
                                        </div>
                                    </form>
                                }.into_any()
                            } else {
                                let config = connector.config.clone().map_or_else(|| "—".to_owned(), |c| Value::Object(c).to_string());
                                view! {
                                    <div class="panel">
                                        <dl class="facts">
                                            <dt>"Type"</dt><dd>{connector.connector_type_id.clone()}</dd>
                                            <dt>"Config"</dt><dd><code>{config}</code></dd>
                                            <dt>"Used by"</dt><dd>{format!("{uses} rule(s)")}</dd>
                                        </dl>
                                        <p class="muted">{if preconfigured {
                                            "Preconfigured in Warden's configuration file: change it there."
                                        } else {
                                            "Editing needs actions:all."
                                        }}</p>
                                    </div>
                                }.into_any()
                            },
                        }}
                        </Tabs>
                        <Show when=move || confirming.get()>
                            <ConfirmDialog title="Delete this connector?" confirm="Delete" danger=true
                                pending=delete.pending() error=delete_error
                                on_confirm=Callback::new(move |()| { delete.dispatch(()); })
                                on_cancel=Callback::new(move |()| confirming.set(false))>
                                <p>{if uses == 0 {
                                    "No rule uses it. Its change history stays.".to_owned()
                                } else {
                                    // Refused while rules use it, so no rule silently loses an action; the answer names them.
                                    format!("{uses} rule(s) use it: Warden refuses to delete it until they no longer do, and names them.")
                                }}</p>
                            </ConfirmDialog>
                        </Show>
                    }
                }
            </AsyncView>
        </section>
    }
}

fn execution_columns() -> Vec<Column<ConnectorExecution>> {
    vec![
        Column::new("When", |r: &ConnectorExecution| r.started_at.clone()),
        Column::new("Outcome", |r: &ConnectorExecution| {
            let ok = r.status == ExecutionStatus::Ok;
            view! { <span class=if ok { "badge status-online" } else { "badge status-error" }>{if ok { "succeeded" } else { "failed" }}</span> }
        }),
        Column::new("Error", |r: &ConnectorExecution| {
            let detail = [r.message.clone(), r.service_message.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
            view! { <span class="cell-wrap">{detail}</span> }
        }),
        Column::new("Retry", |r: &ConnectorExecution| match r.retry {
            Some(true) => "worth retrying",
            Some(false) => "no",
            None => "—",
        }),
        Column::new("Took", |r: &ConnectorExecution| format!("{} ms", r.duration_ms)),
        Column::new("Who", |r: &ConnectorExecution| format!("{} ({})", r.actor, r.source)),
    ]
}

/// Runs the connector with params and shows what came back.
#[component]
fn TestPanel(id: String, type_id: String, may_run: Signal<bool>) -> impl IntoView {
    let body = RwSignal::new("{\n  \"message\": \"Test from Warden\"\n}".to_owned());
    let message = RwSignal::new("Test from Warden".to_owned());
    let level = RwSignal::new("info".to_owned());
    let to = RwSignal::new(String::new());
    let subject = RwSignal::new("Test from Warden".to_owned());
    let kind = type_id.clone();
    let run = Action::new_local(move |params: &Map<String, Value>| {
        let (id, params) = (id.clone(), params.clone());
        async move { api::actions::execute(&id, params).await }
    });
    let on_run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut params = Map::new();
        match kind.as_str() {
            WEBHOOK => {
                params.insert("body".into(), json!(body.get_untracked()));
            }
            EMAIL => {
                let to: Vec<String> = to.get_untracked().split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
                params.insert("to".into(), json!(to));
                params.insert("subject".into(), json!(subject.get_untracked()));
                params.insert("message".into(), json!(message.get_untracked()));
            }
            MICROSOFT_DEFENDER_ENDPOINT => {
                params.insert("subAction".into(), json!("testConnector"));
                params.insert("subActionParams".into(), json!({}));
            }
            _ => {
                params.insert("message".into(), json!(message.get_untracked()));
                params.insert("level".into(), json!(level.get_untracked()));
            }
        }
        run.dispatch(params);
    };
    view! {
        <form class="panel" on:submit=on_run aria-label="Test connector">
            {match type_id.as_str() {
                WEBHOOK => view! { <TextArea label="Body" name="body" value=body rows=6 /> }.into_any(),
                EMAIL => view! {
                    <div class="form-grid">
                        <Field label="To (comma-separated)"><input name="to" required placeholder="soc@example.com" bind:value=to /></Field>
                        <Field label="Subject"><input name="subject" required bind:value=subject /></Field>
                    </div>
                    <TextArea label="Message" name="message" value=message rows=4 />
                }.into_any(),
                MICROSOFT_DEFENDER_ENDPOINT => view! {
                    <p class="muted">"Gets a token from the OAuth server, then asks the API for a machine that does not exist: \"not found\" means the connector works."</p>
                }.into_any(),
                _ => view! {
                    <div class="form-grid">
                        <Field label="Message"><input name="message" required bind:value=message /></Field>
                        <Select label="Level" name="level" options=&LEVELS value=level />
                    </div>
                }.into_any(),
            }}
            <div class="actions-row">
                <Show when=move || may_run.get() fallback=|| view! { <p class="muted">"Running a connector needs actions:all."</p> }>
                    <button type="submit" class="button button-primary" disabled=move || run.pending().get()>"Run"</button>
                </Show>
            </div>
            {move || run.value().get().map(|result| match result {
                Err(err) => view! { <ErrorMessage message=err.message /> }.into_any(),
                Ok(result) => view! { <ExecutionResult result /> }.into_any(),
            })}
        </form>
    }
}

#[component]
fn ExecutionResult(result: ExecuteConnectorResponse) -> impl IntoView {
    let ok = result.status == ExecutionStatus::Ok;
    let data = result.data.map(|d| serde_json::to_string_pretty(&d).unwrap_or_default());
    view! {
        <div class=if ok { "result result-ok" } else { "result result-error" } role="status" data-testid="execution-result">
            <strong>{if ok { "Succeeded" } else { "Failed" }}</strong>
            {result.message.map(|m| view! { <div>{m}</div> })}
            {result.service_message.map(|m| view! { <div class="muted">{m}</div> })}
            {data.map(|d| view! { <pre>{d}</pre> })}
        </div>
    }
}

//! The responder console (`mde-and-console.md` §3): one console per host,
//! several open at once as tabs that survive navigation and reload (kept in
//! local storage per user, with each console's lines); closing one never
//! stops its actions. A line is read by the core's parser with Kibana's
//! messages before anything is sent; results come in place over the push
//! channel. `cancel --action` offers this host's pending actions that this
//! user may cancel, by the same core rule the server applies.

mod line;
mod results;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use warden_core::api::CurrentUser;
use warden_core::console::{Transcript, TranscriptEntry};
use warden_core::fleet::AgentStatus;
use warden_core::paths;
use warden_core::response_actions::{EndpointCapability, EndpointMetadata, ResponseAgentType};

use crate::api;
use crate::app::{console_url, href};
use crate::components::states::{ErrorMessage, Loading};
use crate::components::status_badge::StatusBadge;
use crate::pages::agent::isolated_badge;
use crate::session::use_session;

/// Lines a console keeps (older ones are dropped, their actions stay in the history).
const ENTRY_CAP: usize = 200;

/// An open console, as the tab bar lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenConsole {
    agent_id: String,
    agent_type: ResponseAgentType,
    host: String,
}

impl OpenConsole {
    fn url(&self) -> String {
        console_url(&self.agent_id, self.agent_type)
    }
}

/// One line entered and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    n: u64,
    input: String,
    at: String,
    by: String,
    answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Answer {
    Help,
    CommandHelp {
        name: String,
    },
    /// Refused before sending: the parser's message, or why not.
    Error {
        message: String,
    },
    /// What `status` showed.
    Text {
        lines: Vec<String>,
    },
    /// Sent; Warden has not answered yet.
    Sending,
    Action {
        id: String,
    },
    /// Warden refused to create the action.
    SendFailed {
        message: String,
    },
}

impl Entry {
    /// Changes when the answer does, so the list redraws the entry.
    fn key(&self) -> String {
        match &self.answer {
            Answer::Sending => format!("{}-sending", self.n),
            Answer::Action { id } => format!("{}-{id}", self.n),
            _ => self.n.to_string(),
        }
    }
}

// ---- local storage, per user ----

fn storage_key(user: &str, what: &str) -> String {
    format!("warden.console.{user}.{what}")
}

fn load<T: DeserializeOwned + Default>(key: &str) -> T {
    let storage = window().local_storage().ok().flatten();
    storage.and_then(|s| s.get_item(key).ok().flatten()).and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
}

fn save<T: Serialize>(key: &str, value: &T) {
    if let (Some(storage), Ok(text)) = (window().local_storage().ok().flatten(), serde_json::to_string(value)) {
        // A full storage keeps the older copy: the console goes on working.
        let _ = storage.set_item(key, &text);
    }
}

fn now_iso() -> String {
    web_sys::js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default()
}

/// What the console knows of its host.
#[derive(Debug, Clone, PartialEq)]
struct HostInfo {
    name: String,
    /// Warden's agents: their Fleet status.
    status: Option<AgentStatus>,
    capabilities: Vec<EndpointCapability>,
    metadata: serde_json::Value,
    /// What `status` prints.
    facts: Vec<(String, String)>,
}

async fn host_info(agent_id: String, agent_type: ResponseAgentType) -> api::ApiResult<HostInfo> {
    if agent_type == ResponseAgentType::MicrosoftDefenderEndpoint {
        let hosts = api::response_actions::mde_hosts().await?;
        let host = hosts
            .data
            .into_iter()
            .find(|h| h.id == agent_id)
            .ok_or_else(|| api::ApiError { status: 404, message: format!("Microsoft Defender for Endpoint knows no machine {agent_id}") })?;
        let fact = |label: &str, value: Option<String>| (label.to_owned(), value.unwrap_or_else(|| "—".into()));
        return Ok(HostInfo {
            name: host.name.clone(),
            status: None,
            capabilities: Vec::new(),
            metadata: serde_json::Value::Null,
            facts: vec![
                fact("Health", host.health_status),
                fact("Platform", host.os_platform),
                fact("Last seen", host.last_seen),
                fact("Last IP address", host.last_ip_address),
                fact("Risk score", host.risk_score),
            ],
        });
    }
    let agent = api::fleet::agent(&agent_id).await?;
    let metadata = EndpointMetadata::of(&agent.local_metadata);
    let name = agent.local_metadata.pointer("/host/hostname").and_then(|v| v.as_str()).unwrap_or(&agent_id).to_owned();
    let capabilities = metadata.known_capabilities();
    let facts = vec![
        ("Status".to_owned(), agent.status.label().to_owned()),
        ("Isolated".to_owned(), if metadata.isolated { "yes" } else { "no" }.to_owned()),
        ("Last check-in".to_owned(), agent.last_checkin.clone().unwrap_or_else(|| "never".into())),
        ("Agent version".to_owned(), agent.agent.version.clone()),
        ("Policy".to_owned(), agent.policy_id.to_string()),
        ("Capabilities".to_owned(), capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")),
    ];
    Ok(HostInfo { name, status: Some(agent.status), capabilities, metadata: agent.local_metadata, facts })
}

/// `/console` and `/console/:id`: the open consoles as tabs, and the one the URL names.
#[component]
pub fn ConsolePage() -> impl IntoView {
    // Results show outputs as the history does, with its styles.
    crate::components::page_style::use_page_style("response_actions.css");
    crate::components::page_style::use_page_style("console.css");
    let session = use_session();
    view! {
        {move || match session.user() {
            Some(user) => view! { <Consoles user /> }.into_any(),
            None => view! { <Loading /> }.into_any(),
        }}
    }
}

#[component]
fn Consoles(user: CurrentUser) -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let navigate = use_navigate();
    let open_key = storage_key(&user.username, "open");
    let open = RwSignal::new(load::<Vec<OpenConsole>>(&open_key));
    Effect::new(move |_| open.with(|list| save(&open_key, list)));

    let current = Memo::new(move |_| {
        let id = params.with(|p| p.get("id")).filter(|id| !id.is_empty())?;
        let agent_type = query
            .with(|q| q.get("agentType"))
            .and_then(|t| ResponseAgentType::ALL.iter().copied().find(|a| a.as_str() == t))
            .unwrap_or(ResponseAgentType::Endpoint);
        Some((id, agent_type))
    });
    // The console the URL names joins the tabs.
    Effect::new(move |_| {
        if let Some((id, agent_type)) = current.get()
            && !open.with_untracked(|list| list.iter().any(|c| c.agent_id == id && c.agent_type == agent_type))
        {
            open.update(|list| list.push(OpenConsole { host: id.clone(), agent_id: id, agent_type }));
        }
    });
    let named = Callback::new(move |(id, agent_type, host): (String, ResponseAgentType, String)| {
        open.update(|list| {
            if let Some(console) = list.iter_mut().find(|c| c.agent_id == id && c.agent_type == agent_type && c.host != host) {
                console.host = host;
            }
        })
    });
    let close = move |console: OpenConsole| {
        open.update(|list| list.retain(|c| *c != console));
        if current.get_untracked().is_some_and(|(id, t)| id == console.agent_id && t == console.agent_type) {
            let next = open.with_untracked(|list| list.last().map(OpenConsole::url)).unwrap_or_else(|| "/console".into());
            navigate(&next, Default::default());
        }
    };
    let username = user.username.clone();

    view! {
        <section class="page console-page">
            <h1 class="sr-only">"Responder console"</h1>
            <nav class="console-tabs" aria-label="Open consoles" data-testid="console-tabs">
                <For each=move || open.get() key=|c| (c.agent_id.clone(), c.agent_type, c.host.clone()) let:console>
                    {
                        let (agent_id, agent_type, host) = (console.agent_id.clone(), console.agent_type, console.host.clone());
                        let active = Signal::derive(move || current.get().is_some_and(|(id, t)| id == agent_id && t == agent_type));
                        let close = close.clone();
                        let label = format!("Close the console of {host}");
                        view! {
                            <span class="console-tab" class:active=active>
                                <A href=href(&console.url()) attr:aria-current=move || active.get().then_some("page")>{host.clone()}</A>
                                <button type="button" class="console-tab-close" title="Close this console (its actions go on)"
                                    aria-label=label
                                    on:click=move |_| close(console.clone())>"×"</button>
                            </span>
                        }
                    }
                </For>
            </nav>
            {move || match current.get() {
                Some((agent_id, agent_type)) => view! { <Console agent_id agent_type username=username.clone() on_named=named /> }.into_any(),
                None => view! { <Landing count=Signal::derive(move || open.with(Vec::len)) /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Landing(count: Signal<usize>) -> impl IntoView {
    view! {
        <div class="panel console-landing">
            <h2>"Responder console"</h2>
            <p>
                {move || if count.get() == 0 { "No console is open. ".to_owned() } else { format!("{} console(s) open above. ", count.get()) }}
                "Open a host's console from "
                <A href=href("/fleet")>"Fleet"</A>
                " (a host's row or its page), from a row of the "
                <A href=href("/response-actions")>"response actions history"</A>
                " or from an alert. Closing a console never stops the actions it sent."
            </p>
        </div>
    }
}

/// One host's console: its header, its lines and the command line.
#[component]
fn Console(
    agent_id: String,
    agent_type: ResponseAgentType,
    username: String,
    on_named: Callback<(String, ResponseAgentType, String)>,
) -> impl IntoView {
    let fleet_live = crate::live::use_live(crate::live::Topic::Fleet);
    let host = {
        let agent_id = agent_id.clone();
        LocalResource::new(move || {
            fleet_live.track();
            host_info(agent_id.clone(), agent_type)
        })
    };
    {
        let agent_id = agent_id.clone();
        Effect::new(move |_| {
            if let Some(Ok(info)) = host.get() {
                on_named.run((agent_id.clone(), agent_type, info.name));
            }
        });
    }
    let log_key = storage_key(&username, &format!("log.{}.{}", agent_type.as_str(), agent_id));
    let entries = RwSignal::new(
        load::<Vec<Entry>>(&log_key)
            .into_iter()
            .map(|mut e| {
                if e.answer == Answer::Sending {
                    e.answer = Answer::SendFailed { message: "The page closed before Warden answered: look for it in the history.".into() };
                }
                e
            })
            .collect::<Vec<_>>(),
    );
    Effect::new(move |_| entries.with(|list| save(&log_key, list)));

    let host_name = Signal::derive({
        let agent_id = agent_id.clone();
        move || match host.get() {
            Some(Ok(info)) => info.name,
            _ => agent_id.clone(),
        }
    });
    let history_href = href(&paths::with_query("/response-actions", &[("agentIds", &agent_id)]));
    let export = {
        let (agent_id, username) = (agent_id.clone(), username.clone());
        move |markdown: bool| {
            let (agent_id, username) = (agent_id.clone(), username.clone());
            let lines = entries.get_untracked();
            let host = host_name.get_untracked();
            leptos::task::spawn_local(async move {
                let transcript = transcript(lines, host, agent_id, agent_type, username).await;
                let stamp = transcript.exported_at.replace([':', '.'], "-");
                if markdown {
                    download(&format!("console-{}-{stamp}.md", transcript.host), &transcript.markdown(), "text/markdown");
                } else {
                    let json = serde_json::to_string_pretty(&transcript).unwrap_or_default();
                    download(&format!("console-{}-{stamp}.json", transcript.host), &json, "application/json");
                }
            });
        }
    };
    let export_md = export.clone();
    let data_agent = agent_id.clone();

    view! {
        <div class="console" data-testid="console" data-agent=data_agent>
            <header class="console-header">
                <div class="console-host">
                    <h2>{host_name}</h2>
                    <span class="muted">{agent_type.title()}</span>
                    {move || match host.get() {
                        Some(Ok(info)) => view! {
                            {info.status.map(|status| view! { <StatusBadge status /> })}
                            {isolated_badge(&info.metadata)}
                            {info.status.and_then(|s| s.response_warning()).map(|w| view! {
                                <p class="console-warning" role="note" data-testid="host-warning">{format!("{}: {w}", info.status.map(AgentStatus::label).unwrap_or_default())}</p>
                            })}
                        }.into_any(),
                        Some(Err(err)) => view! { <ErrorMessage message=err.message /> }.into_any(),
                        None => ().into_any(),
                    }}
                </div>
                <div class="actions-row">
                    <a class="button" href=history_href data-testid="console-history">"Response actions history"</a>
                    <button type="button" class="button" on:click=move |_| export_md(true)>"Export (Markdown)"</button>
                    <button type="button" class="button" on:click=move |_| export(false)>"Export (JSON)"</button>
                </div>
            </header>
            <line::CommandLine agent_id agent_type username entries host=host />
        </div>
    }
}

/// Every line of the console with its action as it stands now (outputs included).
async fn transcript(lines: Vec<Entry>, host: String, agent_id: String, agent_type: ResponseAgentType, username: String) -> Transcript {
    let actions = futures::future::join_all(lines.iter().map(|entry| async move {
        match &entry.answer {
            Answer::Action { id } => api::response_actions::get(id).await.ok(),
            _ => None,
        }
    }))
    .await;
    let entries = lines
        .into_iter()
        .zip(actions)
        .map(|(entry, action)| {
            let text = match entry.answer {
                Answer::Error { message } | Answer::SendFailed { message } => vec![message],
                Answer::Text { lines } => lines,
                Answer::Help => vec!["(the list of commands)".into()],
                Answer::CommandHelp { name } => vec![format!("(help of {name})")],
                Answer::Action { id } if action.is_none() => vec![format!("Action {id} could not be read")],
                Answer::Sending | Answer::Action { .. } => Vec::new(),
            };
            TranscriptEntry { input: entry.input, entered_at: entry.at, entered_by: entry.by, action, text }
        })
        .collect();
    Transcript { host, agent_id, agent_type, exported_at: now_iso(), exported_by: username, entries }
}

/// Saves `text` as a file through the browser.
fn download(file_name: &str, text: &str, mime: &str) {
    use wasm_bindgen::JsCast;
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let parts = web_sys::js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Some(link) = document().create_element("a").ok().and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok()) {
        link.set_href(&url);
        link.set_download(file_name);
        link.click();
    }
    // The download has started by then; the URL only holds the text in memory.
    set_timeout(move || drop(web_sys::Url::revoke_object_url(&url)), std::time::Duration::from_secs(30));
}

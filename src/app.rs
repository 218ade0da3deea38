//! Every route in one place. Signed-in pages live inside `Shell`, which sends
//! a signed-out visitor to the login page and back afterwards.

use std::borrow::Cow;
use std::sync::OnceLock;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, lazy_route, path};

use crate::components::shell::Shell;
use crate::components::toast::provide_toasts;
use crate::pages::{login::LoginPage, not_found::NotFoundPage, overview::OverviewPage};
use crate::session;

#[component]
pub fn App() -> impl IntoView {
    session::provide();
    provide_toasts();
    view! {
        <Router base=base_path()>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/login") view=LoginPage />
                <ParentRoute path=path!("") view=Shell>
                    <Route path=path!("") view=OverviewPage />
                    <Route path=path!("console") view={Lazy::<ConsoleRoute>::new()} />
                    // The tabs and every console share a module: switching consoles loads nothing more.
                    <Route path=path!("console/:id") view={Lazy::<ConsoleRoute>::new()} />
                    <Route path=path!("response-actions") view={Lazy::<ResponseActionsRoute>::new()} />
                    <Route path=path!("response-actions/bulk/:id") view={Lazy::<BulkActionRoute>::new()} />
                    <Route path=path!("fleet") view={Lazy::<FleetRoute>::new()} />
                    <Route path=path!("fleet/agents/:id") view={Lazy::<AgentRoute>::new()} />
                    // The list and one connector share a module, as cases do.
                    <Route path=path!("fleet/cloud-connectors") view={Lazy::<CloudConnectorsRoute>::new()} />
                    <Route path=path!("fleet/cloud-connectors/:id") view={Lazy::<CloudConnectorsRoute>::new()} />
                    <Route path=path!("rules") view={Lazy::<RulesRoute>::new()} />
                    <Route path=path!("rules/new") view={Lazy::<NewRuleRoute>::new()} />
                    <Route path=path!("rules/:id") view={Lazy::<RuleRoute>::new()} />
                    <Route path=path!("rules/:id/edit") view={Lazy::<EditRuleRoute>::new()} />
                    <Route path=path!("alerts") view={Lazy::<AlertsRoute>::new()} />
                    <Route path=path!("cases") view={Lazy::<CasesRoute>::new()} />
                    // The list and one case share a module: opening a case from the list loads nothing more.
                    <Route path=path!("cases/:id") view={Lazy::<CasesRoute>::new()} />
                    <Route path=path!("connectors") view={Lazy::<ConnectorsRoute>::new()} />
                    <Route path=path!("connectors/:id") view={Lazy::<ConnectorRoute>::new()} />
                    <Route path=path!("tasks") view={Lazy::<TasksRoute>::new()} />
                    <Route path=path!("api-keys") view={Lazy::<ApiKeysRoute>::new()} />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Pages that load on demand: each is its own wasm chunk, fetched the first
/// time the page is opened (scripts/build-spa.sh splits them out). The shell,
/// login and the small pages stay in the main module.
macro_rules! lazy_pages {
    ($($route:ident => $page:path),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    )*};
}

lazy_pages! {
    FleetRoute => crate::pages::fleet::FleetPage,
    AgentRoute => crate::pages::agent::AgentPage,
    CloudConnectorsRoute => crate::pages::cloud_connectors::CloudConnectorsArea,
    TasksRoute => crate::pages::tasks::TasksPage,
    ApiKeysRoute => crate::pages::api_keys::ApiKeysPage,
    ConnectorsRoute => crate::pages::connectors::ConnectorsPage,
    ConnectorRoute => crate::pages::connectors::ConnectorPage,
    RulesRoute => crate::pages::rules::RulesPage,
    NewRuleRoute => crate::pages::rule_form::NewRulePage,
    EditRuleRoute => crate::pages::rule_form::EditRulePage,
    RuleRoute => crate::pages::rules::RulePage,
    AlertsRoute => crate::pages::alerts::AlertsPage,
    CasesRoute => crate::pages::cases::CasesArea,
    ResponseActionsRoute => crate::pages::response_actions::ResponseActionsPage,
    ConsoleRoute => crate::pages::console::ConsolePage,
    BulkActionRoute => crate::pages::bulk_actions::BulkActionPage,
}

/// Warden's base path (`""` or `/warden`), read once from the `<base href>`
/// the server wrote into index.html.
pub fn base_path() -> Cow<'static, str> {
    static BASE: OnceLock<String> = OnceLock::new();
    Cow::Borrowed(BASE.get_or_init(|| {
        let base_uri = leptos::prelude::document().base_uri().ok().flatten().unwrap_or_default();
        let path = web_sys::Url::new(&base_uri).map(|url| url.pathname()).unwrap_or_default();
        path.trim_end_matches('/').to_owned()
    }))
}

/// A link target for `<A href>`: the router resolves relative paths against
/// the current route, and leaves absolute ones alone, so add the base here.
pub fn href(path: &str) -> String {
    format!("{}{path}", base_path())
}

/// The current location inside Warden (without the base path), with its query.
pub fn current_app_path() -> String {
    let location = leptos_router::hooks::use_location();
    let full = location.pathname.get_untracked();
    let base = base_path();
    let path = full.strip_prefix(base.as_ref()).unwrap_or(&full);
    let path = if path.is_empty() { "/" } else { path };
    let search = location.search.get_untracked();
    if search.is_empty() || search.starts_with('?') { format!("{path}{search}") } else { format!("{path}?{search}") }
}

/// A host's responder console: `/console/<agent id>`, with `?agentType=`
/// for hosts other than Warden's own agents.
pub fn console_url(agent_id: &str, agent_type: warden_core::response_actions::ResponseAgentType) -> String {
    let path = format!("/console/{}", warden_core::paths::encode(agent_id));
    match agent_type {
        warden_core::response_actions::ResponseAgentType::Endpoint => path,
        other => warden_core::paths::with_query(&path, &[("agentType", other.as_str())]),
    }
}

/// Whether the user may send some response action, so a console is worth
/// offering (the console explains each command it may not run).
pub fn may_open_console(user: &warden_core::api::CurrentUser) -> bool {
    warden_core::response_actions::ResponseCommand::ALL.iter().any(|c| c.privilege().is_some_and(|p| user.can(p)))
}

//! Rules (`/api/alerting`), their runs, action log and history, and what the
//! rule form needs (rule types, the minimum interval, the connectors and
//! system actions it may pick).

use warden_core::actions::{Connector, ConnectorChange, ConnectorExecution};
use warden_core::paths;
use warden_core::rules::{AlertingConfig, CreateRuleRequest, FindRulesResponse, Rule, RuleRun, UpdateRuleRequest};

use super::ApiResult;

/// One page of rules, sorted by name, matching `search` (name or tags).
pub async fn find(page: u32, per_page: u32, search: &str) -> ApiResult<FindRulesResponse> {
    let (page, per_page) = (page.to_string(), per_page.to_string());
    let mut params = vec![("page", page.as_str()), ("per_page", per_page.as_str()), ("sort_field", "name")];
    params.extend(Some(search.trim()).filter(|s| !s.is_empty()).map(|s| ("search", s)));
    super::get(&paths::with_query(paths::RULES_FIND, &params)).await
}

pub async fn get(id: &str) -> ApiResult<Rule> {
    super::get(&paths::rule(id)).await
}

pub async fn create(request: &CreateRuleRequest) -> ApiResult<Rule> {
    super::post(paths::RULE_CREATE, request).await
}

pub async fn update(id: &str, request: &UpdateRuleRequest) -> ApiResult<Rule> {
    super::put(&paths::rule(id), request).await
}

pub async fn delete(id: &str) -> ApiResult<()> {
    super::delete_empty(&paths::rule(id)).await
}

pub async fn set_enabled(id: &str, enabled: bool) -> ApiResult<()> {
    super::post_empty(&if enabled { paths::rule_enable(id) } else { paths::rule_disable(id) }).await
}

pub async fn set_muted(id: &str, muted: bool) -> ApiResult<()> {
    super::post_empty(&if muted { paths::rule_mute_all(id) } else { paths::rule_unmute_all(id) }).await
}

pub async fn config() -> ApiResult<AlertingConfig> {
    super::get(paths::ALERTING_CONFIG).await
}

/// Its runs, newest first.
pub async fn runs(id: &str) -> ApiResult<Vec<RuleRun>> {
    super::get(&paths::rule_runs(id)).await
}

/// The actions it ran, newest first.
pub async fn action_log(id: &str) -> ApiResult<Vec<ConnectorExecution>> {
    super::get(&paths::rule_action_executions(id)).await
}

/// Who changed it, when and what, newest first.
pub async fn history(id: &str) -> ApiResult<Vec<ConnectorChange>> {
    super::get(&paths::rule_history(id)).await
}

/// The connectors and the system actions the caller may use: the form's one list.
pub async fn connectors() -> ApiResult<Vec<Connector>> {
    super::get(paths::CONNECTORS_INTERNAL).await
}

//! Alerts across rules (`/internal/alerting`), and the rules' names for the
//! alerts page's rule filter.

use warden_core::paths;
use warden_core::rules::{Alert, AlertStatus, FindAlertsResponse, FindRulesResponse};

use super::ApiResult;

/// One page of alerts, as the alerts page asks for it.
pub struct AlertsQuery<'a> {
    pub rule_id: Option<&'a str>,
    pub status: Option<AlertStatus>,
    /// Part of the agent id or of the context (host name, status…); empty for all.
    pub search: &'a str,
    pub page: usize,
    pub per_page: usize,
}

/// Active first, newest first.
pub async fn find(query: &AlertsQuery<'_>) -> ApiResult<FindAlertsResponse> {
    let (page, per_page) = (query.page.to_string(), query.per_page.to_string());
    let mut params = vec![("page", page.as_str()), ("per_page", per_page.as_str())];
    params.extend(query.rule_id.map(|id| ("rule_id", id)));
    params.extend(query.status.map(|s| ("status", s.as_str())));
    params.extend(Some(query.search.trim()).filter(|s| !s.is_empty()).map(|s| ("search", s)));
    super::get(&paths::with_query(paths::ALERTS_FIND, &params)).await
}

/// One alert, by its id (its uuid, what a case's alert attachment holds).
pub async fn get(id: &str) -> ApiResult<Alert> {
    super::get(&paths::alert(id)).await
}

/// The rules by name, as `(id, name)`: the first 100, for the rule filter.
pub async fn rule_names() -> ApiResult<Vec<(String, String)>> {
    let url = paths::with_query(paths::RULES_FIND, &[("per_page", "100"), ("sort_field", "name")]);
    let found: FindRulesResponse = super::get(&url).await?;
    Ok(found.data.into_iter().map(|rule| (rule.id, rule.name)).collect())
}

//! Fleet: the agent list, one agent, its activity log, unenroll, and the agent policies.

use warden_core::fleet_api::{Agent, AgentEvent, AgentPolicy, AgentPolicyRequest, AgentSortField, ItemResponse, ListResponse, UnenrollRequest};
use warden_core::paths;

use super::ApiResult;

/// One page of the Fleet list, as the Fleet view asks for it.
pub struct AgentListQuery<'a> {
    pub page: usize,
    pub per_page: usize,
    pub sort: AgentSortField,
    pub descending: bool,
    pub show_inactive: bool,
    /// A kuery, or empty for every agent.
    pub kuery: &'a str,
}

/// The page, with the status counts of every matching agent.
pub async fn list_agents(query: &AgentListQuery<'_>) -> ApiResult<ListResponse<Agent>> {
    let url = paths::with_query(
        paths::AGENTS,
        &[
            ("page", &query.page.to_string()),
            ("perPage", &query.per_page.to_string()),
            ("sortField", query.sort.as_str()),
            ("sortOrder", if query.descending { "desc" } else { "asc" }),
            ("getStatusSummary", "true"),
            ("showInactive", &query.show_inactive.to_string()),
            ("kuery", query.kuery),
        ],
    );
    super::get(&url).await
}

pub async fn agent(id: &str) -> ApiResult<Agent> {
    super::get::<ItemResponse<Agent>>(&paths::agent(id)).await.map(|r| r.item)
}

/// The agent's activity log, newest first.
pub async fn agent_events(id: &str) -> ApiResult<Vec<AgentEvent>> {
    super::get::<ListResponse<AgentEvent>>(&paths::agent_events(id)).await.map(|r| r.items)
}

/// Asks the agent to unenroll, or with `force` revokes its key at once.
pub async fn unenroll(id: &str, force: bool) -> ApiResult<()> {
    super::post::<_, serde_json::Value>(&paths::agent_unenroll(id), &UnenrollRequest { force, revoke: false }).await.map(|_| ())
}

/// Every agent policy (the verifiers' too, marked `is_verifier`).
pub async fn policies() -> ApiResult<Vec<AgentPolicy>> {
    super::get::<ListResponse<AgentPolicy>>(paths::AGENT_POLICIES).await.map(|r| r.items)
}

/// Whether a host that enrolls again into the policy keeps its agent id
/// (with its replace token); the policy's other settings stay as they are.
pub async fn set_keep_agent_id(policy: &AgentPolicy, keep: bool) -> ApiResult<AgentPolicy> {
    let request = AgentPolicyRequest {
        name: policy.name.clone(),
        namespace: policy.namespace.clone(),
        description: policy.description.clone(),
        is_managed: policy.is_managed,
        inactivity_timeout: Some(policy.inactivity_timeout),
        monitoring_enabled: false,
        keep_agent_id_on_reenroll: keep,
    };
    super::put::<_, ItemResponse<AgentPolicy>>(&paths::agent_policy(policy.id.as_str()), &request).await.map(|r| r.item)
}

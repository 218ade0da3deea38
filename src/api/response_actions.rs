//! Response actions (`/api/endpoint/action…`): the history, one action, an
//! agent's pending actions, what the caller may do with endpoints, cancel,
//! and where a get-file result downloads from.

use serde_json::json;
use warden_core::paths;
use warden_core::response_actions::{
    ActionDetails, ActionDetailsResponse, ActionListQuery, ActionListResponse, ActionResponse, ActionStatusResponse, AgentPendingActions,
    EndpointAuthzResponse, MdeHostsResponse, ResponseActionRequest,
};

use super::ApiResult;

/// One page of the history, newest first; outputs only for the actions the
/// query names in `with_outputs`.
pub async fn list(query: &ActionListQuery) -> ApiResult<ActionListResponse> {
    let pairs = query.to_pairs();
    let params: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    super::get(&paths::with_query(paths::ACTIONS, &params)).await
}

/// One action, with every agent's output.
pub async fn get(id: &str) -> ApiResult<ActionDetails> {
    super::get::<ActionDetailsResponse>(&paths::action(id)).await.map(|r| r.data)
}

/// The agents' pending actions, counted by command.
pub async fn pending(agent_ids: &[&str]) -> ApiResult<Vec<AgentPendingActions>> {
    let ids = agent_ids.join(",");
    super::get::<ActionStatusResponse>(&paths::with_query(paths::ACTION_STATUS, &[("agent_ids", &ids)])).await.map(|r| r.data)
}

/// The hosts Microsoft Defender for Endpoint knows (`configured: false` without its connector).
pub async fn mde_hosts() -> ApiResult<MdeHostsResponse> {
    super::get(paths::MDE_HOSTS).await
}

/// The caller's endpoint authz, and what `cancel_refusal` needs of them.
pub async fn authz() -> ApiResult<EndpointAuthzResponse> {
    super::get(paths::ENDPOINT_AUTHZ).await
}

/// Asks the agents `endpoint_ids` (still pending hosts of `action`) to stop it;
/// answers the cancel action.
pub async fn cancel(action: &ActionDetails, endpoint_ids: Vec<String>, comment: &str) -> ApiResult<ActionDetails> {
    let comment = Some(comment.trim()).filter(|c| !c.is_empty()).map(str::to_owned);
    let request = ResponseActionRequest {
        endpoint_ids,
        agent_type: Some(action.agent_type),
        parameters: Some(json!({ "id": action.id })),
        comment,
        ..ResponseActionRequest::default()
    };
    super::post::<_, ActionResponse>(paths::ACTION_CANCEL, &request).await.map(|r| r.data)
}

/// A get-file result's zip for one agent (passcode `elastic`), relative to
/// the document's base, as every API path.
pub fn file_download_href(action_id: &str, agent_id: &str) -> String {
    paths::action_file_download(action_id, &format!("{action_id}.{agent_id}"))
}

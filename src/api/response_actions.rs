//! Response actions (`/api/endpoint/action…`): the history, one action, an
//! agent's pending actions, what the caller may do with endpoints, cancel,
//! and where a get-file result downloads from.

use serde_json::json;
use warden_core::paths;
use warden_core::response_actions::{
    ActionDetails, ActionDetailsResponse, ActionListQuery, ActionListResponse, ActionResponse, ActionStatus, ActionStatusResponse,
    AgentPendingActions, EndpointAuthzResponse, EndpointScript, MdeHostsResponse, ResponseActionRequest, ResponseCommand, ScriptsListResponse,
};

use super::ApiResult;

/// One page of the history, newest first; outputs only for the actions the
/// query names in `with_outputs`.
pub async fn list(query: &ActionListQuery) -> ApiResult<ActionListResponse> {
    let pairs = query.to_pairs();
    let params: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    super::get(&paths::with_query(paths::ACTIONS, &params)).await
}

/// An agent's pending actions, newest first (the console's cancel selector).
pub async fn pending_of(agent_id: &str) -> ApiResult<Vec<ActionDetails>> {
    let query = ActionListQuery {
        agent_ids: vec![agent_id.to_owned()],
        statuses: vec![ActionStatus::Pending],
        page: 1,
        page_size: 100,
        ..ActionListQuery::default()
    };
    list(&query).await.map(|r| r.data)
}

/// Sends `command` as `request` says; answers the new action.
pub async fn send(command: ResponseCommand, request: &ResponseActionRequest) -> ApiResult<ActionDetails> {
    super::post::<_, ActionResponse>(&paths::action_command(command), request).await.map(|r| r.data)
}

/// Sends an upload: the file and the request's fields as a multipart form.
pub async fn upload(file: &web_sys::File, request: &ResponseActionRequest) -> ApiResult<ActionDetails> {
    let field_error = |_| super::ApiError { status: 0, message: "The browser could not build the upload form".into() };
    let form = web_sys::FormData::new().map_err(field_error)?;
    form.append_with_blob_and_filename("file", file, &file.name()).map_err(field_error)?;
    let ids = serde_json::to_string(&request.endpoint_ids).unwrap_or_default();
    form.append_with_str("endpoint_ids", &ids).map_err(field_error)?;
    if let Some(agent_type) = request.agent_type {
        form.append_with_str("agent_type", agent_type.as_str()).map_err(field_error)?;
    }
    if let Some(parameters) = &request.parameters {
        form.append_with_str("parameters", &parameters.to_string()).map_err(field_error)?;
    }
    if let Some(comment) = &request.comment {
        form.append_with_str("comment", comment).map_err(field_error)?;
    }
    super::post_form::<ActionResponse>(paths::ACTION_UPLOAD, form).await.map(|r| r.data)
}

/// The scripts library (the console's runscript picker).
pub async fn scripts() -> ApiResult<Vec<EndpointScript>> {
    super::get::<ScriptsListResponse>(paths::SCRIPTS_LIBRARY).await.map(|r| r.data)
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

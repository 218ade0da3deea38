//! Bulk response actions (`/internal/warden/response_actions/bulk…`): what
//! one command to many hosts would do, sending it, its progress, and
//! cancelling its still-pending hosts.

use warden_core::paths;
use warden_core::response_actions::bulk::{
    BulkCancelRequest, BulkCancelResponse, BulkCreated, BulkHostsQuery, BulkPreview, BulkResponseActionRequest, BulkStatus,
};

use super::ApiResult;

/// How many hosts the selection names, how many can take the command, and why the others cannot. Sends nothing.
pub async fn preview(request: &BulkResponseActionRequest) -> ApiResult<BulkPreview> {
    super::post(paths::BULK_ACTIONS_PREVIEW, request).await
}

/// Sends the command to every host of the selection that can take it.
pub async fn create(request: &BulkResponseActionRequest) -> ApiResult<BulkCreated> {
    super::post(paths::BULK_ACTIONS, request).await
}

/// The bulk's counts and the page of hosts `query` asks for.
pub async fn status(id: &str, query: &BulkHostsQuery) -> ApiResult<BulkStatus> {
    let pairs = query.to_pairs();
    let params: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    super::get(&paths::with_query(&paths::bulk_action(id), &params)).await
}

/// Cancels every host of the bulk still pending (one cancel per action).
pub async fn cancel(id: &str, comment: &str) -> ApiResult<BulkCancelResponse> {
    let comment = Some(comment.trim()).filter(|c| !c.is_empty()).map(str::to_owned);
    super::post(&paths::bulk_action_cancel(id), &BulkCancelRequest { comment }).await
}

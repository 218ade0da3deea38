//! Personal API keys: list, create, invalidate.

use warden_core::api_keys::{ApiKeyInfo, ApiKeyList, CreateApiKeyRequest, CreateApiKeyResponse, InvalidateApiKeyRequest, InvalidateApiKeyResponse};
use warden_core::paths;

use super::ApiResult;

/// The user's keys (everyone's for users:admin).
pub async fn list() -> ApiResult<Vec<ApiKeyInfo>> {
    super::get::<ApiKeyList>(paths::API_KEYS).await.map(|list| list.api_keys)
}

pub async fn create(request: &CreateApiKeyRequest) -> ApiResult<CreateApiKeyResponse> {
    super::post(paths::API_KEYS, request).await
}

pub async fn invalidate(id: &str) -> ApiResult<InvalidateApiKeyResponse> {
    super::delete(paths::API_KEYS, &InvalidateApiKeyRequest { ids: vec![id.to_owned()] }).await
}

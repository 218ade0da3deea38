//! Who is signed in, signing in and out, and Warden's health.

use warden_core::api::{CurrentUser, LoginRequest, StatusResponse};
use warden_core::paths;

use super::ApiResult;

pub async fn me() -> ApiResult<CurrentUser> {
    super::get(paths::ME).await
}

pub async fn login(request: &LoginRequest) -> ApiResult<CurrentUser> {
    super::post(paths::LOGIN, request).await
}

pub async fn logout() -> ApiResult<()> {
    super::post_empty(paths::LOGOUT).await
}

pub async fn status() -> ApiResult<StatusResponse> {
    super::get(paths::STATUS).await
}

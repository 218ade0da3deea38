use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Warden", description = "Warden's HTTP API: Kibana- and Fleet Server-compatible routes for the SOC console."),
    paths(
        super::status::status,
        super::security::login,
        super::security::logout,
        super::security::me,
        super::security::list_users,
    ),
    components(schemas(warden_core::error::ErrorBody)),
    tags(
        (name = "status", description = "Health"),
        (name = "security", description = "Sign-in, sessions and users"),
    )
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { axum::Json(ApiDoc::openapi()) }))
}

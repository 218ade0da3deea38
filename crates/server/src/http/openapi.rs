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
        super::api_keys::create,
        super::api_keys::list,
        super::api_keys::invalidate,
        super::tasks::health,
        super::tasks::run_soon,
        super::fleet::list_agents,
        super::fleet::get_agent,
        super::fleet::agent_events,
        super::fleet::unenroll,
        super::fleet::bulk_unenroll,
        super::fleet::agent_status,
        super::fleet::list_policies,
        super::fleet::get_policy,
        super::fleet::create_policy,
        super::fleet::update_policy,
        super::fleet::delete_policy,
        super::fleet::list_enrollment_keys,
        super::fleet::get_enrollment_key,
        super::fleet::create_enrollment_key,
        super::fleet::revoke_enrollment_key,
        super::fleet_server::enroll,
        super::fleet_server::checkin,
        super::fleet_server::acks,
        super::fleet_server::audit_unenroll,
    ),
    components(schemas(warden_core::error::ErrorBody)),
    tags(
        (name = "status", description = "Health"),
        (name = "security", description = "Sign-in, sessions, users and API keys"),
        (name = "task_manager", description = "Background tasks: health and run now"),
        (name = "fleet", description = "Kibana's Fleet API: agents, policies, enrollment keys"),
        (name = "fleet-server", description = "Fleet Server's agent API: enroll, check-in, acks, audit"),
    )
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { axum::Json(ApiDoc::openapi()) }))
}

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::api::{DatabaseStatus, OverallStatus, StatusLevel, StatusResponse, VersionInfo};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// Health for load balancers and people: no authentication needed. 503 when
/// the database does not answer.
#[utoipa::path(get, path = "/api/status", tag = "status",
    responses(
        (status = 200, body = StatusResponse),
        (status = 503, description = "The database does not answer", body = StatusResponse),
    ))]
async fn status(State(state): State<AppState>) -> (StatusCode, axum::Json<StatusResponse>) {
    let database_ok = tokio::time::timeout(Duration::from_secs(2), crate::db::ping(&state.db)).await.is_ok_and(|answered| answered.is_ok());
    let level = |ok: bool| StatusLevel { level: if ok { "available" } else { "unavailable" }.to_owned() };
    let body = StatusResponse {
        name: "warden".to_owned(),
        version: VersionInfo { number: env!("CARGO_PKG_VERSION").to_owned() },
        status: OverallStatus {
            overall: level(database_ok),
            database: DatabaseStatus { level: level(database_ok).level, engine: state.engine.name().to_owned() },
        },
        uptime_ms: state.started.elapsed().as_millis() as u64,
        waiting_checkins: state.hub.waiting(),
    };
    let code = if database_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body))
}

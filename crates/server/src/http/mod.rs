//! The HTTP surface: one `router()` per resource merged here, with the layers
//! every request passes (request id, tracing, panics → 500 JSON, body limit,
//! the kbn-xsrf rule) and JSON 404/405 for unknown API routes.

mod actions;
mod api_keys;
pub mod authz;
mod bulk_actions;
mod cases;
mod cloud_connectors;
pub(crate) mod fleet;
pub(crate) mod fleet_server;
mod json;
pub mod openapi;
mod response_actions;
mod rules;
mod security;
mod spa;
mod status;
mod tasks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use warden_core::error::XSRF_MISSING_MESSAGE;
use warden_core::paths::XSRF_HEADER;

pub use json::{JsonBody, OptionalJsonBody, QueryPairs, QueryParams};

use crate::AppState;
use crate::error::ApiError;

pub fn router(state: AppState) -> Router {
    let base = state.config.public_base_path.clone();
    let (api, agents, _) = routes();
    // What browsers and scripts call: every state-changing request needs kbn-xsrf.
    let browser = api
        .route("/api/{*rest}", any(not_found))
        .route("/internal/{*rest}", any(not_found))
        .merge(spa::router(&state))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(require_xsrf));
    // What agents call (Fleet Server): their key is in a header, so no kbn-xsrf.
    let app = browser.merge(agents).layer(DefaultBodyLimit::max(state.config.max_body_bytes)).with_state(state);
    let app = if base.is_empty() {
        app
    } else {
        // Strip the base before routing (axum's nest() would not match `/warden/`).
        Router::new().fallback_service(app).layer(middleware::from_fn(move |request, next| strip_base_path(base.clone(), request, next)))
    };
    let request_id = HeaderName::from_static("x-request-id");
    app.layer(CatchPanicLayer::custom(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Every route, declared once per resource with its handler's OpenAPI
/// annotation: the browser's routes, the agents' routes, and the document
/// both describe.
fn routes() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(status::router())
        .merge(openapi::router())
        .merge(security::router())
        .merge(api_keys::router())
        .merge(actions::router())
        .merge(cases::router())
        .merge(rules::router())
        .merge(tasks::router())
        .merge(crate::events::router())
        .merge(fleet::router())
        .merge(cloud_connectors::router())
        .merge(response_actions::router())
        .merge(bulk_actions::router())
        .split_for_parts();
    let (agents, agent_paths) = fleet_server::router().merge(response_actions::agent_router()).split_for_parts();
    document.merge(agent_paths);
    openapi::Constraints.modify(&mut document);
    (api, agents, document)
}

/// The OpenAPI document (`GET /api/openapi.json`).
pub fn document() -> utoipa::openapi::OpenApi {
    routes().2
}

/// Serves only what is under the base path, with the base removed; `/`
/// redirects to the base so a bare host name still reaches Warden.
async fn strip_base_path(base: String, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let Some(rest) = path.strip_prefix(base.as_str()).filter(|rest| rest.is_empty() || rest.starts_with('/')) else {
        if path == "/" {
            return Redirect::to(&format!("{base}/")).into_response();
        }
        return ApiError::NotFound("Not Found".into()).into_response();
    };
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(parsed) => parts.path_and_query = Some(parsed),
        Err(_) => return ApiError::BadRequest("Invalid request path".into()).into_response(),
    }
    match axum::http::Uri::from_parts(parts) {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return ApiError::BadRequest("Invalid request path".into()).into_response(),
    }
    next.run(request).await
}

/// Kibana's rule: a state-changing request without `kbn-xsrf` (or
/// `kbn-version`) is refused, so a cross-site form post cannot act for a
/// signed-in analyst.
async fn require_xsrf(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    if safe || headers.contains_key(XSRF_HEADER) || headers.contains_key("kbn-version") {
        next.run(request).await
    } else {
        ApiError::BadRequest(XSRF_MISSING_MESSAGE.into()).into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(format!("Method {method} is not allowed on this route"))
}

#[cfg(test)]
mod tests {
    /// docs/architecture.md: handlers reach SQL only through a service.
    #[test]
    fn handlers_reach_sql_only_through_a_service() {
        let handlers = [
            ("actions.rs", include_str!("actions.rs")),
            ("api_keys.rs", include_str!("api_keys.rs")),
            ("cases.rs", include_str!("cases.rs")),
            ("authz.rs", include_str!("authz.rs")),
            ("bulk_actions.rs", include_str!("bulk_actions.rs")),
            ("fleet.rs", include_str!("fleet.rs")),
            ("fleet_server.rs", include_str!("fleet_server.rs")),
            ("json.rs", include_str!("json.rs")),
            ("openapi.rs", include_str!("openapi.rs")),
            ("response_actions.rs", include_str!("response_actions.rs")),
            ("rules.rs", include_str!("rules.rs")),
            ("security.rs", include_str!("security.rs")),
            ("spa.rs", include_str!("spa.rs")),
            ("status.rs", include_str!("status.rs")),
            ("tasks.rs", include_str!("tasks.rs")),
            ("../events/sse.rs", include_str!("../events/sse.rs")),
        ];
        for (file, source) in handlers {
            for forbidden in ["crate::store", "sqlx::query", "state.db.begin"] {
                assert!(!source.contains(forbidden), "http/{file} uses `{forbidden}`: call a service instead");
            }
        }
    }
}

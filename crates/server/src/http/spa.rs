//! Serves the built SPA: files from `spa_dir`, and `index.html` (with its
//! `<base href>` set to Warden's base path) for every other GET, so client
//! routes survive reload and deep links.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use crate::AppState;
use crate::error::ApiError;

/// The placeholder in `index.html` that the base path replaces.
const BASE_PLACEHOLDER: &str = r#"<base href="/" />"#;

pub fn router(state: &AppState) -> Router<AppState> {
    let files = ServeDir::new(&state.config.spa_dir)
        .append_index_html_on_directories(false)
        .call_fallback_on_method_not_allowed(true)
        .fallback(axum::routing::any(index).with_state(state.clone()));
    Router::new().route("/", get(index)).route("/index.html", get(index)).fallback_service(files)
}

async fn index(State(state): State<AppState>, method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::NotFound("Not Found".into()).into_response();
    }
    let path: PathBuf = state.config.spa_dir.join("index.html");
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => {
            let base = format!(r#"<base href="{}/" />"#, state.config.public_base_path);
            ([(header::CACHE_CONTROL, "no-cache")], Html(html.replacen(BASE_PLACEHOLDER, &base, 1))).into_response()
        }
        Err(err) => {
            tracing::error!(path = %path.display(), error = %err, "the SPA is not built");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(format!(
                    "<!doctype html><title>Warden</title><p>Warden's web app is not built (no {}). Run <code>make build</code>, or start Warden with <code>make run</code>.</p>",
                    path.display()
                )),
            )
                .into_response()
        }
    }
}

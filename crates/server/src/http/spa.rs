//! Serves the built SPA: files from `spa_dir`, and `index.html` (with its
//! `<base href>` set to Warden's base path) for every other GET, so client
//! routes survive reload and deep links.
//!
//! The build writes `x.br` and `x.gz` beside each asset (`scripts/build-spa.sh`),
//! and they are sent to browsers that accept them: the wasm goes over the wire
//! at a third of its size. Assets whose names carry the build's content hash
//! never change, so browsers keep them for a year; `index.html`, which names
//! them, is revalidated on every load.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use crate::AppState;
use crate::error::ApiError;

/// The placeholder in `index.html` that the base path replaces.
const BASE_PLACEHOLDER: &str = r#"<base href="/" />"#;

pub fn router(state: &AppState) -> Router<AppState> {
    let files = ServeDir::new(&state.config.spa_dir)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false)
        .call_fallback_on_method_not_allowed(true)
        .fallback(axum::routing::any(index).with_state(state.clone()));
    Router::new().route("/", get(index)).route("/index.html", get(index)).fallback_service(files).layer(axum::middleware::map_response(cache_control))
}

/// Sets how long a browser may keep what it was sent: a year for assets
/// named by their content, otherwise revalidate (`index.html`, the favicon,
/// and any response that already says).
async fn cache_control(uri: axum::http::Uri, mut response: Response) -> Response {
    let policy = if response.status() == StatusCode::OK && is_content_hashed(uri.path()) { IMMUTABLE } else { "no-cache" };
    response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(policy));
    response
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether a file name carries Trunk's content hash: `-` then 16 hex digits,
/// then `_` or `.` (`warden-ui-0123456789abcdef_bg.wasm`, `main-….css`).
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.match_indices('-').any(|(at, _)| {
        let rest = &name[at + 1..];
        rest.len() > 16 && rest.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit) && matches!(rest.as_bytes()[16], b'_' | b'.')
    })
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

#[cfg(test)]
mod tests {
    use super::is_content_hashed;

    #[test]
    fn only_names_with_a_content_hash_are_immutable() {
        assert!(is_content_hashed("/warden-ui-0123456789abcdef_bg.wasm"));
        assert!(is_content_hashed("/warden/warden-ui-0123456789abcdef.js"));
        assert!(is_content_hashed("main-fedcba9876543210.css"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/favicon.svg"));
        assert!(!is_content_hashed("/fleet/agents/0123456789abcdef"));
        assert!(!is_content_hashed("/warden-ui-0123456789abcdeg_bg.wasm"));
        assert!(!is_content_hashed("/warden-ui-0123456789abcde_bg.wasm"));
    }
}

//! Serves the built SPA: files from `spa_dir`, and `index.html` (with its
//! `<base href>` set to Warden's base path) for every other GET, so client
//! routes survive reload and deep links.
//!
//! The build writes `x.br` and `x.gz` beside each asset (`scripts/build-spa.sh`),
//! and they are sent to browsers that accept them: the wasm goes over the wire
//! at a third of its size. The build's files sit in a folder named by their
//! content hash (`app-0123456789abcdef/`), so they never change and browsers
//! keep them for a year; `index.html`, which names the folder, is revalidated
//! on every load.

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
    let headers = response.headers_mut();
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(policy));
    // The same URL is brotli, gzip or plain by the request's Accept-Encoding:
    // a shared cache must not hand one client's encoding to another.
    headers.entry(header::VARY).or_insert(HeaderValue::from_static("accept-encoding"));
    response
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether the path is inside a build's folder, `app-` and 16 hex digits of
/// its content hash.
fn is_content_hashed(path: &str) -> bool {
    let mut segments: Vec<&str> = path.split('/').collect();
    segments.pop();
    segments.iter().any(|segment| segment.strip_prefix("app-").is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())))
}

async fn index(State(state): State<AppState>, method: Method, uri: axum::http::Uri) -> Response {
    // A file the build did not write is a 404, not the app: after an upgrade,
    // a tab still running the old build asks for its old chunks.
    if (method != Method::GET && method != Method::HEAD) || is_content_hashed(uri.path()) {
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
    fn only_files_in_a_build_folder_are_immutable() {
        assert!(is_content_hashed("/app-0123456789abcdef/warden-ui_bg.wasm"));
        assert!(is_content_hashed("/warden/app-0123456789abcdef/chunk_5.wasm"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/favicon.svg"));
        assert!(!is_content_hashed("/app-0123456789abcdef"));
        assert!(!is_content_hashed("/fleet/agents/app-0123456789abcdef"));
        assert!(!is_content_hashed("/app-0123456789abcdeg/x.wasm"));
        assert!(!is_content_hashed("/app-0123456789abcde/x.wasm"));
        assert!(!is_content_hashed("/my-app-0123456789abcdef/x.wasm"));
    }
}

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn status_is_public_and_checks_the_database() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("api/status")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "warden");
    assert_eq!(body["status"]["overall"]["level"], "available");
    assert_eq!(body["status"]["database"]["level"], "available");
    let engine = if std::env::var("TEST_POSTGRES_URL").is_ok() { "postgres" } else { "sqlite" };
    assert_eq!(body["status"]["database"]["engine"], engine);
    assert_eq!(body["version"]["number"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let app = spawn_app().await;
    let doc: Value = app.client().get(app.url("api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/status", "/internal/security/login", "/internal/security/logout", "/internal/security/me", "/internal/security/users"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}

#[tokio::test]
async fn spa_routes_fall_back_to_index_and_assets_are_served() {
    let app = spawn_app().await;
    let client = app.client();
    for path in ["", "fleet", "fleet/agents/42", "response-actions?page=2"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.text().await.unwrap().contains("test shell"), "{path}");
    }
    let asset = client.get(app.url("app.js")).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.text().await.unwrap(), "console.log('warden')");
}

/// The build writes `.br` and `.gz` beside each asset; a browser that accepts
/// them gets the smaller file, anything else the plain one. Hashed names are
/// cached for a year, everything else revalidated.
#[tokio::test]
async fn assets_are_served_precompressed_and_hashed_ones_cached_for_good() {
    let app = spawn_app().await;
    let wasm = "app-0123456789abcdef/warden-ui_bg.wasm";
    std::fs::create_dir(app.spa_dir.join("app-0123456789abcdef")).unwrap();
    std::fs::write(app.spa_dir.join(wasm), b"plain wasm").unwrap();
    std::fs::write(app.spa_dir.join(format!("{wasm}.br")), b"brotli wasm").unwrap();
    std::fs::write(app.spa_dir.join(format!("{wasm}.gz")), b"gzip wasm").unwrap();
    std::fs::write(app.spa_dir.join("favicon.svg"), b"<svg/>").unwrap();
    let client = reqwest::Client::builder().no_gzip().no_brotli().build().unwrap();
    for (accept, encoding, body) in
        [("gzip, deflate, br, zstd", Some("br"), "brotli wasm"), ("gzip", Some("gzip"), "gzip wasm"), ("identity", None, "plain wasm")]
    {
        let response = client.get(app.url(wasm)).header("accept-encoding", accept).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        assert_eq!(response.headers().get("content-encoding").map(|v| v.to_str().unwrap()), encoding, "{accept}");
        assert_eq!(response.headers()["content-type"], "application/wasm");
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert!(response.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
        assert_eq!(response.text().await.unwrap(), body);
    }
    let favicon = client.get(app.url("favicon.svg")).send().await.unwrap();
    assert_eq!(favicon.headers()["cache-control"], "no-cache");
    let missing = client.get(app.url("app-fedcba9876543210/warden-ui_bg.wasm")).send().await.unwrap();
    assert_eq!(missing.headers()["cache-control"], "no-cache", "a name the build did not write falls back to index.html");
}

#[tokio::test]
async fn a_missing_spa_build_is_explained() {
    let app = spawn_app().await;
    std::fs::remove_file(app.spa_dir.join("index.html")).unwrap();
    let response = app.client().get(app.url("fleet")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("make build"));
}

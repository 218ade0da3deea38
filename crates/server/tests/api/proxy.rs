//! Behind a reverse proxy at a sub-path, with forwarded headers believed only
//! from trusted proxies.

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::{DEMO_PASSWORD, Options, assert_error, spawn_app_with};

#[tokio::test]
async fn everything_lives_under_the_base_path() {
    let app = spawn_app_with(Options { public_base_path: Some("/warden/"), ..Options::default() }).await;
    let client = app.client();
    assert_eq!(client.get(app.url("api/status")).send().await.unwrap().status(), StatusCode::OK);
    let outside = client.get(format!("{}/api/status", app.address)).send().await.unwrap();
    assert_error(outside, StatusCode::NOT_FOUND).await;

    let root = client.get(format!("{}/", app.address)).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()[LOCATION], "/warden/");

    for home in ["/warden/", "/warden"] {
        let page = client.get(format!("{}{home}", app.address)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{home}");
        assert!(page.text().await.unwrap().contains(r#"<base href="/warden/" />"#), "{home}");
    }
    assert_error(client.get(format!("{}/wardenx/api/status", app.address)).send().await.unwrap(), StatusCode::NOT_FOUND).await;

    // Deep links get index.html with the base written in.
    let page = client.get(app.url("fleet/agents/42")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<base href="/warden/" />"#), "{page}");

    let response = app.login_response(&client, "viewer", DEMO_PASSWORD).await;
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("Path=/warden/"), "{cookie}");
    assert_eq!(client.get(app.url("internal/security/me")).send().await.unwrap().status(), StatusCode::OK);
}

async fn login_cookie(app: &crate::helpers::TestApp, forwarded_proto: &str) -> String {
    let response = app
        .client()
        .post(app.url("internal/security/login"))
        .header("kbn-xsrf", "t")
        .header("x-forwarded-proto", forwarded_proto)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"username": "viewer", "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()[SET_COOKIE].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn https_from_a_trusted_proxy_makes_the_cookie_secure() {
    let trusting = spawn_app_with(Options { trusted_proxies: Some("127.0.0.1"), ..Options::default() }).await;
    assert!(login_cookie(&trusting, "https").await.contains("Secure"));
    assert!(!login_cookie(&trusting, "http").await.contains("Secure"));

    // The same header from an untrusted peer is ignored.
    let untrusting = spawn_app_with(Options::default()).await;
    assert!(!login_cookie(&untrusting, "https").await.contains("Secure"));
}

#[tokio::test]
async fn throttling_counts_the_forwarded_client_address() {
    let app = spawn_app_with(Options { trusted_proxies: Some("127.0.0.1"), ..Options::default() }).await;
    let client = app.client();
    let attempt = |user: String, from: &'static str| {
        let client = client.clone();
        let url = app.url("internal/security/login");
        async move {
            client
                .post(url)
                .header("kbn-xsrf", "t")
                .header("x-forwarded-for", from)
                .json(&json!({"username": user, "password": "wrong"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // 50 failures from one address, spread over many user names.
    for i in 0..50 {
        assert_eq!(attempt(format!("user{i}"), "198.51.100.1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt("someone".into(), "198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not punished.
    assert_eq!(attempt("someone".into(), "198.51.100.2").await, StatusCode::UNAUTHORIZED);
}

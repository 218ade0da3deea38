use reqwest::StatusCode;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn state_changing_requests_need_kbn_xsrf() {
    let app = spawn_app().await;
    let response = app
        .client()
        .post(app.url("internal/security/login"))
        .json(&serde_json::json!({"username": "admin", "password": "warden-demo"}))
        .send()
        .await
        .unwrap();
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "Request must contain a kbn-xsrf header.");

    // kbn-version is accepted in its place, as in Kibana.
    let response = app
        .client()
        .post(app.url("internal/security/login"))
        .header("kbn-version", "8.0.0")
        .json(&serde_json::json!({"username": "admin", "password": "warden-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_field() {
    let app = spawn_app().await;
    let client = app.client();
    let cases = [
        (r#"{"username": 5, "password": "x"}"#, "[request body.username]: invalid type"),
        (r#"{"username": "admin"}"#, "missing field `password`"),
        (r#"{"username": "admin", "password": "x", "remember": true}"#, "unknown field `remember`"),
        (r#"{"username": "admin", "#, "[request body]"),
        ("", "[request body]: expected a JSON body"),
        (r#"{"username": "", "password": "x"}"#, "[request body.username]: must not be empty"),
    ];
    for (body, expected) in cases {
        let response = client
            .post(app.url("internal/security/login"))
            .header("kbn-xsrf", "t")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(expected), "{body:?}: {message}");
    }
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = spawn_app().await;
    let huge = format!(r#"{{"username": "{}", "password": "x"}}"#, "a".repeat(2 * 1024 * 1024));
    let response = app
        .client()
        .post(app.url("internal/security/login"))
        .header("kbn-xsrf", "t")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn unknown_api_routes_and_methods_answer_json() {
    let app = spawn_app().await;
    let client = app.client();
    let response = client.get(app.url("api/no/such/route")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND).await;
    let response = client.get(app.url("internal/nothing")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND).await;
    let response = client.delete(app.url("api/status")).header("kbn-xsrf", "t").send().await.unwrap();
    let message = assert_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert!(message.contains("DELETE"), "{message}");
    let response = client.post(app.url("fleet")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app.client().get(app.url("api/status")).header("x-request-id", "trace-me").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me");
    let response = app.client().get(app.url("api/status")).send().await.unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
}

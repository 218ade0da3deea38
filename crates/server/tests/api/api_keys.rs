//! Personal API keys: create, use as `Authorization: ApiKey`, list,
//! invalidate (401 at once), expiry, reduced roles, and bad input.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn create_key(app: &TestApp, client: &reqwest::Client, body: Value) -> Value {
    let response = client.post(app.url("internal/security/api_key")).header("kbn-xsrf", "t").json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "create key");
    response.json().await.unwrap()
}

async fn me_with_key(app: &TestApp, encoded: &str) -> reqwest::Response {
    app.client().get(app.url("internal/security/me")).header("authorization", format!("ApiKey {encoded}")).send().await.unwrap()
}

#[tokio::test]
async fn create_call_list_invalidate() {
    let app = spawn_app().await;
    let t2 = app.signed_in("t2").await;

    let created = create_key(&app, &t2, json!({"name": "nightly export", "expiration": "1d"})).await;
    let id = created["id"].as_str().unwrap();
    let encoded = created["encoded"].as_str().unwrap();
    assert_eq!(created["name"], "nightly export");
    assert!(created["expiration"].as_i64().unwrap() > 0);
    let decoded = String::from_utf8(base64_decode(encoded)).unwrap();
    assert_eq!(decoded, format!("{id}:{}", created["api_key"].as_str().unwrap()));

    let response = me_with_key(&app, encoded).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "t2");
    assert_eq!(me["authentication_type"], "api_key");
    assert_eq!(me["roles"], json!(["t2_analyst"]));

    // The key works on a real route, and without kbn-xsrf only where GET.
    let agents = app.client().get(app.url("api/fleet/agents")).header("authorization", format!("ApiKey {encoded}")).send().await.unwrap();
    assert_eq!(agents.status(), StatusCode::OK);

    let list: Value = t2.get(app.url("internal/security/api_key")).send().await.unwrap().json().await.unwrap();
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], id);
    assert_eq!(keys[0]["invalidated"], false);
    assert_eq!(keys[0]["username"], "t2");
    assert!(keys[0].get("api_key").is_none(), "the secret is never listed");

    let response = t2.delete(app.url("internal/security/api_key")).header("kbn-xsrf", "t").json(&json!({"ids": [id]})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["invalidated_api_keys"], json!([id]));
    assert_eq!(result["error_count"], 0);

    assert_eq!(me_with_key(&app, encoded).await.status(), StatusCode::UNAUTHORIZED, "invalidated: 401 at once");

    let again: Value = t2
        .delete(app.url("internal/security/api_key"))
        .header("kbn-xsrf", "t")
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["previously_invalidated_api_keys"], json!([id]));
    assert_eq!(again["invalidated_api_keys"], json!([]));
    let list: Value = t2.get(app.url("internal/security/api_key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["api_keys"][0]["invalidated"], true);
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_expired_key_are_401() {
    let app = spawn_app().await;
    let t1 = app.signed_in("t1").await;
    let created = create_key(&app, &t1, json!({"name": "short-lived", "expiration": "1m"})).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(me_with_key(&app, created["encoded"].as_str().unwrap()).await.status(), StatusCode::OK);

    let wrong = base64_encode(&format!("{id}:not-the-secret"));
    assert_eq!(me_with_key(&app, &wrong).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me_with_key(&app, &base64_encode("nope:nope")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me_with_key(&app, "%%%").await.status(), StatusCode::UNAUTHORIZED);

    // Move its expiry into the past rather than wait a minute.
    let db = app.db().await;
    sqlx::query("update api_keys set expires_at = 1 where id = $1").bind(id).execute(&db).await.unwrap();
    assert_eq!(me_with_key(&app, created["encoded"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn a_key_holds_at_most_its_owners_roles_and_follows_the_owner() {
    let app = spawn_app().await;
    let out = app.cli(&["user", "add", "dual", "--role", "t2_analyst", "--role", "rule_author", "--password", "dual-password-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dual = app.client();
    assert_eq!(app.login_response(&dual, "dual", "dual-password-1").await.status(), StatusCode::OK);

    let limited = create_key(&app, &dual, json!({"name": "rules only", "role_descriptors": {"rule_author": {}}})).await;
    let me: Value = me_with_key(&app, limited["encoded"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["rule_author"]));
    let privileges: Vec<&str> = me["privileges"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(privileges.contains(&"rules:all"));
    assert!(!privileges.contains(&"response:isolate"), "{privileges:?}");

    let response = dual
        .post(app.url("internal/security/api_key"))
        .header("kbn-xsrf", "t")
        .json(&json!({"name": "x", "role_descriptors": {"superuser": {}}}))
        .send()
        .await
        .unwrap();
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("do not hold the role `superuser`"), "{message}");

    // An API key cannot mint keys.
    let response = app
        .client()
        .post(app.url("internal/security/api_key"))
        .header("kbn-xsrf", "t")
        .header("authorization", format!("ApiKey {}", limited["encoded"].as_str().unwrap()))
        .json(&json!({"name": "child"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Disabling the owner stops their keys at once.
    assert!(app.cli(&["user", "disable", "dual"]).status.success());
    assert_eq!(me_with_key(&app, limited["encoded"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_see_and_invalidate_only_their_own_keys_and_admins_all() {
    let app = spawn_app().await;
    let t2 = app.signed_in("t2").await;
    let t3 = app.signed_in("t3").await;
    let admin = app.signed_in("admin").await;
    let t2_key = create_key(&app, &t2, json!({"name": "t2 key"})).await;
    create_key(&app, &t3, json!({"name": "t3 key"})).await;

    let t3_list: Value = t3.get(app.url("internal/security/api_key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(t3_list["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(t3_list["api_keys"][0]["name"], "t3 key");

    let id = t2_key["id"].as_str().unwrap();
    let result: Value = t3
        .delete(app.url("internal/security/api_key"))
        .header("kbn-xsrf", "t")
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["error_count"], 1);
    assert_eq!(result["invalidated_api_keys"], json!([]));
    assert_eq!(me_with_key(&app, t2_key["encoded"].as_str().unwrap()).await.status(), StatusCode::OK, "still valid");

    let all: Value = admin.get(app.url("internal/security/api_key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all["api_keys"].as_array().unwrap().len(), 2);
    let result: Value = admin
        .delete(app.url("internal/security/api_key"))
        .header("kbn-xsrf", "t")
        .json(&json!({"ids": [id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["invalidated_api_keys"], json!([id]));
    assert_eq!(me_with_key(&app, t2_key["encoded"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_requests_say_what_is_wrong() {
    let app = spawn_app().await;
    let t2 = app.signed_in("t2").await;
    let post = |body: Value| t2.post(app.url("internal/security/api_key")).header("kbn-xsrf", "t").json(&body).send();
    let message = assert_error(post(json!({"name": "  "})).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("body.name"), "{message}");
    let message = assert_error(post(json!({"name": "x", "expiration": "soon"})).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("body.expiration"), "{message}");
    let message = assert_error(post(json!({"name": "x", "owner": "admin"})).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("unknown field `owner`"), "{message}");
    let message = assert_error(post(json!({"name": "x", "role_descriptors": {"root": {}}})).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("unknown role `root`"), "{message}");
    let response = t2.delete(app.url("internal/security/api_key")).header("kbn-xsrf", "t").json(&json!({"ids": []})).send().await.unwrap();
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("body.ids"), "{message}");
    // A viewer may not create keys, whatever the body.
    let viewer = app.signed_in("viewer").await;
    let response = viewer.post(app.url("internal/security/api_key")).header("kbn-xsrf", "t").body("{not json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::Value;

use crate::helpers::{DEMO_PASSWORD, Options, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_me_returns_the_user() {
    let app = spawn_app().await;
    let client = app.client();
    let response = app.login_response(&client, "t2", DEMO_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("warden_sid="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP must not set Secure: {cookie}");

    let me: Value = client.get(app.url("internal/security/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["username"], "t2");
    assert_eq!(me["roles"], serde_json::json!(["t2_analyst"]));
    assert_eq!(me["authentication_type"], "session");
    let privileges: Vec<&str> = me["privileges"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(privileges.contains(&"response:isolate"));
    assert!(!privileges.contains(&"fleet:all"));
}

#[tokio::test]
async fn failed_sign_in_never_says_whether_the_user_exists() {
    let app = spawn_app().await;
    let client = app.client();
    let wrong_password = assert_error(app.login_response(&client, "admin", "nope").await, StatusCode::UNAUTHORIZED).await;
    let no_such_user = assert_error(app.login_response(&client, "ghost", "nope").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong_password, no_such_user);
    assert_eq!(wrong_password, "Invalid username or password");
    let response = client.get(app.url("internal/security/me")).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn sign_out_revokes_the_session_at_once() {
    let app = spawn_app().await;
    let client = app.client();
    let response = app.login_response(&client, "viewer", DEMO_PASSWORD).await;
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();

    let response = client.post(app.url("internal/security/logout")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));

    // The old cookie, replayed by someone who kept it, is worthless.
    let replay = app.client().get(app.url("internal/security/me")).header(COOKIE, &cookie).send().await.unwrap();
    assert_error(replay, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn sign_in_rotates_the_session() {
    let app = spawn_app().await;
    let client = app.client();
    let first = app.login_response(&client, "viewer", DEMO_PASSWORD).await;
    let first_cookie = first.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let second = app.login_response(&client, "viewer", DEMO_PASSWORD).await;
    let second_cookie = second.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_ne!(first_cookie, second_cookie);
    let old = app.client().get(app.url("internal/security/me")).header(COOKIE, &first_cookie).send().await.unwrap();
    assert_error(old, StatusCode::UNAUTHORIZED).await;
    let new = app.client().get(app.url("internal/security/me")).header(COOKIE, &second_cookie).send().await.unwrap();
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn scripts_can_use_basic_credentials() {
    let app = spawn_app().await;
    let client = app.client();
    for _ in 0..2 {
        // The second call is served from the verified-credential cache.
        let response = client.get(app.url("internal/security/me")).basic_auth("manager", Some(DEMO_PASSWORD)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["username"], "manager");
        assert_eq!(me["authentication_type"], "basic");
    }
    let response = client.get(app.url("internal/security/me")).basic_auth("manager", Some("wrong")).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_user() {
    let app = spawn_app().await;
    let client = app.client();
    for _ in 0..10 {
        let response = app.login_response(&client, "t1", "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password now waits: the attacker learns nothing.
    let response = app.login_response(&client, "t1", DEMO_PASSWORD).await;
    let retry_after: u64 = response.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    let message = assert_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("try again in"), "{message}");
    // Another user from the same address is not locked out by t1's failures.
    let response = app.login_response(&client, "t2", DEMO_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once() {
    let app = spawn_app().await;
    let client = app.signed_in("t3").await;
    assert_eq!(client.get(app.url("internal/security/me")).send().await.unwrap().status(), StatusCode::OK);

    let output = app.cli(&["user", "disable", "t3"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 session(s) ended"));

    assert_error(client.get(app.url("internal/security/me")).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_error(app.login_response(&app.client(), "t3", DEMO_PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    let basic = app.client().get(app.url("internal/security/me")).basic_auth("t3", Some(DEMO_PASSWORD)).send().await.unwrap();
    assert_error(basic, StatusCode::UNAUTHORIZED).await;

    assert!(app.cli(&["user", "enable", "t3"]).status.success());
    assert_eq!(app.login_response(&app.client(), "t3", DEMO_PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn user_commands_manage_local_users() {
    let app = spawn_app().await;
    let output = app.cli(&["user", "add", "erin", "--role", "t2_analyst", "--role", "rule_author", "--password", "correct horse battery"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let duplicate = app.cli(&["user", "add", "erin", "--role", "viewer", "--password", "another password"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let client = app.client();
    assert_eq!(app.login_response(&client, "erin", "correct horse battery").await.status(), StatusCode::OK);
    let me: Value = client.get(app.url("internal/security/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["roles"], serde_json::json!(["t2_analyst", "rule_author"]));

    // A new password ends existing sessions.
    let output = app.cli(&["user", "passwd", "erin", "--password", "a brand new secret"]);
    assert!(output.status.success());
    assert_error(client.get(app.url("internal/security/me")).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.login_response(&app.client(), "erin", "a brand new secret").await.status(), StatusCode::OK);

    let list = String::from_utf8_lossy(&app.cli(&["user", "list"]).stdout).to_string();
    assert!(list.contains("erin") && list.contains("t2_analyst, rule_author"), "{list}");

    // Without a password one is generated and printed once.
    let output = app.cli(&["user", "add", "frank", "--role", "viewer"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let generated = stdout.lines().find_map(|l| l.strip_prefix("password: ")).expect("generated password").to_owned();
    assert_eq!(app.login_response(&app.client(), "frank", &generated).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn demo_seeding_is_idempotent() {
    let app = spawn_app().await;
    let output = app.cli(&["user", "passwd", "viewer", "--password", "changed by the team"]);
    assert!(output.status.success());
    let before = String::from_utf8_lossy(&app.cli(&["user", "list"]).stdout).to_string();
    assert_eq!(before.lines().count(), 1 + 9, "{before}");

    // A second node (or a restart) seeds the same database again.
    let second = spawn_app_with(Options { database_url: Some(app.database_url.clone()), ..Options::default() }).await;
    let after = String::from_utf8_lossy(&second.cli(&["user", "list"]).stdout).to_string();
    assert_eq!(before, after);
    // A password the team changed is left alone.
    assert_eq!(second.login_response(&second.client(), "viewer", "changed by the team").await.status(), StatusCode::OK);
}

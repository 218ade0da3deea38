//! The abuse section: each request that once crashed, starved or bypassed a
//! node (issue 9), replayed against a real warden. Every test ends by asking
//! `/api/status`, so a node that died or stalled fails it. Limits are checked
//! by the 400/413/429 they produce, never by timing.

use futures_util::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::fleet::enroll;
use crate::helpers::{DEMO_PASSWORD, TestApp, assert_error, spawn_app};

async fn assert_still_serving(app: &TestApp) {
    let response = app.client().get(app.url("api/status")).send().await.expect("status request");
    assert_eq!(response.status(), StatusCode::OK, "the node stopped answering");
}

fn basic(client: &Client, app: &TestApp, path: &str, username: &str, password: &str) -> reqwest::RequestBuilder {
    client.get(app.url(path)).basic_auth(username, Some(password))
}

#[tokio::test]
async fn deep_or_huge_kueries_are_refused_not_fatal() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let nested = format!("{}status:online{}", "(".repeat(2_000), ")".repeat(2_000));
    let response = viewer.get(app.url("api/fleet/agents")).query(&[("kuery", nested.as_str())]).send().await.unwrap();
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("32 levels"), "{message}");

    let nots = format!("{}status:online", "not ".repeat(1_000));
    let response = viewer.get(app.url("api/fleet/agent_status")).query(&[("kuery", nots.as_str())]).send().await.unwrap();
    assert!(assert_error(response, StatusCode::BAD_REQUEST).await.contains("32 levels"));

    let long = "not ".repeat(6_000) + "status:online";
    let response = viewer.get(app.url("api/fleet/agent_status")).query(&[("kuery", long.as_str())]).send().await.unwrap();
    assert!(assert_error(response, StatusCode::BAD_REQUEST).await.contains("the limit is 4096"));

    let terms = |n: usize| vec!["tags:x"; n].join(" or ");
    let response = viewer.get(app.url("api/fleet/agents")).query(&[("kuery", terms(100).as_str())]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "100 comparisons are allowed");
    let response = viewer.get(app.url("api/fleet/agents")).query(&[("kuery", terms(101).as_str())]).send().await.unwrap();
    assert!(assert_error(response, StatusCode::BAD_REQUEST).await.contains("more than 100 comparisons"));

    let admin = app.signed_in("admin").await;
    let response =
        admin.post(app.url("api/fleet/agents/bulk_unenroll")).header("kbn-xsrf", "t").json(&json!({"agents": nested})).send().await.unwrap();
    assert!(assert_error(response, StatusCode::BAD_REQUEST).await.contains("32 levels"));
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn the_kuery_narrows_in_sql_and_decides_in_the_rule() {
    let app = spawn_app().await;
    for host in ["web-01", "web_02", "db-01", "WEB-03"] {
        enroll(&app, host).await;
    }
    let viewer = app.signed_in("viewer").await;
    let hosts = |kuery: &'static str| {
        let viewer = viewer.clone();
        let url = app.url("api/fleet/agents");
        async move {
            let body: Value = viewer.get(url).query(&[("kuery", kuery), ("perPage", "100")]).send().await.unwrap().json().await.unwrap();
            let mut names: Vec<String> =
                body["items"].as_array().unwrap().iter().map(|a| a["local_metadata"]["host"]["hostname"].as_str().unwrap().to_owned()).collect();
            names.sort();
            names
        }
    };
    assert_eq!(hosts("local_metadata.host.hostname:web-*").await, ["WEB-03", "web-01"]);
    // `_` and `%` are LIKE wildcards in SQL, but only themselves in a kuery.
    assert_eq!(hosts("local_metadata.host.hostname:web_*").await, ["web_02"]);
    assert_eq!(hosts("local_metadata.host.hostname:*%*").await, Vec::<String>::new());
    assert_eq!(hosts("not local_metadata.host.hostname:web*").await, ["db-01"]);
    assert_eq!(hosts("local_metadata.host.hostname:db-01 or tags:test").await.len(), 4);
    assert_eq!(hosts("local_metadata.host.hostname:db-01 and status:enrolling").await, ["db-01"]);
}

#[tokio::test]
async fn paging_numbers_are_validated_with_checked_arithmetic() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    for (page, per_page, field) in [
        ("4294967296", "4294967296", "query.perPage"),
        ("4294967296", "10", "query.page"),
        ("0", "20", "query.page"),
        ("1", "0", "query.perPage"),
        ("1", "10001", "query.perPage"),
        ("501", "20", "query.page"),
    ] {
        let response = viewer.get(app.url("api/fleet/agents")).query(&[("page", page), ("perPage", per_page)]).send().await.unwrap();
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(field), "page={page} perPage={per_page}: {message}");
    }
    let response = viewer.get(app.url("api/fleet/agents")).query(&[("page", "500"), ("perPage", "20")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn basic_credentials_are_throttled_like_the_login_form() {
    let app = spawn_app().await;
    let client = app.client();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(basic(&client, &app, "internal/security/me", "t1", "wrong").send().await.unwrap().status());
    }
    assert_eq!(statuses[..10], [StatusCode::UNAUTHORIZED; 10]);
    assert_eq!(statuses[10..], [StatusCode::TOO_MANY_REQUESTS; 2]);
    // Locked out by Basic failures: neither Basic nor the form lets the right password in.
    let response = basic(&client, &app, "internal/security/me", "t1", DEMO_PASSWORD).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.login_response(&app.client(), "t1", DEMO_PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // Locked out by the form: Basic is refused too.
    for _ in 0..10 {
        assert_eq!(app.login_response(&app.client(), "t2", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    let response = basic(&client, &app, "internal/security/me", "t2", DEMO_PASSWORD).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_cached_basic_credential_stays_locked_out_with_its_user() {
    let app = spawn_app().await;
    let client = app.client();
    // Verified once: now in the node's Basic cache.
    assert_eq!(basic(&client, &app, "internal/security/me", "t3", DEMO_PASSWORD).send().await.unwrap().status(), StatusCode::OK);
    for _ in 0..10 {
        assert_eq!(app.login_response(&app.client(), "t3", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(basic(&client, &app, "internal/security/me", "t3", DEMO_PASSWORD).send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn concurrent_wrong_sign_ins_cannot_overrun_the_limit() {
    let app = spawn_app().await;
    let attempts = (0..40).map(|_| {
        let app = &app;
        async move { app.login_response(&app.client(), "author", "wrong").await.status() }
    });
    let statuses = join_all(attempts).await;
    let verified = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert!(statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)), "{statuses:?}");
    assert!(verified <= 10, "{verified} passwords checked against a limit of 10");
    // Whatever the concurrent burst left, exactly ten failures are ever checked.
    let mut total = verified;
    loop {
        match app.login_response(&app.client(), "author", "wrong").await.status() {
            StatusCode::UNAUTHORIZED => total += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(total, 10);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn a_flood_of_bad_credentials_is_bounded_and_answered() {
    let app = spawn_app().await;
    let client = app.client();
    let attempts = (0..200).map(|n| {
        let request = basic(&client, &app, "internal/security/me", &format!("nobody-{n}"), "guess");
        async move { request.send().await.unwrap().status() }
    });
    let statuses = join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "{statuses:?}"
    );
    let mut checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert!(checked <= 50, "{checked} passwords checked from one address against a limit of 50");
    // Whatever the flood left, exactly fifty failures from one address are ever checked.
    let mut n = 0;
    loop {
        n += 1;
        match basic(&client, &app, "internal/security/me", &format!("later-{n}"), "guess").send().await.unwrap().status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(checked, 50);
    // The address is locked out, so a real user from it is too, until the window ends.
    assert_eq!(basic(&client, &app, "internal/security/me", "viewer", DEMO_PASSWORD).send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn wrong_api_keys_count_against_the_address() {
    let app = spawn_app().await;
    let client = app.client();
    let bogus = |n: usize| format!("ApiKey {}", base64_encode(&format!("key-{n}:secret")));
    for n in 0..50 {
        let response = client.get(app.url("internal/security/me")).header("Authorization", bogus(n)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = client.get(app.url("internal/security/me")).header("Authorization", bogus(50)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_still_serving(&app).await;
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn acks_are_bounded_per_request_and_other_agents_keep_working() {
    let app = spawn_app().await;
    let noisy = enroll(&app, "noisy").await;
    let quiet = enroll(&app, "quiet").await;
    let events = |n: usize| -> Vec<Value> { (0..n).map(|i| json!({"action_id": format!("a-{i}"), "type": "ACTION_RESULT"})).collect() };
    let ack = |agent: &crate::fleet::TestAgent, n: usize| {
        app.client()
            .post(app.url(&format!("api/fleet/agents/{}/acks", agent.id)))
            .header("Authorization", format!("ApiKey {}", agent.key))
            .json(&json!({"events": events(n)}))
            .send()
    };
    let message = assert_error(ack(&noisy, 1_001).await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("at most 1000 events"), "{message}");
    let response = ack(&noisy, 1_000).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1_000);
    assert_eq!(body["items"][999]["status"], 404, "no such action for this agent");

    let checkin = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/checkin", quiet.id)))
        .header("Authorization", format!("ApiKey {}", quiet.key))
        .json(&json!({"status": "online", "message": "ok", "poll_timeout": "0s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(checkin.status(), StatusCode::OK);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn repeating_an_unenroll_queues_one_action() {
    let app = spawn_app().await;
    let agent = enroll(&app, "twice").await;
    let admin = app.signed_in("admin").await;
    for _ in 0..3 {
        let response =
            admin.post(app.url(&format!("api/fleet/agents/{}/unenroll", agent.id))).header("kbn-xsrf", "t").json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response =
        admin.post(app.url("api/fleet/agents/bulk_unenroll")).header("kbn-xsrf", "t").json(&json!({"agents": [agent.id]})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let db = app.db().await;
    let queued: i64 = sqlx::query_scalar("select count(*) from agent_actions where agent_id = $1 and action_type = 'UNENROLL'")
        .bind(&agent.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn enrollment_key_expirations_cannot_overflow() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let policies: Value = admin.get(app.url("api/fleet/agent_policies")).send().await.unwrap().json().await.unwrap();
    let policy_id = policies["items"][0]["id"].as_str().unwrap().to_owned();
    for expiration in ["9223372036854775s", "99999999999999999999999s", "3651d", "-5m"] {
        let response = admin
            .post(app.url("api/fleet/enrollment_api_keys"))
            .header("kbn-xsrf", "t")
            .json(&json!({"policy_id": policy_id, "expiration": expiration}))
            .send()
            .await
            .unwrap();
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.starts_with("[request body.expiration]"), "{expiration}: {message}");
    }
    let response = admin
        .post(app.url("api/fleet/enrollment_api_keys"))
        .header("kbn-xsrf", "t")
        .json(&json!({"policy_id": policy_id, "expiration": "30d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn text_the_database_cannot_store_is_a_client_error() {
    let app = spawn_app().await;
    // PostgreSQL refuses NUL in text; SQLite stores it. Neither is a 5xx.
    let response = app.login_response(&app.client(), "nul\u{0}user", "x").await;
    assert!([StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED].contains(&response.status()), "{}", response.status());
    let viewer = app.signed_in("viewer").await;
    let response = viewer.get(app.url("api/fleet/agents")).query(&[("kuery", "local_metadata.host.hostname:\"a\u{0}b\"")]).send().await.unwrap();
    assert!([StatusCode::BAD_REQUEST, StatusCode::OK].contains(&response.status()), "{}", response.status());
    assert_still_serving(&app).await;
}

//! Connectors (`/api/actions`): system actions stay hidden and fixed, the
//! licence gate, the outbound-call guard, a webhook to a real receiver, secrets
//! never returned, and the change history.

use axum::http::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{Options, TestApp, assert_error, spawn_app, spawn_app_with};

const CASES_ID: &str = "system-connector-.cases";

async fn get_json(client: &Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect()
}

async fn create(app: &TestApp, client: &Client, body: Value) -> reqwest::Response {
    client.post(app.url("api/actions/connector")).header("kbn-xsrf", "t").json(&body).send().await.unwrap()
}

/// A receiver on 127.0.0.1 that hands each request's headers and body to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                axum::Json(json!({"received": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), rx)
}

#[tokio::test]
async fn system_actions_are_built_in_hidden_from_public_lists_and_refused_by_the_api() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    // Public lists: never a system action or type.
    assert!(!ids(&get_json(&admin, &app.url("api/actions/connectors")).await).contains(&CASES_ID));
    let types = get_json(&admin, &app.url("api/actions/connector_types")).await;
    assert!(types.as_array().unwrap().iter().all(|t| t["is_system_action_type"] == false), "{types}");
    assert_error(admin.get(app.url(&format!("api/actions/connector/{CASES_ID}"))).send().await.unwrap(), StatusCode::NOT_FOUND).await;

    // The rule form's lists: there, with its fixed id, for a user who may open cases.
    let internal = get_json(&admin, &app.url("internal/actions/connectors")).await;
    let cases = internal.as_array().unwrap().iter().find(|c| c["id"] == CASES_ID).expect("the cases system action");
    assert_eq!(cases["is_system_action"], true);
    assert_eq!(cases["connector_type_id"], ".cases");
    assert_eq!(cases["config"], json!({}));
    let internal_types = get_json(&admin, &app.url("internal/actions/connector_types")).await;
    assert!(internal_types.as_array().unwrap().iter().any(|t| t["id"] == ".cases" && t["is_system_action_type"] == true));
    // A viewer (no cases:all) does not get it at all.
    let viewer = app.signed_in("viewer").await;
    assert!(!ids(&get_json(&viewer, &app.url("internal/actions/connectors")).await).contains(&CASES_ID));

    // Create, update, delete and execute through the API: a 400 that says why.
    let system = json!({"name": "my cases", "connector_type_id": ".cases"});
    let message = assert_error(create(&app, &admin, system.clone()).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("System action .cases cannot be created through the API"), "{message}");
    let url = app.url(&format!("api/actions/connector/{CASES_ID}"));
    let message = assert_error(admin.post(&url).header("kbn-xsrf", "t").json(&system).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("cannot be created"), "{message}");
    let message =
        assert_error(admin.put(&url).header("kbn-xsrf", "t").json(&json!({"name": "x"})).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("cannot be updated"), "{message}");
    let message = assert_error(admin.delete(&url).header("kbn-xsrf", "t").send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("cannot be deleted"), "{message}");
    let execute = admin.post(format!("{url}/_execute")).header("kbn-xsrf", "t").json(&json!({"params": {}})).send().await.unwrap();
    assert!(assert_error(execute, StatusCode::BAD_REQUEST).await.contains("cannot be executed"));

    // The same id on a second node sharing the database, and after a restart.
    let node_b = spawn_app_with(Options { database_url: Some(app.database_url.clone()), ..Options::default() }).await;
    let admin_b = node_b.signed_in("admin").await;
    assert!(ids(&get_json(&admin_b, &node_b.url("internal/actions/connectors")).await).contains(&CASES_ID));
}

#[tokio::test]
async fn a_webhook_calls_a_real_receiver_and_its_secrets_are_never_returned() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let (url, mut received) = receiver().await;
    let body = json!({
        "name": "SOC hook",
        "connector_type_id": ".webhook",
        "config": {"url": url, "headers": {"x-soc": "warden"}, "authType": "webhook-authentication-basic"},
        "secrets": {"user": "hook-user", "password": "hook-password-123"},
    });
    let response = create(&app, &admin, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let connector: Value = response.json().await.unwrap();
    let id = connector["id"].as_str().unwrap().to_owned();
    assert_eq!(connector["config"]["method"], "post", "defaults are filled in");
    assert_eq!(connector["is_missing_secrets"], false);
    assert!(connector.get("secrets").is_none(), "{connector}");
    let fetched = get_json(&admin, &app.url(&format!("api/actions/connector/{id}"))).await;
    assert!(!fetched.to_string().contains("hook-password-123"), "{fetched}");
    let listed = get_json(&admin, &app.url("api/actions/connectors")).await;
    let row = listed.as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).unwrap();
    assert_eq!(row["referenced_by_count"], 0);
    assert!(!listed.to_string().contains("hook-password-123"));

    let payload = r#"{"host": "web-01", "note": "quote \" and backslash \\"}"#;
    let execute = admin
        .post(app.url(&format!("api/actions/connector/{id}/_execute")))
        .header("kbn-xsrf", "t")
        .json(&json!({"params": {"body": payload}}))
        .send()
        .await
        .unwrap();
    assert_eq!(execute.status(), StatusCode::OK);
    let result: Value = execute.json().await.unwrap();
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["data"], json!({"received": true}));
    let (headers, arrived) = received.recv().await.unwrap();
    assert_eq!(arrived, payload);
    assert_eq!(headers["x-soc"], "warden");
    // Basic auth from the secrets: base64("hook-user:hook-password-123").
    assert_eq!(headers["authorization"], "Basic aG9vay11c2VyOmhvb2stcGFzc3dvcmQtMTIz");

    // The run is in the connector's execution log, with who ran it.
    let runs = get_json(&admin, &app.url(&format!("internal/actions/connector/{id}/_executions"))).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!((runs[0]["status"].clone(), runs[0]["actor"].clone(), runs[0]["source"].clone()), (json!("ok"), json!("admin"), json!("api")));

    // Update: the history names what changed, never a secret's value.
    let update = json!({"name": "SOC hook", "config": {"url": url}, "secrets": {}});
    let response = admin.put(app.url(&format!("api/actions/connector/{id}"))).header("kbn-xsrf", "t").json(&update).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = admin.delete(app.url(&format!("api/actions/connector/{id}"))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(admin.get(app.url(&format!("api/actions/connector/{id}"))).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let history = get_json(&admin, &app.url(&format!("internal/actions/connector/{id}/_history"))).await;
    let changes: Vec<&str> = history.as_array().unwrap().iter().map(|c| c["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["delete", "update", "create"]);
    let update_line = history[1]["summary"].as_str().unwrap();
    assert!(update_line.contains("config.authType") && update_line.contains("config.headers") && update_line.contains("secrets"), "{update_line}");
    assert!(history.as_array().unwrap().iter().all(|c| c["changed_by"] == "admin"));
    assert!(!history.to_string().contains("hook-password-123") && !history.to_string().contains("hook-user"), "{history}");
}

#[tokio::test]
async fn configs_secrets_and_params_are_checked_with_kibanas_messages() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    for (body, expected) in [
        (json!({"name": "x", "connector_type_id": ".webhook", "config": {}}), "[url]: expected value of type [string] but got [undefined]"),
        (json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "ftp://h/"}}), "must be http or https"),
        (
            json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://h/", "nope": 1}}),
            "[nope]: definition for this key is missing",
        ),
        (json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "https://u:p@h/"}}), "the url may not hold a user or password"),
        (json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://h/", "method": "trace"}}), "[method]: expected one of"),
        (
            json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://h/", "hasAuth": false, "authType": "webhook-authentication-basic"}}),
            "authType must be null when hasAuth is false",
        ),
        (
            json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://h/", "authType": "webhook-authentication-basic"}}),
            "both user and password must be specified",
        ),
        (json!({"name": " ", "connector_type_id": ".server-log"}), "[request body.name]"),
        (json!({"name": "x", "connector_type_id": ".nope"}), "Action type \".nope\" is not registered."),
    ] {
        let message = assert_error(create(&app, &admin, body.clone()).await, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(expected), "{body}: {message}");
    }
    let bad_id =
        admin.post(app.url("api/actions/connector/a%2Fb")).header("kbn-xsrf", "t").json(&json!({"name": "x", "connector_type_id": ".server-log"}));
    assert!(assert_error(bad_id.send().await.unwrap(), StatusCode::BAD_REQUEST).await.contains("[request params.id]"));
    let fixed = json!({"name": "log", "connector_type_id": ".server-log"});
    let first = admin.post(app.url("api/actions/connector/my-log")).header("kbn-xsrf", "t").json(&fixed).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = admin.post(app.url("api/actions/connector/my-log")).header("kbn-xsrf", "t").json(&fixed).send().await.unwrap();
    assert_error(again, StatusCode::CONFLICT).await;
    let execute =
        |params: Value| admin.post(app.url("api/actions/connector/my-log/_execute")).header("kbn-xsrf", "t").json(&json!({"params": params})).send();
    assert!(assert_error(execute(json!({})).await.unwrap(), StatusCode::BAD_REQUEST).await.contains("[message]"));
    assert!(assert_error(execute(json!({"message": "m", "level": "loud"})).await.unwrap(), StatusCode::BAD_REQUEST).await.contains("[level]"));
    let ok: Value = execute(json!({"message": "from the test", "level": "warn"})).await.unwrap().json().await.unwrap();
    assert_eq!(ok, json!({"connector_id": "my-log", "status": "ok"}));
}

#[tokio::test]
async fn the_licence_gates_connector_types() {
    let app = spawn_app_with(Options { extra_args: vec!["--license".into(), "basic".into()], ..Options::default() }).await;
    let admin = app.signed_in("admin").await;
    let types = get_json(&admin, &app.url("api/actions/connector_types")).await;
    let webhook = types.as_array().unwrap().iter().find(|t| t["id"] == ".webhook").unwrap();
    assert_eq!((webhook["enabled_in_license"].clone(), webhook["minimum_license_required"].clone()), (json!(false), json!("gold")));
    let body = json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://127.0.0.1:9/"}});
    let message = assert_error(create(&app, &admin, body).await, StatusCode::FORBIDDEN).await;
    assert_eq!(message, "Action type .webhook is disabled because your basic license does not support it. Please upgrade your license.");
    let log = create(&app, &admin, json!({"name": "log", "connector_type_id": ".server-log"})).await;
    assert_eq!(log.status(), StatusCode::OK, "server-log needs only basic");
}

#[tokio::test]
async fn outbound_calls_obey_allowed_hosts_and_never_reach_metadata_addresses_unnamed() {
    let app = spawn_app_with(Options { extra_args: vec!["--actions-allowed-hosts".into(), "hooks.example.com".into()], ..Options::default() }).await;
    let admin = app.signed_in("admin").await;
    let body = json!({"name": "x", "connector_type_id": ".webhook", "config": {"url": "http://127.0.0.1:9/hook"}, "secrets": {}});
    let message = assert_error(create(&app, &admin, body).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        message,
        "error validating connector type config: error validation webhook action config: target url \"http://127.0.0.1:9/hook\" is not added to the Warden config actions_allowed_hosts"
    );

    // With any host allowed, a cloud-metadata address is still refused when the call is made.
    let open = spawn_app().await;
    let admin = open.signed_in("admin").await;
    let body = json!({"name": "metadata", "connector_type_id": ".webhook", "config": {"url": "http://169.254.169.254/latest/meta-data/"}});
    let created: Value = create(&open, &admin, body).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let result: Value = admin
        .post(open.url(&format!("api/actions/connector/{id}/_execute")))
        .header("kbn-xsrf", "t")
        .json(&json!({"params": {"body": "{}"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["status"], "error", "{result}");
    assert!(result["message"].as_str().unwrap().contains("link-local or cloud-metadata address"), "{result}");
    let runs = get_json(&admin, &open.url(&format!("internal/actions/connector/{id}/_executions"))).await;
    assert_eq!(runs[0]["status"], "error");
    assert!(runs[0]["message"].as_str().unwrap().contains("link-local"), "{runs}");
}

#[tokio::test]
async fn preconfigured_connectors_are_listed_read_only_and_run() {
    let preconfigured = r#"{"ops-log": {"name": "Ops log", "connector_type_id": ".server-log"}}"#;
    let app = spawn_app_with(Options { extra_args: vec!["--actions-preconfigured".into(), preconfigured.into()], ..Options::default() }).await;
    let admin = app.signed_in("admin").await;
    let list = get_json(&admin, &app.url("api/actions/connectors")).await;
    let ops = list.as_array().unwrap().iter().find(|c| c["id"] == "ops-log").expect("listed");
    assert_eq!(ops["is_preconfigured"], true);
    assert!(ops.get("config").is_none() && ops.get("is_missing_secrets").is_none(), "{ops}");
    assert_eq!(get_json(&admin, &app.url("api/actions/connector/ops-log")).await["name"], "Ops log");

    let url = app.url("api/actions/connector/ops-log");
    let put = admin.put(&url).header("kbn-xsrf", "t").json(&json!({"name": "mine now"})).send().await.unwrap();
    assert_eq!(assert_error(put, StatusCode::BAD_REQUEST).await, "Preconfigured action ops-log is not allowed to update.");
    let delete = admin.delete(&url).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(assert_error(delete, StatusCode::BAD_REQUEST).await, "Preconfigured action ops-log is not allowed to delete.");
    let taken = admin.post(&url).header("kbn-xsrf", "t").json(&json!({"name": "x", "connector_type_id": ".server-log"})).send().await.unwrap();
    assert_error(taken, StatusCode::CONFLICT).await;
    let run: Value = admin
        .post(app.url("api/actions/connector/ops-log/_execute"))
        .header("kbn-xsrf", "t")
        .json(&json!({"params": {"message": "preconfigured"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "ok", "{run}");
}

#[tokio::test]
async fn a_preconfigured_system_action_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database(dir.path()).await;
    let output = crate::helpers::warden_command(&database_url)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--actions-preconfigured"])
        .arg(r#"{"my-cases": {"name": "Cases", "connector_type_id": ".cases"}}"#)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Preconfigured connector my-cases: .cases is a system action type, which cannot be preconfigured"), "{stderr}");
}

/// An SMTP server on 127.0.0.1 that accepts every message and hands its DATA to the test.
async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(text) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(std::mem::take(text));
                            data = None;
                            let _ = write.write_all(b"250 2.0.0 queued as test\r\n").await;
                        } else {
                            text.push_str(&line);
                            text.push('\n');
                        }
                        continue;
                    }
                    let command = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match command.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "MAIL" | "RCPT" | "RSET" | "NOOP" | "HELO" => b"250 OK\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        _ => b"502 unknown\r\n",
                    };
                    let _ = write.write_all(reply).await;
                    if command == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn an_email_reaches_an_smtp_server() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let (port, mut messages) = smtp_sink().await;
    let body = json!({
        "name": "SOC mail",
        "connector_type_id": ".email",
        "config": {"host": "127.0.0.1", "port": port, "from": "warden@example.com", "hasAuth": false},
    });
    let response = create(&app, &admin, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let execute = |params: Value| {
        admin.post(app.url(&format!("api/actions/connector/{id}/_execute"))).header("kbn-xsrf", "t").json(&json!({"params": params})).send()
    };
    let none = execute(json!({"to": [], "subject": "s", "message": "m"})).await.unwrap();
    assert!(assert_error(none, StatusCode::BAD_REQUEST).await.contains("At least one email recipient must be specified"));

    let sent: Value =
        execute(json!({"to": ["soc@example.com"], "cc": ["lead@example.com"], "subject": "Agent offline", "message": "web-01 stopped checking in"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(sent["status"], "ok", "{sent}");
    let data = messages.recv().await.unwrap();
    for expected in
        ["From: warden@example.com", "To: soc@example.com", "Cc: lead@example.com", "Subject: Agent offline", "web-01 stopped checking in"]
    {
        assert!(data.contains(expected), "{expected} in:\n{data}");
    }

    let missing_auth =
        json!({"name": "x", "connector_type_id": ".email", "config": {"host": "127.0.0.1", "port": port, "from": "warden@example.com"}});
    let message = assert_error(create(&app, &admin, missing_auth).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("[user] and [password] are required"), "{message}");
}

#[tokio::test]
async fn the_execution_log_keeps_the_newest_200_runs() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let url = app.url("api/actions/connector/demo-server-log/_execute");
    for n in 0..205 {
        let response = admin
            .post(&url)
            .header("kbn-xsrf", "t")
            .json(&json!({"params": {"message": format!("run {n}"), "level": "debug"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let runs = get_json(&admin, &app.url("internal/actions/connector/demo-server-log/_executions")).await;
    assert_eq!(runs.as_array().unwrap().len(), 200);
    assert!(runs.as_array().unwrap().iter().all(|r| r["status"] == "ok" && r["actor"] == "admin"));
}

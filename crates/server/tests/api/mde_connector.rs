//! The `.microsoft_defender_endpoint` connector against the MDE emulator
//! (`warden-mde-emulator`, built beside `warden`): the token and its cache,
//! retries on 429, a wrong secret, MDE out of reach, the response sub-actions
//! through `_execute`, and the Enterprise licence.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::emulators::Emulator;
use crate::helpers::{Options, TestApp, assert_error, eventually, spawn_app, spawn_app_with};

const TENANT: &str = "test-tenant";
const CLIENT_ID: &str = "test-client";
const SECRET: &str = "test-secret-123";
const GOOD_MACHINE: &str = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07";
const HANGING_MACHINE: &str = "7a3b5d0e9b1e7d3c5a0f2e8d6c4b1a9f7e5d3c1b";

/// The emulator for the test tenant, with `token_lifetime` and two machines
/// (one whose actions succeed at once, one whose actions hang) and a script.
fn start_emulator(token_lifetime: &str) -> Emulator {
    Emulator::start(&format!(
        r#"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "{SECRET}"
token_lifetime = "{token_lifetime}"
action_delay = "0s"

[[machines]]
id = "{GOOD_MACHINE}"
computerDnsName = "finance-ws-01.corp.example"
osPlatform = "Windows11"
healthStatus = "Active"
outcome = "succeed"

[[machines]]
id = "{HANGING_MACHINE}"
computerDnsName = "kiosk-03.corp.example"
osPlatform = "Windows10"
healthStatus = "Active"
outcome = "hang"

[[scripts]]
fileName = "hello.ps1"
description = "Says hello"
hasParameters = false
output = "hello from MDE"
"#
    ))
}

fn connector_body(name: &str, emulator_url: &str, secret: &str) -> Value {
    json!({
        "name": name,
        "connector_type_id": ".microsoft_defender_endpoint",
        "config": {
            "clientId": CLIENT_ID,
            "tenantId": TENANT,
            "oAuthServerUrl": emulator_url,
            "oAuthScope": "https://securitycenter.onmicrosoft.com/windowsatpservice/.default",
            "apiUrl": emulator_url,
        },
        "secrets": {"clientSecret": secret},
    })
}

async fn create(app: &TestApp, client: &Client, body: &Value) -> String {
    let response = client.post(app.url("api/actions/connector")).header("kbn-xsrf", "t").json(body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let connector: Value = response.json().await.unwrap();
    assert!(connector.get("secrets").is_none() && !connector.to_string().contains(SECRET), "{connector}");
    connector["id"].as_str().unwrap().to_owned()
}

/// `_execute` with Kibana's sub-action params; the answer's body.
async fn execute(app: &TestApp, client: &Client, id: &str, sub_action: &str, params: Value) -> Value {
    let response = client
        .post(app.url(&format!("api/actions/connector/{id}/_execute")))
        .header("kbn-xsrf", "t")
        .json(&json!({"params": {"subAction": sub_action, "subActionParams": params}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["connector_id"], id, "{body}");
    body
}

async fn ok(app: &TestApp, client: &Client, id: &str, sub_action: &str, params: Value) -> Value {
    let body = execute(app, client, id, sub_action, params).await;
    assert_eq!(body["status"], "ok", "{sub_action}: {body}");
    body["data"].clone()
}

#[tokio::test]
async fn the_connector_gets_one_token_reuses_it_and_retries_when_mde_is_busy() {
    let emulator = start_emulator("1h");
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;

    // Kibana's config-schema messages for a config that lacks a field.
    let mut missing = connector_body("MDE", &emulator.url, SECRET);
    missing["config"].as_object_mut().unwrap().remove("clientId");
    let response = admin.post(app.url("api/actions/connector")).header("kbn-xsrf", "t").json(&missing).send().await.unwrap();
    assert_eq!(
        assert_error(response, StatusCode::BAD_REQUEST).await,
        "error validating connector type config: [clientId]: expected value of type [string] but got [undefined]"
    );

    let id = create(&app, &admin, &connector_body("MDE", &emulator.url, SECRET)).await;
    // The connectors page's Test: a token, then a machine that does not exist.
    assert_eq!(ok(&app, &admin, &id, "testConnector", json!({})).await, json!({}));
    let stats = emulator.stats().await;
    assert_eq!(stats["tokens_issued"], 1, "{stats}");
    assert_eq!(stats["by_route"]["GET /api/machines/{id}"], 1, "{stats}");

    // Two more calls: the cached token.
    let machine = ok(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})).await;
    assert_eq!((machine["id"].as_str(), machine["computerDnsName"].as_str()), (Some(GOOD_MACHINE), Some("finance-ws-01.corp.example")));
    let list = ok(&app, &admin, &id, "getAgentList", json!({"osPlatform": "Windows10", "pageSize": 5})).await;
    assert_eq!((list["total"].clone(), list["page"].clone(), list["pageSize"].clone()), (json!(1), json!(1), json!(5)), "{list}");
    assert_eq!(list["value"][0]["id"], HANGING_MACHINE);
    let stats = emulator.stats().await;
    assert_eq!((stats["tokens_issued"].clone(), stats["api_calls"].clone()), (json!(1), json!(3)), "{stats}");

    // MDE is busy once (429, Retry-After 1): the call waits and succeeds on the second attempt.
    emulator.fail_next(json!({"status": 429, "count": 1, "retry_after": 1})).await;
    let started = std::time::Instant::now();
    ok(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    let stats = emulator.stats().await;
    assert_eq!((stats["api_calls"].clone(), stats["tokens_issued"].clone()), (json!(5), json!(1)), "one retry: {stats}");

    // Busy beyond the 3 attempts: the error says so and is worth retrying later.
    emulator.fail_next(json!({"status": 503, "count": 3, "retry_after": 0})).await;
    let busy = execute(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})).await;
    assert_eq!((busy["status"].clone(), busy["retry"].clone()), (json!("error"), json!(true)), "{busy}");
    assert!(busy["message"].as_str().unwrap().contains("(503 InternalServerError)"), "{busy}");
    assert_eq!(emulator.stats().await["api_calls"], 8);

    // MDE refuses the token once (401): one new token, and the call again.
    emulator.fail_next(json!({"status": 401, "count": 1})).await;
    ok(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})).await;
    let stats = emulator.stats().await;
    assert_eq!((stats["tokens_issued"].clone(), stats["api_calls"].clone()), (json!(2), json!(10)), "{stats}");

    // Params are checked before anything is sent, with the field's path.
    let response = admin
        .post(app.url(&format!("api/actions/connector/{id}/_execute")))
        .header("kbn-xsrf", "t")
        .json(&json!({"params": {"subAction": "isolateHost", "subActionParams": {"id": GOOD_MACHINE}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(response, StatusCode::BAD_REQUEST).await,
        "error validating action params: [subActionParams.comment]: expected value of type [string] but got [undefined]"
    );
    assert_eq!(emulator.stats().await["api_calls"], 10);
}

#[tokio::test]
async fn response_sub_actions_reach_mde_through_execute() {
    let emulator = start_emulator("1h");
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let id = create(&app, &admin, &connector_body("MDE", &emulator.url, SECRET)).await;

    // Concurrent first calls wait for one token request.
    futures_util::future::join_all((0..4).map(|_| ok(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})))).await;
    assert_eq!(emulator.stats().await["tokens_issued"], 1);

    let isolate = ok(&app, &admin, &id, "isolateHost", json!({"id": GOOD_MACHINE, "comment": "contain it"})).await;
    assert_eq!((isolate["type"].clone(), isolate["status"].clone()), (json!("Isolate"), json!("Pending")), "{isolate}");
    assert_eq!(isolate["requestorComment"], "contain it");
    let isolate_id = isolate["id"].as_str().unwrap().to_owned();
    // The action ends (action_delay 0s) and getActions finds it by id.
    let actions = ok(&app, &admin, &id, "getActions", json!({"id": [isolate_id.clone()], "pageSize": 1})).await;
    assert_eq!(actions["value"][0]["status"], "Succeeded", "{actions}");
    assert_eq!(actions["total"], 1);

    let release = ok(&app, &admin, &id, "releaseHost", json!({"id": GOOD_MACHINE, "comment": "all clear"})).await;
    assert_eq!(release["type"], "Unisolate", "{release}");

    let library = ok(&app, &admin, &id, "getLibraryFiles", json!({})).await;
    assert_eq!(library["value"][0]["fileName"], "hello.ps1", "{library}");
    let script =
        ok(&app, &admin, &id, "runScript", json!({"id": GOOD_MACHINE, "comment": "say hi", "parameters": {"scriptName": "hello.ps1"}})).await;
    assert_eq!(script["type"], "LiveResponse", "{script}");
    assert_eq!(script["commands"][0]["command"]["params"][1], json!({"key": "Args", "value": "--noargs"}), "{script}");
    let script_id = script["id"].as_str().unwrap().to_owned();
    let finished = ok(&app, &admin, &id, "getActions", json!({"id": script_id, "status": "Succeeded"})).await;
    assert_eq!(finished["total"], 1, "{finished}");
    let transcript = ok(&app, &admin, &id, "getActionResults", json!({"id": script_id})).await;
    assert_eq!((transcript["script_name"].clone(), transcript["script_output"].clone()), (json!("hello.ps1"), json!("hello from MDE")));

    // A hanging isolation is cancelled; MDE records who and why.
    let hanging = ok(&app, &admin, &id, "isolateHost", json!({"id": HANGING_MACHINE, "comment": "contain"})).await;
    let hanging_id = hanging["id"].as_str().unwrap();
    let cancelled = ok(&app, &admin, &id, "cancelAction", json!({"actionId": hanging_id, "comment": "wrong host"})).await;
    assert_eq!(cancelled["status"], "Cancelled", "{cancelled}");
    assert_eq!(cancelled["cancellationComment"], "wrong host");

    // MDE's own error, with its code.
    let missing = execute(&app, &admin, &id, "getAgentDetails", json!({"id": "no-such-machine"})).await;
    assert_eq!((missing["status"].clone(), missing["retry"].clone()), (json!("error"), json!(false)), "{missing}");
    assert_eq!(missing["message"], "Microsoft Defender for Endpoint: Machine no-such-machine was not found (404 ResourceNotFound)");
    assert_eq!(emulator.stats().await["tokens_issued"], 1);

    // Every run is in the connector's execution log.
    let runs: Value = admin.get(app.url(&format!("internal/actions/connector/{id}/_executions"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 14, "{runs}");
}

#[tokio::test]
async fn expired_tokens_are_renewed_and_failures_say_what_went_wrong() {
    let mut emulator = start_emulator("6s");
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let id = create(&app, &admin, &connector_body("MDE", &emulator.url, SECRET)).await;
    ok(&app, &admin, &id, "testConnector", json!({})).await;
    assert_eq!(emulator.stats().await["tokens_issued"], 1);
    // Renewed 5 s before it expires: a later call gets a new one.
    eventually("an expired token is replaced", || async {
        ok(&app, &admin, &id, "testConnector", json!({})).await;
        emulator.stats().await["tokens_issued"] == 2
    })
    .await;

    // A wrong secret: the OAuth server's refusal, not worth retrying.
    let wrong = create(&app, &admin, &connector_body("MDE wrong secret", &emulator.url, "not-the-secret")).await;
    let refused = execute(&app, &admin, &wrong, "testConnector", json!({})).await;
    assert_eq!((refused["status"].clone(), refused["retry"].clone()), (json!("error"), json!(false)), "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("refused the connector's credentials") && message.contains("Invalid client secret"), "{message}");
    assert!(message.contains("(401 invalid_client)"), "{message}");

    // MDE out of reach: the message names the URL; worth retrying later.
    emulator.stop();
    let down = execute(&app, &admin, &id, "getAgentDetails", json!({"id": GOOD_MACHINE})).await;
    assert_eq!((down["status"].clone(), down["retry"].clone()), (json!("error"), json!(true)), "{down}");
    let message = down["message"].as_str().unwrap();
    assert!(message.contains(&format!("{}/", emulator.url)) && message.contains("cannot be reached"), "{message}");
}

#[tokio::test]
async fn the_connector_type_needs_an_enterprise_licence() {
    let app = spawn_app_with(Options { extra_args: vec!["--license".into(), "platinum".into()], ..Options::default() }).await;
    let admin = app.signed_in("admin").await;
    let types: Value = admin.get(app.url("api/actions/connector_types")).send().await.unwrap().json().await.unwrap();
    let mde = types.as_array().unwrap().iter().find(|t| t["id"] == ".microsoft_defender_endpoint").unwrap();
    assert_eq!(mde["name"], "Microsoft Defender for Endpoint");
    assert_eq!((mde["enabled_in_license"].clone(), mde["minimum_license_required"].clone()), (json!(false), json!("enterprise")));
    assert_eq!(mde["supported_feature_ids"], json!(["endpointSecurity"]));
    let body = connector_body("MDE", "http://127.0.0.1:9", SECRET);
    let response = admin.post(app.url("api/actions/connector")).header("kbn-xsrf", "t").json(&body).send().await.unwrap();
    assert_eq!(
        assert_error(response, StatusCode::FORBIDDEN).await,
        "Action type .microsoft_defender_endpoint is disabled because your platinum license does not support it. Please upgrade your license."
    );
}

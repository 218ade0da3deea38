//! Response actions on Microsoft Defender for Endpoint hosts, against a real
//! warden and the MDE emulator (`warden-mde-emulator`) the test starts:
//! isolate, release, runscript, cancel of a hanging machine action, the
//! licence and flag, an emulator that is down, and a rule's
//! `.endpoint-response` system action isolating an MDE host.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::emulators::Emulator;
use crate::helpers::{Options, TestApp, assert_error, eventually, spawn_app_with};
use crate::response_actions::{details, send, sent};

const CONFIG: &str = r#"
tenant_id = "t1"
client_id = "warden"
client_secret = "s3cret"
action_delay = "0s"

[[machines]]
id = "m-ok"
computerDnsName = "finance-ws-01.corp.example"
outcome = "succeed"

[[machines]]
id = "m-hang"
computerDnsName = "hr-ws-02.corp.example"
outcome = "hang"

[[machines]]
id = "m-fail"
computerDnsName = "lab-ws-03.corp.example"
outcome = "fail"

[[scripts]]
fileName = "collect.ps1"
description = "Collects triage data"
hasParameters = true
output = "collected"
"#;

/// A warden with the MDE cancel flag on and a fast poll, and its MDE connector.
async fn setup(extra: &[&str]) -> (TestApp, Emulator, Client) {
    let emulator = Emulator::start(CONFIG);
    let mut args: Vec<String> = vec!["--mde-poll-interval".into(), "100ms".into()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let app = spawn_app_with(Options { extra_args: args, ..Options::default() }).await;
    let admin = app.signed_in("admin").await;
    let response = admin
        .post(app.url("api/actions/connector"))
        .header("kbn-xsrf", "t")
        .json(&json!({
            "name": "MDE", "connector_type_id": ".microsoft_defender_endpoint",
            "config": {"clientId": "warden", "tenantId": "t1", "oAuthServerUrl": emulator.url, "oAuthScope": "https://securitycenter.onmicrosoft.com/windowsatpservice/.default", "apiUrl": emulator.url},
            "secrets": {"clientSecret": "s3cret"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());
    (app, emulator, admin)
}

fn mde(endpoints: &[&str], parameters: Value) -> Value {
    json!({"endpoint_ids": endpoints, "agent_type": "microsoft_defender_endpoint", "parameters": parameters})
}

async fn ended(app: &TestApp, client: &Client, id: &str) -> Value {
    eventually(&format!("action {id} ends"), || async { details(app, client, id).await["status"] != "pending" }).await;
    details(app, client, id).await
}

#[tokio::test]
async fn isolate_release_and_runscript_on_mde_hosts() {
    let (app, emulator, admin) = setup(&[]).await;
    let manager = app.signed_in("manager").await;
    let isolate = sent(&app, &manager, "isolate", mde(&["m-ok"], json!({}))).await;
    assert_eq!(isolate["agentType"], "microsoft_defender_endpoint");
    assert_eq!(isolate["hosts"]["m-ok"]["name"], "finance-ws-01.corp.example");
    let done = ended(&app, &manager, isolate["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(emulator.machine("t1", "warden", "s3cret", "m-ok").await["isolated"], true);

    let release = sent(&app, &manager, "unisolate", mde(&["m-ok"], json!({}))).await;
    assert_eq!(ended(&app, &manager, release["id"].as_str().unwrap()).await["status"], "successful");

    let script = sent(&app, &manager, "run_script", mde(&["m-ok"], json!({"scriptName": "collect.ps1", "args": "-Days 3"}))).await;
    let done = ended(&app, &manager, script["id"].as_str().unwrap()).await;
    assert_eq!(done["outputs"]["m-ok"]["content"]["stdout"], "collected", "{done}");

    let failed = sent(&app, &manager, "isolate", mde(&["m-fail"], json!({}))).await;
    let done = ended(&app, &manager, failed["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert!(done["errors"][0].as_str().unwrap().contains("Microsoft Defender for Endpoint"), "{done}");

    // What MDE cannot do is refused with Kibana's message.
    let message = assert_error(send(&app, &manager, "execute", mde(&["m-ok"], json!({"command": "ls"}))).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "The execute command is not currently available for Microsoft Defender for Endpoint");
    let message = assert_error(send(&app, &manager, "isolate", mde(&["no-such-machine"], json!({}))).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("no-such-machine"), "{message}");
    // The Fleet view's list of MDE hosts.
    let hosts: Value = admin.get(app.url("internal/endpoint/mde/hosts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(hosts["configured"], true);
    assert!(hosts["data"].as_array().unwrap().iter().any(|h| h["id"] == "m-hang" && h["name"] == "hr-ws-02.corp.example"), "{hosts}");
}

#[tokio::test]
async fn a_hanging_machine_action_is_cancelled() {
    let (app, emulator, _admin) = setup(&["--mde-cancel", "true"]).await;
    let manager = app.signed_in("manager").await;
    let t3 = app.signed_in("t3").await;
    let isolate = sent(&app, &manager, "isolate", mde(&["m-hang"], json!({}))).await;
    let id = isolate["id"].as_str().unwrap();
    let cancel = sent(&app, &t3, "cancel", mde(&["m-hang"], json!({"id": id}))).await;
    let cancel = ended(&app, &manager, cancel["id"].as_str().unwrap()).await;
    assert_eq!(cancel["status"], "successful", "{cancel}");
    let original = ended(&app, &manager, id).await;
    assert_eq!((original["status"].as_str(), original["wasCanceled"].as_bool()), (Some("failed"), Some(true)), "{original}");
    assert_eq!(original["agentState"]["m-hang"]["canceledBy"], "t3");
    let machine_action = emulator.stats().await;
    assert!(machine_action["by_route"].to_string().contains("cancel"), "{machine_action}");
    // MDE cancels at once: a cancel there cannot be cancelled (Kibana's message).
    let message = assert_error(send(&app, &t3, "cancel", mde(&["m-hang"], json!({"id": cancel["id"]}))).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "Cannot cancel a cancel action.");
    // Now completed: refused with Kibana's message.
    let message = assert_error(send(&app, &t3, "cancel", mde(&["m-hang"], json!({"id": id}))).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, format!("Cannot cancel action [{id}] because it has already failed."));
}

#[tokio::test]
async fn cancel_on_mde_needs_its_flag_and_mde_needs_enterprise() {
    let (app, _emulator, _admin) = setup(&[]).await;
    let manager = app.signed_in("manager").await;
    let isolate = sent(&app, &manager, "isolate", mde(&["m-hang"], json!({}))).await;
    let message = assert_error(send(&app, &manager, "cancel", mde(&["m-hang"], json!({"id": isolate["id"]}))).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "Cancel operation is not enabled for Microsoft Defender for Endpoint");

    let platinum = spawn_app_with(Options { extra_args: vec!["--license".into(), "platinum".into()], ..Options::default() }).await;
    let t2 = platinum.signed_in("t2").await;
    let message = assert_error(send(&platinum, &t2, "isolate", mde(&["m-ok"], json!({}))).await, StatusCode::FORBIDDEN).await;
    assert!(message.starts_with("Endpoint authorization failure") && message.contains("enterprise"), "{message}");
}

#[tokio::test]
async fn an_emulator_that_is_down_gives_a_failed_action_not_a_stuck_one() {
    let (app, mut emulator, _admin) = setup(&[]).await;
    let manager = app.signed_in("manager").await;
    emulator.stop();
    let hosts = manager.get(app.url("internal/endpoint/mde/hosts")).send().await.unwrap();
    assert_error(hosts, StatusCode::BAD_GATEWAY).await;
    let response = send(&app, &manager, "isolate", mde(&["m-ok"], json!({}))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let action: Value = response.json().await.unwrap();
    let action = &action["data"];
    assert_eq!(action["status"], "failed", "{action}");
    let error = action["errors"][0].as_str().unwrap_or_default();
    assert!(error.contains(&emulator.url) || error.to_lowercase().contains("unreachable") || error.contains("connect"), "{error}");
}

#[tokio::test]
async fn a_rule_isolates_the_mde_host_of_an_uninstalled_agent() {
    let (app, emulator, admin) = setup(&[]).await;
    // An Elastic agent on the host MDE calls finance-ws-01, uninstalled.
    let agent = crate::fleet::enroll(&app, "finance-ws-01").await;
    let rule = admin
        .post(app.url("api/alerting/rule"))
        .header("kbn-xsrf", "t")
        .json(&json!({
            "name": "isolate hosts that lost their agent", "rule_type_id": "fleet.agent_status", "consumer": "alerts",
            "schedule": {"interval": "1h"}, "params": {"statuses": ["uninstalled"]},
            "actions": [{"id": "system-connector-.endpoint-response", "params": {"command": "isolate", "comment": "agent removed"}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(rule.status(), StatusCode::OK, "{}", rule.text().await.unwrap_or_default());
    let rule: Value = rule.json().await.unwrap();
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/audit/unenroll", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"reason": "uninstall", "timestamp": "2026-11-24T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let automated = || async {
        let listed: Value = admin.get(app.url("api/endpoint/action?types=automated")).send().await.unwrap().json().await.unwrap();
        listed["data"].as_array().and_then(|a| a.first()).cloned().unwrap_or(Value::Null)
    };
    eventually("the rule's action isolates the host through MDE", || async { automated().await["status"] == "successful" }).await;
    let action = automated().await;
    assert_eq!(action["agentType"], "microsoft_defender_endpoint");
    assert_eq!(action["ruleId"], rule["id"]);
    assert_eq!(action["agents"], json!(["m-ok"]));
    assert_eq!(action["comment"], "agent removed");
    assert_eq!(emulator.machine("t1", "warden", "s3cret", "m-ok").await["isolated"], true);
}

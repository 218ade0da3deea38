//! Response actions against a real warden, with agents that speak Fleet
//! Server's protocol from the test (check in, receive INPUT_ACTIONs, ack
//! with a result document), so each test decides when an agent answers.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::fleet::{TestAgent, enroll};
use crate::helpers::{Options, TestApp, assert_error, eventually, spawn_app, spawn_app_with};

pub const ALL_CAPABILITIES: &[&str] =
    &["isolation", "kill_process", "suspend_process", "running_processes", "get_file", "execute", "upload_file", "scan", "runscript", "cancel"];

/// An enrolled agent that reported `capabilities` in a check-in.
pub async fn endpoint(app: &TestApp, hostname: &str, capabilities: &[&str]) -> TestAgent {
    let agent = enroll(app, hostname).await;
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/checkin", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"status": "online", "poll_timeout": "0s", "local_metadata": {
            "host": {"hostname": hostname}, "elastic": {"agent": {"version": "8.15.2"}},
            "endpoint": {"capabilities": capabilities, "isolated": false}
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    agent
}

/// The actions a check-in hands the agent (held up to `poll`).
pub async fn receive(app: &TestApp, agent: &TestAgent, poll: &str) -> Vec<Value> {
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/checkin", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"status": "online", "poll_timeout": poll}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["actions"].as_array().unwrap().clone()
}

/// Acks one action with a result document; returns the ack item.
pub async fn answer(app: &TestApp, agent: &TestAgent, action_id: &str, result: Value) -> Value {
    let error = result.get("error").cloned().unwrap_or(Value::Null);
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/acks", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"events": [{
            "action_id": action_id, "agent_id": agent.id, "type": "ACTION_RESULT", "subtype": "ACKNOWLEDGED",
            "action_input_type": "endpoint", "action_response": result, "error": error
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["items"][0].clone()
}

pub async fn send(app: &TestApp, client: &Client, route: &str, body: Value) -> reqwest::Response {
    client.post(app.url(&format!("api/endpoint/action/{route}"))).header("kbn-xsrf", "t").json(&body).send().await.unwrap()
}

/// Sends an action and returns its `data`.
pub async fn sent(app: &TestApp, client: &Client, route: &str, body: Value) -> Value {
    let response = send(app, client, route, body).await;
    assert_eq!(response.status(), StatusCode::OK, "POST {route}");
    let body: Value = response.json().await.unwrap();
    body["data"].clone()
}

pub async fn details(app: &TestApp, client: &Client, id: &str) -> Value {
    let response = client.get(app.url(&format!("api/endpoint/action/{id}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"].clone()
}

fn ok() -> Value {
    json!({"output": {"type": "json", "content": {"code": "ok"}}})
}

#[tokio::test]
async fn isolate_travels_to_the_agent_and_its_answer_completes_it() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "web-1", ALL_CAPABILITIES).await;

    let response = send(&app, &manager, "isolate", json!({"endpoint_ids": [agent.id], "comment": "contain"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let action = &body["data"];
    let id = action["id"].as_str().unwrap().to_owned();
    assert_eq!(body["action"], id, "the legacy field");
    assert_eq!(action["command"], "isolate");
    assert_eq!(action["status"], "pending");
    assert_eq!(action["createdBy"], "manager");
    assert_eq!(action["hosts"][&agent.id]["name"], "web-1");
    assert_eq!(action["isCompleted"], false);

    let actions = receive(&app, &agent, "5s").await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["id"], id);
    assert_eq!(actions[0]["type"], "INPUT_ACTION");
    assert_eq!(actions[0]["input_type"], "endpoint");
    assert_eq!(actions[0]["data"]["command"], "isolate");
    assert_eq!(actions[0]["data"]["comment"], "contain");

    let item = answer(&app, &agent, &id, json!({"output": {"type": "json", "content": {"code": "ra_isolate_success"}}})).await;
    assert_eq!(item["status"], 200);
    let done = details(&app, &manager, &id).await;
    assert_eq!(done["status"], "successful");
    assert_eq!(done["isCompleted"], true);
    assert_eq!(done["wasSuccessful"], true);
    assert_eq!(done["agentState"][&agent.id]["isCompleted"], true);
    assert_eq!(done["outputs"][&agent.id]["content"]["code"], "ra_isolate_success");
    // Nothing more to deliver: the ack settled it.
    assert!(receive(&app, &agent, "0s").await.is_empty());
    // A second answer changes nothing and says so.
    let again = answer(&app, &agent, &id, json!({"error": "late"})).await;
    assert_eq!(again["status"], 409);
    assert_eq!(details(&app, &manager, &id).await["status"], "successful");
    // unisolate carries the legacy field too; others do not.
    let released: Value = send(&app, &manager, "unisolate", json!({"endpoint_ids": [agent.id]})).await.json().await.unwrap();
    assert!(released["action"].is_string());
    let listed: Value = send(&app, &manager, "running_procs", json!({"endpoint_ids": [agent.id]})).await.json().await.unwrap();
    assert!(listed.get("action").is_none());
}

#[tokio::test]
async fn a_failed_answer_fails_the_action_and_every_host_counts() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let a = endpoint(&app, "a", ALL_CAPABILITIES).await;
    let b = endpoint(&app, "b", ALL_CAPABILITIES).await;
    let action = sent(&app, &manager, "running_procs", json!({"endpoint_ids": [a.id, b.id, a.id]})).await;
    let id = action["id"].as_str().unwrap();
    assert_eq!(action["agents"].as_array().unwrap().len(), 2, "repeats removed");
    answer(&app, &a, id, ok()).await;
    let half = details(&app, &manager, id).await;
    assert_eq!(half["status"], "pending");
    assert_eq!(half["agentState"][&a.id]["wasSuccessful"], true);
    answer(&app, &b, id, json!({"error": "process table unavailable"})).await;
    let done = details(&app, &manager, id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["errors"], json!(["b: process table unavailable"]));
}

#[tokio::test]
async fn requests_are_checked_with_kibanas_messages() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    let old = endpoint(&app, "old-host", &["isolation"]).await;
    for (route, body, message) in [
        (
            "kill_process",
            json!({"endpoint_ids": [agent.id], "parameters": {"pid": 0}}),
            "[parameters.pid]: Value must be equal to or greater than [1].",
        ),
        ("kill_process", json!({"endpoint_ids": [agent.id], "parameters": {}}), "[parameters]: requires one of the following: pid, entity_id"),
        ("execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": " "}}), "[parameters.command]: command cannot be an empty string"),
        ("isolate", json!({"endpoint_ids": []}), "[request body.endpoint_ids]: array size is [0], but cannot be smaller than [1]"),
        ("isolate", json!({"endpoint_ids": ["no-such-agent"]}), "Endpoint 'no-such-agent' was not found"),
        ("isolate", json!({"endpoint_ids": [agent.id], "agent_type": "crowdstrike"}), "[request body.agent_type]: feature is disabled"),
        ("cancel", json!({"endpoint_ids": [agent.id], "parameters": {}}), "[parameters.id]: id is required in parameters for cancel action"),
    ] {
        let response = send(&app, &manager, route, body).await;
        assert_eq!(assert_error(response, StatusCode::BAD_REQUEST).await, message, "{route}");
    }
    // A command the agent does not report is refused up front, naming it.
    let message = assert_error(
        send(&app, &manager, "execute", json!({"endpoint_ids": [old.id], "parameters": {"command": "ls"}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("old-host") && message.contains("execute"), "{message}");
    let message =
        assert_error(send(&app, &manager, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": "nope"}})).await, StatusCode::NOT_FOUND)
            .await;
    assert_eq!(message, "Action with id 'nope' not found.");
}

#[tokio::test]
async fn endpoint_authz_follows_privileges_and_the_licence() {
    let app = spawn_app_with(Options { extra_args: vec!["--license".into(), "platinum".into()], ..Options::default() }).await;
    let t2 = app.signed_in("t2").await;
    let t3 = app.signed_in("t3").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    // Platinum: isolate and release yes, process operations no.
    assert_eq!(send(&app, &t2, "isolate", json!({"endpoint_ids": [agent.id]})).await.status(), StatusCode::OK);
    let message =
        assert_error(send(&app, &t3, "execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": "ls"}})).await, StatusCode::FORBIDDEN)
            .await;
    assert!(message.starts_with("Endpoint authorization failure"), "{message}");
    let authz: Value = t2.get(app.url("internal/endpoint/authz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(authz["authz"]["canIsolateHost"], true);
    assert_eq!(authz["authz"]["canCancelAction"], true);
    assert_eq!(authz["authz"]["canAccessResponseConsole"], false);
    assert_eq!(authz["license"], "platinum");
    assert_eq!(authz["username"], "t2");

    // A reviewer's finding: on Platinum a pending release can be cancelled through the API.
    let release = sent(&app, &t2, "unisolate", json!({"endpoint_ids": [agent.id]})).await;
    let cancel = send(&app, &t2, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": release["id"]}, "comment": "wrong host"})).await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let cancel: Value = cancel.json().await.unwrap();
    assert_eq!(cancel["data"]["command"], "cancel");
    assert_eq!(cancel["data"]["parameters"]["id"], release["id"]);
}

#[tokio::test]
async fn a_cancelled_action_is_failed_and_says_who_cancelled_it() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let t3 = app.signed_in("t3").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    let execute = sent(&app, &manager, "execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": "sleep 60"}})).await;
    let id = execute["id"].as_str().unwrap();
    let cancel = sent(&app, &t3, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": id}})).await;
    let cancel_id = cancel["id"].as_str().unwrap();
    // The agent got both; it stops the command and says so, then the cancel succeeds.
    let delivered: Vec<String> = receive(&app, &agent, "5s").await.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert!(delivered.contains(&id.to_owned()));
    let more = if delivered.len() < 2 { receive(&app, &agent, "5s").await } else { Vec::new() };
    assert!(
        delivered.iter().chain(more.iter().filter_map(|a| a["id"].as_str()).map(str::to_owned).collect::<Vec<_>>().iter()).any(|a| a == cancel_id)
    );
    answer(&app, &agent, id, json!({"error": "Action was cancelled", "canceled_by_action": cancel_id})).await;
    answer(&app, &agent, cancel_id, json!({"output": {"type": "json", "content": {"code": "ra_cancel_success", "cancelled_action_id": id}}})).await;
    let done = details(&app, &manager, id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["wasCanceled"], true);
    assert_eq!(done["agentState"][&agent.id]["wasCanceled"], true);
    assert_eq!(done["agentState"][&agent.id]["canceledBy"], "t3");
    assert_eq!(done["agentState"][&agent.id]["cancelActionId"], cancel_id);
    assert_eq!(done["errors"], json!(["h: Cancelled by t3"]));
    let cancel = details(&app, &manager, cancel_id).await;
    assert_eq!(cancel["status"], "successful");
    assert_eq!(cancel["outputs"][&agent.id]["content"]["cancelled_action_id"], id);
    // Now completed: a second cancel is refused with Kibana's message.
    let message =
        assert_error(send(&app, &t3, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": id}})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, format!("Cannot cancel action [{id}] because it has already failed."));
}

#[tokio::test]
async fn a_cancel_that_succeeds_never_leaves_its_target_pending() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    let scan = sent(&app, &manager, "scan", json!({"endpoint_ids": [agent.id], "parameters": {"path": "/"}})).await;
    let id = scan["id"].as_str().unwrap();
    let cancel = sent(&app, &manager, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": id}})).await;
    // The agent reports only the cancel (it never answers the scan itself).
    answer(&app, &agent, cancel["id"].as_str().unwrap(), ok()).await;
    let done = details(&app, &manager, id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["wasCanceled"], true);
    // And the scan is no longer delivered.
    let pending: Vec<Value> = receive(&app, &agent, "0s").await;
    assert!(pending.iter().all(|a| a["id"] != id), "{pending:?}");
}

#[tokio::test]
async fn cancelling_one_of_two_scripts_leaves_the_other_running() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    let first = sent(&app, &manager, "execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": "sleep 60"}})).await;
    let second = sent(&app, &manager, "execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": "sleep 61"}})).await;
    let cancel = sent(&app, &manager, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": first["id"]}})).await;
    answer(&app, &agent, cancel["id"].as_str().unwrap(), ok()).await;
    assert_eq!(details(&app, &manager, first["id"].as_str().unwrap()).await["status"], "failed");
    let other = details(&app, &manager, second["id"].as_str().unwrap()).await;
    assert_eq!(other["status"], "pending");
    assert_eq!(other["wasCanceled"], false);
}

#[tokio::test]
async fn a_cancel_may_be_cancelled_only_by_its_sender_while_it_is_pending() {
    let app = spawn_app().await;
    let t2 = app.signed_in("t2").await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "h", ALL_CAPABILITIES).await;
    let isolate = sent(&app, &manager, "isolate", json!({"endpoint_ids": [agent.id]})).await;
    let isolate_id = isolate["id"].as_str().unwrap();
    let cancel = sent(&app, &t2, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": isolate_id}})).await;
    let cancel_id = cancel["id"].as_str().unwrap();
    // Someone else: 403, saying why.
    let message = assert_error(
        send(&app, &manager, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": cancel_id}})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(message.starts_with("Endpoint authorization failure") && message.contains("only t2"), "{message}");
    // Its sender: allowed while it is pending.
    let undo = sent(&app, &t2, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": cancel_id}})).await;
    answer(&app, &agent, undo["id"].as_str().unwrap(), ok()).await;
    // The cancelled cancel is failed, never successful; the isolate stays pending.
    let cancelled = details(&app, &manager, cancel_id).await;
    assert_eq!(cancelled["status"], "failed");
    assert_eq!(cancelled["wasCanceled"], true);
    assert_eq!(details(&app, &manager, isolate_id).await["status"], "pending");
    // Once it ended, not even its sender may cancel it.
    let message =
        assert_error(send(&app, &t2, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": cancel_id}})).await, StatusCode::BAD_REQUEST)
            .await;
    assert_eq!(message, format!("Cannot cancel action [{cancel_id}] because it has already failed."));
}

#[tokio::test]
async fn cancel_refusals_of_kibana() {
    let app = spawn_app().await;
    let t2 = app.signed_in("t2").await;
    let manager = app.signed_in("manager").await;
    let a = endpoint(&app, "a", ALL_CAPABILITIES).await;
    let b = endpoint(&app, "b", ALL_CAPABILITIES).await;
    let old = endpoint(&app, "old", &["isolation", "execute"]).await;
    let execute = sent(&app, &manager, "execute", json!({"endpoint_ids": [a.id], "parameters": {"command": "ls"}})).await;
    let id = execute["id"].as_str().unwrap();
    // t2 may not execute, so may not cancel an execute.
    let message =
        assert_error(send(&app, &t2, "cancel", json!({"endpoint_ids": [a.id], "parameters": {"id": id}})).await, StatusCode::FORBIDDEN).await;
    assert!(message.contains("response:execute"), "{message}");
    // An endpoint that is not part of the action.
    let message =
        assert_error(send(&app, &manager, "cancel", json!({"endpoint_ids": [b.id], "parameters": {"id": id}})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, format!("Endpoint '{}' is not associated with action '{id}'", b.id));
    // Completed successfully.
    answer(&app, &a, id, ok()).await;
    let message =
        assert_error(send(&app, &manager, "cancel", json!({"endpoint_ids": [a.id], "parameters": {"id": id}})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, format!("Cannot cancel action [{id}] because it has already completed successfully."));
    // An agent that cannot cancel: unavailable up front, with the reason.
    let on_old = sent(&app, &manager, "execute", json!({"endpoint_ids": [old.id], "parameters": {"command": "ls"}})).await;
    let message = assert_error(
        send(&app, &manager, "cancel", json!({"endpoint_ids": [old.id], "parameters": {"id": on_old["id"]}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("old") && message.contains("cancel capability"), "{message}");
}

/// Completion and cancel race; exactly one terminal state wins each time,
/// and the loser is told (a 409 item, or a failed cancel).
#[tokio::test]
async fn completion_and_cancel_race_to_one_terminal_state() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "racer", ALL_CAPABILITIES).await;
    let rounds = 200;
    let (mut completed, mut cancelled) = (0, 0);
    for round in 0..rounds {
        let action = sent(&app, &manager, "execute", json!({"endpoint_ids": [agent.id], "parameters": {"command": format!("echo {round}")}})).await;
        let id = action["id"].as_str().unwrap().to_owned();
        let cancel = sent(&app, &manager, "cancel", json!({"endpoint_ids": [agent.id], "parameters": {"id": id}})).await;
        let cancel_id = cancel["id"].as_str().unwrap().to_owned();
        let (done, stopped) = tokio::join!(
            answer(
                &app,
                &agent,
                &id,
                json!({"output": {"type": "json", "content": {"code": "ra_execute_success_done", "stdout": round.to_string()}}})
            ),
            answer(&app, &agent, &cancel_id, ok()),
        );
        let action = details(&app, &manager, &id).await;
        let cancel = details(&app, &manager, &cancel_id).await;
        match action["status"].as_str() {
            Some("successful") => {
                completed += 1;
                assert_eq!(cancel["status"], "failed", "round {round}: the cancel lost, so it failed");
                assert_eq!(action["wasCanceled"], false);
                assert_eq!(done["status"], 200);
            }
            Some("failed") => {
                cancelled += 1;
                assert_eq!(action["wasCanceled"], true, "round {round}");
                assert_eq!(cancel["status"], "successful", "round {round}");
                assert_eq!(done["status"], 409, "round {round}: the completion lost and was told");
                assert_eq!(stopped["status"], 200);
            }
            other => panic!("round {round}: the action is {other:?}"),
        }
    }
    assert_eq!(completed + cancelled, rounds);
}

#[tokio::test]
async fn actions_past_their_expiry_fail_as_expired() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let platform = app.signed_in("platform").await;
    let agent = endpoint(&app, "offline-host", ALL_CAPABILITIES).await;
    let action = sent(&app, &manager, "isolate", json!({"endpoint_ids": [agent.id]})).await;
    let id = action["id"].as_str().unwrap();
    let expires = action["expiration"].as_str().unwrap();
    assert!(expires > action["startedAt"].as_str().unwrap());
    // Arrange: its expiry passed.
    let db = app.db().await;
    sqlx::query("update response_actions set expires_at = 1 where id = $1").bind(id).execute(&db).await.unwrap();
    // Read at once as failed/expired, before any task ran.
    let read = details(&app, &manager, id).await;
    assert_eq!((read["status"].as_str(), read["isExpired"].as_bool()), (Some("failed"), Some(true)));
    let response =
        platform.post(app.url("internal/task_manager/tasks/response_actions%3Aexpire/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    eventually("the expiry task wrote the action", || async {
        let listed: Value = manager.get(app.url("api/endpoint/action?statuses=failed")).send().await.unwrap().json().await.unwrap();
        listed["data"].as_array().unwrap().iter().any(|a| a["id"] == id && a["agentState"][&agent.id]["isExpired"] == true)
    })
    .await;
    // The agent is no longer asked.
    assert!(receive(&app, &agent, "0s").await.iter().all(|a| a["id"] != id));
}

#[tokio::test]
async fn the_history_filters_and_pages() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let t2 = app.signed_in("t2").await;
    let a = endpoint(&app, "a", ALL_CAPABILITIES).await;
    let b = endpoint(&app, "b", ALL_CAPABILITIES).await;
    let iso = sent(&app, &t2, "isolate", json!({"endpoint_ids": [a.id]})).await;
    let procs = sent(&app, &manager, "running_procs", json!({"endpoint_ids": [b.id]})).await;
    answer(&app, &b, procs["id"].as_str().unwrap(), ok()).await;
    let old = sent(&app, &manager, "isolate", json!({"endpoint_ids": [b.id]})).await;
    // Arrange: one action from three days ago (Kibana bug #283909 missed earlier days).
    let db = app.db().await;
    let three_days_ago = chrono_ms() - 3 * 86_400_000;
    sqlx::query("update response_actions set created_at = $2 where id = $1")
        .bind(old["id"].as_str().unwrap())
        .bind(three_days_ago)
        .execute(&db)
        .await
        .unwrap();

    let ids = |body: &Value| -> Vec<String> { body["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect() };
    let get = |query: &'static str| {
        let (manager, app) = (&manager, &app);
        async move {
            let response = manager.get(app.url(&format!("api/endpoint/action?{query}"))).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let all = get("").await;
    assert_eq!(all["total"], 3);
    assert_eq!(ids(&all)[0], procs["id"], "newest first");
    assert_eq!(ids(&get("statuses=successful").await), vec![procs["id"].as_str().unwrap()]);
    assert_eq!(get("statuses=pending").await["total"], 2);
    assert_eq!(ids(&get("userIds=t2").await), vec![iso["id"].as_str().unwrap()]);
    assert_eq!(get("commands=running-processes").await["total"], 1);
    let by_agent = manager.get(app.url(&format!("api/endpoint/action?agentIds={}", b.id))).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(by_agent["total"], 2);
    assert_eq!(get("startDate=now-1d").await["total"], 2);
    assert_eq!(get("startDate=now-7d").await["total"], 3, "earlier days are covered");
    assert_eq!(get("endDate=now-2d").await["total"], 1);
    assert_eq!(get("startDate=now-7d%2Fd&endDate=now").await["total"], 3);
    let page = get("pageSize=2&page=2").await;
    assert_eq!((page["total"].as_u64(), ids(&page).len()), (Some(3), 1));
    assert!(page["data"][0].get("outputs").is_none(), "outputs only when asked");
    let with = manager
        .get(app.url(&format!("api/endpoint/action?withOutputs={}", procs["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let listed = with["data"].as_array().unwrap().iter().find(|a| a["id"] == procs["id"]).unwrap().clone();
    assert_eq!(listed["outputs"][&b.id]["content"]["code"], "ok");
    for bad in ["page=0", "pageSize=10001", "statuses=done", "startDate=yesterday", "sort=x"] {
        let response = manager.get(app.url(&format!("api/endpoint/action?{bad}"))).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST).await;
    }
    // Pending counts per agent.
    let status: Value =
        manager.get(app.url(&format!("api/endpoint/action_status?agent_ids={},{}", a.id, b.id))).send().await.unwrap().json().await.unwrap();
    let of = |id: &str| status["data"].as_array().unwrap().iter().find(|d| d["agent_id"] == id).unwrap()["pending_actions"].clone();
    assert_eq!(of(&a.id)["isolate"], 1);
    assert_eq!(of(&b.id)["isolate"], 1);
    assert_eq!(of(&b.id)["running-processes"], 0);
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_get_file_result_comes_up_in_chunks_and_downloads() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let t2 = app.signed_in("t2").await;
    let agent = endpoint(&app, "files", ALL_CAPABILITIES).await;
    let other = endpoint(&app, "other", ALL_CAPABILITIES).await;
    let action = sent(&app, &manager, "get_file", json!({"endpoint_ids": [agent.id], "parameters": {"path": "/etc/hosts"}})).await;
    let id = action["id"].as_str().unwrap();
    let zip: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let auth = format!("ApiKey {}", agent.key);
    let begin = |who: &TestAgent, agent_id: &str| {
        app.client().post(app.url("api/fleet/uploads")).header("Authorization", format!("ApiKey {}", who.key)).json(&json!({
            "file": {"name": "upload.zip", "size": zip.len(), "mime_type": "application/zip", "hash": {"sha256": sha256_hex(&zip)}},
            "action_id": id, "agent_id": agent_id, "src": "endpoint"
        }))
    };
    // Another agent cannot upload for this one, nor for an action not sent to it.
    assert_eq!(begin(&other, &agent.id).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(begin(&other, &other.id).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let started: Value = begin(&agent, &agent.id).send().await.unwrap().json().await.unwrap();
    let upload_id = started["upload_id"].as_str().unwrap();
    let chunk_size = started["chunk_size"].as_u64().unwrap() as usize;
    assert_eq!(chunk_size, 4 * 1024 * 1024);
    let chunks: Vec<&[u8]> = zip.chunks(chunk_size).collect();
    // A bad hash is refused.
    let bad = app
        .client()
        .put(app.url(&format!("api/fleet/uploads/{upload_id}/0")))
        .header("Authorization", &auth)
        .header("X-Chunk-SHA2", "00")
        .body(chunks[0].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let mut transit = Vec::new();
    for (n, chunk) in chunks.iter().enumerate().rev() {
        let response = app
            .client()
            .put(app.url(&format!("api/fleet/uploads/{upload_id}/{n}")))
            .header("Authorization", &auth)
            .header("X-Chunk-SHA2", sha256_hex(chunk))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "chunk {n}");
    }
    for chunk in &chunks {
        use sha2::Digest;
        transit.extend_from_slice(&sha2::Sha256::digest(chunk));
    }
    let wrong = app
        .client()
        .post(app.url(&format!("api/fleet/uploads/{upload_id}")))
        .header("Authorization", &auth)
        .json(&json!({"transithash": {"sha256": "ab"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "a wrong transit hash fails the upload");
    // Begin again (the agent retries the whole upload).
    let started: Value = begin(&agent, &agent.id).send().await.unwrap().json().await.unwrap();
    let upload_id = started["upload_id"].as_str().unwrap();
    for (n, chunk) in chunks.iter().enumerate() {
        app.client()
            .put(app.url(&format!("api/fleet/uploads/{upload_id}/{n}")))
            .header("Authorization", &auth)
            .header("X-Chunk-SHA2", sha256_hex(chunk))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
    }
    let finished = app
        .client()
        .post(app.url(&format!("api/fleet/uploads/{upload_id}")))
        .header("Authorization", &auth)
        .json(&json!({"transithash": {"sha256": sha256_hex(&transit)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), StatusCode::OK);
    let file_id = format!("{id}.{}", agent.id);
    answer(
        &app,
        &agent,
        id,
        json!({"output": {"type": "json", "content": {"code": "ra_get-file_success_done", "zip_size": zip.len(), "contents": []}}}),
    )
    .await;
    let info: Value = manager.get(app.url(&format!("api/endpoint/action/{id}/file/{file_id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["data"]["status"], "READY");
    assert_eq!(info["data"]["size"], zip.len());
    let download = manager.get(app.url(&format!("api/endpoint/action/{id}/file/{file_id}/download"))).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download.headers()["content-disposition"].to_str().unwrap().contains("upload.zip"));
    assert_eq!(download.bytes().await.unwrap().to_vec(), zip);
    // t2 may not use file operations, so may not download.
    let refused = t2.get(app.url(&format!("api/endpoint/action/{id}/file/{file_id}/download"))).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_upload_reaches_only_its_hosts() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "target", ALL_CAPABILITIES).await;
    let other = endpoint(&app, "bystander", ALL_CAPABILITIES).await;
    let content = b"#!/bin/sh\necho remediated\n".to_vec();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(content.clone()).file_name("fix.sh").mime_str("text/x-shellscript").unwrap())
        .text("endpoint_ids", json!([agent.id]).to_string())
        .text("parameters", r#"{"overwrite": true}"#)
        .text("comment", "ship the fix");
    let response = manager.post(app.url("api/endpoint/action/upload")).header("kbn-xsrf", "t").multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let action: Value = response.json().await.unwrap();
    let params = &action["data"]["parameters"];
    assert_eq!(params["file_name"], "fix.sh");
    assert_eq!(params["file_size"], content.len());
    assert_eq!(params["file_sha256"], sha256_hex(&content));
    assert_eq!(params["overwrite"], true);
    let file_id = params["file_id"].as_str().unwrap();
    let fetch = |who: &TestAgent| {
        app.client().get(app.url(&format!("api/fleet/file/{file_id}"))).header("Authorization", format!("ApiKey {}", who.key)).send()
    };
    let got = fetch(&agent).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["x-file-sha2"].to_str().unwrap(), sha256_hex(&content));
    assert_eq!(got.bytes().await.unwrap().to_vec(), content);
    assert_eq!(fetch(&other).await.unwrap().status(), StatusCode::NOT_FOUND);
    // Without a file: a clear 400.
    let form = reqwest::multipart::Form::new().text("endpoint_ids", json!([agent.id]).to_string());
    let response = manager.post(app.url("api/endpoint/action/upload")).header("kbn-xsrf", "t").multipart(form).send().await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn files_larger_than_the_setting_are_refused() {
    let app = spawn_app_with(Options { extra_args: vec!["--response-file-max-bytes".into(), "1000".into()], ..Options::default() }).await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "small", ALL_CAPABILITIES).await;
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![7u8; 2000]).file_name("big.bin"))
        .text("endpoint_ids", json!([agent.id]).to_string());
    let response = manager.post(app.url("api/endpoint/action/upload")).header("kbn-xsrf", "t").multipart(form).send().await.unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn the_scripts_library_feeds_runscript() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let t3 = app.signed_in("t3").await;
    let agent = endpoint(&app, "scripted", ALL_CAPABILITIES).await;
    let script = b"#!/bin/sh\necho collected \"$@\"\n".to_vec();
    let form = || {
        reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(script.clone()).file_name("collect.sh"))
            .text("name", "collect")
            .text("description", "Collects triage data")
            .text("instructions", "--days N: how far back")
            .text("requiresInput", "true")
            .text("platform", "linux")
    };
    // Adding scripts is a privilege of its own.
    let refused = t3.post(app.url("api/endpoint/scripts_library")).header("kbn-xsrf", "t").multipart(form()).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let created = manager.post(app.url("api/endpoint/scripts_library")).header("kbn-xsrf", "t").multipart(form()).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.unwrap();
    let script_id = created["data"]["id"].as_str().unwrap();
    assert_eq!(created["data"]["fileHash"], sha256_hex(&script));
    let again = manager.post(app.url("api/endpoint/scripts_library")).header("kbn-xsrf", "t").multipart(form()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let listed: Value = t3.get(app.url("api/endpoint/scripts_library")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"][0]["name"], "collect");
    // It requires input, and says how.
    let message = assert_error(
        send(&app, &t3, "run_script", json!({"endpoint_ids": [agent.id], "parameters": {"scriptId": script_id}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("--days N"), "{message}");
    let action =
        sent(&app, &t3, "run_script", json!({"endpoint_ids": [agent.id], "parameters": {"scriptId": script_id, "scriptInput": "--days 3"}})).await;
    let file_id = action["parameters"]["file_id"].as_str().unwrap();
    let fetched = app
        .client()
        .get(app.url(&format!("api/fleet/file/{file_id}")))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), script);
    let unknown = assert_error(
        send(&app, &t3, "run_script", json!({"endpoint_ids": [agent.id], "parameters": {"scriptId": "nope"}})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(unknown.contains("not found"), "{unknown}");
    let deleted = manager.delete(app.url(&format!("api/endpoint/scripts_library/{script_id}"))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn old_actions_and_files_are_removed_by_the_task() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let platform = app.signed_in("platform").await;
    let agent = endpoint(&app, "kept", ALL_CAPABILITIES).await;
    let old = sent(&app, &manager, "isolate", json!({"endpoint_ids": [agent.id]})).await;
    let recent = sent(&app, &manager, "isolate", json!({"endpoint_ids": [agent.id]})).await;
    let db = app.db().await;
    let two_years_ago = chrono_ms() - 2 * 365 * 86_400_000;
    sqlx::query("update response_actions set created_at = $2 where id = $1")
        .bind(old["id"].as_str().unwrap())
        .bind(two_years_ago)
        .execute(&db)
        .await
        .unwrap();
    platform.post(app.url("internal/task_manager/tasks/response_actions%3Aexpire/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    eventually("the old action is gone", || async {
        manager.get(app.url(&format!("api/endpoint/action/{}", old["id"].as_str().unwrap()))).send().await.unwrap().status() == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(details(&app, &manager, recent["id"].as_str().unwrap()).await["status"], "pending");
}

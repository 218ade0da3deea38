//! Bulk response actions (issue 16) against a real warden: the preview's
//! counts and refusals, a large selection split into actions of at most
//! 1,000 hosts under one bulk id, refused commands and bad input, the
//! status counts as hosts answer, and cancelling only what is still pending.
//! Agents answer from the test, as in `response_actions.rs`.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::fleet::TestAgent;
use crate::helpers::{TestApp, assert_error, spawn_app};
use crate::response_actions::{ALL_CAPABILITIES, answer, details, endpoint, receive};

const BULK: &str = "internal/warden/response_actions/bulk";

async fn post(app: &TestApp, client: &Client, path: &str, body: Value) -> reqwest::Response {
    client.post(app.url(path)).header("kbn-xsrf", "t").json(&body).send().await.unwrap()
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn preview(app: &TestApp, client: &Client, body: Value) -> Value {
    ok_json(post(app, client, &format!("{BULK}/_preview"), body).await).await
}

async fn create(app: &TestApp, client: &Client, body: Value) -> Value {
    ok_json(post(app, client, BULK, body).await).await
}

async fn status(app: &TestApp, client: &Client, id: &str, query: &str) -> Value {
    ok_json(client.get(app.url(&format!("{BULK}/{id}{query}"))).send().await.unwrap()).await
}

async fn uninstall(app: &TestApp, agent: &TestAgent) {
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/audit/unenroll", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"reason": "uninstall", "timestamp": "2026-11-23T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn ok() -> Value {
    json!({"output": {"type": "json", "content": {"code": "ok"}}})
}

#[tokio::test]
async fn the_preview_counts_the_selection_and_says_why_hosts_cannot_take_it() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let a = endpoint(&app, "prev-a", ALL_CAPABILITIES).await;
    let b = endpoint(&app, "prev-b", ALL_CAPABILITIES).await;
    let old = endpoint(&app, "prev-old", &["isolation"]).await;
    let gone = endpoint(&app, "prev-gone", ALL_CAPABILITIES).await;
    uninstall(&app, &gone).await;

    // By ids: repeats count once, an unknown id and an uninstalled agent cannot take it.
    let body = json!({"command": "isolate", "agents": [a.id, b.id, old.id, gone.id, "no-such-agent", a.id]});
    let answer = preview(&app, &manager, body).await;
    assert_eq!((answer["selected"].as_u64(), answer["eligible"].as_u64(), answer["actions"].as_u64()), (Some(5), Some(3), Some(1)));
    assert_eq!(answer["refusedTotal"], 2);
    let refused = answer["refused"].as_array().unwrap();
    let reason_of = |id: &str| refused.iter().find(|r| r["agentId"] == id).map(|r| r["reason"].as_str().unwrap().to_owned());
    assert_eq!(reason_of(&gone.id), Some(format!("Endpoint 'prev-gone' ({}) is uninstalled: it can no longer receive actions", gone.id)));
    assert_eq!(reason_of("no-such-agent").as_deref(), Some("Endpoint 'no-such-agent' was not found"));
    assert!(refused.iter().any(|r| r["agentId"] == gone.id && r["hostName"] == "prev-gone"));

    // By kuery, as the Fleet view sends it: a capability one agent lacks.
    let scan = json!({"command": "scan", "agents": "local_metadata.host.hostname:\"prev-*\"", "parameters": {"path": "/tmp"}});
    let answer = preview(&app, &manager, scan).await;
    assert_eq!((answer["selected"].as_u64(), answer["eligible"].as_u64()), (Some(4), Some(2)));
    let reasons: Vec<&str> = answer["refused"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.contains("prev-old") && r.contains("scan capability")), "{reasons:?}");

    // Nothing was sent.
    let history: Value = manager.get(app.url("api/endpoint/action")).send().await.unwrap().json().await.unwrap();
    assert_eq!(history["total"], 0);
}

/// Copies of `template`'s agent row in `policy`: enrolled, checked in, with its capabilities.
async fn clone_agents(app: &TestApp, template: &str, policy: &str, count: i64) {
    let numbers = if app.database_url.starts_with("postgres") {
        "with n(i) as (select generate_series(1, $1::bigint))"
    } else {
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1)"
    };
    let sql = format!(
        "{numbers} insert into agents (id, policy_id, agent_type, active, enrolled_at, policy_revision, last_checkin, last_checkin_status,
            local_metadata, user_provided_metadata, tags, components, hostname, version, access_api_key_id, access_key_hash)
         select 'clone-' || n.i, $2, a.agent_type, a.active, a.enrolled_at, a.policy_revision, a.last_checkin, a.last_checkin_status,
            a.local_metadata, a.user_provided_metadata, a.tags, a.components, 'clone-' || n.i, a.version, 'clone-key-' || n.i, a.access_key_hash
         from agents a, n where a.id = $3"
    );
    let db = app.db().await;
    let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(count).bind(policy).bind(template).execute(&db).await.unwrap();
    assert_eq!(done.rows_affected(), count as u64);
}

#[tokio::test]
async fn a_whole_policy_of_more_than_a_thousand_hosts_becomes_actions_of_a_thousand_under_one_bulk_id() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let admin = app.signed_in("admin").await;
    let policy =
        ok_json(post(&app, &admin, "api/fleet/agent_policies", json!({"name": "Big fleet"})).await).await["item"]["id"].as_str().unwrap().to_owned();
    let template = endpoint(&app, "template", ALL_CAPABILITIES).await;
    clone_agents(&app, &template.id, &policy, 1_100).await;

    let kuery = format!("policy_id:\"{policy}\"");
    let previewed = preview(&app, &manager, json!({"command": "isolate", "agents": kuery})).await;
    assert_eq!((previewed["selected"].as_u64(), previewed["eligible"].as_u64(), previewed["actions"].as_u64()), (Some(1_100), Some(1_100), Some(2)));

    let created = create(&app, &manager, json!({"command": "isolate", "agents": kuery, "comment": "contain the fleet"})).await;
    let bulk_id = created["bulkId"].as_str().unwrap().to_owned();
    let action_ids: Vec<String> = created["actionIds"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert_eq!((action_ids.len(), created["hosts"].as_u64(), created["refusedTotal"].as_u64()), (2, Some(1_100), Some(0)));
    // Each action carries at most 1,000 hosts, every host once, and each says so in the history.
    let mut hosts = Vec::new();
    for id in &action_ids {
        let action = details(&app, &manager, id).await;
        let agents = action["agents"].as_array().unwrap();
        assert!(agents.len() <= 1_000, "{} hosts in one action", agents.len());
        assert_eq!(action["comment"], "contain the fleet");
        assert_eq!(action["createdBy"], "manager");
        hosts.extend(agents.iter().map(|a| a.as_str().unwrap().to_owned()));
    }
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 1_100);
    assert!(!hosts.contains(&template.id), "the template is in the demo policy, not this one");
    let db = app.db().await;
    let linked: i64 = sqlx::query_scalar("select count(*) from response_actions where bulk_id = $1").bind(&bulk_id).fetch_one(&db).await.unwrap();
    assert_eq!(linked, 2);

    let progress = status(&app, &manager, &bulk_id, "").await;
    assert_eq!(progress["counts"], json!({"total": 1_100, "pending": 1_100, "successful": 0, "failed": 0, "canceled": 0, "expired": 0}));
    assert_eq!((progress["status"].as_str(), progress["kuery"].as_str()), (Some("pending"), Some(kuery.as_str())));
    assert_eq!(progress["actionIds"], json!(action_ids));
    // Hosts a page at a time, by host name.
    assert_eq!((progress["hostsTotal"].as_u64(), progress["hosts"].as_array().unwrap().len()), (Some(1_100), 100));
    assert_eq!(progress["hosts"][0]["hostName"], "clone-1");
    let last = status(&app, &manager, &bulk_id, "?page=2&pageSize=1000").await;
    assert_eq!(last["hosts"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn refused_commands_and_bad_input_are_400s_that_say_why() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let agent = endpoint(&app, "bad-1", ALL_CAPABILITIES).await;
    let old = endpoint(&app, "bad-old", &["isolation"]).await;
    let too_many: Vec<String> = (0..10_001).map(|i| format!("a{i}")).collect();
    for (body, message) in [
        (
            json!({"command": "cancel", "agents": [agent.id], "parameters": {"id": "x"}}),
            "[request body.command]: cancel cannot be sent in bulk: cancel the bulk action's pending hosts instead",
        ),
        (
            json!({"command": "upload", "agents": [agent.id]}),
            "[request body.command]: upload cannot be sent in bulk: it carries a file; send it to each host from the console or the API",
        ),
        (
            json!({"command": "kill-process", "agents": [agent.id], "parameters": {"pid": 4}}),
            "[request body.command]: kill-process cannot be sent in bulk: a process id or entity id names a process on one host",
        ),
        (json!({"command": "isolate", "agents": []}), "[request body.agents]: array size is [0], but cannot be smaller than [1]"),
        (json!({"command": "isolate", "agents": too_many}), "[request body.agents]: array size is [10001], but cannot be greater than [10000]"),
        (
            json!({"command": "execute", "agents": [agent.id], "parameters": {"command": " "}}),
            "[parameters.command]: command cannot be an empty string",
        ),
        (json!({"command": "isolate", "agents": "tags:nobody-has-this"}), "[request body.agents]: no agent matches the kuery"),
        (
            json!({"command": "scan", "agents": [old.id], "parameters": {"path": "/"}}),
            "None of the 1 selected hosts can take scan: The scan command is not supported by the agent on bad-old: it does not report the scan capability (upgrade the agent)",
        ),
    ] {
        let response = post(&app, &manager, BULK, body.clone()).await;
        assert_eq!(assert_error(response, StatusCode::BAD_REQUEST).await, message, "{body}");
    }
    for body in [
        json!({"command": "isolate", "agents": "status:(online"}),
        json!({"command": "isolate", "agents": "x".repeat(5_000)}),
        json!({"command": "isolate", "agents": [agent.id], "endpoint_ids": [agent.id]}),
        json!({"command": "memory-dump", "agents": [agent.id]}),
        json!({"command": "isolate"}),
    ] {
        let response = post(&app, &manager, &format!("{BULK}/_preview"), body.clone()).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(!message.is_empty(), "{body}");
    }
    // The command's own privilege: t2 may isolate, not execute; t1 may send nothing.
    let t2 = app.signed_in("t2").await;
    let execute = json!({"command": "execute", "agents": [agent.id], "parameters": {"command": "ls"}});
    let message = assert_error(post(&app, &t2, BULK, execute).await, StatusCode::FORBIDDEN).await;
    assert_eq!(message, "Endpoint authorization failure: execute requires the response:execute privilege");
    let t1 = app.signed_in("t1").await;
    assert_error(post(&app, &t1, BULK, json!({"command": "isolate", "agents": [agent.id]})).await, StatusCode::FORBIDDEN).await;
    // The status: an unknown bulk, and its query's bounds.
    let missing = manager.get(app.url(&format!("{BULK}/no-such-bulk"))).send().await.unwrap();
    assert_eq!(assert_error(missing, StatusCode::NOT_FOUND).await, "Bulk action with id 'no-such-bulk' not found.");
    let created = create(&app, &manager, json!({"command": "isolate", "agents": [agent.id]})).await;
    let id = created["bulkId"].as_str().unwrap();
    for (query, message) in [
        ("?pageSize=1001", "[request query.pageSize]: Value must be between [1] and [1000]."),
        ("?outcome=done", "[request query.outcome]: expected one of [pending, successful, failed, canceled, expired] but got [done]"),
    ] {
        let response = manager.get(app.url(&format!("{BULK}/{id}{query}"))).send().await.unwrap();
        assert_eq!(assert_error(response, StatusCode::BAD_REQUEST).await, message);
    }
    let cancel = post(&app, &manager, &format!("{BULK}/no-such-bulk/_cancel"), json!({})).await;
    assert_error(cancel, StatusCode::NOT_FOUND).await;
    let long = post(&app, &manager, &format!("{BULK}/{id}/_cancel"), json!({"comment": "x".repeat(10_001)})).await;
    assert_error(long, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_counts_follow_the_hosts_and_cancel_stops_only_those_still_pending() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let viewer = app.signed_in("viewer").await;
    let agents = [
        endpoint(&app, "run-a", ALL_CAPABILITIES).await,
        endpoint(&app, "run-b", ALL_CAPABILITIES).await,
        endpoint(&app, "run-c", ALL_CAPABILITIES).await,
        endpoint(&app, "run-d", ALL_CAPABILITIES).await,
    ];
    let [a, b, c, d] = &agents;
    let ids: Vec<&str> = agents.iter().map(|agent| agent.id.as_str()).collect();
    let created = create(&app, &manager, json!({"command": "running-processes", "agents": ids, "comment": "triage"})).await;
    let bulk_id = created["bulkId"].as_str().unwrap().to_owned();
    let action_id = created["actionIds"][0].as_str().unwrap().to_owned();
    let counts = |body: &Value| body["counts"].clone();

    // The history-read privilege is enough to follow it.
    let first = status(&app, &viewer, &bulk_id, "").await;
    assert_eq!(counts(&first), json!({"total": 4, "pending": 4, "successful": 0, "failed": 0, "canceled": 0, "expired": 0}));
    assert_eq!(
        (first["command"].as_str(), first["createdBy"].as_str(), first["comment"].as_str()),
        (Some("running-processes"), Some("manager"), Some("triage"))
    );

    answer(&app, a, &action_id, ok()).await;
    answer(&app, b, &action_id, json!({"error": "process table unavailable"})).await;
    let half = status(&app, &manager, &bulk_id, "").await;
    assert_eq!(counts(&half), json!({"total": 4, "pending": 2, "successful": 1, "failed": 1, "canceled": 0, "expired": 0}));
    let failed = status(&app, &manager, &bulk_id, "?outcome=failed").await;
    assert_eq!(
        failed["hosts"],
        json!([{"agentId": b.id, "hostName": "run-b", "actionId": action_id, "outcome": "failed",
        "completedAt": failed["hosts"][0]["completedAt"], "errors": ["process table unavailable"]}])
    );

    // A viewer may not cancel; a manager cancels only the two still pending, with one cancel for the action.
    assert_error(post(&app, &viewer, &format!("{BULK}/{bulk_id}/_cancel"), json!({})).await, StatusCode::FORBIDDEN).await;
    let cancelled = ok_json(post(&app, &manager, &format!("{BULK}/{bulk_id}/_cancel"), json!({"comment": "enough"})).await).await;
    assert_eq!(cancelled["refused"], json!([]));
    let sent = cancelled["sent"].as_array().unwrap();
    assert_eq!((sent.len(), sent[0]["actionId"].as_str(), sent[0]["hosts"].as_u64()), (1, Some(action_id.as_str()), Some(2)));
    let cancel_id = sent[0]["cancelActionId"].as_str().unwrap().to_owned();
    let cancel = details(&app, &manager, &cancel_id).await;
    let mut cancel_agents: Vec<&str> = cancel["agents"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    cancel_agents.sort();
    let mut pending = vec![c.id.as_str(), d.id.as_str()];
    pending.sort();
    assert_eq!(cancel_agents, pending);
    assert_eq!((cancel["comment"].as_str(), cancel["parameters"]["id"].as_str()), (Some("enough"), Some(action_id.as_str())));

    // c carries the cancel out; d answered before its cancel arrived, and keeps its answer.
    assert!(receive(&app, c, "5s").await.iter().any(|x| x["id"] == cancel_id.as_str()));
    answer(&app, c, &cancel_id, ok()).await;
    answer(&app, d, &action_id, ok()).await;
    let done = status(&app, &manager, &bulk_id, "").await;
    assert_eq!(counts(&done), json!({"total": 4, "pending": 0, "successful": 2, "failed": 1, "canceled": 1, "expired": 0}));
    assert_eq!(done["status"], "failed");
    let c_row = done["hosts"].as_array().unwrap().iter().find(|h| h["agentId"] == c.id.as_str()).unwrap().clone();
    assert_eq!((c_row["outcome"].as_str(), c_row["canceledBy"].as_str()), (Some("canceled"), Some("manager")));
    // The bulk agrees with the history.
    let history = details(&app, &manager, &action_id).await;
    assert_eq!((history["status"].as_str(), history["wasCanceled"].as_bool()), (Some("failed"), Some(true)));

    // Nothing pending any more: a second cancel sends nothing.
    let again = ok_json(post(&app, &manager, &format!("{BULK}/{bulk_id}/_cancel"), json!({})).await).await;
    assert_eq!((again["sent"].as_array().unwrap().len(), again["refused"].as_array().unwrap().len()), (0, 0));
}

#[tokio::test]
async fn hosts_past_the_expiry_count_as_expired_and_retention_removes_the_bulk() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let a = endpoint(&app, "exp-a", ALL_CAPABILITIES).await;
    let b = endpoint(&app, "exp-b", ALL_CAPABILITIES).await;
    let created = create(&app, &manager, json!({"command": "isolate", "agents": [a.id, b.id]})).await;
    let (bulk_id, action_id) = (created["bulkId"].as_str().unwrap(), created["actionIds"][0].as_str().unwrap());
    answer(&app, &a, action_id, ok()).await;
    // Arrange: its expiry passed before b answered.
    let db = app.db().await;
    sqlx::query("update response_actions set expires_at = 1 where id = $1").bind(action_id).execute(&db).await.unwrap();
    let progress = status(&app, &manager, bulk_id, "").await;
    assert_eq!(progress["counts"], json!({"total": 2, "pending": 0, "successful": 1, "failed": 0, "canceled": 0, "expired": 1}));
    assert_eq!(progress["status"], "failed");
    // Nothing is pending, so cancel has nothing to send.
    let cancelled = ok_json(post(&app, &manager, &format!("{BULK}/{bulk_id}/_cancel"), json!({})).await).await;
    assert_eq!(cancelled["sent"], json!([]));

    // Past the retention, the task removes its actions and then the bulk.
    for table in ["response_actions", "response_action_bulks"] {
        let sql = format!("update {table} set created_at = 1 where {} = $1", if table == "response_actions" { "bulk_id" } else { "id" });
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(bulk_id).execute(&db).await.unwrap();
    }
    let platform = app.signed_in("platform").await;
    let run = platform.post(app.url("internal/task_manager/tasks/response_actions%3Aexpire/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert!(run.status().is_success(), "{}", run.status());
    crate::helpers::eventually("the retention removed the bulk", || async {
        manager.get(app.url(&format!("{BULK}/{bulk_id}"))).send().await.unwrap().status() == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test]
async fn hosts_refused_up_front_stay_listed_on_the_bulk() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let a = endpoint(&app, "chg-a", ALL_CAPABILITIES).await;
    let gone = endpoint(&app, "chg-gone", ALL_CAPABILITIES).await;
    uninstall(&app, &gone).await;
    // An uninstalled host is refused up front, and listed on the bulk.
    let created = create(&app, &manager, json!({"command": "unisolate", "agents": [a.id, gone.id]})).await;
    assert_eq!((created["hosts"].as_u64(), created["refusedTotal"].as_u64()), (Some(1), Some(1)));
    let progress = status(&app, &manager, created["bulkId"].as_str().unwrap(), "").await;
    assert_eq!((progress["selected"].as_u64(), progress["counts"]["total"].as_u64()), (Some(2), Some(1)));
    assert_eq!(progress["refused"][0]["agentId"], gone.id.as_str());
    assert!(progress.get("kuery").is_none(), "chosen by ids");
}

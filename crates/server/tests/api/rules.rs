//! Rules (`/api/alerting`): Kibana's shapes with system actions split and
//! merged, every refusal, the rule's API key, the change history, and the
//! compliance story of reference 003 end to end: an agent is uninstalled, the
//! `fleet.agent_status` rule fires at once (not a schedule later), a real
//! webhook receiver gets the agent's details, and the alert recovers when
//! the agent checks in again.

use axum::http::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::fleet::{TestAgent, checkin, enroll, enroll_host, enrolled};
use crate::helpers::{TestApp, assert_error, eventually, spawn_app};

const CASES_ID: &str = "system-connector-.cases";

async fn send(client: &Client, method: reqwest::Method, url: String, body: Option<Value>) -> reqwest::Response {
    let request = client.request(method, url).header("kbn-xsrf", "t");
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn get_json(app: &TestApp, client: &Client, path: &str) -> Value {
    ok_json(client.get(app.url(path)).send().await.unwrap()).await
}

/// A receiver on 127.0.0.1 that hands each request's body to the test.
pub async fn receiver() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), rx)
}

pub async fn webhook_connector(app: &TestApp, client: &Client, url: &str) -> String {
    let body = json!({"name": "SOC webhook", "connector_type_id": ".webhook", "config": {"url": url, "method": "post", "hasAuth": false}});
    ok_json(send(client, reqwest::Method::POST, app.url("api/actions/connector"), Some(body)).await).await["id"].as_str().unwrap().to_owned()
}

fn compliance_rule(connector: &str) -> Value {
    json!({
        "name": "Endpoint protection removed",
        "rule_type_id": "fleet.agent_status",
        "consumer": "alerts",
        "tags": ["compliance", "pci"],
        "schedule": {"interval": "1m"},
        "params": {"statuses": ["uninstalled", "orphaned"]},
        "actions": [
            {
                "id": connector,
                "group": "default",
                "params": {"body": "{\"agent\": \"{{context.agent.id}}\", \"host\": \"{{context.host.name}}\", \"status\": \"{{context.status}}\", \"rule\": \"{{rule.name}}\"}"},
                "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null}
            },
            {"id": CASES_ID, "params": {"subAction": "run", "subActionParams": {"groupingBy": ["host.name"], "reopenClosedCases": false, "timeWindow": "7d"}}}
        ]
    })
}

async fn create_rule(app: &TestApp, client: &Client, body: Value) -> Value {
    ok_json(send(client, reqwest::Method::POST, app.url("api/alerting/rule"), Some(body)).await).await
}

async fn audit(app: &TestApp, agent: &TestAgent, reason: &str) {
    let response = app
        .client()
        .post(app.url(&format!("api/fleet/agents/{}/audit/unenroll", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({
            "reason": reason,
            "timestamp": "2026-11-24T10:00:00Z",
            "user": "root",
            "process": {"pid": 4242, "name": "elastic-agent", "command_line": "elastic-agent uninstall --force"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn alerts(app: &TestApp, client: &Client, rule: &str) -> Vec<Value> {
    get_json(app, client, &format!("internal/alerting/alerts/_find?rule_id={rule}&per_page=100")).await["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn system_actions_are_split_stored_and_merged_back_with_their_types() {
    let app = spawn_app().await;
    let author = app.signed_in("author").await;
    let admin = app.signed_in("admin").await;
    let (url, _received) = receiver().await;
    let connector = webhook_connector(&app, &admin, &url).await;

    let rule = create_rule(&app, &author, compliance_rule(&connector)).await;
    let actions = rule["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{rule}");
    assert_eq!(actions[0]["connector_type_id"], ".webhook");
    assert_eq!(actions[0]["group"], "default");
    assert_eq!(actions[1]["id"], CASES_ID);
    assert_eq!(actions[1]["connector_type_id"], ".cases");
    assert!(actions[1].get("group").is_none() && actions[1].get("frequency").is_none(), "{rule}");
    assert!(actions.iter().all(|a| a["uuid"].as_str().is_some_and(|u| !u.is_empty())));
    assert_eq!(rule["api_key_owner"], "author");
    assert_eq!(rule["created_by"], "author");
    assert_eq!(rule["enabled"], true);
    assert_eq!(rule["scheduled_task_id"], format!("rule:{}", rule["id"].as_str().unwrap()));

    // The domain keeps two lists; the database shows it.
    let id = rule["id"].as_str().unwrap();
    let db = app.db().await;
    let (stored_actions, stored_system): (String, String) =
        sqlx::query_as("select actions, system_actions from rules where id = $1").bind(id).fetch_one(&db).await.unwrap();
    assert!(!stored_actions.contains(CASES_ID) && stored_system.contains(CASES_ID), "{stored_actions} / {stored_system}");

    // GET and _find merge them back the same way.
    assert_eq!(get_json(&app, &author, &format!("api/alerting/rule/{id}")).await["actions"], rule["actions"]);
    let found = get_json(&app, &admin, "api/alerting/rules/_find?search=protection&per_page=5").await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["per_page"], 5);
    assert_eq!(found["data"][0]["actions"], rule["actions"]);
    assert_eq!(get_json(&app, &admin, "api/alerting/rules/_find?search=nothing-like-it").await["total"], 0);

    // The connector knows it is used, and cannot be deleted from under the rule.
    let connectors = get_json(&app, &admin, "api/actions/connectors").await;
    let listed = connectors.as_array().unwrap().iter().find(|c| c["id"] == connector.as_str()).unwrap().clone();
    assert_eq!(listed["referenced_by_count"], 1);
    let message =
        assert_error(send(&admin, reqwest::Method::DELETE, app.url(&format!("api/actions/connector/{connector}")), None).await, StatusCode::CONFLICT)
            .await;
    assert_eq!(message, format!("Connector {connector} is used by 1 rule(s): \"Endpoint protection removed\". Remove it from those rules first."));
    assert_eq!(send(&admin, reqwest::Method::DELETE, app.url(&format!("api/alerting/rule/{id}")), None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        send(&admin, reqwest::Method::DELETE, app.url(&format!("api/actions/connector/{connector}")), None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn every_refusal_is_a_clear_4xx_naming_what_is_wrong() {
    let app = spawn_app().await;
    let author = app.signed_in("author").await;
    let (url, _received) = receiver().await;
    let admin = app.signed_in("admin").await;
    let connector = webhook_connector(&app, &admin, &url).await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut rule = compliance_rule(&connector);
        edit(&mut rule);
        rule
    };
    let cases: Vec<(Value, StatusCode, String)> = vec![
        (
            with(&|r| r["actions"][0].as_object_mut().unwrap().remove("group").map(|_| ()).unwrap_or(())),
            StatusCode::BAD_REQUEST,
            format!("Group is not defined in action {connector}"),
        ),
        (
            with(&|r| r["actions"][1]["group"] = json!("default")),
            StatusCode::BAD_REQUEST,
            format!("System action {CASES_ID} cannot have group: the framework decides when system actions run"),
        ),
        (
            with(&|r| r["actions"][1]["frequency"] = json!({"summary": false, "notify_when": "onActiveAlert", "throttle": null})),
            StatusCode::BAD_REQUEST,
            format!("System action {CASES_ID} cannot have frequency: the framework decides when system actions run"),
        ),
        (
            with(&|r| {
                let cases = r["actions"][1].clone();
                r["actions"].as_array_mut().unwrap().push(cases);
            }),
            StatusCode::BAD_REQUEST,
            format!("Cannot use the same system action twice: {CASES_ID}"),
        ),
        (
            with(&|r| r["actions"][0]["id"] = json!("no-such-connector")),
            StatusCode::BAD_REQUEST,
            "Failed to validate actions due to the following error: Invalid connectors: no-such-connector".into(),
        ),
        (
            with(&|r| r["schedule"]["interval"] = json!("30s")),
            StatusCode::BAD_REQUEST,
            "Error creating rule: the interval is less than the allowed minimum interval of 1m".into(),
        ),
        (
            with(&|r| r["schedule"]["interval"] = json!("soon")),
            StatusCode::BAD_REQUEST,
            "[request body.schedule.interval]: \"soon\" is not a duration such as 30s, 5m, 12h or 7d".into(),
        ),
        (with(&|r| r["params"]["statuses"] = json!([])), StatusCode::BAD_REQUEST, "[request body.params.statuses]: pick at least one status".into()),
        (with(&|r| r["rule_type_id"] = json!("siem.queries")), StatusCode::BAD_REQUEST, "Rule type \"siem.queries\" is not registered.".into()),
        (with(&|r| r["name"] = json!("  ")), StatusCode::BAD_REQUEST, "[request body.name]: must be 1 to 256 characters".into()),
    ];
    for (body, status, expected) in cases {
        let message = assert_error(send(&author, reqwest::Method::POST, app.url("api/alerting/rule"), Some(body.clone())).await, status).await;
        assert_eq!(message, expected, "{body}");
    }
    // The `.cases` params are checked too, naming the field.
    let bad_cases = with(&|r| r["actions"][1]["params"]["subActionParams"]["maximumCasesToOpen"] = json!(21));
    let message =
        assert_error(send(&author, reqwest::Method::POST, app.url("api/alerting/rule"), Some(bad_cases)).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("maximumCasesToOpen"), "{message}");

    // A rule author without cases:all may not add the cases system action.
    let platform = app.signed_in("platform").await;
    let message = assert_error(
        send(&platform, reqwest::Method::POST, app.url("api/alerting/rule"), Some(compliance_rule(&connector))).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(message, format!("Unauthorized to use system action {CASES_ID}: it requires cases:all"));

    // A viewer may read but not write.
    let viewer = app.signed_in("viewer").await;
    assert_error(send(&viewer, reqwest::Method::POST, app.url("api/alerting/rule"), Some(compliance_rule(&connector))).await, StatusCode::FORBIDDEN)
        .await;
    assert_error(author.get(app.url("api/alerting/rule/nope")).send().await.unwrap(), StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn saving_deleting_and_switching_a_rule_is_audited_and_keeps_its_key_right() {
    let app = spawn_app().await;
    let author = app.signed_in("author").await;
    let manager = app.signed_in("manager").await;
    let (url, _received) = receiver().await;
    let connector = webhook_connector(&app, &manager, &url).await;
    let rule = create_rule(&app, &author, compliance_rule(&connector)).await;
    let id = rule["id"].as_str().unwrap().to_owned();
    let db = app.db().await;
    let key_of = |db: sqlx::AnyPool, id: String| async move {
        sqlx::query_scalar::<_, String>("select api_key_id from rules where id = $1").bind(id).fetch_one(&db).await.unwrap()
    };
    let first_key = key_of(db.clone(), id.clone()).await;

    // Saved again by its owner: same key. By someone else: their key, the old one queued.
    let mut update = compliance_rule(&connector);
    for field in ["rule_type_id", "consumer"] {
        update.as_object_mut().unwrap().remove(field);
    }
    update["name"] = json!("Endpoint protection removed (PCI 10.6)");
    let saved = ok_json(send(&author, reqwest::Method::PUT, app.url(&format!("api/alerting/rule/{id}")), Some(update.clone())).await).await;
    assert_eq!(saved["revision"], 1);
    assert_eq!(key_of(db.clone(), id.clone()).await, first_key);
    let saved = ok_json(send(&manager, reqwest::Method::PUT, app.url(&format!("api/alerting/rule/{id}")), Some(update)).await).await;
    assert_eq!(saved["api_key_owner"], "manager");
    let second_key = key_of(db.clone(), id.clone()).await;
    assert_ne!(second_key, first_key);
    let queued: i64 =
        sqlx::query_scalar("select count(*) from api_key_pending_invalidation where api_key_id = $1").bind(&first_key).fetch_one(&db).await.unwrap();
    assert_eq!(queued, 1, "the replaced key waits in the queue, never invalidated in place");

    // Disable, enable, mute: 204 each, and the rule shows it.
    for (path, field, value) in
        [("_disable", "enabled", false), ("_enable", "enabled", true), ("_mute_all", "mute_all", true), ("_unmute_all", "mute_all", false)]
    {
        let response = send(&manager, reqwest::Method::POST, app.url(&format!("api/alerting/rule/{id}/{path}")), None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{path}");
        assert_eq!(get_json(&app, &manager, &format!("api/alerting/rule/{id}")).await[field], value, "{path}");
    }
    let disabled_task: i64 = sqlx::query_scalar("select count(*) from tasks where id = $1").bind(format!("rule:{id}")).fetch_one(&db).await.unwrap();
    assert_eq!(disabled_task, 1, "enabled again: its task is back");

    // Deleted: 204, then 404; its key queued; its history stays.
    assert_eq!(send(&manager, reqwest::Method::DELETE, app.url(&format!("api/alerting/rule/{id}")), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(manager.get(app.url(&format!("api/alerting/rule/{id}"))).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let queued: i64 =
        sqlx::query_scalar("select count(*) from api_key_pending_invalidation where api_key_id = $1").bind(&second_key).fetch_one(&db).await.unwrap();
    assert_eq!(queued, 1);
    let history = get_json(&app, &manager, &format!("internal/alerting/rule/{id}/_history")).await;
    let changes: Vec<(&str, &str)> =
        history.as_array().unwrap().iter().map(|c| (c["change"].as_str().unwrap(), c["changed_by"].as_str().unwrap())).collect();
    assert_eq!(
        changes,
        [
            ("delete", "manager"),
            ("unmute", "manager"),
            ("mute", "manager"),
            ("enable", "manager"),
            ("disable", "manager"),
            ("update", "manager"),
            ("update", "author"),
            ("create", "author")
        ]
    );
    assert!(history[5]["summary"].as_str().unwrap().contains("API key owner"), "{history}");
}

/// Reference 003's compliance story, nothing faked: an uninstall reaches a
/// real webhook at once, a case is opened with the alert, and the alert
/// recovers when the agent checks in again.
#[tokio::test]
async fn an_uninstalled_agent_fires_the_rule_at_once_and_recovers_when_it_is_back() {
    let app = spawn_app().await;
    let author = app.signed_in("author").await;
    let admin = app.signed_in("admin").await;
    let (url, mut received) = receiver().await;
    let connector = webhook_connector(&app, &admin, &url).await;
    let agent = enroll(&app, "pos-terminal-7").await;
    assert_eq!(checkin(&app, &agent, "1s").await.status(), StatusCode::OK);
    let rule = create_rule(&app, &author, compliance_rule(&connector)).await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    eventually("the rule's first run", || async {
        get_json(&app, &author, &format!("internal/alerting/rule/{rule_id}/_runs")).await.as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    assert!(alerts(&app, &author, &rule_id).await.is_empty());

    // The uninstall: the rule runs at once (its schedule is a minute) and the webhook hears it.
    audit(&app, &agent, "uninstall").await;
    let body =
        tokio::time::timeout(std::time::Duration::from_secs(30), received.recv()).await.expect("the webhook is called within seconds").unwrap();
    let body: Value = serde_json::from_str(&body).expect("the rendered body is JSON");
    assert_eq!(body, json!({"agent": agent.id, "host": "pos-terminal-7", "status": "uninstalled", "rule": "Endpoint protection removed"}));
    let active = alerts(&app, &author, &rule_id).await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["status"], "active");
    assert_eq!(active[0]["instance_id"], agent.id);
    let context = &active[0]["context"];
    assert_eq!(context["audit_unenrolled_reason"], "uninstall");
    // Who did it reaches the alert (the reference's insider case).
    assert_eq!(context["audit_unenrolled_user"], "root");
    assert_eq!(context["audit_unenrolled_process"], json!({"pid": 4242, "name": "elastic-agent", "command_line": "elastic-agent uninstall --force"}));
    assert!(context["reason"].as_str().unwrap().ends_with("(uninstall: by root, process elastic-agent (pid 4242))"), "{context}");
    // Every context variable the form's picker offers is in the alert's context
    // (null for what this agent had no reason to say: a new Fleet, being heard from).
    for (name, _) in warden_core::rules::AGENT_STATUS_VARIABLES.iter().filter(|(name, _)| name.starts_with("context.")) {
        let pointer = format!("/{}", name.trim_start_matches("context.").replace('.', "/"));
        let value = context.pointer(&pointer);
        let may_be_null =
            ["context.new_fleet_url", "context.last_heard_at", "context.host.id", "context.replaced_by", "context.host_conflict_with"].contains(name);
        assert!(value.is_some_and(|v| may_be_null || !v.is_null()), "{name} missing from {context}");
    }
    let runs = get_json(&app, &author, &format!("internal/alerting/rule/{rule_id}/_runs")).await;
    assert!(runs.as_array().unwrap().iter().any(|r| r["trigger"] == "fleet"), "{runs}");

    // The webhook's run is in the rule's action log, as the rule's owner.
    eventually("the action log shows the webhook run", || async {
        let log = get_json(&app, &author, &format!("internal/alerting/rule/{rule_id}/_action_executions")).await;
        log.as_array().unwrap().iter().any(|e| e["connector_id"] == connector && e["status"] == "ok" && e["actor"] == "author")
    })
    .await;

    // The agent is back: the alert recovers, and onActionGroupChange fired once only.
    assert_eq!(checkin(&app, &agent, "1s").await.status(), StatusCode::OK);
    eventually("the alert recovers", || async {
        alerts(&app, &author, &rule_id).await.first().is_some_and(|a| a["status"] == "recovered" && a["end"].is_string())
    })
    .await;
    assert!(received.try_recv().is_err(), "no second call for the same alert");
}

#[tokio::test]
async fn an_owner_who_lost_a_privilege_makes_the_action_fail_with_the_reason() {
    let app = spawn_app().await;
    let out = app.cli(&["user", "add", "casey", "--role", "rule_author", "--password", "casey-password-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let casey = app.client();
    assert_eq!(app.login_response(&casey, "casey", "casey-password-1").await.status(), StatusCode::OK);
    let admin = app.signed_in("admin").await;
    let (url, _received) = receiver().await;
    let connector = webhook_connector(&app, &admin, &url).await;
    let rule = create_rule(&app, &casey, compliance_rule(&connector)).await;
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    // Casey keeps Fleet and rules but loses cases:all (viewer + platform engineer).
    let out = app.cli(&["user", "roles", "casey", "--role", "platform_engineer"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let agent = enroll(&app, "kiosk-3").await;
    assert_eq!(checkin(&app, &agent, "1s").await.status(), StatusCode::OK);
    audit(&app, &agent, "orphaned").await;

    eventually("the cases action fails with the reason", || async {
        let log = get_json(&app, &admin, &format!("internal/alerting/rule/{rule_id}/_action_executions")).await;
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["connector_id"] == CASES_ID && e["status"] == "error" && e["message"] == "the rule's owner casey no longer holds cases:all")
    })
    .await;
    let cases = get_json(&app, &admin, "api/cases/_find").await;
    assert_eq!(cases["total"], 0, "no case was opened on privileges nobody holds");
}

#[tokio::test]
async fn an_alerts_filter_keeps_an_action_to_the_alerts_it_matches() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let (url, mut received) = receiver().await;
    let connector = webhook_connector(&app, &admin, &url).await;
    let mut rule = compliance_rule(&connector);
    rule["actions"].as_array_mut().unwrap().truncate(1);
    rule["actions"][0]["alerts_filter"] = json!({"query": {"kql": "local_metadata.host.hostname:pci-*", "filters": []}});
    let rule_id = create_rule(&app, &admin, rule.clone()).await["id"].as_str().unwrap().to_owned();
    let (lab, pci) = (enroll(&app, "lab-1").await, enroll(&app, "pci-1").await);
    audit(&app, &lab, "uninstall").await;
    audit(&app, &pci, "uninstall").await;
    eventually("both agents raise alerts", || async { alerts(&app, &admin, &rule_id).await.len() == 2 }).await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), received.recv()).await.expect("the webhook is called").unwrap();
    assert!(body.contains(&pci.id), "{body}");
    eventually("the rule's actions are done", || async {
        get_json(&app, &admin, &format!("internal/alerting/rule/{rule_id}/_action_executions")).await.as_array().is_some_and(|log| !log.is_empty())
    })
    .await;
    assert!(received.try_recv().is_err(), "no call for the lab host the filter leaves out");

    // A timeframe is refused, not ignored.
    rule["actions"][0]["alerts_filter"] = json!({"timeframe": {"days": [1, 2], "hours": {"start": "08:00", "end": "17:00"}, "timezone": "UTC"}});
    let message = assert_error(send(&admin, reqwest::Method::POST, app.url("api/alerting/rule"), Some(rule)).await, StatusCode::BAD_REQUEST).await;
    assert!(message.starts_with(&format!("Action {connector}: [alerts_filter.timeframe]")), "{message}");
}

#[tokio::test]
async fn a_rule_whose_owner_was_disabled_fails_its_runs_with_why() {
    let app = spawn_app().await;
    let out = app.cli(&["user", "add", "dana", "--role", "rule_author", "--password", "dana-password-1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dana = app.client();
    assert_eq!(app.login_response(&dana, "dana", "dana-password-1").await.status(), StatusCode::OK);
    let admin = app.signed_in("admin").await;
    let mut rule = compliance_rule("demo-server-log");
    rule["actions"] = json!([]);
    let rule_id = create_rule(&app, &dana, rule).await["id"].as_str().unwrap().to_owned();
    eventually("the first run succeeds", || async {
        get_json(&app, &admin, &format!("api/alerting/rule/{rule_id}")).await["execution_status"]["status"] == "ok"
    })
    .await;

    assert!(app.cli(&["user", "disable", "dana"]).status.success());
    // An agent's change makes the rule run now, with a key nobody may use any more.
    let agent = enroll(&app, "kiosk-9").await;
    audit(&app, &agent, "uninstall").await;
    eventually("the run fails, saying why", || async {
        let rule = get_json(&app, &admin, &format!("api/alerting/rule/{rule_id}")).await;
        rule["execution_status"]["status"] == "error"
            && rule["execution_status"]["error"]["reason"] == "decrypt"
            && rule["execution_status"]["error"]["message"].as_str().is_some_and(|m| m.contains("no longer valid"))
            && rule["last_run"]["outcome"] == "failed"
    })
    .await;
    assert!(alerts(&app, &admin, &rule_id).await.is_empty(), "nothing is evaluated on a key nobody holds");
}

/// A replacement must not become a way to hide a host (reference 003's
/// insider case): a rule watching `replaced` and `conflict` hears of the
/// replacement at once, with the agent that took the host's place, and of
/// both agents once the replaced one checks in again.
#[tokio::test]
async fn a_replacement_and_a_conflict_fire_the_rule_naming_the_other_agent() {
    let app = spawn_app().await;
    let author = app.signed_in("author").await;
    let rule = json!({
        "name": "Host taken over",
        "rule_type_id": "fleet.agent_status",
        "consumer": "alerts",
        "schedule": {"interval": "1h"},
        "params": {"statuses": ["replaced", "conflict"]},
        "actions": []
    });
    let rule_id = create_rule(&app, &author, rule).await["id"].as_str().unwrap().to_owned();
    let real = enrolled(enroll_host(&app, "finance-laptop", json!("machine-fin"), None).await).await;
    assert_eq!(checkin(&app, &real, "0s").await.status(), StatusCode::OK);
    let other = enrolled(enroll_host(&app, "finance-laptop", json!("machine-fin"), None).await).await;

    eventually("the replaced agent's alert", || async { alerts(&app, &author, &rule_id).await.iter().any(|a| a["instance_id"] == real.id) }).await;
    let alert = alerts(&app, &author, &rule_id).await.into_iter().find(|a| a["instance_id"] == real.id).unwrap();
    assert_eq!(alert["context"]["status"], "replaced");
    assert_eq!(alert["context"]["replaced_by"], other.id);
    assert_eq!(alert["context"]["host"]["id"], "machine-fin");
    assert!(alert["context"]["reason"].as_str().unwrap().ends_with(&format!("(replaced by agent {})", other.id)), "{alert}");

    assert_eq!(checkin(&app, &real, "0s").await.status(), StatusCode::OK);
    eventually("both agents' conflict alerts", || async {
        let found = alerts(&app, &author, &rule_id).await;
        [(&real, &other), (&other, &real)].iter().all(|(agent, with)| {
            found
                .iter()
                .any(|a| a["instance_id"] == agent.id && a["context"]["status"] == "conflict" && a["context"]["host_conflict_with"] == with.id)
        })
    })
    .await;
}

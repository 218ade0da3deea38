//! Fleet Server (agent) and Fleet (analyst) API against a real warden.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually, spawn_app};

/// The demo enrollment token `warden serve --demo` seeds.
const DEMO_TOKEN: &str = "ZGVtby1lbnJvbGxtZW50OndhcmRlbi1kZW1vLWVucm9sbG1lbnQtc2VjcmV0";

pub struct TestAgent {
    pub id: String,
    pub key: String,
}

pub async fn enroll(app: &TestApp, hostname: &str) -> TestAgent {
    let response = app
        .client()
        .post(app.url("api/fleet/agents/enroll"))
        .header("Authorization", format!("ApiKey {DEMO_TOKEN}"))
        .json(&json!({
            "type": "PERMANENT",
            "metadata": {"local": {"host": {"hostname": hostname}, "elastic": {"agent": {"version": "8.15.2"}}}, "tags": ["test"]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["action"], "created");
    TestAgent { id: body["item"]["id"].as_str().unwrap().to_owned(), key: body["item"]["access_api_key"].as_str().unwrap().to_owned() }
}

/// Enrolls as a host with a fingerprint (`local_metadata.host.id`) and,
/// optionally, a replace token; returns the response as is.
pub async fn enroll_host(app: &TestApp, hostname: &str, host_id: Value, replace_token: Option<&str>) -> reqwest::Response {
    let mut body = json!({
        "type": "PERMANENT",
        "metadata": {"local": {"host": {"hostname": hostname, "id": host_id}, "elastic": {"agent": {"version": "8.15.2"}}}, "tags": []}
    });
    if let Some(token) = replace_token {
        body["replace_token"] = json!(token);
    }
    app.client().post(app.url("api/fleet/agents/enroll")).header("Authorization", format!("ApiKey {DEMO_TOKEN}")).json(&body).send().await.unwrap()
}

pub async fn enrolled(response: reqwest::Response) -> TestAgent {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    TestAgent { id: body["item"]["id"].as_str().unwrap().to_owned(), key: body["item"]["access_api_key"].as_str().unwrap().to_owned() }
}

async fn event_messages(app: &TestApp, client: &Client, id: &str) -> Vec<String> {
    let body: Value = client.get(app.url(&format!("api/fleet/agents/{id}/events"))).send().await.unwrap().json().await.unwrap();
    body["items"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
}

async fn listed_ids(app: &TestApp, client: &Client, query: &str) -> Vec<String> {
    let body: Value = client.get(app.url(&format!("api/fleet/agents?{query}"))).send().await.unwrap().json().await.unwrap();
    body["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

async fn agent_post(app: &TestApp, agent: &TestAgent, path: &str, body: Value) -> reqwest::Response {
    app.client()
        .post(app.url(&format!("api/fleet/agents/{}/{path}", agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn checkin(app: &TestApp, agent: &TestAgent, poll_timeout: &str) -> reqwest::Response {
    agent_post(app, agent, "checkin", json!({"status": "online", "message": "Running", "poll_timeout": poll_timeout})).await
}

pub async fn audit(app: &TestApp, agent: &TestAgent, reason: &str) -> reqwest::Response {
    agent_post(app, agent, "audit/unenroll", json!({"reason": reason, "timestamp": "2026-11-23T10:00:00Z"})).await
}

async fn get_agent(app: &TestApp, client: &Client, id: &str) -> Value {
    let body: Value = client.get(app.url(&format!("api/fleet/agents/{id}"))).send().await.unwrap().json().await.unwrap();
    body["item"].clone()
}

async fn event_kinds(app: &TestApp, client: &Client, id: &str) -> Vec<String> {
    let body: Value = client.get(app.url(&format!("api/fleet/agents/{id}/events"))).send().await.unwrap().json().await.unwrap();
    body["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn uninstall_is_recorded_once_and_a_later_checkin_clears_it() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "laptop-1").await;
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["status"], "enrolling");

    let response = checkin(&app, &agent, "0s").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["action"], "checkin");
    assert_eq!(body["actions"], json!([]));
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["status"], "online");

    assert_eq!(audit(&app, &agent, "uninstall").await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &agent.id).await;
    assert_eq!(item["status"], "uninstalled");
    assert_eq!(item["audit_unenrolled_reason"], "uninstall");
    assert_eq!(item["audit_unenrolled_time"], "2026-11-23T10:00:00.000Z");

    // A second final message, whatever its reason, is a conflict and changes nothing.
    let conflict = audit(&app, &agent, "orphaned").await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let body: Value = conflict.json().await.unwrap();
    assert_eq!(body, json!({"statusCode": 409, "error": "ErrAuditReasonConflict", "message": "agent document contains audit_unenroll_reason"}));
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["audit_unenrolled_reason"], "uninstall");

    // The agent is back: a successful check-in clears the audit fields.
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &agent.id).await;
    assert_eq!(item["status"], "online");
    assert_eq!(item["audit_unenrolled_reason"], Value::Null);
    assert_eq!(item["audit_unenrolled_time"], Value::Null);
    let kinds = event_kinds(&app, &viewer, &agent.id).await;
    assert_eq!(kinds, ["checked_in_after_silence", "uninstalled", "enrolled"]);
}

#[tokio::test]
async fn audit_reasons_and_timestamps_are_validated() {
    let app = spawn_app().await;
    let agent = enroll(&app, "laptop-2").await;
    let message = assert_error(audit(&app, &agent, "deleted").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "audit/unenroll request invalid reason");
    let response = agent_post(&app, &agent, "audit/unenroll", json!({"reason": "uninstall", "timestamp": "yesterday"})).await;
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("[request body.timestamp]"), "{message}");
    let response = agent_post(&app, &agent, "checkin", json!({"status": "sleeping"})).await;
    let message = assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("[request body.status]"), "{message}");
    // Migrated is its own status, not offline.
    assert_eq!(audit(&app, &agent, "migrated").await.status(), StatusCode::OK);
    let viewer = app.signed_in("viewer").await;
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["status"], "migrated");
}

/// Reference 003: "the event should contain information about the user and
/// process that ran the command", and where a migrated agent went.
#[tokio::test]
async fn the_final_message_says_who_ran_it_and_a_migrated_agent_where_it_went() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "laptop-9").await;
    let final_message = |details: Value| {
        let mut body = json!({"reason": "uninstall", "timestamp": "2026-11-23T10:00:00Z"});
        body.as_object_mut().unwrap().extend(details.as_object().unwrap().clone());
        body
    };

    // Refused, each with its field named, and nothing recorded.
    for (details, expected) in [
        (json!({"new_fleet_url": "https://elsewhere.example"}), "[request body.new_fleet_url]: only a migrated agent names a new Fleet"),
        (json!({"user": "root\u{1b}[2J"}), "[request body.user]: must not contain control characters"),
        (json!({"user": "u".repeat(257)}), "[request body.user]: at most 256 characters"),
        (json!({"process": {"pid": 1, "name": ""}}), "[request body.process.name]: must not be empty"),
        (json!({"process": {"pid": -1, "name": "sh"}}), "[request body.process.pid]: invalid value"),
    ] {
        let message = assert_error(agent_post(&app, &agent, "audit/unenroll", final_message(details)).await, StatusCode::BAD_REQUEST).await;
        assert!(message.starts_with(expected), "{message}");
    }
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["audit_unenrolled_reason"], Value::Null);

    let details = json!({"user": " CORP\\alice ", "process": {"pid": 4242, "name": "elastic-agent", "command_line": "elastic-agent uninstall"}});
    assert_eq!(agent_post(&app, &agent, "audit/unenroll", final_message(details)).await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &agent.id).await;
    assert_eq!(
        item["audit_unenrolled_details"],
        json!({"user": "CORP\\alice", "process": {"pid": 4242, "name": "elastic-agent", "command_line": "elastic-agent uninstall"}})
    );
    let log: Value = viewer.get(app.url(&format!("api/fleet/agents/{}/events", agent.id))).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["items"][0]["message"], "The agent reported it was uninstalled: by CORP\\alice, process elastic-agent (pid 4242)");
    // Back: the details go with the reason.
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["audit_unenrolled_details"], Value::Null);

    // Migrated: the URL of the new Fleet, which must be one.
    let moved = enroll(&app, "laptop-10").await;
    let migrated = |url: &str| json!({"reason": "migrated", "timestamp": "2026-11-23T10:00:00Z", "new_fleet_url": url, "user": "mallory"});
    let message = assert_error(agent_post(&app, &moved, "audit/unenroll", migrated("javascript:alert(1)")).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "[request body.new_fleet_url]: expected an http or https URL, got `javascript:alert(1)`");
    assert_eq!(agent_post(&app, &moved, "audit/unenroll", migrated("https://fleet.attacker.example:8220")).await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &moved.id).await;
    assert_eq!(item["status"], "migrated");
    assert_eq!(item["audit_unenrolled_details"], json!({"user": "mallory", "new_fleet_url": "https://fleet.attacker.example:8220"}));
}

/// A Detached Endpoint keeps reporting (reference 003: "seconds since last
/// Detached Endpoint status update, an indication that the machine is
/// online"): each repeat is still Fleet Server's 409, but it is heard.
#[tokio::test]
async fn a_detached_endpoint_that_keeps_reporting_is_heard_from() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "kiosk-12").await;
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
    let before = chrono_ms(&get_agent(&app, &viewer, &agent.id).await["last_checkin"]);

    assert_eq!(audit(&app, &agent, "orphaned").await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &agent.id).await;
    assert_eq!(item["status"], "orphaned");
    let first = chrono_ms(&item["last_heard_at"]);
    assert!(first >= before, "{item}");

    let repeat = audit(&app, &agent, "orphaned").await;
    assert_eq!(repeat.status(), StatusCode::CONFLICT);
    // The agent stays orphaned, heard from again (events.rs: and the Fleet view hears of it live).
    let item = get_agent(&app, &viewer, &agent.id).await;
    assert_eq!(item["status"], "orphaned");
    assert!(chrono_ms(&item["last_heard_at"]) >= first, "{item}");
    // Only the first report is in the activity log: repeats would flood it.
    assert_eq!(event_kinds(&app, &viewer, &agent.id).await.iter().filter(|k| *k == "orphaned").count(), 1);

    // An agent that reported something else is not heard from by an orphaned report.
    let gone = enroll(&app, "kiosk-13").await;
    assert_eq!(audit(&app, &gone, "uninstall").await.status(), StatusCode::OK);
    assert_eq!(audit(&app, &gone, "orphaned").await.status(), StatusCode::CONFLICT);
    assert_eq!(get_agent(&app, &viewer, &gone.id).await["last_heard_at"], Value::Null);
}

fn chrono_ms(value: &Value) -> u128 {
    let text = value.as_str().unwrap_or_else(|| panic!("expected a time, got {value}"));
    humantime::parse_rfc3339_weak(text).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

#[tokio::test]
async fn keys_speak_only_for_their_own_agent() {
    let app = spawn_app().await;
    let one = enroll(&app, "one").await;
    let two = enroll(&app, "two").await;
    let impostor = TestAgent { id: two.id.clone(), key: one.key.clone() };
    let response = audit(&app, &impostor, "uninstall").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(checkin(&app, &impostor, "0s").await.status(), StatusCode::FORBIDDEN);

    let forged = TestAgent { id: one.id.clone(), key: "bm90OmEta2V5".into() };
    assert_eq!(checkin(&app, &forged, "0s").await.status(), StatusCode::UNAUTHORIZED);
    let bare = app.client().post(app.url(&format!("api/fleet/agents/{}/checkin", one.id))).json(&json!({"status": "online"})).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let viewer = app.signed_in("viewer").await;
    assert_eq!(get_agent(&app, &viewer, &two.id).await["audit_unenrolled_reason"], Value::Null);
}

#[tokio::test]
async fn force_unenroll_revokes_at_once_and_later_calls_are_recorded() {
    let app = spawn_app().await;
    let agent = enroll(&app, "server-9").await;
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
    let platform = app.signed_in("platform").await;
    let response = platform
        .post(app.url(&format!("api/fleet/agents/{}/unenroll", agent.id)))
        .header("kbn-xsrf", "t")
        .json(&json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&app, &agent, "uninstall").await.status(), StatusCode::UNAUTHORIZED);
    let item = get_agent(&app, &platform, &agent.id).await;
    assert_eq!(item["status"], "unenrolled");
    assert_eq!(item["active"], false);
    assert_eq!(item["force_unenroll"]["by"], "platform");
    assert_eq!(item["rejected_calls"]["count"], 2);
    let kinds = event_kinds(&app, &platform, &agent.id).await;
    assert_eq!(kinds, ["rejected_call", "force_unenrolled", "enrolled"]);

    // Never offered twice.
    let again = platform.post(app.url(&format!("api/fleet/agents/{}/unenroll", agent.id))).header("kbn-xsrf", "t").send().await.unwrap();
    let message = assert_error(again, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("already unenrolled"), "{message}");
}

#[tokio::test]
async fn an_unenroll_reaches_a_waiting_agent_through_its_long_poll() {
    let app = spawn_app().await;
    let agent = enroll(&app, "laptop-3").await;
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);

    // The agent parks a long poll; the analyst's unenroll must answer it.
    let waiting = {
        let client = app.client();
        let url = app.url(&format!("api/fleet/agents/{}/checkin", agent.id));
        let key = agent.key.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .header("Authorization", format!("ApiKey {key}"))
                .json(&json!({"status": "online", "message": "Running", "poll_timeout": "60s"}))
                .send()
                .await
                .unwrap()
        })
    };
    // Whether the unenroll lands before or while the check-in waits, the
    // check-in must come back with it (and not after its 60 s timeout empty).
    let platform = app.signed_in("platform").await;
    let response = platform.post(app.url(&format!("api/fleet/agents/{}/unenroll", agent.id))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(get_agent(&app, &platform, &agent.id).await["status"], "unenrolling");

    let answered: Value = waiting.await.unwrap().json().await.unwrap();
    let actions = answered["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{answered}");
    assert_eq!(actions[0]["type"], "UNENROLL");
    assert_eq!(actions[0]["agent_id"], agent.id.as_str());

    let ack = agent_post(
        &app,
        &agent,
        "acks",
        json!({"events": [{"action_id": "no-such-action"}, {"action_id": actions[0]["id"], "type": "ACTION_RESULT"}]}),
    )
    .await;
    let ack: Value = ack.json().await.unwrap();
    assert_eq!(ack["errors"], true, "{ack}");
    assert_eq!(ack["items"][0]["status"], 404);
    assert_eq!(ack["items"][1]["status"], 200);
    let item = get_agent(&app, &platform, &agent.id).await;
    assert_eq!(item["status"], "unenrolled");
    assert_eq!(item["force_unenroll"], Value::Null);
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn uninstalled_and_orphaned_agents_can_still_be_unenrolled() {
    let app = spawn_app().await;
    let platform = app.signed_in("platform").await;
    for (reason, force) in [("uninstall", false), ("orphaned", true)] {
        let agent = enroll(&app, reason).await;
        assert_eq!(audit(&app, &agent, reason).await.status(), StatusCode::OK);
        let response = platform
            .post(app.url(&format!("api/fleet/agents/{}/unenroll", agent.id)))
            .header("kbn-xsrf", "t")
            .json(&json!({"force": force}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // The agent is gone and cannot confirm, so it is unenrolled at once.
        assert_eq!(get_agent(&app, &platform, &agent.id).await["status"], "unenrolled", "{reason}");
    }
}

#[tokio::test]
async fn agents_list_filters_sorts_pages_and_counts() {
    let app = spawn_app().await;
    let mut agents = Vec::new();
    for name in ["web-01", "web-02", "db-01", "db-02", "mail-01"] {
        let agent = enroll(&app, name).await;
        assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
        agents.push(agent);
    }
    assert_eq!(audit(&app, &agents[2], "uninstall").await.status(), StatusCode::OK);
    assert_eq!(audit(&app, &agents[3], "orphaned").await.status(), StatusCode::OK);
    let viewer = app.signed_in("viewer").await;
    let list = |query: &'static str| {
        let viewer = viewer.clone();
        let url = app.url(&format!("api/fleet/agents?{query}"));
        async move { viewer.get(url).send().await.unwrap() }
    };

    let body: Value =
        list("kuery=local_metadata.host.hostname:web-*&sortField=local_metadata.host.hostname&sortOrder=asc").await.json().await.unwrap();
    let hosts: Vec<&str> = body["items"].as_array().unwrap().iter().map(|a| a["local_metadata"]["host"]["hostname"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["web-01", "web-02"]);
    assert_eq!(body["total"], 2);

    let body: Value = list("perPage=2&page=2&sortField=local_metadata.host.hostname&sortOrder=asc&getStatusSummary=true").await.json().await.unwrap();
    let hosts: Vec<&str> = body["items"].as_array().unwrap().iter().map(|a| a["local_metadata"]["host"]["hostname"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["mail-01", "web-01"]);
    assert_eq!(body["total"], 5);
    assert_eq!(body["perPage"], 2);
    assert_eq!(body["statusSummary"]["online"], 3);
    assert_eq!(body["statusSummary"]["uninstalled"], 1);
    assert_eq!(body["statusSummary"]["orphaned"], 1);

    let body: Value = list("kuery=status:uninstalled%20or%20status:orphaned").await.json().await.unwrap();
    assert_eq!(body["total"], 2);

    let message = assert_error(list("kuery=status:online%20and").await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("expected a field name at the end"), "{message}");
    let message = assert_error(list("perPage=abc").await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("perPage"), "{message}");
    assert_error(list("sortField=secret").await, StatusCode::BAD_REQUEST).await;

    let counts: Value = viewer.get(app.url("api/fleet/agent_status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(counts["results"]["all"], 5);
    assert_eq!(counts["results"]["online"], 3);
    assert_eq!(counts["results"]["uninstalled"], 1);
}

#[tokio::test]
async fn policies_and_enrollment_keys() {
    let app = spawn_app().await;
    let admin = app.signed_in("platform").await;
    let post = |path: &'static str, body: Value| {
        let admin = admin.clone();
        let url = app.url(path);
        async move { admin.post(url).header("kbn-xsrf", "t").json(&body).send().await.unwrap() }
    };
    let created: Value =
        post("api/fleet/agent_policies", json!({"name": "Servers", "namespace": "prod", "inactivity_timeout": 3600})).await.json().await.unwrap();
    let policy_id = created["item"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["item"]["inactivity_timeout"], 3600);
    assert_error(post("api/fleet/agent_policies", json!({"name": "Servers"})).await, StatusCode::CONFLICT).await;
    let message = assert_error(post("api/fleet/agent_policies", json!({"name": "X", "namespace": "Bad-NS"})).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("namespace"), "{message}");

    let key: Value = post("api/fleet/enrollment_api_keys", json!({"policy_id": policy_id, "name": "servers"})).await.json().await.unwrap();
    let token = key["item"]["api_key"].as_str().unwrap().to_owned();
    let key_id = key["item"]["id"].as_str().unwrap().to_owned();
    let enroll_with = |token: String| {
        let client = app.client();
        let url = app.url("api/fleet/agents/enroll");
        async move {
            client
                .post(url)
                .header("Authorization", format!("ApiKey {token}"))
                .json(&json!({"type": "PERMANENT", "metadata": {"local": {}}}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(enroll_with(token.clone()).await.status(), StatusCode::OK);

    // A policy with agents cannot be deleted.
    let message = assert_error(post("api/fleet/agent_policies/delete", json!({"agentPolicyId": policy_id})).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("agents are enrolled"), "{message}");

    let revoked = admin.delete(app.url(&format!("api/fleet/enrollment_api_keys/{key_id}"))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(revoked.json::<Value>().await.unwrap(), json!({"action": "deleted"}));
    assert_eq!(enroll_with(token).await.status(), StatusCode::UNAUTHORIZED);

    let empty: Value = post("api/fleet/agent_policies", json!({"name": "Empty"})).await.json().await.unwrap();
    let deleted: Value = post("api/fleet/agent_policies/delete", json!({"agentPolicyId": empty["item"]["id"]})).await.json().await.unwrap();
    assert_eq!(deleted["name"], "Empty");
}

#[tokio::test]
async fn bulk_unenroll_by_kuery_reaches_every_matching_agent() {
    let app = spawn_app().await;
    let mut agents = Vec::new();
    for name in ["bulk-1", "bulk-2", "keep-1"] {
        let agent = enroll(&app, name).await;
        assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
        agents.push(agent);
    }
    let platform = app.signed_in("platform").await;
    let response = platform
        .post(app.url("api/fleet/agents/bulk_unenroll"))
        .header("kbn-xsrf", "t")
        .json(&json!({"agents": "local_metadata.host.hostname:bulk-*"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(body["actionId"].is_string(), "{body}");
    for (agent, expected) in agents.iter().zip(["unenrolling", "unenrolling", "online"]) {
        assert_eq!(get_agent(&app, &platform, &agent.id).await["status"], expected);
    }
    let answered: Value = checkin(&app, &agents[0], "0s").await.json().await.unwrap();
    assert_eq!(answered["actions"][0]["type"], "UNENROLL");
    assert_eq!(answered["actions"][0]["data"]["action_id"], body["actionId"]);
    let log: Value = platform.get(app.url(&format!("api/fleet/agents/{}/events", agents[1].id))).send().await.unwrap().json().await.unwrap();
    let requested = log["items"].as_array().unwrap().iter().find(|e| e["kind"] == "unenroll_requested").expect("unenroll in the activity log");
    assert_eq!(requested["actor"], "platform");
    let bad =
        platform.post(app.url("api/fleet/agents/bulk_unenroll")).header("kbn-xsrf", "t").json(&json!({"agents": "host:"})).send().await.unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST).await;
}

/// Reference 003: "lots of identical agents … admins do not know which one
/// is still the active agent". A host that enrolls again is one host: the
/// old agent is replaced, linked both ways, out of the default view and
/// never offline.
#[tokio::test]
async fn a_host_that_enrolls_again_replaces_its_old_agent_linked_both_ways() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let old = enrolled(enroll_host(&app, "jamf-mac-7", json!("machine-7"), None).await).await;
    assert_eq!(checkin(&app, &old, "0s").await.status(), StatusCode::OK);
    let new = enrolled(enroll_host(&app, "jamf-mac-7", json!(" machine-7 "), None).await).await;
    assert_ne!(new.id, old.id, "the policy does not keep agent ids: a new agent");

    let replaced = get_agent(&app, &viewer, &old.id).await;
    assert_eq!(replaced["status"], "replaced");
    assert_eq!(replaced["replaced_by"], new.id);
    assert!(replaced["replaced_at"].is_string());
    let replacing = get_agent(&app, &viewer, &new.id).await;
    assert_eq!(replacing["replaces"], old.id);
    assert_eq!(replacing["host_id"], "machine-7");
    assert_eq!(replacing["status"], "enrolling");
    assert_eq!(event_kinds(&app, &viewer, &old.id).await, ["replaced", "enrolled"]);
    assert_eq!(
        event_messages(&app, &viewer, &old.id).await[0],
        format!("Replaced by agent {}: host jamf-mac-7 enrolled again with the same host id", new.id)
    );
    assert_eq!(event_messages(&app, &viewer, &new.id).await[0], format!("Replaces agent {}, enrolled earlier from the same host", old.id));

    // Shown once by default; the replaced agent only with inactive ones, and never counted offline.
    assert_eq!(listed_ids(&app, &viewer, "").await, [new.id.as_str()]);
    let mut all = listed_ids(&app, &viewer, "showInactive=true").await;
    all.sort();
    let mut both = vec![old.id.clone(), new.id.clone()];
    both.sort();
    assert_eq!(all, both);
    let counts: Value = viewer.get(app.url("api/fleet/agent_status")).send().await.unwrap().json().await.unwrap();
    assert_eq!((counts["results"]["replaced"].clone(), counts["results"]["offline"].clone()), (json!(1), json!(0)));
    assert_eq!(counts["results"]["active"], 1);

    // A third enrollment replaces the second, not the first again.
    let third = enrolled(enroll_host(&app, "jamf-mac-7", json!("machine-7"), None).await).await;
    assert_eq!(get_agent(&app, &viewer, &new.id).await["replaced_by"], third.id);
    assert_eq!(get_agent(&app, &viewer, &old.id).await["replaced_by"], new.id);
    // Hosts without a fingerprint, or with another, are left alone.
    let other = enrolled(enroll_host(&app, "jamf-mac-8", json!("machine-8"), None).await).await;
    let anonymous = enroll(&app, "jamf-mac-8").await;
    assert_eq!(get_agent(&app, &viewer, &other.id).await["replaced_by"], Value::Null);
    assert_eq!(get_agent(&app, &viewer, &anonymous.id).await["host_id"], Value::Null);

    // A fingerprint is a bounded string; a replace token too.
    let message = assert_error(enroll_host(&app, "x", json!(42), None).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "[request body.metadata.local.host.id]: expected a string, got 42");
    let message = assert_error(enroll_host(&app, "x", json!("m".repeat(257)), None).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "[request body.metadata.local.host.id]: at most 256 characters");
    let message = assert_error(enroll_host(&app, "x", json!("m"), Some("")).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "[request body.replace_token]: from 1 to 256 characters");
}

/// The reference's insider case: anyone with an enrollment key and a host's
/// id could mark the real agent replaced. If the replaced agent keeps
/// checking in, both are shown as a conflict, never hidden, until an analyst
/// unenrolls the wrong one.
#[tokio::test]
async fn a_replaced_agent_that_keeps_checking_in_puts_both_in_conflict_until_one_is_unenrolled() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let admin = app.signed_in("admin").await;
    let real = enrolled(enroll_host(&app, "db-primary", json!("machine-db"), None).await).await;
    assert_eq!(checkin(&app, &real, "0s").await.status(), StatusCode::OK);
    let impostor = enrolled(enroll_host(&app, "db-primary", json!("machine-db"), None).await).await;
    assert_eq!(get_agent(&app, &viewer, &real.id).await["status"], "replaced");

    assert_eq!(checkin(&app, &real, "0s").await.status(), StatusCode::OK);
    for (agent, other) in [(&real, &impostor), (&impostor, &real)] {
        let item = get_agent(&app, &viewer, &agent.id).await;
        assert_eq!(item["status"], "conflict", "{item}");
        assert_eq!(item["host_conflict_with"], other.id);
        assert_eq!(event_kinds(&app, &viewer, &agent.id).await[0], "host_conflict");
    }
    assert_eq!(
        event_messages(&app, &viewer, &real.id).await[0],
        format!("Checked in after agent {} replaced it: two agents claim this host", impostor.id)
    );
    let mut shown = listed_ids(&app, &viewer, "kuery=status:conflict").await;
    shown.sort();
    let mut both = vec![real.id.clone(), impostor.id.clone()];
    both.sort();
    assert_eq!(shown, both, "both in the default view");
    // Checking in again changes nothing more.
    assert_eq!(checkin(&app, &real, "0s").await.status(), StatusCode::OK);
    assert_eq!(event_kinds(&app, &viewer, &real.id).await.iter().filter(|k| *k == "host_conflict").count(), 1);

    assert_eq!(checkin(&app, &impostor, "0s").await.status(), StatusCode::OK);
    assert_eq!(get_agent(&app, &viewer, &impostor.id).await["status"], "conflict", "its own check-ins change nothing");
    // The analyst asks the impostor to unenroll: the real agent is alone and in charge again.
    let response =
        admin.post(app.url(&format!("api/fleet/agents/{}/unenroll", impostor.id))).header("kbn-xsrf", "t").json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &real.id).await;
    assert_eq!(
        (item["status"].clone(), item["replaced_by"].clone(), item["host_conflict_with"].clone()),
        (json!("online"), Value::Null, Value::Null)
    );
    assert_eq!(event_kinds(&app, &viewer, &real.id).await[0], "host_conflict_resolved");
    let leaving = get_agent(&app, &viewer, &impostor.id).await;
    assert_eq!((leaving["status"].clone(), leaving["host_conflict_with"].clone()), (json!("unenrolling"), Value::Null));

    // The replacing agent was unenrolled before the old one came back: the host is the old one's again, no conflict.
    let old = enrolled(enroll_host(&app, "kiosk-9", json!("machine-k9"), None).await).await;
    let newer = enrolled(enroll_host(&app, "kiosk-9", json!("machine-k9"), None).await).await;
    let response = admin
        .post(app.url(&format!("api/fleet/agents/{}/unenroll", newer.id)))
        .header("kbn-xsrf", "t")
        .json(&json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(get_agent(&app, &viewer, &old.id).await["status"], "replaced");
    assert_eq!(checkin(&app, &old, "0s").await.status(), StatusCode::OK);
    let item = get_agent(&app, &viewer, &old.id).await;
    assert_eq!(
        (item["status"].clone(), item["replaced_by"].clone(), item["host_conflict_with"].clone()),
        (json!("online"), Value::Null, Value::Null)
    );
    assert!(event_messages(&app, &viewer, &old.id).await[0].ends_with("is unenrolled: the host is this agent's again"));

    // The other way: the analyst asks the replaced one to unenroll. It leaves (unenrolling, not
    // replaced), the new one is alone, and its check-ins until it confirms start no new conflict.
    let stale = enrolled(enroll_host(&app, "kiosk-10", json!("machine-k10"), None).await).await;
    let fresh = enrolled(enroll_host(&app, "kiosk-10", json!("machine-k10"), None).await).await;
    assert_eq!(checkin(&app, &fresh, "0s").await.status(), StatusCode::OK);
    assert_eq!(checkin(&app, &stale, "0s").await.status(), StatusCode::OK);
    assert_eq!(get_agent(&app, &viewer, &fresh.id).await["status"], "conflict");
    let url = app.url(&format!("api/fleet/agents/{}/unenroll", stale.id));
    assert_eq!(admin.post(url).header("kbn-xsrf", "t").json(&json!({})).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(checkin(&app, &stale, "0s").await.status(), StatusCode::OK);
    let leaving = get_agent(&app, &viewer, &stale.id).await;
    assert_eq!((leaving["status"].clone(), leaving["replaced_by"].clone()), (json!("unenrolling"), Value::Null));
    assert_eq!(get_agent(&app, &viewer, &fresh.id).await["status"], "online");
}

/// The reporter's point 2, where the policy allows it: the same agent,
/// proving it with the replace token it enrolled with, keeps its id. Anyone
/// else gets a new agent, and the replacement shows.
#[tokio::test]
async fn the_same_agent_keeps_its_id_only_where_its_policy_allows_and_with_its_token() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let platform = app.signed_in("platform").await;
    let first = enrolled(enroll_host(&app, "build-3", json!("machine-b3"), Some("token-b3")).await).await;
    let second = enrolled(enroll_host(&app, "build-3", json!("machine-b3"), Some("token-b3")).await).await;
    assert_ne!(second.id, first.id, "not allowed by the policy yet");

    let policy = json!({"name": "Endpoints", "namespace": "default", "keep_agent_id_on_reenroll": true});
    let response = platform.put(app.url("api/fleet/agent_policies/demo-endpoints")).header("kbn-xsrf", "t").json(&policy).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["item"]["keep_agent_id_on_reenroll"], true);

    let again = enrolled(enroll_host(&app, "build-3", json!("machine-b3"), Some("token-b3")).await).await;
    assert_eq!(again.id, second.id, "same host, same policy, same token: the id is kept");
    assert_eq!(checkin(&app, &second, "0s").await.status(), StatusCode::UNAUTHORIZED, "the previous key no longer works");
    assert_eq!(checkin(&app, &again, "0s").await.status(), StatusCode::OK);
    assert_eq!(event_kinds(&app, &viewer, &again.id).await, ["reenrolled", "replaced", "enrolled"]);
    assert_eq!(get_agent(&app, &viewer, &again.id).await["status"], "online");

    // Knowing the host id is not enough: a new agent, and the real one is marked replaced.
    let stranger = enrolled(enroll_host(&app, "build-3", json!("machine-b3"), Some("guessed")).await).await;
    assert_ne!(stranger.id, again.id);
    assert_eq!(get_agent(&app, &viewer, &again.id).await["replaced_by"], stranger.id);
}

async fn run_task_soon(app: &TestApp, id: &str) {
    let platform = app.signed_in("platform").await;
    let url = app.url(&format!("internal/task_manager/tasks/{}/_run_soon", id.replace(':', "%3A")));
    assert_eq!(platform.post(url).header("kbn-xsrf", "t").send().await.unwrap().status(), StatusCode::NO_CONTENT);
}

async fn task_result(app: &TestApp, client: &Client, id: &str) -> (i64, String) {
    let health: Value = client.get(app.url("api/task_manager/_health")).send().await.unwrap().json().await.unwrap();
    let task = health["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap_or_default();
    (task["runs"].as_i64().unwrap_or(0), task["last_result"].as_str().unwrap_or_default().to_owned())
}

/// Kibana's open request: inactive agents wiped after a configurable time;
/// and replaced ones too. What the removed agents did stays: their response
/// actions' history (by host name), and a line in the replacing agent's log.
#[tokio::test]
async fn the_cleanup_removes_agents_inactive_or_replaced_for_long_enough_and_keeps_their_history() {
    let options = crate::helpers::Options { extra_args: vec!["--agent-cleanup-after".into(), "7d".into()], ..Default::default() };
    let app = crate::helpers::spawn_app_with(options).await;
    let viewer = app.signed_in("viewer").await;
    let manager = app.signed_in("manager").await;
    let retired = crate::response_actions::endpoint(&app, "retired-laptop", crate::response_actions::ALL_CAPABILITIES).await;
    let isolated = crate::response_actions::sent(&app, &manager, "isolate", json!({"endpoint_ids": [retired.id]})).await;
    let old = enrolled(enroll_host(&app, "reimaged", json!("machine-r"), None).await).await;
    let new = enrolled(enroll_host(&app, "reimaged", json!("machine-r"), None).await).await;
    let just_old = enrolled(enroll_host(&app, "reimaged-today", json!("machine-t"), None).await).await;
    let just_new = enrolled(enroll_host(&app, "reimaged-today", json!("machine-t"), None).await).await;
    let offline = enroll(&app, "on-holiday").await;
    // Arrange the past: silent for 30 days (inactive for 16), replaced 8 days ago, silent 2 days.
    let db = app.db().await;
    let day: i64 = 86_400_000;
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    for (sql, id, at) in [
        ("update agents set enrolled_at = $2, last_checkin = $2 where id = $1", &retired.id, now - 30 * day),
        ("update agents set replaced_at = $2 where id = $1", &old.id, now - 8 * day),
        ("update agents set enrolled_at = $2, last_checkin = $2 where id = $1", &offline.id, now - 2 * day),
    ] {
        sqlx::query(sql).bind(id).bind(at).execute(&db).await.unwrap();
    }

    let (runs, _) = task_result(&app, &viewer, "fleet:cleanup_agents").await;
    run_task_soon(&app, "fleet:cleanup_agents").await;
    eventually("the cleanup ran", || async { task_result(&app, &viewer, "fleet:cleanup_agents").await.0 > runs }).await;
    assert_eq!(task_result(&app, &viewer, "fleet:cleanup_agents").await.1, "removed 2 agents (1 inactive, 1 replaced) gone for longer than 7days");
    for (agent, kept) in [(&retired, false), (&old, false), (&new, true), (&just_old, true), (&just_new, true), (&offline, true)] {
        let status = viewer.get(app.url(&format!("api/fleet/agents/{}", agent.id))).send().await.unwrap().status();
        assert_eq!(status, if kept { StatusCode::OK } else { StatusCode::NOT_FOUND }, "{}", agent.id);
    }
    let item = get_agent(&app, &viewer, &new.id).await;
    assert_eq!(item["replaces"], Value::Null, "no link to an agent that is gone");
    assert_eq!(event_kinds(&app, &viewer, &new.id).await[0], "replaced_agent_removed");
    assert_eq!(get_agent(&app, &viewer, &just_old.id).await["status"], "replaced");
    // The response action on the removed agent is still in the history, with its host's name.
    let action = crate::response_actions::details(&app, &manager, isolated["id"].as_str().unwrap()).await;
    assert_eq!(action["hosts"][&retired.id]["name"], "retired-laptop");
}

/// Off unless configured: nothing is removed, and the Tasks page says why.
#[tokio::test]
async fn the_cleanup_is_off_by_default() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "forgotten").await;
    sqlx::query("update agents set enrolled_at = 1 where id = $1").bind(&agent.id).execute(&app.db().await).await.unwrap();
    let (runs, _) = task_result(&app, &viewer, "fleet:cleanup_agents").await;
    run_task_soon(&app, "fleet:cleanup_agents").await;
    eventually("the cleanup ran", || async { task_result(&app, &viewer, "fleet:cleanup_agents").await.0 > runs }).await;
    assert_eq!(task_result(&app, &viewer, "fleet:cleanup_agents").await.1, "off: agent_cleanup_after is not set, so agents are kept");
    assert_eq!(get_agent(&app, &viewer, &agent.id).await["status"], "inactive");
}

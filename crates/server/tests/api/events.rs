//! The browser's event stream (`GET /internal/warden/events`): what a user
//! receives, replays with `Last-Event-ID`, limits, shutdown, and events
//! crossing nodes on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use warden_core::paths::EVENTS;

use crate::fleet::{audit, checkin, enroll};
use crate::helpers::{DEMO_PASSWORD, Options, TestApp, assert_error, fresh_database, spawn_app, spawn_app_with, warden_command};

/// How long any one expected event may take.
const WAIT: Duration = Duration::from_secs(30);

/// One server-sent event as the browser sees it.
#[derive(Debug, Clone)]
struct Message {
    id: Option<String>,
    event: String,
    data: String,
}

impl Message {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|err| panic!("data of {self:?} is not JSON: {err}"))
    }

    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_else(|| panic!("{self:?} has no id"))
    }

    /// The node part of `<node>:<sequence>`.
    fn node(&self) -> &str {
        self.id().rsplit_once(':').expect("<node>:<sequence>").0
    }
}

/// A reader of an open stream, parsing `id:`/`event:`/`data:` lines itself.
struct EventStream {
    response: Response,
    buffer: String,
}

impl EventStream {
    /// The next event that carries data (comments and a bare `retry:` are
    /// skipped), `None` when the stream ends, within `WAIT`.
    async fn next(&mut self) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = parse(&block) {
                    return Some(message);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.expect("an event within 30 s");
            match chunk.expect("reading the stream") {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }

    /// The next event of kind `event`, skipping others (each within `WAIT`).
    async fn expect(&mut self, event: &str, matches: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "no matching `{event}` event within 30 s");
            let message = self.next().await.unwrap_or_else(|| panic!("the stream ended before a `{event}` event"));
            if message.event == event && matches(&message) {
                return message;
            }
        }
    }

    /// The `agent_event` about `agent_id`.
    async fn agent_event(&mut self, agent_id: &str) -> Message {
        self.expect("agent_event", |m| m.json()["agent_id"] == agent_id).await
    }
}

fn parse(block: &str) -> Option<Message> {
    let (mut id, mut event, mut data) = (None, "message".to_owned(), None::<String>);
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = value.to_owned(),
            "data" => data = Some(data.map_or_else(|| value.to_owned(), |d| format!("{d}\n{value}"))),
            _ => {}
        }
    }
    Some(Message { id, event, data: data? })
}

async fn request(url: &str, client: &Client, last_event_id: Option<&str>) -> Response {
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("event stream request")
}

/// Opens the stream as `client`, expecting 200.
async fn open(app: &TestApp, client: &Client, last_event_id: Option<&str>) -> EventStream {
    let response = request(&app.url(EVENTS), client, last_event_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    EventStream { response, buffer: String::new() }
}

/// Opens a fresh stream and reads its `ready`.
async fn open_ready(app: &TestApp, client: &Client) -> (EventStream, Message) {
    let mut stream = open(app, client, None).await;
    let ready = stream.next().await.expect("a first event");
    assert_eq!(ready.event, "ready", "{ready:?}");
    (stream, ready)
}

#[tokio::test]
async fn a_viewer_receives_fleet_events_as_they_happen() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let mut stream = open(&app, &viewer, None).await;
    let headers = stream.response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");

    let ready = stream.next().await.expect("ready");
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.json(), json!({}));
    let node = ready.node().to_owned();
    let start: u64 = ready.id().rsplit_once(':').and_then(|(_, n)| n.parse().ok()).expect("a sequence");

    let agent = enroll(&app, "sse-host").await;
    let message = stream.agent_event(&agent.id).await;
    let line = message.json();
    assert_eq!(line["kind"], "enrolled");
    assert!(line["id"].is_string() && line["message"].is_string() && line["created_at"].is_string(), "{line}");
    assert_eq!(message.node(), node);
    let sequence: u64 = message.id().rsplit_once(':').and_then(|(_, n)| n.parse().ok()).expect("a sequence");
    assert!(sequence > start, "{message:?} after {ready:?}");
}

/// What the Fleet view, the Tasks page and the Connectors page refresh on: an
/// agent whose check-in changed what an analyst sees, a task that starts,
/// finishes or is asked to run now (every signed-in user may read task
/// health), a connector saved or run, and a case opened.
#[tokio::test]
async fn check_ins_and_task_runs_are_pushed() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let (mut stream, _) = open_ready(&app, &viewer).await;
    let agent = enroll(&app, "changed-host").await;
    assert_eq!(checkin(&app, &agent, "0s").await.status(), StatusCode::OK);
    let changed = stream.expect("agent_changed", |m| m.json()["agent_id"] == agent.id.as_str()).await;
    assert_eq!(changed.json(), json!({"agent_id": agent.id}));

    let platform = app.signed_in("platform").await;
    let response = platform.post(app.url("internal/task_manager/tasks/sessions_cleanup/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Asked to run, started, finished: the page hears each.
    for _ in 0..3 {
        stream.expect("task_changed", |m| m.json() == json!({"id": "sessions_cleanup"})).await;
    }

    // A connector saved by someone else reaches the viewer's Connectors page.
    let admin = app.signed_in("admin").await;
    let body = json!({"name": "pushed", "connector_type_id": ".server-log"});
    let response = admin.post(app.url("api/actions/connector/pushed-log")).header("kbn-xsrf", "t").json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    stream.expect("connector_changed", |m| m.json() == json!({"id": "pushed-log"})).await;

    // A case opened by someone else reaches every reader of cases.
    let body = json!({"title": "pushed", "description": "d", "tags": [], "owner": "securitySolution", "settings": {"syncAlerts": false},
        "connector": {"id": "none", "name": "none", "type": ".none", "fields": null}});
    let response = admin.post(app.url(warden_core::paths::CASES)).header("kbn-xsrf", "t").json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.json::<Value>().await.unwrap()["id"].clone();
    stream.expect("case_changed", |m| m.json() == json!({"id": id})).await;
}

/// A Detached Endpoint's repeated report is not in the activity log (it
/// would flood it), but the Fleet view's "last heard from" moves live.
#[tokio::test]
async fn a_detached_endpoint_heard_from_again_is_pushed() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "kiosk-14").await;
    assert_eq!(audit(&app, &agent, "orphaned").await.status(), StatusCode::OK);
    let (mut stream, _) = open_ready(&app, &viewer).await;
    assert_eq!(audit(&app, &agent, "orphaned").await.status(), StatusCode::CONFLICT);
    let changed = stream.expect("agent_changed", |m| m.json()["agent_id"] == agent.id).await;
    assert_eq!(changed.json(), json!({"agent_id": agent.id}));
}

#[tokio::test]
async fn the_stream_needs_a_signed_in_user() {
    let app = spawn_app().await;
    let response = request(&app.url(EVENTS), &app.client(), None).await;
    assert_error(response, StatusCode::UNAUTHORIZED).await;
    let response = app.client().get(app.url(EVENTS)).basic_auth("viewer", Some("wrong")).send().await.expect("request");
    assert_error(response, StatusCode::UNAUTHORIZED).await;
    // Scripts may listen too.
    let response = app.client().get(app.url(EVENTS)).basic_auth("viewer", Some(DEMO_PASSWORD)).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn last_event_id_replays_the_missed_events() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    // A tab that stays connected shows when the events have happened.
    let (mut watcher, ready) = open_ready(&app, &viewer).await;
    let first = enroll(&app, "replay-1").await;
    let second = enroll(&app, "replay-2").await;
    let seen_first = watcher.agent_event(&first.id).await;
    let seen_second = watcher.agent_event(&second.id).await;

    // A tab that dropped right after `ready` gets both, with the same ids.
    let mut again = open(&app, &viewer, Some(ready.id())).await;
    // Background tasks may have started or finished meanwhile: those are not what this is about.
    let mut replayed = again.next().await.expect("a replayed event");
    while replayed.event == "task_changed" {
        replayed = again.next().await.expect("a replayed event");
    }
    assert_eq!(replayed.event, "agent_event", "a replay starts with the missed events, not {replayed:?}");
    let mut replayed_ids = vec![replayed.id().to_owned()];
    let mut agents = vec![replayed.json()["agent_id"].clone()];
    while agents.len() < 2 {
        let next = again.expect("agent_event", |_| true).await;
        replayed_ids.push(next.id().to_owned());
        agents.push(next.json()["agent_id"].clone());
    }
    assert_eq!(agents, [json!(first.id), json!(second.id)]);
    assert_eq!(replayed_ids, [seen_first.id(), seen_second.id()]);

    // One that saw the first gets only the second.
    let mut again = open(&app, &viewer, Some(seen_first.id())).await;
    let mut replayed = again.next().await.expect("a replayed event");
    while replayed.event == "task_changed" {
        replayed = again.next().await.expect("a replayed event");
    }
    assert_eq!((replayed.event.as_str(), replayed.id()), ("agent_event", seen_second.id()));
}

#[tokio::test]
async fn an_id_from_another_node_or_unreadable_gets_reset() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let (_stream, ready) = open_ready(&app, &viewer).await;
    let node = ready.node().to_owned();
    for id in ["0123456789abcdef0123456789abcdef:1".to_owned(), "not an id".to_owned(), format!("{node}:999999")] {
        let mut stream = open(&app, &viewer, Some(&id)).await;
        let first = stream.next().await.expect("a first event");
        assert_eq!(first.event, "reset", "Last-Event-ID {id:?}: {first:?}");
        assert_eq!(first.node(), node, "a reset carries this node's position");
        // It goes on live from there.
        let agent = enroll(&app, "after-reset").await;
        stream.agent_event(&agent.id).await;
    }
}

#[tokio::test]
async fn streams_per_user_are_bounded() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let mut open_streams = Vec::new();
    for _ in 0..20 {
        open_streams.push(open_ready(&app, &viewer).await.0);
    }
    let response = request(&app.url(EVENTS), &viewer, None).await;
    let message = assert_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(message.contains("event streams"), "{message}");
    // Another user is not affected.
    let t1 = app.signed_in("t1").await;
    open_ready(&app, &t1).await;
    // Closing one frees its place.
    open_streams.pop();
    crate::helpers::eventually("a closed stream frees its place", || async {
        let response = request(&app.url(EVENTS), &viewer, None).await;
        response.status() == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn the_stream_works_under_a_base_path() {
    let app = spawn_app_with(Options { public_base_path: Some("/warden"), ..Options::default() }).await;
    assert!(app.url(EVENTS).ends_with("/warden/internal/warden/events"));
    let viewer = app.signed_in("viewer").await;
    let (mut stream, _) = open_ready(&app, &viewer).await;
    let agent = enroll(&app, "proxied").await;
    stream.agent_event(&agent.id).await;
}

/// SIGTERM with a stream open: the stream ends and warden exits (axum's
/// graceful shutdown waits for open responses, so the stream must end).
#[tokio::test]
async fn sigterm_ends_open_streams_and_warden_exits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(dir.path()).await;
    let mut process = warden_command(&database_url)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--spa-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warden");
    let stdout = process.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Warden is serving ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("warden started");
    let client = Client::builder().cookie_store(true).build().expect("client");
    let login = client
        .post(format!("{base}internal/security/login"))
        .header("kbn-xsrf", "test")
        .json(&json!({"username": "viewer", "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(login.status(), StatusCode::OK);
    let response = request(&format!("{base}{EVENTS}"), &client, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = EventStream { response, buffer: String::new() };
    assert_eq!(stream.next().await.expect("ready").event, "ready");

    let killed = std::process::Command::new("kill").args(["-TERM", &process.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    // Events already on their way (a background task's run) may still
    // arrive; then the stream ends, each read within `WAIT`.
    while let Some(late) = stream.next().await {
        assert_ne!(late.event, "ready", "a second ready: the stream started again instead of ending");
    }
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = process.try_wait().expect("wait for warden") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = process.kill();
            panic!("warden did not exit within 30 s of SIGTERM with a stream open");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

fn on_postgres() -> bool {
    let set = std::env::var("TEST_POSTGRES_URL").is_ok();
    if !set {
        eprintln!("skipped: needs TEST_POSTGRES_URL (several nodes share one PostgreSQL database)");
    }
    set
}

#[tokio::test]
async fn events_published_on_one_node_reach_streams_on_another() {
    if !on_postgres() {
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_app_with(Options { database_url: Some(node_a.database_url.clone()), ..Options::default() }).await;
    let viewer_a = node_a.signed_in("viewer").await;
    let viewer_b = node_b.signed_in("viewer").await;
    let (mut on_a, ready_a) = open_ready(&node_a, &viewer_a).await;
    let (mut on_b, ready_b) = open_ready(&node_b, &viewer_b).await;
    assert_ne!(ready_a.node(), ready_b.node());

    let agent = enroll(&node_a, "multi-node").await;
    let there = on_b.agent_event(&agent.id).await;
    assert_eq!(there.node(), ready_b.node(), "node B numbers what it streams");
    assert_eq!(there.json()["kind"], "enrolled");
    let here = on_a.agent_event(&agent.id).await;
    assert_eq!(here.json(), there.json());

    // And back, once: A skips its own NOTIFY, so the next event on A is B's.
    let other = enroll(&node_b, "multi-node-2").await;
    let next = on_a.expect("agent_event", |_| true).await;
    assert_eq!(next.json()["agent_id"], json!(other.id), "no duplicate of A's own event on A");
}

#[tokio::test]
async fn a_lost_listener_reconnects_and_resets_streams() {
    if !on_postgres() {
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_app_with(Options { database_url: Some(node_a.database_url.clone()), ..Options::default() }).await;
    let viewer = node_b.signed_in("viewer").await;
    let (mut on_b, _) = open_ready(&node_b, &viewer).await;
    let warmup = enroll(&node_a, "before").await;
    on_b.agent_event(&warmup.id).await;

    // Cut every node's LISTEN connection, as a database restart would.
    let db = node_a.db().await;
    let cut: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = current_database() and query like 'LISTEN%'",
    )
    .fetch_one(&db)
    .await
    .expect("terminate the listeners");
    assert_eq!(cut, 2, "one listener per node");

    // Node B listens again, then tells its streams to refetch.
    on_b.expect("reset", |_| true).await;
    let agent = enroll(&node_a, "after").await;
    on_b.agent_event(&agent.id).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_stream() {
    let app = spawn_app().await;
    let doc: Value = app.client().get(app.url("api/openapi.json")).send().await.expect("request").json().await.expect("JSON");
    let get = &doc["paths"]["/internal/warden/events"]["get"];
    assert!(get["responses"]["200"]["content"].get("text/event-stream").is_some(), "{get}");
    for status in ["401", "429"] {
        assert!(get["responses"].get(status).is_some(), "{status} missing: {get}");
    }
    assert_eq!(get["parameters"][0]["name"], "Last-Event-ID", "{get}");
}

/// An unenroll asked on node A reaches the agent whose check-in is held on
/// node B through the bus (no table poll): the held check-in answers with the
/// action long before its 60 s poll timeout would end it empty.
#[tokio::test]
async fn an_action_queued_on_one_node_wakes_a_check_in_held_on_another() {
    if !on_postgres() {
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_app_with(Options { database_url: Some(node_a.database_url.clone()), ..Options::default() }).await;
    let agent = enroll(&node_a, "held-on-b").await;
    let checkin = node_b
        .client()
        .post(node_b.url(&warden_core::paths::agent_checkin(&agent.id)))
        .header("Authorization", format!("ApiKey {}", agent.key))
        .json(&json!({"status": "online", "message": "ok", "poll_timeout": "60s"}))
        .send();
    let held = tokio::spawn(checkin);
    crate::helpers::eventually("node B holds the check-in", || async {
        let status: Value = node_b.client().get(node_b.url("api/status")).send().await.unwrap().json().await.unwrap();
        status["waiting_checkins"].as_u64() == Some(1)
    })
    .await;
    let admin = node_a.signed_in("admin").await;
    let response =
        admin.post(node_a.url(&warden_core::paths::agent_unenroll(&agent.id))).header("kbn-xsrf", "t").json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = held.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["actions"][0]["type"], "UNENROLL", "{answer}");
    assert!(answer.get("ack_token").is_none(), "no ack_token: Fleet Server's schema says a string, never null");
}

/// Two nodes on one PostgreSQL database: an action created on A reaches the
/// agent held on B at once, and the history stream on B hears it created and
/// completed (the agent answers through B, a viewer watches A).
#[tokio::test]
async fn response_actions_travel_between_nodes_live() {
    if !on_postgres() {
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_app_with(Options { database_url: Some(node_a.database_url.clone()), ..Options::default() }).await;
    let agent = crate::response_actions::endpoint(&node_a, "two-nodes", crate::response_actions::ALL_CAPABILITIES).await;
    let viewer_a = node_a.signed_in("viewer").await;
    let viewer_b = node_b.signed_in("viewer").await;
    let (mut on_a, _) = open_ready(&node_a, &viewer_a).await;
    let (mut on_b, _) = open_ready(&node_b, &viewer_b).await;
    let held = {
        let (node_b, agent) = (node_b.url(&warden_core::paths::agent_checkin(&agent.id)), format!("ApiKey {}", agent.key));
        tokio::spawn(async move {
            Client::new().post(node_b).header("Authorization", agent).json(&json!({"status": "online", "poll_timeout": "60s"})).send().await
        })
    };
    crate::helpers::eventually("node B holds the check-in", || async {
        let status: Value = node_b.client().get(node_b.url("api/status")).send().await.unwrap().json().await.unwrap();
        status["waiting_checkins"].as_u64() == Some(1)
    })
    .await;
    let manager = node_a.signed_in("manager").await;
    let action = crate::response_actions::sent(&node_a, &manager, "isolate", json!({"endpoint_ids": [agent.id]})).await;
    let id = action["id"].as_str().unwrap().to_owned();
    let created = on_b.expect("response_action_changed", |m| m.json()["id"] == id).await;
    assert_eq!(created.json()["agent_ids"], json!([agent.id]));
    let answer: Value = held.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["actions"][0]["id"], id, "{answer}");
    // The agent answers through B; A's stream hears it.
    on_a.expect("response_action_changed", |m| m.json()["id"] == id).await;
    crate::response_actions::answer(&node_b, &agent, &id, json!({"output": {"type": "json", "content": {"code": "ok"}}})).await;
    on_a.expect("response_action_changed", |m| m.json()["id"] == id).await;
    assert_eq!(crate::response_actions::details(&node_a, &manager, &id).await["status"], "successful");
}

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use warden_core::fleet_api::{AckEvent, AgentAction};
use warden_core::response_actions::EndpointCapability;

use super::*;

const FAR: &str = "2999-01-01T00:00:00.000Z";

fn action(id: &str, command: &str, parameters: Value, created_at: &str) -> AgentAction {
    serde_json::from_value(json!({
        "type": "INPUT_ACTION",
        "input_type": "endpoint",
        "id": id,
        "agent_id": "agent-1",
        "created_at": created_at,
        "data": { "command": command, "parameters": parameters, "expiration": FAR },
    }))
    .unwrap()
}

struct Harness {
    responder: Arc<Responder>,
    acks: mpsc::UnboundedReceiver<AckEvent>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(capabilities: Vec<EndpointCapability>) -> Harness {
        Harness::with_fleet(capabilities, "http://127.0.0.1:9")
    }

    fn with_fleet(capabilities: Vec<EndpointCapability>, url: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("agent.json");
        std::fs::write(&state_file, r#"{"agent_id": "agent-1"}"#).unwrap();
        let fleet = Fleet { http: reqwest::Client::new(), url: url.into(), agent_id: "agent-1".into(), api_key: "key-1".into() };
        let settings = Settings { capabilities, sandbox: dir.path().join("sandbox"), state_file: Some(state_file), isolated: false };
        let (responder, acks) = Responder::new(fleet, settings);
        Harness { responder, acks, _dir: dir }
    }

    fn all() -> Harness {
        Harness::new(EndpointCapability::ALL.to_vec())
    }

    /// The next ack (waits for it: a task may still be running).
    async fn ack(&mut self) -> (String, EndpointActionResult) {
        let event = tokio::time::timeout(Duration::from_secs(20), self.acks.recv()).await.unwrap().unwrap();
        assert_eq!(event.event_type.as_deref(), Some("ACTION_RESULT"));
        assert_eq!(event.subtype.as_deref(), Some("ACKNOWLEDGED"));
        assert_eq!(event.action_input_type.as_deref(), Some("endpoint"));
        assert_eq!(event.agent_id.as_deref(), Some("agent-1"));
        let result = event.action_response.unwrap();
        assert_eq!(event.error, result.error);
        (event.action_id.to_string(), result)
    }

    fn content(result: &EndpointActionResult) -> &Value {
        &result.output.as_ref().unwrap().content
    }
}

#[tokio::test]
async fn a_cancel_stops_a_running_execute_and_both_are_acked() {
    let mut h = Harness::all();
    h.responder.handle(vec![action("e1", "execute", json!({"command": "sleep 30", "timeout": 60}), "2026-01-01T00:00:00Z")]);
    h.responder.handle(vec![action("c1", "cancel", json!({"id": "e1"}), "2026-01-01T00:00:01Z")]);

    let (id, result) = h.ack().await;
    assert_eq!(id, "c1");
    assert_eq!(result.error, None);
    assert_eq!(Harness::content(&result), &json!({"code": "ra_cancel_success", "cancelled_action_id": "e1"}));

    let (id, result) = h.ack().await;
    assert_eq!(id, "e1");
    assert_eq!(result.error.as_deref(), Some(CANCELLED));
    assert_eq!(result.canceled_by_action.as_deref(), Some("c1"));
    assert!(h.responder.processes().list().is_empty(), "the child went with its action");
}

#[tokio::test]
async fn a_newer_cancel_in_the_batch_stops_an_older_cancel_and_the_original_runs() {
    let mut h = Harness::all();
    h.responder.handle(vec![
        action("t", "execute", json!({"command": "echo hi", "timeout": 60}), "2026-01-01T00:00:00Z"),
        action("c1", "cancel", json!({"id": "t"}), "2026-01-01T00:00:01Z"),
        action("c2", "cancel", json!({"id": "c1"}), "2026-01-01T00:00:02Z"),
    ]);
    let (id, result) = h.ack().await;
    assert_eq!((id.as_str(), result.error), ("c2", None));
    let (id, result) = h.ack().await;
    assert_eq!(id, "c1");
    assert_eq!((result.error.as_deref(), result.canceled_by_action.as_deref()), (Some(CANCELLED), Some("c2")));
    let (id, result) = h.ack().await;
    assert_eq!(id, "t");
    assert_eq!(result.error, None);
    let content = Harness::content(&result);
    assert_eq!(content["stdout"], "hi\n");
    assert_eq!(content["shell_code"], 0);
    assert_eq!(content["shell"], "none");
    assert_eq!(content["code"], "ra_execute_success_done");
}

#[tokio::test]
async fn an_action_cancelled_before_it_arrives_never_runs() {
    let mut h = Harness::all();
    h.responder.handle(vec![action("c", "cancel", json!({"id": "iso"}), "2026-01-01T00:00:01Z")]);
    assert_eq!(h.ack().await.1.error, None);
    h.responder.handle(vec![action("iso", "isolate", json!({}), "2026-01-01T00:00:00Z")]);
    let (id, result) = h.ack().await;
    assert_eq!((id.as_str(), result.canceled_by_action.as_deref(), result.error.as_deref()), ("iso", Some("c"), Some(CANCELLED)));
    assert!(!h.responder.endpoint_metadata().isolated);
}

#[tokio::test]
async fn a_finished_action_cannot_be_cancelled_and_never_runs_twice() {
    let mut h = Harness::all();
    h.responder.handle(vec![action("iso", "isolate", json!({}), "2026-01-01T00:00:00Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(Harness::content(&result), &json!({"code": "ra_isolate_success"}));
    assert!(h.responder.endpoint_metadata().isolated);
    h.responder.settled("iso", &AckOutcome::Recorded);

    // Delivered again: nothing runs, nothing is acked.
    h.responder.handle(vec![action("iso", "isolate", json!({}), "2026-01-01T00:00:00Z")]);
    assert!(h.acks.try_recv().is_err());
    assert!(h.responder.ledger().running.is_empty());

    h.responder.handle(vec![action("c", "cancel", json!({"id": "iso"}), "2026-01-01T00:00:01Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(result.error.as_deref(), Some("Action iso had already completed on this host"));
    // Its ack was never delivered: a redelivery sends the same ack again.
    h.responder.settled("c", &AckOutcome::Undelivered("down".into()));
    h.responder.handle(vec![action("c", "cancel", json!({"id": "iso"}), "2026-01-01T00:00:01Z")]);
    let (id, again) = h.ack().await;
    assert_eq!((id.as_str(), again), ("c", result));
}

#[tokio::test]
async fn isolation_is_saved_in_the_state_file() {
    let mut h = Harness::all();
    let state_file = h.responder.state_file.clone().unwrap();
    h.responder.handle(vec![action("i", "isolate", json!({}), "2026-01-01T00:00:00Z")]);
    h.ack().await;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(saved, json!({"agent_id": "agent-1", "isolated": true}));
    h.responder.handle(vec![action("u", "unisolate", json!({}), "2026-01-01T00:00:01Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(Harness::content(&result), &json!({"code": "ra_unisolate_success"}));
    assert!(!h.responder.endpoint_metadata().isolated);
}

#[tokio::test]
async fn refusals_expired_unsupported_unknown() {
    let mut h = Harness::new(vec![EndpointCapability::Isolation, EndpointCapability::Execute]);
    assert_eq!(h.responder.endpoint_metadata().capabilities, vec!["isolation", "execute"]);
    let mut expired = action("x", "isolate", json!({}), "2020-01-01T00:00:00Z");
    expired.data["expiration"] = json!("2020-01-02T00:00:00.000Z");
    h.responder.handle(vec![
        expired,
        action("c", "cancel", json!({"id": "x"}), "2020-01-01T00:00:00Z"),
        action("m", "memory-dump", json!({}), "2020-01-01T00:00:00Z"),
    ]);
    let mut errors = BTreeMap::new();
    for _ in 0..3 {
        let (id, result) = h.ack().await;
        errors.insert(id, result.error.unwrap());
    }
    assert_eq!(errors["x"], "The action expired before the agent received it");
    assert_eq!(errors["c"], "The agent does not support cancel");
    assert_eq!(errors["m"], "The agent does not support memory-dump");
}

#[tokio::test]
async fn processes_are_listed_killed_and_refused() {
    let mut h = Harness::all();
    h.responder.processes().spawn_decoy().unwrap();
    h.responder.handle(vec![action("p", "running-processes", json!({}), "2026-01-01T00:00:00Z")]);
    let (_, result) = h.ack().await;
    let content = Harness::content(&result);
    assert_eq!(content["code"], "ra_running-processes_success_done");
    let pid = content["entries"][0]["pid"].as_u64().unwrap();
    assert_eq!(content["entries"][0]["entity_id"], format!("agent-1-{pid}"));
    assert_eq!(content["entries"][0]["command"], "sleep 86400");

    h.responder.handle(vec![action("k0", "kill-process", json!({"pid": 1}), "2026-01-01T00:00:00Z")]);
    assert_eq!(h.ack().await.1.error.as_deref(), Some("Process 1 was not found or was not started by this agent"));
    h.responder.handle(vec![action("s", "suspend-process", json!({"entity_id": format!("agent-1-{pid}")}), "2026-01-01T00:00:00Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(Harness::content(&result)["code"], "ra_suspend-process_success");
    h.responder.handle(vec![action("k", "kill-process", json!({"pid": pid}), "2026-01-01T00:00:00Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(
        Harness::content(&result),
        &json!({"code": "ra_kill-process_success", "command": "sleep 86400", "pid": pid, "entity_id": format!("agent-1-{pid}")})
    );
}

#[tokio::test]
async fn execute_refuses_what_is_not_allowed_and_scan_counts() {
    let mut h = Harness::all();
    let root = h.responder.sandbox().root().unwrap().to_path_buf();
    std::fs::create_dir_all(root.join("d/e")).unwrap();
    for name in ["a", "d/b", "d/e/c"] {
        std::fs::write(root.join(name), "x").unwrap();
    }
    h.responder.handle(vec![
        action("x1", "execute", json!({"command": "cat /etc/passwd", "timeout": 5}), "2026-01-01T00:00:00Z"),
        action("x2", "execute", json!({"command": "ls d", "timeout": 5}), "2026-01-01T00:00:00Z"),
        action("s1", "scan", json!({"path": "d"}), "2026-01-01T00:00:00Z"),
        action("s2", "scan", json!({"path": "../"}), "2026-01-01T00:00:00Z"),
        action("g", "get-file", json!({"path": "/etc/hostname"}), "2026-01-01T00:00:00Z"),
    ]);
    let mut results = BTreeMap::new();
    for _ in 0..5 {
        let (id, result) = h.ack().await;
        results.insert(id, result);
    }
    assert_eq!(results["x1"].error.as_deref(), Some("Path /etc/passwd is outside the agent's sandbox"));
    assert_eq!(Harness::content(&results["x2"])["stdout"], "b\ne\n");
    assert_eq!(Harness::content(&results["x2"])["cwd"], root.display().to_string());
    assert_eq!(Harness::content(&results["s1"])["files_scanned"], 2);
    assert_eq!(results["s2"].error.as_deref(), Some("Path ../ is outside the agent's sandbox"));
    assert_eq!(results["g"].error.as_deref(), Some("Path /etc/hostname is outside the agent's sandbox"));
}

/// Just enough of Fleet Server's file routes, checking what the agent sends.
#[derive(Default)]
struct FakeFleet {
    begun: Option<Value>,
    chunks: BTreeMap<usize, Vec<u8>>,
    digests: BTreeMap<usize, String>,
    transit: Option<String>,
    delivered: Vec<u8>,
}

type Shared = Arc<std::sync::Mutex<FakeFleet>>;

async fn fake_fleet() -> (String, Shared) {
    use axum::routing::{get, post, put};
    let shared: Shared = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/fleet/uploads",
            post(|State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                assert_eq!(headers["authorization"], "ApiKey key-1");
                s.lock().unwrap().begun = Some(body);
                axum::Json(json!({"upload_id": "up-1", "chunk_size": 100}))
            }),
        )
        .route(
            "/api/fleet/uploads/{id}/{n}",
            put(|State(s): State<Shared>, UrlPath((id, n)): UrlPath<(String, usize)>, headers: HeaderMap, body: axum::body::Bytes| async move {
                assert_eq!(id, "up-1");
                let digest = headers["x-chunk-sha2"].to_str().unwrap().to_owned();
                assert_eq!(digest, files::sha256_hex(&body));
                let mut s = s.lock().unwrap();
                s.chunks.insert(n, body.to_vec());
                s.digests.insert(n, digest);
                axum::Json(json!({}))
            }),
        )
        .route(
            "/api/fleet/uploads/{id}",
            post(|State(s): State<Shared>, axum::Json(body): axum::Json<Value>| async move {
                s.lock().unwrap().transit = body["transithash"]["sha256"].as_str().map(String::from);
                axum::Json(json!({"status": "ok"}))
            }),
        )
        .route(
            "/api/fleet/file/{id}",
            get(|State(s): State<Shared>, UrlPath(id): UrlPath<String>| async move {
                assert_eq!(id, "file-1");
                s.lock().unwrap().delivered.clone()
            }),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

#[tokio::test]
async fn get_file_uploads_a_locked_zip_in_chunks() {
    let (url, fleet) = fake_fleet().await;
    let mut h = Harness::with_fleet(EndpointCapability::ALL.to_vec(), &url);
    let root = h.responder.sandbox().root().unwrap().to_path_buf();
    let contents: Vec<u8> = (0..450u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("evidence.bin"), &contents).unwrap();
    h.responder.handle(vec![action("gf", "get-file", json!({"path": "evidence.bin"}), "2026-01-01T00:00:00Z")]);
    let (_, result) = h.ack().await;
    assert_eq!(result.error, None);
    let content = Harness::content(&result).clone();

    let fleet = fleet.lock().unwrap();
    let zip: Vec<u8> = fleet.chunks.values().flatten().copied().collect();
    assert_eq!(fleet.chunks.len(), zip.len().div_ceil(100));
    let begun = fleet.begun.clone().unwrap();
    assert_eq!(
        begun,
        json!({
            "file": {"name": "upload.zip", "size": zip.len(), "mime_type": "application/zip", "hash": {"sha256": files::sha256_hex(&zip)}},
            "action_id": "gf", "agent_id": "agent-1", "src": "endpoint",
        })
    );
    assert_eq!(fleet.transit, Some(files::transit_hash(fleet.digests.values().map(String::as_str)).unwrap()));
    assert_eq!(content["code"], "ra_get-file_success_done");
    assert_eq!(content["zip_size"], zip.len());
    assert_eq!(
        content["contents"],
        json!([{"path": root.join("evidence.bin").display().to_string(), "sha256": files::sha256_hex(&contents), "size": 450, "file_name": "evidence.bin", "type": "file"}])
    );
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name_decrypt("evidence.bin", b"elastic").unwrap(), &mut read).unwrap();
    assert_eq!(read, contents);
}

#[tokio::test]
async fn upload_and_runscript_fetch_checked_files() {
    let (url, fleet) = fake_fleet().await;
    let mut h = Harness::with_fleet(EndpointCapability::ALL.to_vec(), &url);
    let root = h.responder.sandbox().root().unwrap().to_path_buf();
    let script = b"echo \"args: $1 $2\"; pwd; echo oops >&2; exit 3\n".to_vec();
    fleet.lock().unwrap().delivered = script.clone();
    let sha = files::sha256_hex(&script);
    let upload = |id: &str, overwrite: bool, sha: &str| {
        action(
            id,
            "upload",
            json!({"file_id": "file-1", "file_name": "tool.sh", "file_sha256": sha, "file_size": script.len(), "overwrite": overwrite}),
            "2026-01-01T00:00:00Z",
        )
    };
    h.responder.handle(vec![upload("u1", false, &sha)]);
    let (_, result) = h.ack().await;
    assert_eq!(result.error, None);
    assert_eq!(Harness::content(&result)["code"], "ra_upload_file-success");
    assert_eq!(Harness::content(&result)["path"], root.join("tool.sh").display().to_string());
    assert_eq!(std::fs::read(root.join("tool.sh")).unwrap(), script);

    h.responder.handle(vec![upload("u2", false, &sha)]);
    assert_eq!(h.ack().await.1.error.as_deref(), Some("File tool.sh already exists"));
    h.responder.handle(vec![upload("u3", true, &"0".repeat(64))]);
    assert!(h.ack().await.1.error.unwrap().contains("SHA-256"));

    h.responder.handle(vec![action(
        "r",
        "runscript",
        json!({"scriptId": "s-1", "scriptInput": "one 'two words'", "timeout": 30, "file_id": "file-1", "file_name": "tool.sh", "file_sha256": sha}),
        "2026-01-01T00:00:00Z",
    )]);
    let (_, result) = h.ack().await;
    assert_eq!(result.error, None);
    assert_eq!(
        Harness::content(&result),
        &json!({
            "code": "ra_runscript_success_done",
            "stdout": format!("args: one two words\n{}\n", root.display()),
            "stderr": "oops\n",
            "stdout_truncated": false,
            "stderr_truncated": false,
            "shell_code": 3,
        })
    );
    assert!(root.join(".scripts/tool.sh").is_file());
}

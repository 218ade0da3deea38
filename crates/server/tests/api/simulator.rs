//! Every command end to end with the real simulator (`warden-agent run`):
//! it executes each one on this machine, in its sandbox folder, and answers
//! through Fleet Server's routes. `make test` builds `warden-agent` first.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};
use crate::response_actions::{details, sent};

const DEMO_TOKEN: &str = "ZGVtby1lbnJvbGxtZW50OndhcmRlbi1kZW1vLWVucm9sbG1lbnQtc2VjcmV0";

/// `warden-agent`, built beside `warden`.
fn agent_binary() -> PathBuf {
    let warden = PathBuf::from(env!("CARGO_BIN_EXE_warden"));
    let binary = warden.with_file_name("warden-agent");
    assert!(binary.exists(), "{} is missing: run `cargo build -p warden-agent` first (make test does)", binary.display());
    binary
}

/// A running simulator: killed when dropped.
struct Simulator {
    id: String,
    sandbox: PathBuf,
    process: Child,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn start(app: &TestApp, dir: &Path, hostname: &str, extra: &[&str]) -> Simulator {
    let state = dir.join(format!("{hostname}.json"));
    let sandbox = dir.join(format!("{hostname}-sandbox"));
    let url = format!("{}{}", app.address, app.base_path);
    let enrolled = Command::new(agent_binary())
        .args(["enroll", "--url", &url, "--enrollment-token", DEMO_TOKEN, "--hostname", hostname, "--state"])
        .arg(&state)
        .output()
        .expect("run warden-agent enroll");
    assert!(enrolled.status.success(), "enroll: {}", String::from_utf8_lossy(&enrolled.stderr));
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).expect("state file")).expect("state JSON");
    let process = Command::new(agent_binary())
        .args(["run", "--interval", "50ms", "--poll-timeout", "2s", "--state"])
        .arg(&state)
        .arg("--sandbox")
        .arg(&sandbox)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run warden-agent run");
    Simulator { id: saved["agent_id"].as_str().expect("agent_id").to_owned(), sandbox, process }
}

/// Waits until the simulator has checked in (reporting its capabilities).
async fn reporting(app: &TestApp, client: &Client, sim: &Simulator) {
    eventually("the simulator checks in", || async {
        let body: Value = client.get(app.url(&format!("api/fleet/agents/{}", sim.id))).send().await.unwrap().json().await.unwrap();
        !body["item"]["last_checkin"].is_null()
    })
    .await;
}

/// Sends a command and waits until it is no longer pending.
async fn run(app: &TestApp, client: &Client, route: &str, sim: &Simulator, parameters: Value) -> Value {
    let action = sent(app, client, route, json!({"endpoint_ids": [sim.id], "parameters": parameters})).await;
    finished(app, client, action["id"].as_str().unwrap()).await
}

async fn finished(app: &TestApp, client: &Client, id: &str) -> Value {
    eventually(&format!("action {id} ends"), || async { details(app, client, id).await["status"] != "pending" }).await;
    details(app, client, id).await
}

fn content(action: &Value, agent: &str) -> Value {
    action["outputs"][agent]["content"].clone()
}

async fn isolated(app: &TestApp, client: &Client, sim: &Simulator) -> bool {
    let body: Value = client.get(app.url(&format!("api/fleet/agents/{}", sim.id))).send().await.unwrap().json().await.unwrap();
    body["item"]["local_metadata"]["endpoint"]["isolated"] == true
}

#[tokio::test]
async fn the_simulator_runs_every_command_for_real() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&app, dir.path(), "sim-1", &[]);
    reporting(&app, &manager, &sim).await;
    let id = sim.id.clone();

    let done = run(&app, &manager, "isolate", &sim, json!({})).await;
    assert_eq!(done["status"], "successful", "{done}");
    eventually("the agent reports it is isolated", || isolated(&app, &manager, &sim)).await;

    let procs = run(&app, &manager, "running_procs", &sim, json!({})).await;
    let entries = content(&procs, &id)["entries"].as_array().cloned().unwrap_or_default();
    assert!(entries.len() >= 2, "its decoy processes: {procs}");
    let pid = entries[0]["pid"].as_u64().unwrap();
    let killed = run(&app, &manager, "kill_process", &sim, json!({"pid": pid})).await;
    assert_eq!(killed["status"], "successful", "{killed}");
    let after = run(&app, &manager, "running_procs", &sim, json!({})).await;
    assert!(content(&after, &id)["entries"].as_array().unwrap().iter().all(|e| e["pid"].as_u64() != Some(pid)));
    let not_ours = run(&app, &manager, "kill_process", &sim, json!({"pid": 1})).await;
    assert_eq!(not_ours["status"], "failed", "a process it did not start");

    std::fs::write(sim.sandbox.join("notes.txt"), b"evidence").unwrap();
    let got = run(&app, &manager, "get_file", &sim, json!({"path": "notes.txt"})).await;
    assert_eq!(got["status"], "successful", "{got}");
    let action_id = got["id"].as_str().unwrap();
    let zip = manager.get(app.url(&format!("api/endpoint/action/{action_id}/file/{action_id}.{id}/download"))).send().await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK);
    let bytes = zip.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "a zip");
    assert_eq!(content(&got, &id)["contents"][0]["size"], 8);
    let outside = run(&app, &manager, "get_file", &sim, json!({"path": "/etc/passwd"})).await;
    assert_eq!(outside["status"], "failed", "outside the sandbox");

    let echoed = run(&app, &manager, "execute", &sim, json!({"command": "echo hello warden"})).await;
    assert_eq!(content(&echoed, &id)["stdout"], "hello warden\n", "{echoed}");
    let refused = run(&app, &manager, "execute", &sim, json!({"command": "rm -rf ."})).await;
    assert_eq!(refused["status"], "failed", "not on the allow-list");

    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"patched".to_vec()).file_name("fix.txt"))
        .text("endpoint_ids", json!([id]).to_string());
    let uploaded: Value =
        manager.post(app.url("api/endpoint/action/upload")).header("kbn-xsrf", "t").multipart(form).send().await.unwrap().json().await.unwrap();
    let uploaded = finished(&app, &manager, uploaded["data"]["id"].as_str().unwrap()).await;
    assert_eq!(uploaded["status"], "successful", "{uploaded}");
    assert_eq!(std::fs::read(sim.sandbox.join("fix.txt")).unwrap(), b"patched");

    let scanned = run(&app, &manager, "scan", &sim, json!({"path": "."})).await;
    assert_eq!(scanned["status"], "successful", "{scanned}");

    let script = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"echo collected \"$@\"\n".to_vec()).file_name("collect.sh"))
        .text("name", "collect");
    let script: Value =
        manager.post(app.url("api/endpoint/scripts_library")).header("kbn-xsrf", "t").multipart(script).send().await.unwrap().json().await.unwrap();
    let ran = run(&app, &manager, "run_script", &sim, json!({"scriptId": script["data"]["id"], "scriptInput": "--days 3"})).await;
    assert_eq!(content(&ran, &id)["stdout"], "collected --days 3\n", "{ran}");

    // A long command, cancelled while it runs.
    let long = sent(&app, &manager, "execute", json!({"endpoint_ids": [id], "parameters": {"command": "sleep 30"}})).await;
    let long_id = long["id"].as_str().unwrap();
    eventually("the sleep runs", || async {
        let procs = run(&app, &manager, "running_procs", &sim, json!({})).await;
        content(&procs, &id)["entries"].as_array().unwrap().iter().any(|e| e["command"].as_str().is_some_and(|c| c.contains("sleep 30")))
    })
    .await;
    let cancel = sent(&app, &manager, "cancel", json!({"endpoint_ids": [id], "parameters": {"id": long_id}})).await;
    let cancel = finished(&app, &manager, cancel["id"].as_str().unwrap()).await;
    assert_eq!(cancel["status"], "successful", "{cancel}");
    let long = finished(&app, &manager, long_id).await;
    assert_eq!((long["status"].as_str(), long["wasCanceled"].as_bool()), (Some("failed"), Some(true)), "{long}");

    let released = run(&app, &manager, "unisolate", &sim, json!({})).await;
    assert_eq!(released["status"], "successful");
    eventually("the agent reports it is released", || async { !isolated(&app, &manager, &sim).await }).await;
}

#[tokio::test]
async fn an_agent_that_cannot_cancel_is_refused_up_front() {
    let app = spawn_app().await;
    let manager = app.signed_in("manager").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = start(&app, dir.path(), "old-sim", &["--no-cancel"]);
    reporting(&app, &manager, &sim).await;
    let long = sent(&app, &manager, "execute", json!({"endpoint_ids": [sim.id], "parameters": {"command": "sleep 5"}})).await;
    let response = manager
        .post(app.url("api/endpoint/action/cancel"))
        .header("kbn-xsrf", "t")
        .json(&json!({"endpoint_ids": [sim.id], "parameters": {"id": long["id"]}}))
        .send()
        .await
        .unwrap();
    let message = crate::helpers::assert_error(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("old-sim") && message.contains("cancel capability"), "{message}");
}

fn simulator(args: &[&str], state: &Path) -> std::process::Output {
    Command::new(agent_binary()).args(args).arg("--state").arg(state).env("RUST_LOG", "warn").output().expect("run warden-agent")
}

fn agent_id(state: &Path) -> String {
    let saved: Value = serde_json::from_slice(&std::fs::read(state).expect("state file")).expect("state JSON");
    saved["agent_id"].as_str().expect("agent_id").to_owned()
}

/// `enroll --reenroll` keeps the host's machine id: into the same Warden the
/// old agent is replaced by the new one; into another, the old Warden is
/// first told where the agent went (reference 003, points 1 and 3).
#[tokio::test]
async fn the_simulator_reenrolls_as_the_same_host_and_tells_the_old_fleet_when_it_moves() {
    let app = spawn_app().await;
    let elsewhere = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("laptop.json");
    let url = format!("{}{}", app.address, app.base_path);
    let enroll = ["enroll", "--url", &url, "--enrollment-token", DEMO_TOKEN, "--hostname", "laptop-42"];
    assert!(simulator(&enroll, &state).status.success());
    let first = agent_id(&state);

    let refused = simulator(&enroll, &state);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already enrolled as agent"), "{}", String::from_utf8_lossy(&refused.stderr));

    let again = simulator(&[&enroll[..], &["--reenroll"]].concat(), &state);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let second = agent_id(&state);
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("replacing agent {first}")));
    let old: Value = viewer.get(app.url(&format!("api/fleet/agents/{first}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((old["item"]["status"].clone(), old["item"]["replaced_by"].clone()), (json!("replaced"), json!(second)));

    // Moved to another Warden: the first one hears where, and by whom.
    let other_url = format!("{}{}", elsewhere.address, elsewhere.base_path);
    let moved = simulator(&["enroll", "--url", &other_url, "--enrollment-token", DEMO_TOKEN, "--reenroll", "--user", "mallory"], &state);
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    let item: Value = viewer.get(app.url(&format!("api/fleet/agents/{second}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(item["item"]["status"], "migrated");
    assert_eq!(item["item"]["audit_unenrolled_details"]["new_fleet_url"], other_url);
    assert_eq!(item["item"]["audit_unenrolled_details"]["user"], "mallory");
    let there: Value = elsewhere
        .signed_in("viewer")
        .await
        .get(elsewhere.url(&format!("api/fleet/agents/{}", agent_id(&state))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(there["item"]["host_id"], item["item"]["host_id"], "the same machine id, wherever it enrolls");
    assert_eq!(there["item"]["local_metadata"]["host"]["hostname"], "laptop-42");
}

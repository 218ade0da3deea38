//! Elastic Defend response actions, run for real on this host: each
//! `INPUT_ACTION` for the `endpoint` input runs in its own task while the
//! agent keeps checking in (so a cancel can reach a running execute), and
//! ends in one ack carrying its result.
//!
//! The rules the server relies on:
//! - an action id runs at most once (a redelivered action is ignored, or its
//!   undelivered ack sent again);
//! - within one check-in's batch, cancels are handled first, newest first,
//!   so a newer cancel of an older cancel stops it before it runs;
//! - a cancel of an action not seen yet is remembered: the action, when it
//!   arrives, is acked as cancelled and never runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use warden_core::fleet_api::{AckEvent, AgentAction};
use warden_core::response_actions::{
    ActionOutput, DEFAULT_EXECUTE_TIMEOUT_S, ENDPOINT_ZIP_PASSCODE, EndpointActionData, EndpointActionResult, EndpointCapability, EndpointMetadata,
    OutputType, ResponseCommand, resolve_date,
};

use crate::exec;
use crate::files;
use crate::fleet::{AckOutcome, Fleet, now_rfc3339};
use crate::processes::{Processes, Target};
use crate::sandbox::Sandbox;

/// The largest file get-file sends.
pub const GET_FILE_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// The most entries one scan walks.
pub const SCAN_MAX_ENTRIES: usize = 100_000;
/// How many finished action ids (and early cancels) the agent remembers.
const REMEMBERED: usize = 4_096;

/// The error of an action stopped by a cancel action.
pub const CANCELLED: &str = "Action was cancelled";

/// How the responder is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub capabilities: Vec<EndpointCapability>,
    pub sandbox: PathBuf,
    /// Where isolation is kept across restarts (the agent's state file, a
    /// JSON object whose `isolated` field this writes); `None`: in memory.
    pub state_file: Option<PathBuf>,
    pub isolated: bool,
}

/// One agent's response-action engine.
pub struct Responder {
    fleet: Fleet,
    capabilities: Vec<EndpointCapability>,
    sandbox: Sandbox,
    processes: Processes,
    isolated: AtomicBool,
    state_file: Option<PathBuf>,
    ledger: Mutex<Ledger>,
    outbox: mpsc::UnboundedSender<AckEvent>,
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    cancelled_by: Option<String>,
}

/// What the responder knows of action ids.
#[derive(Default)]
struct Ledger {
    running: HashMap<String, Running>,
    finished: Recent,
    /// Actions cancelled before they arrived: target id → cancel action id.
    cancelled_early: HashMap<String, String>,
    cancelled_early_order: VecDeque<String>,
    /// Acks not delivered yet (sent again if Fleet delivers the action again).
    undelivered: HashMap<String, AckEvent>,
}

/// A bounded set of ids, oldest forgotten first.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Recent {
    fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

impl Ledger {
    fn cancel_early(&mut self, target: &str, by: &str) {
        self.cancelled_early.insert(target.to_owned(), by.to_owned());
        self.cancelled_early_order.push_back(target.to_owned());
        if self.cancelled_early_order.len() > REMEMBERED
            && let Some(old) = self.cancelled_early_order.pop_front()
        {
            self.cancelled_early.remove(&old);
        }
    }
}

/// An action's result before it becomes an ack.
#[derive(Debug, Clone, PartialEq, Default)]
struct Done {
    output: Option<Value>,
    error: Option<String>,
    canceled_by_action: Option<String>,
}

impl Done {
    fn ok(content: Value) -> Done {
        Done { output: Some(content), ..Done::default() }
    }

    fn fail(error: impl Into<String>) -> Done {
        Done { error: Some(error.into()), ..Done::default() }
    }

    fn cancelled(by: Option<String>) -> Done {
        Done { error: Some(CANCELLED.into()), canceled_by_action: by, ..Done::default() }
    }
}

impl From<Result<Value, String>> for Done {
    fn from(result: Result<Value, String>) -> Done {
        match result {
            Ok(content) => Done::ok(content),
            Err(error) => Done::fail(error),
        }
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Responder {
    /// The responder, and the acks it produces, in order, for the caller to
    /// deliver ([`deliver_acks`] sends them to Fleet Server).
    pub fn new(fleet: Fleet, settings: Settings) -> (Arc<Responder>, mpsc::UnboundedReceiver<AckEvent>) {
        let (outbox, acks) = mpsc::unbounded_channel();
        let responder = Responder {
            processes: Processes::new(&fleet.agent_id),
            fleet,
            capabilities: settings.capabilities,
            sandbox: Sandbox::new(settings.sandbox),
            isolated: AtomicBool::new(settings.isolated),
            state_file: settings.state_file,
            ledger: Mutex::default(),
            outbox,
        };
        (Arc::new(responder), acks)
    }

    pub fn processes(&self) -> &Processes {
        &self.processes
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// What the agent reports at every check-in under `local_metadata.endpoint`.
    pub fn endpoint_metadata(&self) -> EndpointMetadata {
        EndpointMetadata {
            capabilities: self.capabilities.iter().map(|c| c.as_str().to_owned()).collect(),
            isolated: self.isolated.load(Ordering::Relaxed),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one check-in's endpoint actions: cancels first, newest first,
    /// then the others in the order received. Returns at once; the work runs
    /// in tasks of its own.
    pub fn handle(self: &Arc<Self>, actions: Vec<AgentAction>) {
        let is_cancel = |a: &AgentAction| a.data.get("command").and_then(Value::as_str) == Some(ResponseCommand::Cancel.as_str());
        let (mut cancels, others): (Vec<_>, Vec<_>) = actions.into_iter().enumerate().partition(|(_, a)| is_cancel(a));
        let created = |a: &AgentAction| resolve_date(&a.created_at, 0, false).unwrap_or(i64::MIN);
        cancels.sort_by_key(|(i, a)| std::cmp::Reverse((created(a), *i)));
        for (_, action) in cancels.into_iter().chain(others) {
            self.accept(action);
        }
    }

    /// Marks `id` finished and queues its ack.
    fn finish(&self, ledger: &mut Ledger, id: &str, done: Done) {
        ledger.finished.insert(id);
        let result = EndpointActionResult {
            output: done.output.map(|content| ActionOutput { output_type: OutputType::Json, content }),
            error: done.error.clone(),
            canceled_by_action: done.canceled_by_action,
        };
        let event = AckEvent {
            action_id: id.to_owned().into(),
            agent_id: Some(self.fleet.agent_id.clone()),
            event_type: Some("ACTION_RESULT".into()),
            subtype: Some("ACKNOWLEDGED".into()),
            timestamp: Some(now_rfc3339()),
            message: None,
            error: done.error,
            action_input_type: Some("endpoint".into()),
            action_response: Some(result),
        };
        ledger.undelivered.insert(id.to_owned(), event.clone());
        let _ = self.outbox.send(event);
    }

    /// How the delivery of an ack ended: only an undelivered one is kept.
    pub fn settled(&self, action_id: &str, outcome: &AckOutcome) {
        if !matches!(outcome, AckOutcome::Undelivered(_)) {
            self.ledger().undelivered.remove(action_id);
        }
    }

    fn accept(self: &Arc<Self>, action: AgentAction) {
        let id = action.id.to_string();
        let mut ledger = self.ledger();
        if ledger.running.contains_key(&id) {
            return;
        }
        if ledger.finished.contains(&id) {
            if let Some(event) = ledger.undelivered.get(&id) {
                let _ = self.outbox.send(event.clone());
            }
            return;
        }
        if let Some(by) = ledger.cancelled_early.remove(&id) {
            self.finish(&mut ledger, &id, Done::cancelled(Some(by)));
            return;
        }
        let command_name = action.data.get("command").and_then(Value::as_str).unwrap_or_default().to_owned();
        let data = match serde_json::from_value::<EndpointActionData>(action.data) {
            Ok(data) if self.capabilities.contains(&data.command.capability()) => data,
            Ok(_) => return self.finish(&mut ledger, &id, Done::fail(format!("The agent does not support {command_name}"))),
            Err(_) if ResponseCommand::parse(&command_name).is_none() => {
                return self.finish(&mut ledger, &id, Done::fail(format!("The agent does not support {command_name}")));
            }
            Err(err) => return self.finish(&mut ledger, &id, Done::fail(format!("The action is malformed: {err}"))),
        };
        if resolve_date(&data.expiration, 0, false).is_ok_and(|expires| expires < epoch_ms()) {
            return self.finish(&mut ledger, &id, Done::fail("The action expired before the agent received it"));
        }
        if data.command == ResponseCommand::Cancel {
            let done = cancel(&mut ledger, &id, &data.parameters);
            return self.finish(&mut ledger, &id, done);
        }
        let (stop, stopped) = oneshot::channel();
        ledger.running.insert(id.clone(), Running { stop: Some(stop), cancelled_by: None });
        drop(ledger);
        let responder = self.clone();
        tokio::spawn(async move {
            let done = tokio::select! {
                done = responder.perform(&id, data.command, &data.parameters) => Some(done),
                _ = stopped => None,
            };
            let mut ledger = responder.ledger();
            let cancelled_by = ledger.running.remove(&id).and_then(|r| r.cancelled_by);
            let done = match (cancelled_by, done) {
                // A cancel that found it running wins, even over a result that
                // came in just after: the cancel was acked as successful.
                (Some(by), _) => Done::cancelled(Some(by)),
                (None, Some(done)) => done,
                (None, None) => Done::cancelled(None),
            };
            responder.finish(&mut ledger, &id, done);
        });
    }

    async fn perform(&self, id: &str, command: ResponseCommand, params: &Value) -> Done {
        match command {
            ResponseCommand::Isolate | ResponseCommand::Unisolate => self.isolate(command == ResponseCommand::Isolate).await.into(),
            ResponseCommand::RunningProcesses => Done::ok(json!({ "code": "ra_running-processes_success_done", "entries": self.processes.list() })),
            ResponseCommand::KillProcess => self.signal(params, Signal::SIGKILL, "ra_kill-process_success").into(),
            ResponseCommand::SuspendProcess => self.signal(params, Signal::SIGSTOP, "ra_suspend-process_success").into(),
            ResponseCommand::GetFile => self.get_file(id, params).await.into(),
            ResponseCommand::Scan => self.scan(params).await.into(),
            ResponseCommand::Execute => self.execute(params).await,
            ResponseCommand::Upload => self.upload(params).await.into(),
            ResponseCommand::Runscript => self.runscript(params).await,
            ResponseCommand::Cancel => Done::fail("cancel runs when it arrives"),
        }
    }

    /// Isolation is a state reported at check-in. While isolated the agent
    /// still talks to Warden; it would refuse execute's network tools, but
    /// the allow-list holds none, so isolation blocks nothing else here.
    async fn isolate(&self, isolated: bool) -> Result<Value, String> {
        if let Some(path) = &self.state_file {
            save_isolation(path, isolated).await?;
        }
        self.isolated.store(isolated, Ordering::Relaxed);
        let code = if isolated { "ra_isolate_success" } else { "ra_unisolate_success" };
        Ok(json!({ "code": code }))
    }

    fn signal(&self, params: &Value, signal: Signal, code: &str) -> Result<Value, String> {
        let target = match (params.get("pid").and_then(Value::as_u64), params.get("entity_id").and_then(Value::as_str)) {
            (Some(pid), _) => Target::Pid(pid),
            (None, Some(entity_id)) => Target::EntityId(entity_id.to_owned()),
            (None, None) => return Err("The action names no pid and no entity_id".into()),
        };
        let entry = self.processes.signal(&target, signal)?;
        Ok(json!({ "code": code, "command": entry.command, "pid": entry.pid, "entity_id": entry.entity_id }))
    }

    async fn get_file(&self, id: &str, params: &Value) -> Result<Value, String> {
        let given = text(params, "path")?;
        let path = self.sandbox.resolve(given)?;
        let metadata = tokio::fs::metadata(&path).await.map_err(|e| format!("Cannot read {given}: {e}"))?;
        if !metadata.is_file() {
            return Err(format!("{given} is not a file"));
        }
        if metadata.len() > GET_FILE_MAX_BYTES {
            return Err(format!("File {given} is larger than the {GET_FILE_MAX_BYTES} bytes get-file sends"));
        }
        let contents = tokio::fs::read(&path).await.map_err(|e| format!("Cannot read {given}: {e}"))?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (sha256, zip) = {
            let name = file_name.clone();
            tokio::task::spawn_blocking(move || (files::sha256_hex(&contents), files::zip_one(&name, &contents, ENDPOINT_ZIP_PASSCODE)))
                .await
                .map_err(|e| format!("Cannot make the zip: {e}"))?
        };
        let zip = zip?;
        self.fleet.upload(id, &zip).await?;
        Ok(json!({
            "code": "ra_get-file_success_done",
            "zip_size": zip.len(),
            "contents": [{
                "path": path.display().to_string(),
                "sha256": sha256,
                "size": metadata.len(),
                "file_name": file_name,
                "type": "file",
            }],
        }))
    }

    async fn scan(&self, params: &Value) -> Result<Value, String> {
        let given = text(params, "path")?;
        let path = self.sandbox.resolve(given)?;
        if tokio::fs::symlink_metadata(&path).await.is_err() {
            return Err(format!("Cannot read {given}: no such file or directory"));
        }
        let (files_scanned, complete) =
            tokio::task::spawn_blocking(move || walk(&path, SCAN_MAX_ENTRIES)).await.map_err(|e| format!("Scan failed: {e}"))?;
        Ok(json!({ "code": "ra_scan_success_done", "path": given, "files_scanned": files_scanned, "complete": complete }))
    }

    async fn execute(&self, params: &Value) -> Done {
        let line = match text(params, "command") {
            Ok(line) => line,
            Err(error) => return Done::fail(error),
        };
        let timeout_s = params.get("timeout").and_then(Value::as_u64).unwrap_or(DEFAULT_EXECUTE_TIMEOUT_S);
        let (words, root) = match exec::plan_execute(line, &self.sandbox).and_then(|words| Ok((words, self.sandbox.root()?.to_path_buf()))) {
            Ok(planned) => planned,
            Err(error) => return Done::fail(error),
        };
        let Some((program, args)) = words.split_first() else {
            return Done::fail("The command is empty");
        };
        match exec::run(program, args, &root, Duration::from_secs(timeout_s), &self.processes).await {
            Ok(finished) if finished.timed_out => Done {
                output: Some(exec::execute_output(&finished, &root)),
                error: Some(format!("The command timed out after {timeout_s} seconds")),
                canceled_by_action: None,
            },
            Ok(finished) => Done::ok(exec::execute_output(&finished, &root)),
            Err(error) => Done::fail(error),
        }
    }

    async fn upload(&self, params: &Value) -> Result<Value, String> {
        let file_id = text(params, "file_id")?;
        let name = self.sandbox.file_name(text(params, "file_name")?)?;
        let sha256 = text(params, "file_sha256")?;
        let size = params.get("file_size").and_then(Value::as_u64);
        let overwrite = params.get("overwrite").and_then(Value::as_bool).unwrap_or(false);
        let target = self.sandbox.resolve(name)?;
        if !overwrite && tokio::fs::symlink_metadata(&target).await.is_ok() {
            return Err(format!("File {name} already exists"));
        }
        let bytes = self.fleet.download(file_id, sha256, size).await?;
        write_file(&target, &bytes).await?;
        let root = self.sandbox.root()?.to_path_buf();
        Ok(json!({ "code": "ra_upload_file-success", "path": target.display().to_string(), "disk_free_space": free_space(&root) }))
    }

    async fn runscript(&self, params: &Value) -> Done {
        let timeout_s = params.get("timeout").and_then(Value::as_u64).unwrap_or(DEFAULT_EXECUTE_TIMEOUT_S);
        let prepared = async {
            let file_id = text(params, "file_id")?;
            let name = self.sandbox.file_name(text(params, "file_name")?)?;
            let sha256 = text(params, "file_sha256")?;
            let args = exec::split_words(params.get("scriptInput").and_then(Value::as_str).unwrap_or_default())?;
            let bytes = self.fleet.download(file_id, sha256, None).await?;
            let script = self.sandbox.resolve(&format!(".scripts/{name}"))?;
            if let Some(folder) = script.parent() {
                tokio::fs::create_dir_all(folder).await.map_err(|e| format!("Cannot write the script: {e}"))?;
            }
            write_file(&script, &bytes).await?;
            let root = self.sandbox.root()?.to_path_buf();
            let mut words = vec![script.display().to_string()];
            words.extend(args);
            Ok::<_, String>((words, root))
        };
        let (words, root) = match prepared.await {
            Ok(prepared) => prepared,
            Err(error) => return Done::fail(error),
        };
        match exec::run("/bin/sh", &words, &root, Duration::from_secs(timeout_s), &self.processes).await {
            Ok(finished) if finished.timed_out => Done {
                output: Some(exec::runscript_output(&finished)),
                error: Some(format!("The script timed out after {timeout_s} seconds")),
                canceled_by_action: None,
            },
            Ok(finished) => Done::ok(exec::runscript_output(&finished)),
            Err(error) => Done::fail(error),
        }
    }
}

/// A cancel action, decided at once under the ledger's lock.
fn cancel(ledger: &mut Ledger, cancel_id: &str, params: &Value) -> Done {
    let Some(target) = params.get("id").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return Done::fail("The cancel action names no action");
    };
    let success = || Done::ok(json!({ "code": "ra_cancel_success", "cancelled_action_id": target }));
    if let Some(running) = ledger.running.get_mut(target) {
        if let Some(first) = &running.cancelled_by {
            return Done::fail(format!("Action {target} was already cancelled by action {first}"));
        }
        running.cancelled_by = Some(cancel_id.to_owned());
        if let Some(stop) = running.stop.take() {
            let _ = stop.send(());
        }
        return success();
    }
    if ledger.finished.contains(target) {
        return Done::fail(format!("Action {target} had already completed on this host"));
    }
    if let Some(first) = ledger.cancelled_early.get(target) {
        return Done::fail(format!("Action {target} was already cancelled by action {first}"));
    }
    ledger.cancel_early(target, cancel_id);
    success()
}

fn text<'a>(params: &'a Value, key: &str) -> Result<&'a str, String> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).ok_or_else(|| format!("The action's parameters have no {key}"))
}

/// Counts the files under `path` (not following symlinks), at most `max`
/// entries; whether it saw them all.
fn walk(path: &Path, max: usize) -> (usize, bool) {
    let mut pending = vec![path.to_path_buf()];
    let (mut seen, mut files) = (0usize, 0usize);
    while let Some(next) = pending.pop() {
        seen += 1;
        if seen > max {
            return (files, false);
        }
        let Ok(metadata) = std::fs::symlink_metadata(&next) else { continue };
        if metadata.is_file() {
            files += 1;
        } else if metadata.is_dir()
            && let Ok(entries) = std::fs::read_dir(&next)
        {
            pending.extend(entries.flatten().map(|e| e.path()));
        }
    }
    (files, true)
}

/// Writes through a temporary file and a rename: a reader never sees half a file.
async fn write_file(target: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = target.with_file_name(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await.map_err(|e| format!("Cannot write {name}: {e}"))?;
    tokio::fs::rename(&partial, target).await.map_err(|e| format!("Cannot write {name}: {e}"))
}

/// Free bytes for an unprivileged user on the sandbox's filesystem.
fn free_space(path: &Path) -> u64 {
    match nix::sys::statvfs::statvfs(path) {
        // The field types differ between platforms; u64 holds them.
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Ok(stat) => (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64),
        Err(_) => 0,
    }
}

/// Sets `isolated` in the agent's state file (a JSON object), through a
/// temporary file and a rename.
async fn save_isolation(path: &Path, isolated: bool) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("Cannot save the isolation state in {}: {e}", path.display());
    let text = tokio::fs::read_to_string(path).await.map_err(|e| failed(&e))?;
    let mut state: Value = serde_json::from_str(&text).map_err(|e| failed(&e))?;
    let Some(object) = state.as_object_mut() else {
        return Err(failed(&"not a JSON object"));
    };
    object.insert("isolated".into(), Value::Bool(isolated));
    let text = serde_json::to_string_pretty(&state).map_err(|e| failed(&e))?;
    write_file(path, text.as_bytes()).await
}

/// Sends a responder's acks to Fleet Server, one after the other (so a
/// cancel's ack and its target's keep their order), until the responder is
/// gone. A refused ack (409: already cancelled, …) is final and only logged.
/// `observe` sees each outcome (a swarm counts them).
pub async fn deliver_acks(fleet: Fleet, responder: Weak<Responder>, mut acks: mpsc::UnboundedReceiver<AckEvent>, observe: impl Fn(&AckOutcome)) {
    while let Some(event) = acks.recv().await {
        let action_id = event.action_id.to_string();
        let outcome = fleet.ack(&event).await;
        match &outcome {
            AckOutcome::Recorded => tracing::info!(agent_id = %fleet.agent_id, action_id, error = ?event.error, "action result acknowledged"),
            AckOutcome::Refused(status, message) => {
                tracing::warn!(agent_id = %fleet.agent_id, action_id, status, message, "Warden refused the action's ack; not retrying")
            }
            AckOutcome::Undelivered(error) => {
                tracing::warn!(agent_id = %fleet.agent_id, action_id, error, "ack not delivered; it is sent again if the action comes back")
            }
        }
        observe(&outcome);
        let Some(responder) = responder.upgrade() else { return };
        responder.settled(&action_id, &outcome);
    }
}

#[cfg(test)]
mod tests;

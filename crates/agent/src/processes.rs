//! The processes this agent started: its decoys and the children of running
//! execute and runscript actions. running-processes lists them, and
//! kill-process and suspend-process act only on them: the simulator never
//! signals a process of the host it did not start.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::sys::signal::Signal;
use warden_core::response_actions::ProcessEntry;

#[derive(Debug, Clone)]
struct Started {
    command: String,
}

/// The registry, shared by the agent's action tasks.
#[derive(Debug, Clone)]
pub struct Processes {
    agent_id: Arc<str>,
    user: Arc<str>,
    started: Arc<Mutex<BTreeMap<u32, Started>>>,
}

/// Removes its process from the registry when dropped (the process ended,
/// or its action was cancelled and the child killed with it).
#[derive(Debug)]
pub struct Registration {
    processes: Processes,
    pid: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.processes.lock().remove(&self.pid);
    }
}

/// How kill-process and suspend-process name a process.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Pid(u64),
    EntityId(String),
}

impl Processes {
    pub fn new(agent_id: &str) -> Processes {
        // Looked up once per process: a swarm makes 10,000 registries.
        static USER: OnceLock<Arc<str>> = OnceLock::new();
        let user = USER.get_or_init(|| {
            let uid = nix::unistd::getuid();
            nix::unistd::User::from_uid(uid).ok().flatten().map_or_else(|| uid.to_string(), |u| u.name).into()
        });
        Processes { agent_id: agent_id.into(), user: user.clone(), started: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Started>> {
        self.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn entity_id(&self, pid: u32) -> String {
        format!("{}-{pid}", self.agent_id)
    }

    /// Records a child until the returned registration is dropped.
    pub fn register(&self, pid: u32, command: String) -> Registration {
        self.lock().insert(pid, Started { command });
        Registration { processes: self.clone(), pid }
    }

    /// What running-processes reports.
    pub fn list(&self) -> Vec<ProcessEntry> {
        self.lock()
            .iter()
            .map(|(pid, started)| ProcessEntry {
                command: started.command.clone(),
                pid: u64::from(*pid),
                entity_id: self.entity_id(*pid),
                user: self.user.to_string(),
            })
            .collect()
    }

    /// Sends `signal` to a process this agent started; its entry, or the
    /// error "Process <pid> was not found or was not started by this agent".
    pub fn signal(&self, target: &Target, signal: Signal) -> Result<ProcessEntry, String> {
        let not_found = || {
            let name = match target {
                Target::Pid(pid) => pid.to_string(),
                Target::EntityId(id) => id.clone(),
            };
            format!("Process {name} was not found or was not started by this agent")
        };
        let entry = self
            .list()
            .into_iter()
            .find(|entry| match target {
                Target::Pid(pid) => entry.pid == *pid,
                Target::EntityId(id) => entry.entity_id == *id,
            })
            .ok_or_else(not_found)?;
        let pid = i32::try_from(entry.pid).map_err(|_| not_found())?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|e| format!("Cannot signal process {pid}: {e}"))?;
        Ok(entry)
    }

    /// Starts a harmless long-lived child (`sleep 86400`) so running-processes
    /// has something to list and kill-process something to kill. It is
    /// killed when the agent's runtime stops.
    pub fn spawn_decoy(&self) -> std::io::Result<()> {
        let mut child = tokio::process::Command::new("sleep")
            .arg("86400")
            .env_clear()
            .env("PATH", crate::exec::SEARCH_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let Some(pid) = child.id() else {
            return Ok(());
        };
        let registration = self.register(pid, "sleep 86400".into());
        tokio::spawn(async move {
            let _ = child.wait().await;
            drop(registration);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[tokio::test]
    async fn kills_its_own_child_and_nothing_else() {
        let processes = Processes::new("agent-1");
        let mut child = tokio::process::Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let _registration = processes.register(pid, "sleep 30".into());
        assert_eq!(processes.list().len(), 1);
        assert_eq!(processes.list()[0].entity_id, format!("agent-1-{pid}"));

        // Not ours: this test's own process.
        let own = u64::from(std::process::id());
        assert_eq!(
            processes.signal(&Target::Pid(own), Signal::SIGKILL),
            Err(format!("Process {own} was not found or was not started by this agent"))
        );
        let entry = processes.signal(&Target::EntityId(format!("agent-1-{pid}")), Signal::SIGKILL).unwrap();
        assert_eq!(entry.pid, u64::from(pid));
        let status = child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9));
    }

    #[tokio::test]
    async fn a_decoy_leaves_the_list_when_it_dies() {
        let processes = Processes::new("a");
        processes.spawn_decoy().unwrap();
        let entry = processes.list().pop().unwrap();
        assert_eq!(entry.command, "sleep 86400");
        processes.signal(&Target::Pid(entry.pid), Signal::SIGKILL).unwrap();
        // The decoy's task reaps it and drops its registration.
        let reaped = async {
            while !processes.list().is_empty() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), reaped).await.unwrap();
    }
}

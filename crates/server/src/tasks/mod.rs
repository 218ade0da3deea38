//! The task manager: background work as database rows that any Warden node
//! may claim. A node claims due rows with a lease (one conditional UPDATE),
//! renews the lease while the runner works, and writes the outcome only if it
//! still holds the claim. A node that dies stops renewing; once its lease runs
//! out another node (or the same one, restarted) claims the task again. The
//! rules for claiming and retrying live in `warden_core::tasks`.

pub mod api_key_invalidation;
pub mod failed_tasks_cleanup;
pub mod sessions_cleanup;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::Instrument;
use warden_core::events::Event;
use warden_core::tasks::{AfterRun, Schedule, TaskHealth, TaskManagerConfiguration, TaskManagerHealth, TaskStatus, after_run};

use crate::config::Config;
use crate::db::{Db, Engine, now_ms};
use crate::error::{ApiError, Result};
use crate::events::EventBus;
use crate::store::tasks as store;

/// What a runner gets: its row's id, params and the state its last run left.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub id: String,
    pub params: serde_json::Value,
    pub state: serde_json::Value,
    /// 1 for a first attempt, 2 for the first retry…
    pub attempt: u32,
}

/// What a successful run leaves behind.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Handed to the next run; none keeps the current state.
    pub state: Option<serde_json::Value>,
    /// One line for the Tasks page, e.g. "invalidated 12, kept 3".
    pub summary: Option<String>,
}

pub type RunFuture = Pin<Box<dyn Future<Output = anyhow::Result<RunOutput>> + Send>>;
pub type Runner = Arc<dyn Fn(TaskContext) -> RunFuture + Send + Sync>;

/// Every task type Warden runs, with its recurrence: the one list to add a
/// task type to.
pub fn all(db: &Db, config: &Config) -> Vec<TaskDefinition> {
    vec![
        sessions_cleanup::definition(db.clone(), config.session_idle_timeout),
        api_key_invalidation::definition(
            db.clone(),
            config.api_key_invalidation_interval,
            config.api_key_removal_delay,
            config.api_key_invalidation_batch_size,
        ),
        failed_tasks_cleanup::definition(db.clone()),
    ]
}

/// A task type: how its runs are bounded and retried, and the runner.
#[derive(Clone)]
pub struct TaskDefinition {
    pub task_type: &'static str,
    pub title: &'static str,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Runs of this type one node has going at once.
    pub max_concurrency: usize,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// `Some(interval)`: one recurring instance (its id is the task type)
    /// that `install` makes sure exists; `None`: one-off tasks, scheduled.
    pub every: Option<Duration>,
    pub runner: Runner,
}

impl TaskDefinition {
    pub fn new<F, Fut>(task_type: &'static str, title: &'static str, runner: F) -> TaskDefinition
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<RunOutput>> + Send + 'static,
    {
        TaskDefinition {
            task_type,
            title,
            timeout: Duration::from_secs(300),
            max_attempts: 3,
            max_concurrency: 1,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(3600),
            every: None,
            runner: Arc::new(move |ctx| Box::pin(runner(ctx))),
        }
    }

    fn schedule(&self, interval_ms: Option<i64>) -> Schedule {
        Schedule {
            interval_ms,
            max_attempts: self.max_attempts,
            retry_base_ms: self.retry_base.as_millis() as i64,
            retry_cap_ms: self.retry_cap.as_millis() as i64,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TaskSettings {
    pub poll_interval: Duration,
    pub lease: Duration,
    pub max_workers: usize,
    pub shutdown_timeout: Duration,
}

impl TaskSettings {
    pub fn from_config(config: &Config) -> TaskSettings {
        TaskSettings {
            poll_interval: config.task_poll_interval,
            lease: config.task_lease,
            max_workers: config.task_max_workers,
            shutdown_timeout: config.task_shutdown_timeout,
        }
    }
}

struct Registered {
    definition: TaskDefinition,
    slots: Arc<Semaphore>,
}

pub struct TaskManager {
    node_id: String,
    db: Db,
    engine: Engine,
    settings: TaskSettings,
    types: Mutex<BTreeMap<&'static str, Arc<Registered>>>,
    workers: Arc<Semaphore>,
    wake: Notify,
    stopping: watch::Sender<bool>,
    /// Runs in progress on this node, so shutdown can stop and release them.
    in_flight: Mutex<HashMap<String, (String, AbortHandle)>>,
    /// Tells the browsers' Tasks pages when a task starts, finishes or is asked to run.
    events: Arc<EventBus>,
}

impl TaskManager {
    pub fn new(db: Db, engine: Engine, settings: TaskSettings, events: Arc<EventBus>) -> TaskManager {
        let short = uuid::Uuid::new_v4().simple().to_string();
        TaskManager {
            node_id: format!("warden-{}", &short[..8]),
            db,
            engine,
            settings,
            types: Mutex::default(),
            workers: Arc::new(Semaphore::new(settings.max_workers)),
            wake: Notify::new(),
            stopping: watch::Sender::new(false),
            in_flight: Mutex::default(),
            events,
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn register(&self, definition: TaskDefinition) {
        let slots = Arc::new(Semaphore::new(definition.max_concurrency.max(1)));
        if let Ok(mut types) = self.types.lock() {
            types.insert(definition.task_type, Arc::new(Registered { definition, slots }));
        }
    }

    fn registered(&self) -> Vec<Arc<Registered>> {
        self.types.lock().map(|types| types.values().cloned().collect()).unwrap_or_default()
    }

    fn title_of(&self, task_type: &str) -> String {
        self.types.lock().ok().and_then(|types| types.get(task_type).map(|r| r.definition.title.to_owned())).unwrap_or_else(|| task_type.to_owned())
    }

    /// Registers every type of `definitions` and makes sure each recurring
    /// one has its instance (which first runs at once).
    pub async fn install(&self, definitions: Vec<TaskDefinition>) -> sqlx::Result<()> {
        for definition in definitions {
            let (task_type, every) = (definition.task_type, definition.every);
            self.register(definition);
            if let Some(interval) = every {
                self.ensure_recurring(task_type, task_type, interval).await?;
            }
        }
        Ok(())
    }

    /// Makes sure a recurring task exists (it first runs at once).
    pub async fn ensure_recurring(&self, id: &str, task_type: &str, interval: Duration) -> sqlx::Result<()> {
        store::ensure_recurring(&self.db, id, task_type, interval.as_millis() as i64, now_ms()).await
    }

    /// Queues a one-off task; returns its id. Runs inside the caller's
    /// transaction when given one, so the task exists only if the work that
    /// asked for it was saved.
    pub async fn schedule<'e>(
        &self,
        db: impl sqlx::Executor<'e, Database = sqlx::Any>,
        task_type: &str,
        params: &serde_json::Value,
        run_at: i64,
    ) -> sqlx::Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        store::insert_one_off(db, &id, task_type, &params.to_string(), run_at, now_ms()).await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// "Run now": makes an idle or failed task due at once.
    pub async fn run_soon(&self, id: &str) -> Result<()> {
        if store::run_soon(&self.db, id, now_ms()).await? {
            self.events.publish(Event::task_changed(id));
            self.wake.notify_one();
            return Ok(());
        }
        match store::status_of(&self.db, id).await? {
            Some(_) => Err(ApiError::Conflict(format!("Task [{id}] is running now; it can be run again once it finishes"))),
            None => Err(ApiError::NotFound(format!("Task [{id}] not found"))),
        }
    }

    /// Asks a task to run as soon as it can; a run in progress is followed by
    /// one more (coalesced: many requests during a run make one). Never a conflict.
    pub async fn request_run(&self, id: &str) -> sqlx::Result<bool> {
        let known = store::request_run(&self.db, id, now_ms()).await?;
        if known {
            self.wake.notify_one();
        }
        Ok(known)
    }

    /// Polls until `shutdown` is called.
    pub async fn run(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        tracing::info!(node = %self.node_id, "task manager started");
        loop {
            if *stopping.borrow() {
                return;
            }
            self.claim_and_start().await;
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                () = self.wake.notified() => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Claims every due task this node has room for, runs them, and waits for
    /// them to finish. The poller does the same without waiting; tests and
    /// benchmarks call this to drive the manager one step at a time.
    pub async fn tick(self: &Arc<Self>) {
        for handle in self.claim_and_start().await {
            let _ = handle.await;
        }
    }

    async fn claim_and_start(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut started = Vec::new();
        for registered in self.registered() {
            let room = registered.slots.available_permits().min(self.workers.available_permits());
            if room == 0 || *self.stopping.borrow() {
                continue;
            }
            let owner = format!("{}:{}", self.node_id, uuid::Uuid::new_v4().simple());
            let now = now_ms();
            let lease_until = now + self.settings.lease.as_millis() as i64;
            let claimed = match store::claim(&self.db, self.engine, &owner, lease_until, registered.definition.task_type, now, room as i64).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(error = %err, task_type = registered.definition.task_type, "could not claim tasks");
                    continue;
                }
            };
            for row in claimed {
                let permits = (registered.slots.clone().try_acquire_owned(), self.workers.clone().try_acquire_owned());
                let (Ok(slot), Ok(worker)) = permits else {
                    // Another tick took the room meanwhile: hand the claim back.
                    let _ = store::release(&self.db, &row.id, &owner).await;
                    continue;
                };
                let manager = self.clone();
                let registered = registered.clone();
                let owner = owner.clone();
                let task_id = row.id.clone();
                // Registered under the lock the run's own `forget` takes, so
                // a run that ends at once cannot leave a stale entry.
                let Ok(mut in_flight) = self.in_flight.lock() else { continue };
                let claim = owner.clone();
                let handle = tokio::spawn(async move { manager.execute(registered, row, claim, (slot, worker)).await });
                in_flight.insert(task_id, (owner.clone(), handle.abort_handle()));
                drop(in_flight);
                started.push(handle);
            }
        }
        started
    }

    /// Runs one claimed task inside its own span, entered only while the run
    /// is polled (`instrument`). Never hold a `span.enter()` guard across an
    /// `.await`: the span stays entered on the worker thread while the task
    /// waits, so other tasks polled there log inside it and spans exit out of
    /// order (tracing-subscriber panicked on it).
    async fn execute(
        self: Arc<Self>,
        registered: Arc<Registered>,
        row: store::ClaimedRow,
        owner: String,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) {
        let attempt = row.attempts.max(1) as u32;
        let span = tracing::info_span!("task", task_type = registered.definition.task_type, task = %row.id, attempt);
        self.execute_in_span(registered, row, owner, attempt, permits).instrument(span).await
    }

    async fn execute_in_span(
        self: Arc<Self>,
        registered: Arc<Registered>,
        row: store::ClaimedRow,
        owner: String,
        attempt: u32,
        _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) {
        let definition = &registered.definition;
        let started_at = now_ms();
        let lease_until = started_at + self.settings.lease.as_millis() as i64;
        match store::start(&self.db, &row.id, &owner, started_at, lease_until).await {
            Ok(true) => self.events.publish(Event::task_changed(&row.id)),
            Ok(false) => return self.forget(&row.id),
            Err(err) => {
                tracing::warn!(error = %err, task = %row.id, "could not start task; its lease will lapse");
                return self.forget(&row.id);
            }
        }
        let context = TaskContext {
            id: row.id.clone(),
            params: serde_json::from_str(&row.params).unwrap_or_default(),
            state: serde_json::from_str(&row.state).unwrap_or_default(),
            attempt,
        };
        let clock = Instant::now();
        let run = AssertUnwindSafe(tokio::time::timeout(definition.timeout, (definition.runner)(context))).catch_unwind();
        let outcome = tokio::select! {
            outcome = run => Some(outcome),
            () = self.keep_lease(&row.id, &owner) => None,
        };
        let duration_ms = clock.elapsed().as_millis() as i64;
        let result: std::result::Result<RunOutput, String> = match outcome {
            None => {
                tracing::warn!("task lost its lease (this node stalled); another node may run it");
                return self.forget(&row.id);
            }
            Some(Err(_panic)) => Err("the task panicked".into()),
            Some(Ok(Err(_elapsed))) => Err(format!("timed out after {}", humantime::format_duration(definition.timeout))),
            Some(Ok(Ok(Err(err)))) => Err(format!("{err:#}")),
            Some(Ok(Ok(Ok(output)))) => Ok(output),
        };
        match &result {
            Ok(output) => tracing::info!(duration_ms, summary = output.summary.as_deref().unwrap_or(""), "task ran"),
            Err(error) => tracing::warn!(duration_ms, error = %error, "task failed"),
        }
        let next = after_run(definition.schedule(row.interval_ms), result.is_ok(), attempt, now_ms());
        match self.record(&row, &owner, next, &result, started_at, duration_ms).await {
            Ok(()) => {
                self.events.publish(Event::task_changed(&row.id));
                // It may have been asked to run again meanwhile (`request_run`).
                self.wake.notify_one();
            }
            Err(err) => tracing::warn!(error = %err, "could not record the task's run; it will run again when its lease lapses"),
        }
        self.forget(&row.id);
    }

    /// Returns only if the lease is lost: another node took the task over, or
    /// renewals failed for so long that one may have.
    async fn keep_lease(&self, id: &str, owner: &str) {
        let lease = self.settings.lease;
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            let until = now_ms() + lease.as_millis() as i64;
            match store::renew(&self.db, id, owner, until).await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return,
                Err(err) => {
                    tracing::warn!(error = %err, task = %id, "could not renew a task's lease");
                    if last_renewed.elapsed() >= lease - lease / 6 {
                        return;
                    }
                }
            }
        }
    }

    async fn record(
        &self,
        row: &store::ClaimedRow,
        owner: &str,
        next: AfterRun,
        result: &std::result::Result<RunOutput, String>,
        started_at: i64,
        duration_ms: i64,
    ) -> sqlx::Result<()> {
        let state = match result {
            Ok(RunOutput { state: Some(state), .. }) => state.to_string(),
            _ => row.state.clone(),
        };
        let finished = store::Finished {
            run_at: 0,
            retry_at: None,
            attempts: row.attempts,
            state: &state,
            started_at,
            duration_ms,
            error: result.as_ref().err().map(String::as_str),
            result: result.as_ref().ok().and_then(|o| o.summary.as_deref()),
        };
        let mut tx = self.db.begin().await?;
        match next {
            AfterRun::Reschedule { run_at_ms } => {
                store::finish_idle(&mut *tx, &row.id, owner, &store::Finished { run_at: run_at_ms, attempts: 0, ..finished }).await?;
            }
            AfterRun::Retry { run_at_ms } => {
                store::finish_idle(&mut *tx, &row.id, owner, &store::Finished { run_at: run_at_ms, retry_at: Some(run_at_ms), ..finished }).await?;
            }
            AfterRun::Done => {
                if store::delete_done(&mut *tx, &row.id, owner).await? {
                    store::delete_action_params(&mut *tx, &row.id).await?;
                }
            }
            AfterRun::GiveUp => {
                if store::finish_failed(&mut *tx, &row.id, owner, &finished).await? {
                    store::delete_action_params(&mut *tx, &row.id).await?;
                }
            }
        }
        tx.commit().await
    }

    fn forget(&self, id: &str) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(id);
        }
    }

    /// Stops claiming, lets running tasks finish for up to the configured
    /// bound, then stops the rest and hands their claims back so another node
    /// can take them at once.
    pub async fn shutdown(&self) {
        self.stopping.send_replace(true);
        let all = self.settings.max_workers as u32;
        let finished = tokio::time::timeout(self.settings.shutdown_timeout, self.workers.acquire_many(all)).await;
        if finished.is_ok() {
            return;
        }
        let stopped: Vec<(String, (String, AbortHandle))> =
            self.in_flight.lock().map(|mut in_flight| in_flight.drain().collect()).unwrap_or_default();
        for (id, (owner, handle)) in stopped {
            handle.abort();
            tracing::warn!(task = %id, "task still running at shutdown: stopped and handed back");
            if let Err(err) = store::release(&self.db, &id, &owner).await {
                tracing::warn!(error = %err, task = %id, "could not hand a task back; its lease will lapse");
            }
        }
    }

    pub async fn health(&self) -> sqlx::Result<TaskManagerHealth> {
        let now = now_ms();
        let mut tasks: Vec<TaskHealth> = Vec::new();
        for row in store::recurring(&self.db).await? {
            let status = TaskStatus::parse(&row.status).unwrap_or(TaskStatus::Idle);
            let running = matches!(status, TaskStatus::Claiming | TaskStatus::Running);
            tasks.push(TaskHealth {
                title: self.title_of(&row.task_type),
                id: Some(row.id),
                task_type: row.task_type,
                interval_ms: row.interval_ms,
                count: 1,
                status,
                running: i64::from(running),
                failed: 0,
                last_run_at: row.last_run_at,
                next_run_at: Some(row.run_at),
                last_duration_ms: row.last_duration_ms,
                runs: row.runs,
                failures: row.failures,
                last_error: row.last_error,
                last_result: row.last_result,
            });
        }
        for summary in store::one_off_summary(&self.db).await? {
            let last_error = store::last_one_off_error(&self.db, &summary.task_type).await?;
            tasks.push(TaskHealth {
                id: None,
                title: self.title_of(&summary.task_type),
                status: if summary.running > 0 { TaskStatus::Running } else { TaskStatus::Idle },
                task_type: summary.task_type,
                interval_ms: None,
                count: summary.count,
                running: summary.running,
                failed: summary.failed,
                last_run_at: summary.last_run_at,
                next_run_at: summary.next_run_at,
                last_duration_ms: None,
                runs: 0,
                failures: summary.failures,
                last_error,
                last_result: None,
            });
        }
        let grace = (self.settings.poll_interval * 10).as_millis() as i64;
        let status = if tasks.iter().any(|t| t.needs_attention(now, grace)) { "warn" } else { "OK" };
        Ok(TaskManagerHealth {
            id: self.node_id.clone(),
            timestamp: crate::fleet::rfc3339(now),
            status: status.to_owned(),
            configuration: TaskManagerConfiguration {
                poll_interval_ms: self.settings.poll_interval.as_millis() as u64,
                lease_ms: self.settings.lease.as_millis() as u64,
                max_workers: self.settings.max_workers as u32,
            },
            tasks,
        })
    }
}

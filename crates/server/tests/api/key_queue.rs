//! The task manager and the API-key invalidation queue, driven in-process
//! one step at a time (`TaskManager::tick`) on a real database (SQLite, or
//! PostgreSQL with `TEST_POSTGRES_URL`).
//!
//! The four failure cases of reference 004 are here: each has an action or a
//! rule run authenticate with a rule's key *after* that key was replaced, so
//! each would fail if a replaced key were invalidated at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore};
use warden_core::api_keys::InvalidationReason;
use warden_core::authz::Role;
use warden_server::api_keys::{self, Credentials};
use warden_server::config::Secret;
use warden_server::crypto::Cipher;
use warden_server::db::{self, Db, Engine};
use warden_server::events::EventBus;
use warden_server::tasks::api_key_invalidation::{Summary, run_once};
use warden_server::tasks::{RunOutput, TaskDefinition, TaskManager, TaskSettings};

use crate::helpers::fresh_database;

const HOUR: Duration = Duration::from_secs(3600);

struct Harness {
    db: Db,
    engine: Engine,
    cipher: Cipher,
    alice: String,
    bob: String,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let db = db::connect(&url).await.unwrap();
    let alice = warden_server::store::users::insert(&db, "alice", None, "x", &[Role::RuleAuthor]).await.unwrap();
    let bob = warden_server::store::users::insert(&db, "bob", None, "x", &[Role::RuleAuthor]).await.unwrap();
    let cipher = warden_server::crypto::open(&db, &Secret("a test encryption key that is long enough".into())).await.expect("crypto::open");
    Harness { db, engine: Engine::of_url(&url), cipher, alice, bob, _dir: dir }
}

impl Harness {
    fn manager(&self) -> Arc<TaskManager> {
        let settings = TaskSettings {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            max_workers: 8,
            shutdown_timeout: Duration::from_secs(5),
        };
        Arc::new(TaskManager::new(self.db.clone(), self.engine, settings, Arc::new(EventBus::new(self.engine))))
    }

    async fn rotate(&self, rule_id: &str, new_owner: &str) -> Credentials {
        let mut tx = self.db.begin().await.unwrap();
        let key = api_keys::rotate_for_rule(&mut tx, rule_id, new_owner).await.unwrap();
        tx.commit().await.unwrap();
        key
    }

    async fn schedule_action(&self, tasks: &TaskManager, key: &Credentials) -> String {
        let mut tx = self.db.begin().await.unwrap();
        let id =
            api_keys::schedule_action(&mut tx, tasks, &self.cipher, ACTION, key, &serde_json::json!({"message": "host isolated"})).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn key_is_valid(&self, key: &Credentials) -> bool {
        api_keys::authenticate(&self.db, key).await.unwrap().is_some()
    }

    async fn invalidate(&self, removal_delay: Duration) -> Summary {
        run_once(&self.db, removal_delay, 100).await.unwrap()
    }
}

const ACTION: &str = "test:action";

/// What the test's action does: read its parameters back (decrypting the
/// key), optionally fail its first attempt (the receiving service was down),
/// optionally wait at a gate the test opens, then act as the rule's key.
struct Probe {
    /// Attempts below this one fail (2: the first fails; 0: none do).
    fail_before_attempt: u32,
    wait_at_gate: bool,
    started: Notify,
    gate: Semaphore,
    outcomes: Mutex<Vec<Result<String, String>>>,
}

impl Default for Probe {
    fn default() -> Probe {
        Probe { fail_before_attempt: 0, wait_at_gate: false, started: Notify::new(), gate: Semaphore::new(0), outcomes: Mutex::default() }
    }
}

impl Probe {
    fn outcomes(&self) -> Vec<Result<String, String>> {
        self.outcomes.lock().unwrap().clone()
    }
}

fn register_action(h: &Harness, tasks: &TaskManager, probe: Arc<Probe>) {
    let (db, cipher) = (h.db.clone(), h.cipher.clone());
    let mut definition = TaskDefinition::new(ACTION, "Test action", move |ctx| {
        let (db, cipher, probe) = (db.clone(), cipher.clone(), probe.clone());
        async move {
            let (key, params) = api_keys::load_action(&db, &cipher, &ctx.params).await?;
            assert_eq!(params["message"], "host isolated");
            if ctx.attempt < probe.fail_before_attempt {
                anyhow::bail!("the receiving service answered 503");
            }
            probe.started.notify_one();
            if probe.wait_at_gate {
                probe.gate.acquire().await?.forget();
            }
            let outcome = match api_keys::authenticate(&db, &key).await? {
                Some(user) => Ok(user.username),
                None => Err("the rule's API key was rejected".to_owned()),
            };
            probe.outcomes.lock().unwrap().push(outcome.clone());
            outcome.map(|_| RunOutput::default()).map_err(anyhow::Error::msg)
        }
    });
    definition.retry_base = Duration::ZERO;
    definition.max_concurrency = 4;
    tasks.register(definition);
}

/// Case 1: a rule run is in flight when the rule is saved by someone else.
/// The run read the old key when it started and still needs it.
#[tokio::test]
async fn case_1_a_rule_run_in_flight_keeps_its_key() {
    let h = harness().await;
    let tasks = h.manager();
    let old = api_keys::create_for_rule(&h.db, "rule-1", &h.alice).await.unwrap();
    let current = Arc::new(Mutex::new(old.clone()));
    let probe = Arc::new(Probe { wait_at_gate: true, ..Probe::default() });
    {
        let (db, current, probe) = (h.db.clone(), current.clone(), probe.clone());
        tasks.register(TaskDefinition::new("test:rule", "Test rule", move |_ctx| {
            let (db, probe) = (db.clone(), probe.clone());
            let key = current.lock().unwrap().clone();
            async move {
                anyhow::ensure!(api_keys::authenticate(&db, &key).await?.is_some(), "key rejected at the start");
                probe.started.notify_one();
                probe.gate.acquire().await?.forget();
                let outcome = api_keys::authenticate(&db, &key).await?.map(|u| u.username).ok_or_else(|| "key rejected mid-run".to_owned());
                probe.outcomes.lock().unwrap().push(outcome.clone());
                outcome.map(|_| RunOutput::default()).map_err(anyhow::Error::msg)
            }
        }));
    }
    tasks.ensure_recurring("rule-1", "test:rule", Duration::from_secs(60)).await.unwrap();
    let run = tokio::spawn({
        let tasks = tasks.clone();
        async move { tasks.tick().await }
    });
    probe.started.notified().await;

    let new = h.rotate("rule-1", &h.bob).await;
    *current.lock().unwrap() = new.clone();
    let summary = h.invalidate(HOUR).await;
    assert_eq!((summary.invalidated, summary.waiting), (0, 1), "the old key waits out the removal delay");

    probe.gate.add_permits(1);
    run.await.unwrap();
    assert_eq!(probe.outcomes(), vec![Ok("alice".to_owned())], "the run finished as the user it started as");
    assert!(h.key_is_valid(&new).await);

    // Once the delay has passed the old key goes, and the next run uses the new one.
    assert_eq!(h.invalidate(Duration::ZERO).await.invalidated, 1);
    assert!(!h.key_is_valid(&old).await);
    assert_eq!(api_keys::authenticate(&h.db, &new).await.unwrap().unwrap().username, "bob");
}

/// Case 2: an action is running with the key when the key is replaced.
#[tokio::test]
async fn case_2_a_running_action_keeps_its_key() {
    let h = harness().await;
    let tasks = h.manager();
    let probe = Arc::new(Probe { wait_at_gate: true, ..Probe::default() });
    register_action(&h, &tasks, probe.clone());
    let old = api_keys::create_for_rule(&h.db, "rule-2", &h.alice).await.unwrap();
    h.schedule_action(&tasks, &old).await;
    let run = tokio::spawn({
        let tasks = tasks.clone();
        async move { tasks.tick().await }
    });
    probe.started.notified().await;

    h.rotate("rule-2", &h.bob).await;
    // Even with no removal delay at all, the running action holds the key.
    let summary = h.invalidate(Duration::ZERO).await;
    assert_eq!((summary.invalidated, summary.kept_referenced), (0, 1));

    probe.gate.add_permits(1);
    run.await.unwrap();
    assert_eq!(probe.outcomes(), vec![Ok("alice".to_owned())]);
    assert_eq!(h.invalidate(Duration::ZERO).await.invalidated, 1, "released once the action finished");
    assert!(!h.key_is_valid(&old).await);
}

/// Case 3: actions were scheduled with the key and have not run yet.
#[tokio::test]
async fn case_3_scheduled_actions_keep_their_key() {
    let h = harness().await;
    let tasks = h.manager();
    let probe = Arc::new(Probe::default());
    register_action(&h, &tasks, probe.clone());
    let old = api_keys::create_for_rule(&h.db, "rule-3", &h.alice).await.unwrap();
    h.schedule_action(&tasks, &old).await;
    h.schedule_action(&tasks, &old).await;

    h.rotate("rule-3", &h.bob).await;
    let summary = h.invalidate(Duration::ZERO).await;
    assert_eq!((summary.invalidated, summary.kept_referenced), (0, 1));

    tasks.tick().await;
    assert_eq!(probe.outcomes(), vec![Ok("alice".to_owned()), Ok("alice".to_owned())]);
    assert_eq!(h.invalidate(Duration::ZERO).await.invalidated, 1);
}

/// Case 4: an action failed once and waits for its retry.
#[tokio::test]
async fn case_4_a_retrying_action_keeps_its_key() {
    let h = harness().await;
    let tasks = h.manager();
    let probe = Arc::new(Probe { fail_before_attempt: 2, ..Probe::default() });
    register_action(&h, &tasks, probe.clone());
    let old = api_keys::create_for_rule(&h.db, "rule-4", &h.alice).await.unwrap();
    let task_id = h.schedule_action(&tasks, &old).await;
    tasks.tick().await;
    let (status, attempts, error): (String, i64, Option<String>) =
        sqlx::query_as("select status, attempts, last_error from tasks where id = $1").bind(&task_id).fetch_one(&h.db).await.unwrap();
    assert_eq!((status.as_str(), attempts), ("idle", 1), "waiting for its retry");
    assert_eq!(error.as_deref(), Some("the receiving service answered 503"));

    h.rotate("rule-4", &h.bob).await;
    let summary = h.invalidate(Duration::ZERO).await;
    assert_eq!((summary.invalidated, summary.kept_referenced), (0, 1));

    tasks.tick().await;
    assert_eq!(probe.outcomes(), vec![Ok("alice".to_owned())], "the retry still acts as the rule's owner");
    assert_eq!(h.invalidate(Duration::ZERO).await.invalidated, 1);
}

#[tokio::test]
async fn a_user_request_skips_the_delay_and_an_action_that_gave_up_holds_nothing() {
    let h = harness().await;
    let tasks = h.manager();
    let probe = Arc::new(Probe { fail_before_attempt: u32::MAX, ..Probe::default() });
    register_action(&h, &tasks, probe.clone());

    let deleted = api_keys::create_for_rule(&h.db, "rule-5", &h.alice).await.unwrap();
    let mut tx = h.db.begin().await.unwrap();
    api_keys::retire_for_rule(&mut tx, "rule-5", InvalidationReason::UserRequest).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(h.invalidate(HOUR).await.invalidated, 1, "a user's request waits for no delay");
    assert!(!h.key_is_valid(&deleted).await);

    // An action that runs out of attempts no longer holds its key.
    let key = api_keys::create_for_rule(&h.db, "rule-6", &h.alice).await.unwrap();
    let task_id = h.schedule_action(&tasks, &key).await;
    sqlx::query("update tasks set attempts = 2 where id = $1").bind(&task_id).execute(&h.db).await.unwrap();
    tasks.tick().await; // attempt 3 of 3 fails
    let status: String = sqlx::query_scalar("select status from tasks where id = $1").bind(&task_id).fetch_one(&h.db).await.unwrap();
    assert_eq!(status, "failed");
    // Kept for the record for a week, then removed.
    let week = warden_server::tasks::failed_tasks_cleanup::KEEP_FOR.as_millis() as i64;
    assert_eq!(warden_server::store::tasks::delete_failed_before(&h.db, db::now_ms() - week).await.unwrap(), 0);
    assert_eq!(warden_server::store::tasks::delete_failed_before(&h.db, db::now_ms() + 1).await.unwrap(), 1);
    let params: i64 = sqlx::query_scalar("select count(*) from action_task_params").fetch_one(&h.db).await.unwrap();
    assert_eq!(params, 0, "the parameters (and the encrypted secret) left with it");
    h.rotate("rule-6", &h.bob).await;
    assert_eq!(h.invalidate(Duration::ZERO).await.invalidated, 1);
}

#[tokio::test]
async fn the_secret_is_stored_encrypted_and_the_key_id_in_clear() {
    let h = harness().await;
    let tasks = h.manager();
    let key = api_keys::create_for_rule(&h.db, "rule-7", &h.alice).await.unwrap();
    h.schedule_action(&tasks, &key).await;
    let (key_id, secret): (String, String) =
        sqlx::query_as("select api_key_id, api_key_secret from action_task_params").fetch_one(&h.db).await.unwrap();
    assert_eq!(key_id, key.id);
    assert!(!secret.contains(&key.secret));
    let stored_hash: String = sqlx::query_scalar("select secret_hash from api_keys where id = $1").bind(&key.id).fetch_one(&h.db).await.unwrap();
    assert!(!stored_hash.contains(&key.secret));
}

fn register_counter(tasks: &TaskManager, runs: Arc<Mutex<HashMap<String, u32>>>) {
    let mut definition = TaskDefinition::new("test:count", "Counter", move |ctx| {
        let runs = runs.clone();
        async move {
            *runs.lock().unwrap().entry(ctx.id).or_default() += 1;
            tokio::task::yield_now().await;
            Ok(RunOutput::default())
        }
    });
    definition.max_concurrency = 3;
    tasks.register(definition);
}

/// Two nodes racing for the same rows: every task runs exactly once.
#[tokio::test]
async fn two_nodes_never_run_a_task_twice() {
    let h = harness().await;
    let (a, b) = (h.manager(), h.manager());
    let runs = Arc::new(Mutex::new(HashMap::new()));
    register_counter(&a, runs.clone());
    register_counter(&b, runs.clone());
    for _ in 0..30 {
        a.schedule(&h.db, "test:count", &serde_json::json!({}), 0).await.unwrap();
    }
    let remaining = || async { sqlx::query_scalar::<_, i64>("select count(*) from tasks").fetch_one(&h.db).await.unwrap() };
    while remaining().await > 0 {
        tokio::join!(a.tick(), b.tick());
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 30);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
}

/// A claim whose lease ran out (its node died) is taken over; a live lease
/// is not.
#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_live_one_is_not() {
    let h = harness().await;
    let tasks = h.manager();
    let runs = Arc::new(Mutex::new(HashMap::new()));
    register_counter(&tasks, runs.clone());
    let dead = tasks.schedule(&h.db, "test:count", &serde_json::json!({}), 0).await.unwrap();
    let alive = tasks.schedule(&h.db, "test:count", &serde_json::json!({}), 0).await.unwrap();
    let now = db::now_ms();
    for (id, lease_until) in [(&dead, now - 1), (&alive, now + 60_000)] {
        sqlx::query("update tasks set status = 'running', owner = 'another-node', lease_until = $2 where id = $1")
            .bind(id)
            .bind(lease_until)
            .execute(&h.db)
            .await
            .unwrap();
    }
    tasks.tick().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.get(&dead), Some(&1));
    assert_eq!(runs.get(&alive), None);
    let owner: String = sqlx::query_scalar("select owner from tasks where id = $1").bind(&alive).fetch_one(&h.db).await.unwrap();
    assert_eq!(owner, "another-node");
}

/// Shutdown stops claiming and waits for running tasks up to its bound; a run
/// still going then is stopped and its claim handed back at once. "Run now"
/// on a running task is refused.
#[tokio::test]
async fn shutdown_hands_back_what_does_not_finish_in_time() {
    let h = harness().await;
    let settings = TaskSettings {
        poll_interval: Duration::from_secs(1),
        lease: Duration::from_secs(30),
        max_workers: 2,
        shutdown_timeout: Duration::from_millis(200),
    };
    let tasks = Arc::new(TaskManager::new(h.db.clone(), h.engine, settings, Arc::new(EventBus::new(h.engine))));
    let probe = Arc::new(Probe::default());
    {
        let probe = probe.clone();
        tasks.register(TaskDefinition::new("test:slow", "Slow", move |_ctx| {
            let probe = probe.clone();
            async move {
                probe.started.notify_one();
                probe.gate.acquire().await?.forget();
                Ok(RunOutput::default())
            }
        }));
    }
    tasks.ensure_recurring("slow", "test:slow", Duration::from_secs(60)).await.unwrap();
    let run = tokio::spawn({
        let tasks = tasks.clone();
        async move { tasks.tick().await }
    });
    probe.started.notified().await;
    let refused = tasks.run_soon("slow").await.unwrap_err();
    assert_eq!(refused.status(), reqwest::StatusCode::CONFLICT);

    tasks.shutdown().await;
    run.await.unwrap();
    let (status, owner, runs): (String, Option<String>, i64) =
        sqlx::query_as("select status, owner, runs from tasks where id = 'slow'").fetch_one(&h.db).await.unwrap();
    assert_eq!((status.as_str(), owner, runs), ("idle", None, 0), "handed back, not recorded as a run");
    tasks.tick().await;
    assert_eq!(sqlx::query_scalar::<_, String>("select status from tasks where id = 'slow'").fetch_one(&h.db).await.unwrap(), "idle");
    assert!(probe.started.notified().now_or_never().is_none(), "a stopping node claims nothing");
}

/// Saving a rule as its current owner keeps its key; saving it as someone
/// else rotates the key and queues the old one.
#[tokio::test]
async fn a_rule_key_rotates_only_when_the_owner_changes() {
    let h = harness().await;
    let save = |by: String| {
        let db = h.db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let key = api_keys::rule_saved_by(&mut tx, "rule-8", &by).await.unwrap();
            tx.commit().await.unwrap();
            key
        }
    };
    let first = save(h.alice.clone()).await.expect("a first save creates the key");
    assert!(save(h.alice.clone()).await.is_none(), "same owner: same key");
    let queued = || async { sqlx::query_scalar::<_, i64>("select count(*) from api_key_pending_invalidation").fetch_one(&h.db).await.unwrap() };
    assert_eq!(queued().await, 0);
    let second = save(h.bob.clone()).await.expect("new owner: new key");
    assert_eq!(queued().await, 1);
    assert!(h.key_is_valid(&first).await, "queued, not invalidated in place");
    assert_eq!(api_keys::authenticate(&h.db, &second).await.unwrap().unwrap().username, "bob");
}

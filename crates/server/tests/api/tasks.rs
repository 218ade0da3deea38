//! The task manager through the API: health, run now, and a `warden` killed
//! with SIGKILL in the middle of a run.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::AnyPool;

use crate::helpers::{Options, TestApp, assert_error, eventually, spawn_app, spawn_app_with};

async fn health(app: &TestApp, client: &reqwest::Client) -> Value {
    let response = client.get(app.url("api/task_manager/_health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn task<'a>(health: &'a Value, id: &str) -> &'a Value {
    health["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("no task {id} in {health}"))
}

#[tokio::test]
async fn health_lists_the_recurring_tasks_and_run_now_runs_one() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer").await;
    let platform = app.signed_in("platform").await;

    // Both recurring tasks run once at startup.
    eventually("both tasks ran once", || async {
        health(&app, &viewer).await["tasks"].as_array().unwrap().iter().all(|t| t["runs"].as_i64() >= Some(1))
    })
    .await;
    let report = health(&app, &viewer).await;
    assert!(report["id"].as_str().unwrap().starts_with("warden-"));
    assert_eq!(report["status"], "OK");
    let invalidation = task(&report, "api_key_invalidation");
    assert_eq!(invalidation["title"], "API key invalidation");
    assert_eq!(invalidation["interval_ms"], 300_000);
    assert_eq!(invalidation["status"], "idle");
    assert!(invalidation["last_result"].as_str().unwrap().starts_with("invalidated 0"));
    assert!(invalidation["next_run_at"].as_i64().unwrap() > invalidation["last_run_at"].as_i64().unwrap());
    assert_eq!(task(&report, "sessions_cleanup")["interval_ms"], 600_000);

    let runs = invalidation["runs"].as_i64().unwrap();
    let response = platform.post(app.url("internal/task_manager/tasks/api_key_invalidation/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    eventually("the task ran again", || async { task(&health(&app, &viewer).await, "api_key_invalidation")["runs"].as_i64() == Some(runs + 1) })
        .await;

    let response = platform.post(app.url("internal/task_manager/tasks/no-such-task/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    let message = assert_error(response, StatusCode::NOT_FOUND).await;
    assert!(message.contains("no-such-task"), "{message}");
    let response = viewer.post(app.url("internal/task_manager/tasks/api_key_invalidation/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

const KEYS: i64 = 1500;

async fn count(db: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(db).await.unwrap()
}

/// Queues `KEYS` keys of the demo admin, long past their removal delay.
async fn queue_keys(db: &AnyPool) {
    let admin: String = sqlx::query_scalar("select id from users where username = 'admin'").fetch_one(db).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    for i in 0..KEYS {
        let id = format!("queued-{i:05}");
        sqlx::query("insert into api_keys (id, name, user_id, key_type, rule_id, secret_hash, created_at) values ($1, $1, $2, 'rule', $1, 'x', 1)")
            .bind(&id)
            .bind(&admin)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("insert into api_key_pending_invalidation (api_key_id, created_at, reason) values ($1, 1, 'rotated')")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_task_killed_mid_run_runs_again_after_restart_and_completes_once() {
    let args: Vec<String> =
        ["--api-key-invalidation-batch-size", "1", "--task-lease", "2s", "--task-poll-interval", "100ms"].iter().map(|s| (*s).to_owned()).collect();
    let mut first = spawn_app_with(Options { extra_args: args.clone(), ..Options::default() }).await;
    let platform = first.signed_in("platform").await;
    eventually("the startup run finished", || async { task(&health(&first, &platform).await, "api_key_invalidation")["runs"] == 1 }).await;
    let db = first.db().await;
    queue_keys(&db).await;

    // One key per transaction: the run takes a while. Kill it half-way.
    let response =
        platform.post(first.url("internal/task_manager/tasks/api_key_invalidation/_run_soon")).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    eventually("the run is under way", || async { count(&db, "select count(*) from api_keys where invalidated_at is not null").await > 0 }).await;
    first.kill();
    if first.database_url.starts_with("postgres") {
        // A COMMIT the dead node sent just before it died still lands: count once its sessions are gone.
        eventually("the dead node's sessions ended", || async {
            count(&db, "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'")
                .await
                == 0
        })
        .await;
    }

    let done_before = count(&db, "select count(*) from api_keys where invalidated_at is not null").await;
    let queued_before = count(&db, "select count(*) from api_key_pending_invalidation").await;
    assert!(queued_before > 0, "the kill came after the run finished; the test needs a larger queue");
    assert_eq!(done_before + queued_before, KEYS, "every key is either invalidated and dequeued, or still queued");
    assert_eq!(
        count(&db, "select count(*) from api_key_pending_invalidation q join api_keys k on k.id = q.api_key_id where k.invalidated_at is not null")
            .await,
        0
    );
    let status: String = sqlx::query_scalar("select status from tasks where id = 'api_key_invalidation'").fetch_one(&db).await.unwrap();
    assert_eq!(status, "running", "the dead node still holds the task");
    let stamps_before: Vec<(String, i64)> =
        sqlx::query_as("select id, invalidated_at from api_keys where invalidated_at is not null order by id").fetch_all(&db).await.unwrap();

    // A new node on the same database takes the task once the lease lapses.
    let second = spawn_app_with(Options { extra_args: args, database_url: Some(first.database_url.clone()), ..Options::default() }).await;
    let platform = second.signed_in("platform").await;
    eventually("the task ran to the end", || async {
        let report = health(&second, &platform).await;
        let task = task(&report, "api_key_invalidation");
        task["status"] == "idle" && task["runs"] == 2
    })
    .await;
    assert_eq!(count(&db, "select count(*) from api_key_pending_invalidation").await, 0);
    assert_eq!(count(&db, "select count(*) from api_keys where invalidated_at is not null").await, KEYS);
    let report = health(&second, &platform).await;
    let finished = task(&report, "api_key_invalidation");
    assert_eq!(
        finished["last_result"].as_str().unwrap(),
        format!("invalidated {}, kept 0 still in use, 0 waiting for the removal delay", KEYS - done_before)
    );
    let mut stamps_after: Vec<(String, i64)> =
        sqlx::query_as("select id, invalidated_at from api_keys where invalidated_at is not null order by id").fetch_all(&db).await.unwrap();
    stamps_after.retain(|(id, _)| stamps_before.iter().any(|(before, _)| before == id));
    assert_eq!(stamps_after, stamps_before, "keys invalidated before the kill were not invalidated again");
}

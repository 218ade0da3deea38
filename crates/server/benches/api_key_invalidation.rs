//! One run of the `api_key_invalidation` task over 10,000 queued keys, 1,000
//! of which are still referenced by pending actions. Not a test: it prints
//! the figures recorded in docs/perf.md, and fails only if the run did not
//! invalidate exactly the 9,000 keys it should have.
//!
//!     cargo bench -p warden-server --bench api_key_invalidation
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p warden-server --bench api_key_invalidation

use std::time::{Duration, Instant};

use warden_core::authz::Role;
use warden_server::db::{self, now_ms};
use warden_server::tasks::api_key_invalidation::run_once;

const QUEUED: usize = 10_000;
const REFERENCED: usize = 1_000;
const BATCH: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let db = db::connect(&url).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let owner = warden_server::store::users::insert(&db, &format!("bench-{run}"), None, "x", &[Role::RuleAuthor]).await?;

    let seeded = Instant::now();
    let queued_at = now_ms() - 2 * 3_600_000;
    let mut tx = db.begin().await?;
    for i in 0..QUEUED {
        let key = format!("{run}-{i:05}");
        sqlx::query("insert into api_keys (id, name, user_id, key_type, rule_id, secret_hash, created_at) values ($1, $1, $2, 'rule', $1, 'x', $3)")
            .bind(&key)
            .bind(&owner)
            .bind(queued_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("insert into api_key_pending_invalidation (api_key_id, created_at, reason) values ($1, $2, 'rotated')")
            .bind(&key)
            .bind(queued_at)
            .execute(&mut *tx)
            .await?;
        if i < REFERENCED {
            // A pending action that still holds this key.
            let task = format!("{key}-task");
            sqlx::query("insert into tasks (id, task_type, run_at, created_at) values ($1, 'actions:execute', $2, $2)")
                .bind(&task)
                .bind(now_ms() + 3_600_000)
                .execute(&mut *tx)
                .await?;
            sqlx::query("insert into action_task_params (id, task_id, api_key_id, api_key_secret, created_at) values ($1, $2, $3, 'sealed', $4)")
                .bind(format!("{key}-params"))
                .bind(&task)
                .bind(&key)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    println!("engine {}, seeded {QUEUED} queued keys ({REFERENCED} referenced) in {:.2?}", db::Engine::of_url(&url).name(), seeded.elapsed());

    let started = Instant::now();
    let summary = run_once(&db, Duration::from_secs(3600), BATCH).await?;
    let took = started.elapsed();
    println!(
        "one run: {took:.2?} (batches of {BATCH}): invalidated {}, kept {} referenced, {} waiting",
        summary.invalidated, summary.kept_referenced, summary.waiting
    );
    anyhow::ensure!(summary.invalidated == (QUEUED - REFERENCED) as u64, "expected exactly {} invalidated", QUEUED - REFERENCED);
    anyhow::ensure!(summary.kept_referenced == REFERENCED as i64, "expected {REFERENCED} kept");

    let started = Instant::now();
    let again = run_once(&db, Duration::from_secs(3600), BATCH).await?;
    println!("a second run with only referenced keys left: {:.2?} (invalidated {})", started.elapsed(), again.invalidated);
    db.close().await;
    Ok(())
}

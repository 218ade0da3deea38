//! One run of the `fleet:cleanup_agents` task over 10,000 agents: 5,000
//! replaced and 2,500 inactive for 30 days (removed), 2,500 online (kept),
//! each with 5 activity-log lines and an action. Not a test: it prints the
//! figures recorded in docs/perf.md, and fails only if the run did not remove
//! exactly the 7,500 agents it should have.
//!
//!     cargo bench -p warden-server --bench cleanup_agents
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p warden-server --bench cleanup_agents

use std::time::{Duration, Instant};

use warden_server::Application;
use warden_server::config::{Config, Secret};
use warden_server::db::now_ms;
use warden_server::fleet::cleanup;
use warden_server::store::fleet::{self as store, EventRow, NewAgent, PolicyWrite};

const AGENTS: usize = 10_000;
const REPLACED: usize = 5_000;
const INACTIVE: usize = 2_500;
const DAY: i64 = 86_400_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let config = Config {
        database_url: url.clone(),
        listen: "127.0.0.1:0".parse()?,
        encryption_key: Some(Secret("the bench's encryption key of 32 characters or more".to_owned())),
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let state = app.state();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let now = now_ms();

    let seeded = Instant::now();
    let policy = format!("bench-{run}");
    let write = PolicyWrite {
        id: &policy,
        name: &policy,
        namespace: "default",
        description: None,
        is_managed: false,
        inactivity_timeout: 1_209_600,
        keep_agent_id_on_reenroll: false,
        now,
    };
    store::insert_policy(&state.db, write).await?;
    let mut tx = state.db.begin().await?;
    let mut lines = Vec::new();
    for i in 0..AGENTS {
        let id = format!("{run}-{i:05}");
        let host = format!("host-{i:05}");
        let seen = if (REPLACED..REPLACED + INACTIVE).contains(&i) { now - 30 * DAY } else { now - 1_000 };
        let agent = NewAgent {
            id: &id,
            policy_id: &policy,
            policy_revision: 1,
            agent_type: "PERMANENT",
            enrolled_at: seen,
            local_metadata: "{}",
            user_provided_metadata: "{}",
            tags: "[]",
            hostname: &host,
            version: "8.15.2",
            access_api_key_id: &id,
            access_key_hash: "x",
            host_id: Some(&host),
            replace_token_hash: None,
        };
        store::insert_agent(&mut *tx, agent).await?;
        sqlx::query("update agents set last_checkin = $2, replaced_at = $3, replaced_by = $4 where id = $1")
            .bind(&id)
            .bind(seen)
            .bind((i < REPLACED).then_some(now - 30 * DAY))
            .bind((i < REPLACED).then(|| format!("{run}-{:05}", AGENTS - 1 - i % INACTIVE)))
            .execute(&mut *tx)
            .await?;
        store::insert_action(&mut *tx, &format!("{id}-action"), &id, "UNENROLL", "{}", seen, None).await?;
        for n in 0..5 {
            lines.push(EventRow {
                id: format!("{id}-{n}"),
                agent_id: id.clone(),
                kind: "enrolled".into(),
                message: "Enrolled".into(),
                actor: None,
                created_at: seen + n,
            });
        }
        if lines.len() >= 5_000 {
            store::insert_events_many(&mut tx, state.engine, &std::mem::take(&mut lines)).await?;
        }
    }
    store::insert_events_many(&mut tx, state.engine, &lines).await?;
    tx.commit().await?;
    println!(
        "engine {}, seeded {AGENTS} agents ({REPLACED} replaced, {INACTIVE} inactive, 5 log lines and an action each) in {:.2?}",
        state.engine.name(),
        seeded.elapsed()
    );

    let started = Instant::now();
    let removed = cleanup::run(state, Duration::from_secs(7 * 86_400)).await?;
    println!("one run: {:.2?}: removed {} inactive and {} replaced", started.elapsed(), removed.inactive, removed.replaced);
    anyhow::ensure!(removed == cleanup::Removed { inactive: INACTIVE, replaced: REPLACED }, "expected {INACTIVE} inactive and {REPLACED} replaced");

    let started = Instant::now();
    let again = cleanup::run(state, Duration::from_secs(7 * 86_400)).await?;
    println!("a second run with nothing due ({} agents left): {:.2?}", AGENTS - REPLACED - INACTIVE, started.elapsed());
    anyhow::ensure!(again == cleanup::Removed::default(), "nothing more to remove");
    Ok(())
}

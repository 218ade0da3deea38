//! The response actions history with 1,000,000 actions: p50/p95 of one page
//! with its `total`, as the list route computes it (the page's SQL, its
//! count, its targets, and each action's details). Not a test: it prints the
//! figures recorded in docs/perf.md.
//!
//!     cargo bench -p warden-server --bench response_actions_history
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p warden-server --bench response_actions_history

use std::time::{Duration, Instant};

use warden_server::db::{self, Engine, now_ms};
use warden_server::response_actions::details_of;
use warden_server::store::response_actions::{ListFilter, list, targets_of};

const ACTIONS: i64 = 1_000_000;
const AGENTS: i64 = 100;
/// Spread over a year, newest first.
const SPACING_MS: i64 = 31_536;
const ROUNDS: usize = 60;
const WARM_UP: usize = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let db = db::connect(&url).await?;
    let engine = Engine::of_url(&url);
    let now = now_ms();
    let seeded = Instant::now();
    sqlx::query("delete from response_action_targets where action_id like 'bench-%'").execute(&db).await?;
    sqlx::query("delete from response_actions where id like 'bench-%'").execute(&db).await?;
    let numbers = match engine {
        Engine::Sqlite => "with recursive n(i) as (select $1 union all select i + 1 from n where i < $2)",
        Engine::Postgres => "with n(i) as (select generate_series($1::bigint, $2::bigint))",
    };
    let batch = 100_000;
    for start in (0..ACTIONS).step_by(batch as usize) {
        let mut tx = db.begin().await?;
        let actions = format!(
            "{numbers} insert into response_actions (id, command, agent_type, parameters, created_by, created_at, expires_at, status, origin)
             select 'bench-' || i,
                    case i % 4 when 0 then 'isolate' when 1 then 'execute' when 2 then 'running-processes' else 'get-file' end,
                    'endpoint', '{{}}', 'user-' || (i % 20), $3 - i * {SPACING_MS}, $3 - i * {SPACING_MS} + 1209600000,
                    case i % 10 when 0 then 'pending' when 1 then 'failed' when 2 then 'failed' else 'successful' end, 'manual'
             from n"
        );
        sqlx::query(sqlx::AssertSqlSafe(actions)).bind(start).bind(start + batch - 1).bind(now).execute(&mut *tx).await?;
        let targets = format!(
            "{numbers} insert into response_action_targets (action_id, agent_id, created_at, host_name, cancel_supported, completed_at, was_successful)
             select 'bench-' || i, 'bench-agent-' || ((i / 7) % {AGENTS}), $3 - i * {SPACING_MS}, 'host-' || ((i / 7) % {AGENTS}), 1,
                    case when i % 10 = 0 then null else $3 - i * {SPACING_MS} + 5000 end, case when i % 10 > 2 then 1 else 0 end
             from n"
        );
        sqlx::query(sqlx::AssertSqlSafe(targets)).bind(start).bind(start + batch - 1).bind(now).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    if engine == Engine::Postgres {
        // As autovacuum would leave them after a day's writes.
        sqlx::query("vacuum analyze response_actions").execute(&db).await?;
        sqlx::query("vacuum analyze response_action_targets").execute(&db).await?;
    } else {
        sqlx::query("analyze").execute(&db).await?;
    }
    println!("seeded {ACTIONS} actions on {AGENTS} agents in {:.1} s ({url})", seeded.elapsed().as_secs_f64());

    let filtered = || ListFilter {
        agent_ids: vec!["bench-agent-7".into()],
        statuses: vec!["failed".into()],
        start: Some(now - 180 * 86_400_000),
        end: Some(now),
        ..ListFilter::default()
    };
    let cases: [(&str, ListFilter, i64); 5] = [
        ("no filter, page 1", ListFilter::default(), 1),
        ("no filter, page 100", ListFilter::default(), 100),
        ("status + agent + 180 days, page 1", filtered(), 1),
        ("status + agent + 180 days, page 100", filtered(), 100),
        ("pending, page 1", ListFilter { statuses: vec!["pending".into()], ..ListFilter::default() }, 1),
    ];
    println!("| query (pageSize 10, with total) | total | p50 | p95 |");
    println!("|---|---|---|---|");
    for (name, filter, page) in cases {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut total = 0;
        // The first rounds warm the caches and settle the query plan; not counted.
        for round in 0..ROUNDS + WARM_UP {
            let started = Instant::now();
            let (rows, count) = list(&db, engine, &filter, now, 10, (page - 1) * 10).await?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let targets = targets_of(&db, engine, &ids, &[]).await?;
            let details: Vec<_> = rows
                .into_iter()
                .filter_map(|row| {
                    let mine: Vec<_> = targets.iter().filter(|t| t.action_id == row.id).cloned().collect();
                    details_of(row, &mine, now)
                })
                .collect();
            if round >= WARM_UP {
                times.push(started.elapsed());
            }
            anyhow::ensure!(details.len() == 10 || count < page * 10, "{name}: a short page");
            total = count;
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!("| {name} | {total} | {} | {} |", ms(at(0.5)), ms(at(0.95)));
    }
    if std::env::var("BENCH_KEEP").is_ok() {
        println!("kept: {url}");
        std::mem::forget(dir);
        return Ok(());
    }
    sqlx::query("delete from response_action_targets where action_id like 'bench-%'").execute(&db).await?;
    sqlx::query("delete from response_actions where id like 'bench-%'").execute(&db).await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

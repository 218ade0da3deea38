//! The database: one pool through sqlx's `Any` driver, so one set of queries
//! and migrations serves SQLite (embedded default) and PostgreSQL (several
//! nodes). `Any` was chosen over a generic store layer because Warden's SQL is
//! portable (`$n` placeholders, `returning`, `on conflict`), which keeps one
//! copy of every query; `docs/storage.md` lists the rules that keep it so.

use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub type Db = AnyPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of_url(url: &str) -> Engine {
        if url.starts_with("sqlite:") { Engine::Sqlite } else { Engine::Postgres }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// Opens the pool (creating the SQLite file and its folder if needed) and runs
/// the migrations.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let engine = Engine::of_url(url);
    let url = match engine {
        Engine::Sqlite => prepare_sqlite_url(url)?,
        Engine::Postgres => url.to_owned(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if engine == Engine::Sqlite { 8 } else { 16 })
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                    // WAL lets readers work beside the one writer; busy_timeout
                    // makes a second writer wait instead of failing.
                    conn.execute("pragma journal_mode = wal; pragma synchronous = normal; pragma busy_timeout = 5000; pragma foreign_keys = on;")
                        .await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| "connecting to the database")?;
    MIGRATOR.run(&pool).await.context("running database migrations")?;
    Ok(pool)
}

/// `sqlite://data/warden.db` → create `data/`, and open read-write-create.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let file = path.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        anyhow::bail!("database_url needs a SQLite file (an in-memory database would be lost and not shared between connections)");
    }
    if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &Db) -> sqlx::Result<()> {
    sqlx::query_scalar::<_, i64>("select 1").fetch_one(db).await.map(|_| ())
}

/// Milliseconds since the epoch: how every time is stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// A transaction that reads and then writes. On SQLite it takes the write
/// lock first (`begin immediate`): a deferred one that read an older
/// snapshot fails at once with SQLITE_BUSY when it tries to write after
/// another writer committed, whatever `busy_timeout` says.
pub async fn begin_write(db: &Db, engine: Engine) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
    match engine {
        Engine::Sqlite => db.begin_with("begin immediate").await,
        Engine::Postgres => db.begin().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_open_read_write_create() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/w.db", dir.path().display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
    }

    #[test]
    fn engine_from_url() {
        assert_eq!(Engine::of_url("sqlite://x.db"), Engine::Sqlite);
        assert_eq!(Engine::of_url("postgres://localhost/test"), Engine::Postgres);
    }
}

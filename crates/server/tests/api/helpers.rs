use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const DEMO_PASSWORD: &str = "warden-demo";

/// A running `warden serve --demo` on a free port with a fresh database.
pub struct TestApp {
    pub address: String,
    pub base_path: String,
    pub database_url: String,
    pub spa_dir: PathBuf,
    process: Child,
    _dir: tempfile::TempDir,
}

#[derive(Default)]
pub struct Options {
    pub public_base_path: Option<&'static str>,
    pub trusted_proxies: Option<&'static str>,
    pub extra_args: Vec<String>,
    /// Reuse another app's database instead of a fresh one.
    pub database_url: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match options.database_url {
        Some(url) => url,
        None => fresh_database(dir.path()).await,
    };
    let spa_dir = dir.path().join("dist");
    std::fs::create_dir_all(&spa_dir).expect("spa dir");
    std::fs::write(
        spa_dir.join("index.html"),
        "<!doctype html><html><head><base href=\"/\" /><title>Warden</title></head><body>test shell</body></html>",
    )
    .expect("index.html");
    std::fs::write(spa_dir.join("app.js"), "console.log('warden')").expect("app.js");

    let mut command = warden_command(&database_url);
    command.args(["serve", "--demo", "--listen", "127.0.0.1:0", "--spa-dir"]).arg(&spa_dir);
    if let Some(base) = options.public_base_path {
        command.args(["--public-base-path", base]);
    }
    if let Some(proxies) = options.trusted_proxies {
        command.args(["--trusted-proxy", proxies]);
    }
    command.args(&options.extra_args);
    let mut process = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start warden");

    // Warden prints the address it bound (port 0 → a free port).
    let stdout = process.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Warden is serving ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("warden did not start within 60 s");
    let base_path = options.public_base_path.unwrap_or("").trim_end_matches('/').to_owned();
    let address = url.trim_end_matches('/').trim_end_matches(&base_path).to_owned();
    TestApp { address, base_path, database_url, spa_dir, process, _dir: dir }
}

/// `warden` with a clean environment (no WARDEN_* from the caller).
pub fn warden_command(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WARDEN_") {
            command.env_remove(name);
        }
    }
    command.env("WARDEN_DATABASE_URL", database_url).env("RUST_LOG", "warn");
    command
}

/// A SQLite file in `dir`, or a new PostgreSQL database when
/// `TEST_POSTGRES_URL` names a server.
pub async fn fresh_database(dir: &Path) -> String {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(server) => {
            let server = server.trim_end_matches('/');
            let name = format!("warden_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::any::install_default_drivers();
            let mut admin =
                <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres")).await.expect("connect to the PostgreSQL server");
            sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(format!("create database {name}"))).await.expect("create test database");
            format!("{server}/{name}")
        }
        Err(_) => format!("sqlite://{}/warden.db", dir.display()),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl TestApp {
    /// SIGKILL: the process gets no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// A pool on this app's database, to arrange data and check it directly.
    pub async fn db(&self) -> sqlx::AnyPool {
        warden_server::db::connect(&self.database_url).await.expect("connect to the test database")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}/{}", self.address, self.base_path, path.trim_start_matches('/'))
    }

    pub fn client(&self) -> Client {
        Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
    }

    pub async fn login_response(&self, client: &Client, username: &str, password: &str) -> Response {
        client
            .post(self.url("internal/security/login"))
            .header("kbn-xsrf", "test")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// A client signed in as `username` (a demo user).
    pub async fn signed_in(&self, username: &str) -> Client {
        let client = self.client();
        let response = self.login_response(&client, username, DEMO_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        client
    }

    /// Runs `warden ARGS…` against this app's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        warden_command(&self.database_url).args(args).output().expect("run warden")
    }
}

/// Waits (polling, bounded) until `check` holds; panics with `what` if it never does.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a Kibana-shaped error body and returns its message.
pub async fn assert_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status, "status");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["statusCode"], status.as_u16(), "{body}");
    assert_eq!(body["error"], status.canonical_reason().unwrap_or_default(), "{body}");
    body["message"].as_str().expect("message").to_owned()
}

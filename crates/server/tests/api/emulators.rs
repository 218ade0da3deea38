//! The emulators of outside systems (`warden-mde-emulator`,
//! `warden-cloud-emulator`, built beside `warden`) as the tests start them:
//! each its own process and port, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub struct Emulator {
    /// `http://127.0.0.1:PORT`: for MDE both the OAuth server URL and the API URL.
    pub url: String,
    process: Child,
    _dir: tempfile::TempDir,
}

fn binary(name: &str) -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_warden")).with_file_name(name);
    assert!(binary.exists(), "{} is missing: run `cargo build -p {name}` first (make test does)", binary.display());
    binary
}

impl Emulator {
    /// Starts the MDE emulator with `config` (TOML) on a free port.
    pub fn start(config: &str) -> Emulator {
        Emulator::launch("warden-mde-emulator", "MDE emulator listening on ", Some(config))
    }

    /// Starts the cloud permission-check emulator on a free port, with its
    /// demo principals (`crates/cloud-emulator/demo.toml`).
    pub fn cloud() -> Emulator {
        Emulator::launch("warden-cloud-emulator", "Cloud emulator listening on ", None)
    }

    /// Runs `name --listen 127.0.0.1:0 [--config FILE]` and reads the URL it
    /// prints after `banner`.
    fn launch(name: &str, banner: &'static str, config: Option<&str>) -> Emulator {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(binary(name));
        command.args(["--listen", "127.0.0.1:0"]);
        if let Some(config) = config {
            let path = dir.path().join("emulator.toml");
            std::fs::write(&path, config).expect("emulator config");
            command.arg("--config").arg(&path);
        }
        let mut process =
            command.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap_or_else(|err| panic!("start {name}: {err}"));
        let stdout = process.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix(banner) {
                    let _ = tx.send(url.trim().trim_end_matches('/').to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{name} did not start within 30 s"));
        Emulator { url, process, _dir: dir }
    }

    /// Stops it, as an outage would.
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// `POST /_emulator/fail-next`: the next API calls fail as `fault` says.
    pub async fn fail_next(&self, fault: Value) {
        self.admin("fail-next", fault).await;
    }

    /// `POST /_emulator/ROUTE` with `body` (fail-next, grant, revoke, ...).
    pub async fn admin(&self, route: &str, body: Value) {
        let response = reqwest::Client::new().post(format!("{}/_emulator/{route}", self.url)).json(&body).send().await.expect(route);
        assert!(response.status().is_success(), "{route}: {}", response.status());
    }

    /// `GET /_emulator/stats`.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_emulator/stats", self.url)).await.expect("stats").json().await.expect("stats JSON")
    }

    /// One machine as MDE's API shows it (with a token of the test's tenant).
    pub async fn machine(&self, tenant: &str, client: &str, secret: &str, id: &str) -> Value {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .form(&[("grant_type", "client_credentials"), ("client_id", client), ("client_secret", secret), ("scope", "x/.default")])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token JSON");
        let bearer = token["access_token"].as_str().expect("access_token").to_owned();
        http.get(format!("{}/api/machines/{id}", self.url)).bearer_auth(bearer).send().await.expect("machine").json().await.expect("machine JSON")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

//! The binary as Warden's tests and demos start it: the first stdout line
//! names the port, and a client gets a token and lists machines over real
//! HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_warden-mde-emulator");

/// Kills the emulator when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange; returns the status and the body.
fn http(address: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[test]
fn the_binary_prints_its_address_and_serves_the_demo_tenant() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/demo.toml");
    let child = Command::new(BIN).args(["--listen", "127.0.0.1:0", "--config", config]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut running = Running(child);
    let mut line = String::new();
    BufReader::new(running.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("MDE emulator listening on http://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = url.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let form = "grant_type=client_credentials&client_id=warden-demo-client&client_secret=warden-demo-secret&scope=https%3A%2F%2Fapi.securitycenter.microsoft.com%2F.default";
    let (status, body) = http(
        url,
        &format!(
            "POST /warden-demo-tenant/oauth2/v2.0/token HTTP/1.1\r\nHost: {url}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = token["access_token"].as_str().unwrap();

    let (status, body) =
        http(url, &format!("GET /api/machines HTTP/1.1\r\nHost: {url}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"));
    assert_eq!(status, 200, "{body}");
    let machines: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(machines["value"].as_array().unwrap().len(), 3);
    assert_eq!(machines["@odata.context"], format!("http://{url}/api/$metadata#Machines"));
}

#[test]
fn help_names_the_routes_and_a_bad_config_is_refused() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for needle in
        ["--listen", "--config", "/api/machines/{id}/runliveresponse", "GetLiveResponseResultDownloadLink", "/_emulator/fail-next", "action_delay"]
    {
        assert!(text.contains(needle), "--help lacks {needle}");
    }

    let dir = std::env::temp_dir().join(format!("mde-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\naction_delay = \"soon\"\n").unwrap();
    let output = Command::new(BIN).args(["--listen", "127.0.0.1:0", "--config"]).arg(&bad).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a duration"));
    assert!(output.stdout.is_empty());
}

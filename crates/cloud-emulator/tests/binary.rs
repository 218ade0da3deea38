//! The binary as Warden's tests and demos start it: the first stdout line
//! names the port, and a simulate call over real HTTP answers for the demo
//! principals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_warden-cloud-emulator");

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
fn the_binary_prints_its_address_and_serves_the_demo_principals() {
    // No --config: the built-in demo principals.
    let child = Command::new(BIN).args(["--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut running = Running(child);
    let mut line = String::new();
    BufReader::new(running.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("Cloud emulator listening on http://").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = url.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let body = serde_json::json!({
        "PolicySourceArn": "arn:aws:iam::123456789012:role/warden-demo",
        "ExternalId": "warden-demo-external-id",
        "ActionNames": ["cloudtrail:LookupEvents", "config:DescribeConfigRules"],
    })
    .to_string();
    let (status, text) = http(
        url,
        &format!(
            "POST /iam/simulate-principal-policy HTTP/1.1\r\nHost: {url}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 200, "{text}");
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["EvaluationResults"][0]["EvalDecision"], "allowed");
    assert_eq!(reply["EvaluationResults"][1]["EvalDecision"], "implicitDeny");
}

#[test]
fn help_names_the_routes_and_a_bad_config_is_refused() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for needle in
        ["--listen", "--config", "/iam/simulate-principal-policy", "ExternalId", "/_emulator/revoke", "/_emulator/fail-next", "[[principals]]"]
    {
        assert!(text.contains(needle), "--help lacks {needle}");
    }

    let dir = std::env::temp_dir().join(format!("cloud-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[principals]]\nid = \"a\"\nproof = \"p\"\nallow = [\"s3 GetObject\"]\n").unwrap();
    let output = Command::new(BIN).args(["--listen", "127.0.0.1:0", "--config"]).arg(&bad).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("white space"));
    assert!(output.stdout.is_empty());
}

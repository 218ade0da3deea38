//! Configuration errors stop the process with a message that names the key;
//! unknown `WARDEN_*` variables are only warned about.

use crate::helpers::warden_command;

#[test]
fn unknown_config_file_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let output = warden_command("sqlite://unused.db").arg("--config").arg(&file).args(["user", "list"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen_port"), "{stderr}");
}

/// Kubernetes sets `WARDEN_PORT`, `WARDEN_SERVICE_HOST`… in every pod when a
/// service is named `warden`: unknown variables are logged, not fatal.
#[test]
fn unknown_environment_variables_are_named_in_a_warning_and_do_not_stop_warden() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/w.db", dir.path().display());
    let output = warden_command(&url)
        .env("WARDEN_PORT", "tcp://10.96.0.7:8080")
        .env("WARDEN_SERVICE_HOST", "10.96.0.7")
        .env("WARDEN_LISTNE", "x")
        .args(["user", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("USERNAME"));
    for name in ["WARDEN_PORT", "WARDEN_SERVICE_HOST", "WARDEN_LISTNE"] {
        assert!(stderr.lines().any(|line| line.contains("WARN") && line.contains(name)), "{name} in {stderr}");
    }
    assert!(stderr.contains("did you mean WARDEN_LISTEN?"), "{stderr}");

    // A known variable with a bad value still stops Warden, naming it.
    let output = warden_command(&url).env("WARDEN_PORT", "x").env("WARDEN_TASK_LEASE", "soon").args(["user", "list"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("WARDEN_TASK_LEASE"));
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["serve", "--help"], &["user", "--help"], &["user", "add", "--help"], &["user", "passwd", "--help"]] {
        let output = warden_command("sqlite://unused.db").args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn serve_help_lists_every_setting_with_its_variable_and_default() {
    let output = warden_command("sqlite://unused.db").args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in warden_server::config::SETTINGS {
        assert!(help.contains(&format!("--{} <", setting.flag())), "{} in {help}", setting.name);
        assert!(help.contains(&format!("[env: {}", setting.env())), "{} in {help}", setting.name);
        if !setting.default.is_empty() {
            assert!(help.contains(&format!("[default: {}]", setting.default)), "{} in {help}", setting.name);
        }
    }
}

#[test]
fn serving_without_an_encryption_key_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/w.db", dir.path().display());
    let output = warden_command(&url).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("encryption_key is not set") && stderr.contains("WARDEN_ENCRYPTION_KEY"), "{stderr}");

    let output = warden_command(&url).env("WARDEN_ENCRYPTION_KEY", "too short").args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 32 characters"));
}

/// A replaced rule key must outlive any run that may still hold it.
#[test]
fn a_key_removal_delay_shorter_than_a_rule_run_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/w.db", dir.path().display());
    let output = warden_command(&url)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--api-key-removal-delay", "2m", "--rule-run-timeout", "5m"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("api_key_removal_delay (2m) must be at least rule_run_timeout (5m)"), "{stderr}");
}

//! Configuration errors stop the process with a message that names the key.

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

#[test]
fn unknown_environment_variable_is_named() {
    let output = warden_command("sqlite://unused.db").env("WARDEN_LISTNE", "x").args(["user", "list"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("WARDEN_LISTNE"));
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

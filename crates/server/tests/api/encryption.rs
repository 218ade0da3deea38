//! `encryption_key` at startup (`crypto::open`), in-process on a real
//! database (SQLite, or PostgreSQL with `TEST_POSTGRES_URL`): the salt is made
//! once per database, secrets stored before v2 (a bare SHA-256 key) are
//! re-encrypted, and a wrong key stops Warden with a message naming it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use warden_server::api_keys;
use warden_server::config::Secret;
use warden_server::crypto::{self, SALT_LEN, SALT_SETTING};
use warden_server::db::{self, Db};
use warden_server::store;
use warden_server::store::api_keys::ActionParamsRow;

use crate::helpers::{fresh_database, warden_command};

const KEY: &str = "a test encryption key that is long enough";
const OTHER_KEY: &str = "another test encryption key, just as long";

fn secret(text: &str) -> Secret {
    Secret(text.to_owned())
}

/// How Warden encrypted before v2, as it did: AES-256-GCM with the SHA-256
/// of `encryption_key`, `base64(nonce || ciphertext)`, no prefix.
fn legacy_encrypt(encryption_key: &str, plaintext: &str, bound_to: &str) -> anyhow::Result<String> {
    let aead = Aes256Gcm::new(&Sha256::digest(encryption_key.as_bytes()));
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = aead
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: bound_to.as_bytes() })
        .map_err(|_| anyhow!("encryption failed"))?;
    Ok(STANDARD.encode([nonce.as_slice(), &ciphertext].concat()))
}

async fn database() -> anyhow::Result<(Db, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let url = fresh_database(dir.path()).await;
    Ok((db::connect(&url).await?, url, dir))
}

/// An action's parameters as a node before v2 stored them; returns their id.
async fn store_legacy(db: &Db, encryption_key: &str, key_secret: &str) -> anyhow::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let row = ActionParamsRow {
        api_key_secret: legacy_encrypt(encryption_key, key_secret, &id)?,
        id: id.clone(),
        task_id: uuid::Uuid::new_v4().to_string(),
        api_key_id: "rule-key".into(),
        params: r#"{"message": "host isolated"}"#.into(),
    };
    store::api_keys::insert_action_params(db, &row, 0).await?;
    Ok(id)
}

async fn stored_secret(db: &Db, id: &str) -> anyhow::Result<String> {
    Ok(store::api_keys::action_params(db, id).await?.context("the row is gone")?.api_key_secret)
}

async fn stored_salt(db: &Db) -> anyhow::Result<Option<String>> {
    Ok(store::settings::get(db, SALT_SETTING).await?)
}

#[tokio::test]
async fn legacy_secrets_are_reencrypted_at_startup_and_still_decrypt() -> anyhow::Result<()> {
    let (db, _url, _dir) = database().await?;
    let id = store_legacy(&db, KEY, "s3cret").await?;
    let legacy = stored_secret(&db, &id).await?;

    let cipher = crypto::open(&db, &secret(KEY)).await?;

    let v2 = stored_secret(&db, &id).await?;
    assert!(v2.starts_with("v2:") && v2 != legacy, "{v2}");
    let (key, params) = api_keys::load_action(&db, &cipher, &serde_json::json!({"action_task_params_id": id})).await?;
    assert_eq!((key.id.as_str(), key.secret.as_str()), ("rule-key", "s3cret"));
    assert_eq!(params["message"], "host isolated");
    assert!(cipher.decrypt(&legacy, &id).is_err(), "after startup, only v2 values are read");

    // A restart: nothing is left to re-encrypt, and nothing changes.
    let again = crypto::open(&db, &secret(KEY)).await?;
    assert_eq!(stored_secret(&db, &id).await?, v2);
    assert_eq!(again.decrypt(&v2, &id)?, "s3cret");
    Ok(())
}

#[tokio::test]
async fn nodes_starting_at_once_agree_on_one_salt_and_reencrypt_once() -> anyhow::Result<()> {
    let (db, _url, _dir) = database().await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store_legacy(&db, KEY, &format!("secret-{n}")).await?);
    }

    let key = secret(KEY);
    let (a, b, c) = tokio::join!(crypto::open(&db, &key), crypto::open(&db, &key), crypto::open(&db, &key));
    let nodes = [a?, b?, c?];

    for (n, id) in ids.iter().enumerate() {
        let stored = stored_secret(&db, id).await?;
        assert!(stored.starts_with("v2:"), "{stored}");
        for node in &nodes {
            assert_eq!(node.decrypt(&stored, id)?, format!("secret-{n}"), "every node derived the same key");
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_reencryption_that_lost_the_race_changes_nothing() -> anyhow::Result<()> {
    let (db, _url, _dir) = database().await?;
    let id = store_legacy(&db, KEY, "s3cret").await?;
    let legacy = stored_secret(&db, &id).await?;
    // Two nodes read the same legacy value; the first one's update wins.
    assert!(store::api_keys::replace_action_secret(&db, &id, &legacy, "v2:first").await?);
    assert!(!store::api_keys::replace_action_secret(&db, &id, &legacy, "v2:second").await?);
    assert_eq!(stored_secret(&db, &id).await?, "v2:first");
    assert!(store::api_keys::legacy_action_secrets(&db, crypto::V2_PREFIX).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_wrong_key_refuses_to_start_and_changes_nothing() -> anyhow::Result<()> {
    let (db, _url, _dir) = database().await?;
    let id = store_legacy(&db, KEY, "s3cret").await?;
    let legacy = stored_secret(&db, &id).await?;

    let error = format!("{:#}", crypto::open(&db, &secret(OTHER_KEY)).await.expect_err("refused"));
    assert!(error.contains("encryption_key") && error.contains(&id), "{error}");
    assert!(!error.contains(OTHER_KEY) && !error.contains("s3cret"), "{error}");
    assert_eq!(stored_secret(&db, &id).await?, legacy, "nothing re-encrypted");

    // The right key still works; from then on a wrong one is refused even
    // with no legacy value left to try it on.
    let cipher = crypto::open(&db, &secret(KEY)).await?;
    assert_eq!(cipher.decrypt(&stored_secret(&db, &id).await?, &id)?, "s3cret");
    let error = format!("{:#}", crypto::open(&db, &secret(OTHER_KEY)).await.expect_err("refused"));
    assert!(error.contains("encryption_key"), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_salt_is_made_once_per_database_and_reused() -> anyhow::Result<()> {
    let (db, _url, _dir) = database().await?;
    assert_eq!(stored_salt(&db).await?, None);

    let first = crypto::open(&db, &secret(KEY)).await?;
    let salt = stored_salt(&db).await?.context("no salt")?;
    assert_eq!(STANDARD.decode(&salt)?.len(), SALT_LEN);
    let sealed = first.encrypt("s3cret", "row-1")?;

    let second = crypto::open(&db, &secret(KEY)).await?;
    assert_eq!(stored_salt(&db).await?.context("no salt")?, salt);
    assert_eq!(second.decrypt(&sealed, "row-1")?, "s3cret");

    let (other_db, _other_url, _other_dir) = database().await?;
    let elsewhere = crypto::open(&other_db, &secret(KEY)).await?;
    assert_ne!(stored_salt(&other_db).await?.context("no salt")?, salt, "a salt of its own per database");
    assert!(elsewhere.decrypt(&sealed, "row-1").is_err());
    Ok(())
}

#[tokio::test]
async fn warden_serve_with_the_wrong_key_stops_naming_encryption_key() -> anyhow::Result<()> {
    let (db, url, _dir) = database().await?;
    store_legacy(&db, KEY, "s3cret").await?;
    db.close().await;

    let mut child = warden_command(&url)
        .env("WARDEN_ENCRYPTION_KEY", OTHER_KEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("warden started with the wrong encryption_key");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut stderr)?;
    assert!(!status.success());
    assert!(stderr.contains("encryption_key") && stderr.contains("refusing to start"), "{stderr}");
    assert!(!stderr.contains(OTHER_KEY), "{stderr}");
    Ok(())
}

//! Secrets kept for background work (a rule's API key inside the parameters
//! of an action scheduled on its behalf) are stored encrypted with
//! AES-256-GCM. The key is derived from `encryption_key` in the config with
//! Argon2id and a random salt made once per database (the `settings` table);
//! each value is bound to the row it belongs to (associated data), so a
//! ciphertext copied into another row does not decrypt.
//!
//! Stored values are `v2:` + `base64(nonce || ciphertext)`. Before v2 the key
//! was the bare SHA-256 of `encryption_key` and values had no prefix; `open`
//! re-encrypts those once, at startup, and is the only code that still reads
//! them: `Cipher::decrypt` accepts v2 only.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow, bail};
use argon2::Argon2;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::db::{Db, now_ms};
use crate::store;

const NONCE_LEN: usize = 12;
pub const SALT_LEN: usize = 16;
/// Marks a value encrypted with the Argon2id-derived key.
pub const V2_PREFIX: &str = "v2:";
/// `settings` rows: the salt (base64), and a value encrypted with the key so
/// a node started with another `encryption_key` is stopped at once.
pub const SALT_SETTING: &str = "encryption_salt";
pub const KEY_CHECK_SETTING: &str = "encryption_key_check";
const KEY_CHECK_PLAINTEXT: &str = "warden encryption_key check";

/// Only used by `warden serve --demo` without a configured key, so that demo
/// data survives restarts; Warden says so loudly at startup.
pub const DEMO_ENCRYPTION_KEY: &str = "warden demo encryption key - never use it for real data";

#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    /// Argon2id (the crate's defaults: 19 MiB, 2 passes) of `encryption_key`
    /// with the database's salt. CPU-heavy by design: derive it once, off the
    /// async workers (`open` does).
    pub fn derive(encryption_key: &Secret, salt: &[u8; SALT_LEN]) -> anyhow::Result<Cipher> {
        let mut key = [0u8; 32];
        Argon2::default()
            .hash_password_into(encryption_key.0.as_bytes(), salt, &mut key)
            .map_err(|err| anyhow!("deriving the key from encryption_key: {err}"))?;
        Ok(Cipher { aead: Aes256Gcm::new(&key.into()) })
    }

    /// `v2:` + `base64(nonce || ciphertext)`.
    pub fn encrypt(&self, plaintext: &str, bound_to: &str) -> anyhow::Result<String> {
        Ok(format!("{V2_PREFIX}{}", seal(&self.aead, plaintext, bound_to)?))
    }

    /// Accepts v2 values only: older ones are re-encrypted by `open` before
    /// anything else reads them.
    pub fn decrypt(&self, encoded: &str, bound_to: &str) -> anyhow::Result<String> {
        let Some(encoded) = encoded.strip_prefix(V2_PREFIX) else {
            bail!("stored secret predates v2 encryption (Warden re-encrypts those when it starts)");
        };
        open_sealed(&self.aead, encoded, bound_to)
    }
}

/// The key before v2: the bare SHA-256 of `encryption_key`, no salt. Only the
/// startup re-encryption reads with it.
struct LegacyCipher {
    aead: Aes256Gcm,
}

impl LegacyCipher {
    fn new(encryption_key: &Secret) -> LegacyCipher {
        LegacyCipher { aead: Aes256Gcm::new(&Sha256::digest(encryption_key.0.as_bytes())) }
    }

    fn decrypt(&self, encoded: &str, bound_to: &str) -> anyhow::Result<String> {
        open_sealed(&self.aead, encoded, bound_to)
    }
}

/// `base64(nonce || ciphertext)` with a fresh nonce.
fn seal(aead: &Aes256Gcm, plaintext: &str, bound_to: &str) -> anyhow::Result<String> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = aead
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: bound_to.as_bytes() })
        .map_err(|_| anyhow!("encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(STANDARD.encode(out))
}

fn open_sealed(aead: &Aes256Gcm, encoded: &str, bound_to: &str) -> anyhow::Result<String> {
    let bytes = STANDARD.decode(encoded).context("stored secret is not base64")?;
    if bytes.len() <= NONCE_LEN {
        bail!("stored secret is too short");
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let plaintext = aead
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: bound_to.as_bytes() })
        .map_err(|_| anyhow!("stored secret does not decrypt (was encryption_key changed?)"))?;
    String::from_utf8(plaintext).context("stored secret is not text")
}

/// Startup: reads the database's salt (the first node to start makes it),
/// derives the key once, re-encrypts the values stored before v2, and checks
/// that `encryption_key` is the one the database's secrets are encrypted
/// with. Safe when several nodes start at once on one database. Any error
/// means Warden must not start: secrets it could not read would be lost.
pub async fn open(db: &Db, encryption_key: &Secret) -> anyhow::Result<Cipher> {
    let salt = database_salt(db).await?;
    let key = encryption_key.clone();
    let cipher = tokio::task::spawn_blocking(move || Cipher::derive(&key, &salt)).await.context("deriving the encryption key")??;
    // Older secrets are read (not yet written) first: a node with the wrong key
    // stops here, before it could store its own key check.
    let legacy = decrypt_legacy(db, &LegacyCipher::new(encryption_key)).await?;
    // The check before any rewrite, so no crash can leave v2 secrets without
    // it; another node may have stored its own first: compare with the one kept.
    let sealed = cipher.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_SETTING)?;
    let kept = store::settings::get_or_insert(db, KEY_CHECK_SETTING, &sealed, now_ms()).await.context("storing the encryption key check")?;
    verify_key_check(&cipher, &kept)?;
    reencrypt(db, &cipher, legacy).await?;
    Ok(cipher)
}

async fn database_salt(db: &Db) -> anyhow::Result<[u8; SALT_LEN]> {
    let mut fresh = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut fresh);
    let stored = store::settings::get_or_insert(db, SALT_SETTING, &STANDARD.encode(fresh), now_ms()).await.context("reading the encryption salt")?;
    STANDARD
        .decode(&stored)
        .ok()
        .and_then(|bytes| <[u8; SALT_LEN]>::try_from(bytes).ok())
        .ok_or_else(|| anyhow!("the `{SALT_SETTING}` setting in the database is not {SALT_LEN} bytes of base64"))
}

fn verify_key_check(cipher: &Cipher, check: &str) -> anyhow::Result<()> {
    match cipher.decrypt(check, KEY_CHECK_SETTING) {
        Ok(plaintext) if plaintext == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => bail!(
            "encryption_key is not the one this database's secrets are encrypted with: give this node the same \
             encryption_key as the nodes (or the run) that stored them; refusing to start"
        ),
    }
}

/// The values stored before v2, decrypted with the legacy key:
/// `(row id, stored value, secret)`. Fails, naming `encryption_key`, if one
/// does not decrypt.
async fn decrypt_legacy(db: &Db, legacy: &LegacyCipher) -> anyhow::Result<Vec<(String, String, String)>> {
    let rows = store::api_keys::legacy_action_secrets(db, V2_PREFIX).await.context("reading stored secrets")?;
    rows.into_iter()
        .map(|row| {
            let secret = legacy.decrypt(&row.api_key_secret, &row.id).map_err(|_| {
                anyhow!(
                    "encryption_key does not decrypt the API key secret stored for action parameters {} (stored before v2 \
                     encryption): start Warden with the encryption_key it was stored with; refusing to start",
                    row.id
                )
            })?;
            Ok((row.id, row.api_key_secret, secret))
        })
        .collect()
}

/// Re-encrypts `legacy` values with the v2 key; returns how many rows this
/// call changed. Each UPDATE is conditional on the old value, all in one
/// transaction: a node doing the same at once makes the other's updates
/// match no row, and running it again finds nothing to do.
async fn reencrypt(db: &Db, cipher: &Cipher, legacy: Vec<(String, String, String)>) -> anyhow::Result<u64> {
    if legacy.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut updated = 0;
    for (id, old, secret) in &legacy {
        if store::api_keys::replace_action_secret(&mut *tx, id, old, &cipher.encrypt(secret, id)?).await? {
            updated += 1;
        }
    }
    tx.commit().await.context("saving re-encrypted secrets")?;
    tracing::info!(updated, found = legacy.len(), "re-encrypted stored API key secrets with the v2 key");
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(key: &str, salt: u8) -> anyhow::Result<Cipher> {
        Cipher::derive(&Secret(key.to_owned()), &[salt; SALT_LEN])
    }

    #[test]
    fn round_trip_bound_to_its_row() -> anyhow::Result<()> {
        let cipher = cipher("an encryption key of at least 32 chars", 1)?;
        let sealed = cipher.encrypt("s3cret", "row-1")?;
        assert!(sealed.starts_with("v2:"), "{sealed}");
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, cipher.encrypt("s3cret", "row-1")?, "a fresh nonce each time");
        assert_eq!(cipher.decrypt(&sealed, "row-1")?, "s3cret");
        assert!(cipher.decrypt(&sealed, "row-2").is_err(), "moved to another row");
        let other = self::cipher("another encryption key of 32+ chars", 1)?;
        assert!(other.decrypt(&sealed, "row-1").is_err_and(|err| err.to_string().contains("encryption_key")));
        assert!(cipher.decrypt("v2:AAAA", "row-1").is_err());
        assert!(cipher.decrypt("v2:not base64!", "row-1").is_err());
        Ok(())
    }

    #[test]
    fn the_salt_changes_the_key() -> anyhow::Result<()> {
        let key = "an encryption key of at least 32 chars";
        let sealed = cipher(key, 1)?.encrypt("s3cret", "row-1")?;
        assert_eq!(cipher(key, 1)?.decrypt(&sealed, "row-1")?, "s3cret");
        assert!(cipher(key, 2)?.decrypt(&sealed, "row-1").is_err());
        Ok(())
    }

    #[test]
    fn legacy_values_are_read_only_by_the_legacy_key() -> anyhow::Result<()> {
        let key = "an encryption key of at least 32 chars";
        let legacy = LegacyCipher::new(&Secret(key.to_owned()));
        let old = seal(&legacy.aead, "s3cret", "row-1")?;
        assert_eq!(legacy.decrypt(&old, "row-1")?, "s3cret");
        let cipher = cipher(key, 1)?;
        assert!(cipher.decrypt(&old, "row-1").is_err_and(|err| err.to_string().contains("predates v2")));
        assert!(cipher.decrypt(&format!("v2:{old}"), "row-1").is_err(), "the v2 key is not the SHA-256 one");
        assert!(legacy.decrypt(&cipher.encrypt("s3cret", "row-1")?, "row-1").is_err());
        Ok(())
    }

    #[test]
    fn debug_hides_the_key() -> anyhow::Result<()> {
        assert_eq!(format!("{:?}", cipher("an encryption key of at least 32 chars", 1)?), "Cipher(***)");
        Ok(())
    }
}

//! Secrets kept for background work (a rule's API key inside the parameters
//! of an action scheduled on its behalf) are stored encrypted with
//! AES-256-GCM. The key is derived from `encryption_key` in the config; each
//! value is bound to the row it belongs to (associated data), so a ciphertext
//! copied into another row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

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
    pub fn new(secret: &str) -> Cipher {
        let key = Sha256::digest(secret.as_bytes());
        Cipher { aead: Aes256Gcm::new(&key) }
    }

    /// `base64(nonce || ciphertext)`.
    pub fn encrypt(&self, plaintext: &str, bound_to: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: bound_to.as_bytes() })
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(out))
    }

    pub fn decrypt(&self, encoded: &str, bound_to: &str) -> anyhow::Result<String> {
        let bytes = STANDARD.decode(encoded).context("stored secret is not base64")?;
        if bytes.len() <= NONCE_LEN {
            bail!("stored secret is too short");
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: bound_to.as_bytes() })
            .map_err(|_| anyhow::anyhow!("stored secret does not decrypt (was encryption_key changed?)"))?;
        String::from_utf8(plaintext).context("stored secret is not text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_its_row() {
        let cipher = Cipher::new("an encryption key of at least 32 chars");
        let sealed = cipher.encrypt("s3cret", "row-1").unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, cipher.encrypt("s3cret", "row-1").unwrap(), "a fresh nonce each time");
        assert_eq!(cipher.decrypt(&sealed, "row-1").unwrap(), "s3cret");
        assert!(cipher.decrypt(&sealed, "row-2").is_err(), "moved to another row");
        let other = Cipher::new("another encryption key of 32+ chars");
        assert!(other.decrypt(&sealed, "row-1").unwrap_err().to_string().contains("encryption_key"));
        assert!(cipher.decrypt("AAAA", "row-1").is_err());
        assert!(cipher.decrypt("not base64!", "row-1").is_err());
    }
}

//! The agent's calls to Fleet Server made on behalf of response actions:
//! acks with their results, get-file's upload, and file delivery for upload
//! and runscript. All with the agent's `Authorization: ApiKey`.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::json;
use warden_core::fleet_api::{AckEvent, AckRequest, AckResponse};
use warden_core::paths;

use crate::files;

/// What an agent needs to call Fleet Server.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub http: reqwest::Client,
    pub url: String,
    pub agent_id: String,
    pub api_key: String,
}

/// How an ack ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    /// Warden recorded it (item status 200).
    Recorded,
    /// Warden answered for it with another status (409 already cancelled, …): final.
    Refused(u16, String),
    /// Not delivered after the retries (network or 5xx).
    Undelivered(String),
}

/// Begin's answer.
#[derive(Debug, Deserialize)]
struct UploadStarted {
    upload_id: String,
    chunk_size: usize,
}

/// How many times an ack is tried, with doubling backoff from 500 ms.
const ACK_TRIES: u32 = 4;

/// The largest file upload or runscript fetches.
pub const MAX_DOWNLOAD_BYTES: u64 = 100 * 1024 * 1024;

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl Fleet {
    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), path)
    }

    fn authorization(&self) -> String {
        format!("ApiKey {}", self.api_key)
    }

    /// Sends one ack: retried on a network error or a 5xx, never after
    /// Warden answered for the item (whatever its status).
    pub async fn ack(&self, event: &AckEvent) -> AckOutcome {
        let mut backoff = Duration::from_millis(500);
        let mut last_error = String::new();
        for attempt in 1..=ACK_TRIES {
            let sent = self
                .http
                .post(self.url(&paths::agent_acks(&self.agent_id)))
                .header("Authorization", self.authorization())
                .json(&AckRequest { events: vec![event.clone()] })
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_server_error() => last_error = format!("HTTP {}", response.status()),
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let item = serde_json::from_str::<AckResponse>(&text).ok().and_then(|body| body.items.into_iter().next());
                    return match item {
                        Some(item) if item.status == 200 => AckOutcome::Recorded,
                        Some(item) => AckOutcome::Refused(item.status, item.message),
                        None if status.is_success() => AckOutcome::Recorded,
                        None => AckOutcome::Refused(status.as_u16(), text),
                    };
                }
                Err(err) => last_error = err.to_string(),
            }
            if attempt < ACK_TRIES {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        AckOutcome::Undelivered(last_error)
    }

    /// Uploads get-file's zip: begin, the chunks, finalize. Fleet Server
    /// files it as `<action_id>.<agent_id>`.
    pub async fn upload(&self, action_id: &str, zip: &[u8]) -> Result<(), String> {
        let begin = json!({
            "file": {
                "name": "upload.zip",
                "size": zip.len(),
                "mime_type": "application/zip",
                "hash": { "sha256": files::sha256_hex(zip) },
            },
            "action_id": action_id,
            "agent_id": self.agent_id,
            "src": "endpoint",
        });
        let response = self
            .http
            .post(self.url(paths::FLEET_UPLOADS))
            .header("Authorization", self.authorization())
            .json(&begin)
            .send()
            .await
            .map_err(|e| format!("Upload failed to start: {e}"))?;
        let started: UploadStarted = ok_json(response, "Upload failed to start").await?;
        let chunks = files::chunks(zip, started.chunk_size);
        for (n, (chunk, digest)) in chunks.iter().enumerate() {
            let response = self
                .http
                .put(self.url(&paths::fleet_upload_chunk(&started.upload_id, &n.to_string())))
                .header("Authorization", self.authorization())
                .header("X-Chunk-SHA2", digest.as_str())
                .header("Content-Type", "application/octet-stream")
                .body(chunk.to_vec())
                .send()
                .await
                .map_err(|e| format!("Upload of chunk {n} failed: {e}"))?;
            ok(response, &format!("Upload of chunk {n} failed")).await?;
        }
        let transithash = files::transit_hash(chunks.iter().map(|(_, d)| d.as_str()))?;
        let response = self
            .http
            .post(self.url(&paths::fleet_upload_finish(&started.upload_id)))
            .header("Authorization", self.authorization())
            .json(&json!({ "transithash": { "sha256": transithash } }))
            .send()
            .await
            .map_err(|e| format!("Upload failed to finish: {e}"))?;
        ok(response, "Upload failed to finish").await
    }

    /// A file Fleet Server delivers to this agent, checked against the size
    /// and SHA-256 the action names.
    pub async fn download(&self, file_id: &str, sha256: &str, size: Option<u64>) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(self.url(&paths::fleet_file(file_id)))
            .header("Authorization", self.authorization())
            .send()
            .await
            .map_err(|e| format!("Cannot download file {file_id}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("Cannot download file {file_id}: HTTP {status}: {body}"));
        }
        if response.content_length().is_some_and(|n| n > MAX_DOWNLOAD_BYTES) {
            return Err(format!("File {file_id} is larger than {MAX_DOWNLOAD_BYTES} bytes"));
        }
        let bytes = response.bytes().await.map_err(|e| format!("Cannot download file {file_id}: {e}"))?;
        if let Some(size) = size
            && bytes.len() as u64 != size
        {
            return Err(format!("File {file_id} has {} bytes, not the {size} the action names", bytes.len()));
        }
        let actual = files::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(sha256.trim()) {
            return Err(format!("File {file_id} has SHA-256 {actual}, not the {sha256} the action names"));
        }
        Ok(bytes.to_vec())
    }
}

async fn ok(response: reqwest::Response, what: &str) -> Result<(), String> {
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(format!("{what}: HTTP {status}: {body}"))
}

async fn ok_json<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T, String> {
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("{what}: HTTP {status}: {body}"));
    }
    response.json().await.map_err(|e| format!("{what}: {e}"))
}

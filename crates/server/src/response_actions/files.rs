//! Files of response actions, through Fleet Server's own routes for agents
//! (`fleet-files-and-packages.md` §1): a get-file result comes up in chunks
//! (`POST /api/fleet/uploads`, `PUT …/{id}/{n}`, `POST …/{id}`), an upload
//! action's file goes down (`GET /api/fleet/file/{id}`); analysts read a
//! result's info and download it as the zip the agent made (passcode
//! `elastic`). Files live in the database, at most `response_file_max_bytes`
//! each, and are removed after `response_file_retention`.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use warden_core::response_actions::ResponseCommand;

use super::{ResponseError, UploadedFile};
use crate::AppState;
use crate::auth::{AuthUser, sha256_hex};
use crate::db::{begin_write, now_ms};
use crate::error::ApiError;
use crate::store::fleet::AgentRow;
use crate::store::response_actions::{self as store, FileRow};

/// Fleet Server's chunk size: every chunk but the last is exactly this.
pub const CHUNK_SIZE: i64 = 4 * 1024 * 1024;
/// An upload must be finished this long after it began.
const UPLOAD_TTL_MS: i64 = 24 * 3_600_000;

/// Fleet Server's errors: a code in `error`, its message.
fn fs_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Coded { status, code, message: message.into() }
}

fn bad(code: &'static str, message: &str) -> ApiError {
    fs_error(StatusCode::BAD_REQUEST, code, message)
}

fn retention_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.response_file_retention.as_millis()).unwrap_or(i64::MAX)
}

fn max_bytes(state: &AppState) -> i64 {
    i64::try_from(state.config.response_file_max_bytes).unwrap_or(i64::MAX)
}

/// Stores an upload action's file (to hosts), in chunks, inside `tx`.
pub async fn store_to_host(
    state: &AppState,
    tx: &mut AnyConnection,
    action_id: &str,
    file: UploadedFile,
    now: i64,
) -> Result<FileRow, ResponseError> {
    let size = i64::try_from(file.bytes.len()).unwrap_or(i64::MAX);
    if size > max_bytes(state) {
        return Err(ResponseError::TooLarge(format!(
            "The file is {size} bytes; at most {} may be sent to hosts",
            state.config.response_file_max_bytes
        )));
    }
    if size == 0 {
        return Err(ResponseError::BadRequest("[request body.file]: the file is empty".into()));
    }
    let name = file.name.rsplit(['/', '\\']).next().unwrap_or_default().trim().to_owned();
    if name.is_empty() || name == "." || name == ".." || name.len() > 255 {
        return Err(ResponseError::BadRequest("[request body.file]: the file needs a name (at most 255 bytes, no path)".into()));
    }
    let row = FileRow {
        id: uuid::Uuid::new_v4().to_string(),
        direction: "to_host".into(),
        action_id: Some(action_id.to_owned()),
        agent_id: None,
        upload_id: None,
        name,
        mime_type: if file.mime_type.is_empty() { "application/octet-stream".into() } else { file.mime_type },
        size,
        sha256: Some(sha256_hex(&file.bytes)),
        status: "READY".into(),
        chunk_size: CHUNK_SIZE,
        created_at: now,
        expires_at: Some(now.saturating_add(retention_ms(state))),
    };
    store::put_file(tx, &row).await?;
    put_chunks(tx, &row.id, &file.bytes).await?;
    Ok(row)
}

/// Writes bytes as chunks of [`CHUNK_SIZE`].
pub async fn put_chunks(tx: &mut AnyConnection, file_id: &str, bytes: &[u8]) -> sqlx::Result<()> {
    for (n, chunk) in bytes.chunks(CHUNK_SIZE as usize).enumerate() {
        store::put_chunk(&mut *tx, file_id, n as i64, &sha256_hex(chunk), chunk).await?;
    }
    Ok(())
}

/// `POST /api/fleet/uploads`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadBegin {
    pub file: Option<UploadFileInfo>,
    #[serde(default)]
    pub action_id: String,
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub src: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadFileInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
    pub hash: Option<UploadHash>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadHash {
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadStarted {
    pub upload_id: String,
    pub chunk_size: i64,
}

/// `POST /api/fleet/uploads/{id}`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UploadFinish {
    pub transithash: Option<UploadHash>,
}

/// An agent begins uploading a get-file result of an action sent to it.
pub async fn begin_upload(state: &AppState, agent: &AgentRow, body: UploadBegin) -> Result<UploadStarted, ApiError> {
    let file = body.file.ok_or_else(|| bad("ErrFileInfoBodyRequired", "file info body is required"))?;
    if body.agent_id.trim().is_empty() {
        return Err(bad("ErrAgentIDMissing", "required field agent_id is missing"));
    }
    for (field, value) in [("file.name", &file.name), ("file.mime_type", &file.mime_type), ("action_id", &body.action_id), ("src", &body.src)] {
        if value.trim().is_empty() {
            return Err(bad("ErrFieldRequired", &format!("{field} is required: field required")));
        }
    }
    if file.size <= 0 {
        return Err(bad("ErrFileSizeRequired", "file.size is required"));
    }
    if body.agent_id != agent.id {
        return Err(fs_error(StatusCode::FORBIDDEN, "ErrAgentIdentity", "Agent header contains wrong identifier"));
    }
    if file.size > max_bytes(state) {
        return Err(bad("ErrFileSizeTooLarge", "this file exceeds the maximum allowed file size"));
    }
    let now = now_ms();
    let mut tx = begin_write(&state.db, state.engine).await?;
    let action = store::get_action(&mut *tx, &body.action_id).await?;
    let targets = store::targets_of(&mut *tx, state.engine, &[&body.action_id], &[]).await?;
    let sends_files = action.as_ref().is_some_and(|a| a.command == ResponseCommand::GetFile.as_str());
    if !sends_files || !targets.iter().any(|t| t.agent_id == agent.id && t.completed_at.is_none()) {
        return Err(bad("ErrFieldRequired", &format!("action_id {} is not a pending get-file action of this agent", body.action_id)));
    }
    let upload_id = uuid::Uuid::new_v4().to_string();
    let row = FileRow {
        id: format!("{}.{}", body.action_id, agent.id),
        direction: "from_host".into(),
        action_id: Some(body.action_id.clone()),
        agent_id: Some(agent.id.clone()),
        upload_id: Some(upload_id.clone()),
        name: file.name,
        mime_type: file.mime_type,
        size: file.size,
        sha256: file.hash.and_then(|h| h.sha256),
        status: "AWAITING_UPLOAD".into(),
        chunk_size: CHUNK_SIZE,
        created_at: now,
        expires_at: Some(now.saturating_add(retention_ms(state))),
    };
    store::put_file(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(UploadStarted { upload_id, chunk_size: CHUNK_SIZE })
}

async fn open_upload(state: &AppState, agent: &AgentRow, upload_id: &str) -> Result<FileRow, ApiError> {
    let file = store::file_by_upload(&state.db, upload_id).await?.ok_or_else(|| bad("ErrInvalidFileID", "ErrInvalidID"))?;
    if file.agent_id.as_deref() != Some(agent.id.as_str()) {
        return Err(fs_error(StatusCode::FORBIDDEN, "ErrAgentIdentity", "Agent header contains wrong identifier"));
    }
    if now_ms() > file.created_at.saturating_add(UPLOAD_TTL_MS) {
        return Err(bad("ErrUploadExpired", "upload has expired"));
    }
    if !matches!(file.status.as_str(), "AWAITING_UPLOAD" | "UPLOADING") {
        return Err(bad("ErrStatusNoUploads", "file closed, not accepting uploads"));
    }
    Ok(file)
}

/// One chunk of an upload: its number counts from 0; every chunk but the
/// last is exactly the chunk size; its SHA-256 is in `X-Chunk-SHA2`.
pub async fn put_chunk(state: &AppState, agent: &AgentRow, upload_id: &str, chunk: &str, sha2: Option<&str>, data: &[u8]) -> Result<(), ApiError> {
    let file = open_upload(state, agent, upload_id).await?;
    let count = (file.size + file.chunk_size - 1) / file.chunk_size;
    let num: i64 = chunk.parse().ok().filter(|n| (0..count).contains(n)).ok_or_else(|| bad("ErrInvalidChunkNum", "invalid chunk number"))?;
    let sha2 = sha2.filter(|s| !s.trim().is_empty()).ok_or_else(|| bad("ErrFieldRequired", "X-Chunk-SHA2 is required: field required"))?;
    let expected_len = if num == count - 1 { file.size - num * file.chunk_size } else { file.chunk_size };
    if i64::try_from(data.len()).unwrap_or(i64::MAX) != expected_len {
        return Err(bad("ErrFailValidation", &format!("chunk {num} is {} bytes; expected {expected_len}", data.len())));
    }
    if !sha256_hex(data).eq_ignore_ascii_case(sha2.trim()) {
        return Err(bad("ErrHashMismatch", "hash does not match"));
    }
    let mut tx = begin_write(&state.db, state.engine).await?;
    store::put_chunk(&mut *tx, &file.id, num, &sha2.trim().to_ascii_lowercase(), data).await?;
    store::set_file_status(&mut *tx, &file.id, "UPLOADING").await?;
    tx.commit().await?;
    Ok(())
}

/// Completes an upload: every chunk present, sizes adding up, and the
/// transit hash (SHA-256 over the chunks' digests in order) matching; else
/// the upload fails and its chunks are dropped.
pub async fn finish_upload(state: &AppState, agent: &AgentRow, upload_id: &str, body: UploadFinish) -> Result<(), ApiError> {
    let file = open_upload(state, agent, upload_id).await?;
    let transit = body
        .transithash
        .and_then(|h| h.sha256)
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| bad("TransitHashRequired", "Transit hash required"))?;
    let chunks = store::chunk_list(&state.db, &file.id).await?;
    let count = (file.size + file.chunk_size - 1) / file.chunk_size;
    let complete = chunks.len() as i64 == count && chunks.iter().enumerate().all(|(i, (n, _, _))| *n == i as i64);
    let digests: Vec<u8> = chunks.iter().flat_map(|(_, sha2, _)| hex_bytes(sha2).unwrap_or_default()).collect();
    let computed = sha256_hex(&digests);
    let size: i64 = chunks.iter().map(|(_, _, len)| *len).sum();
    let failure = if !complete {
        Some(bad("ErrMissingChunks", "file data incomplete, not all chunks were uploaded"))
    } else if size != file.size || !computed.eq_ignore_ascii_case(transit.trim()) {
        Some(bad("ErrFailValidation", "file contents failed validation"))
    } else {
        None
    };
    let mut tx = begin_write(&state.db, state.engine).await?;
    match failure {
        Some(err) => {
            store::delete_chunks(&mut *tx, &file.id).await?;
            store::set_file_status(&mut *tx, &file.id, "UPLOAD_ERROR").await?;
            tx.commit().await?;
            Err(err)
        }
        None => {
            store::set_file_status(&mut *tx, &file.id, "READY").await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A file for the agent: one an action sent to it, ready.
pub async fn deliver(state: &AppState, agent: &AgentRow, file_id: &str) -> Result<(FileRow, Vec<u8>), ApiError> {
    let not_found = || fs_error(StatusCode::NOT_FOUND, "ErrFileNotFound", "file not found");
    let file = store::get_file(&state.db, file_id).await?.ok_or_else(not_found)?;
    if file.direction == "from_host" || file.status != "READY" || !store::agent_may_fetch(&state.db, file_id, &agent.id).await? {
        return Err(not_found());
    }
    let bytes = store::file_bytes(&state.db, file_id).await?;
    Ok((file, bytes))
}

/// A get-file result's info (`GET /api/endpoint/action/{id}/file/{file_id}`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub id: String,
    pub agent_id: String,
    pub action_id: String,
    pub name: String,
    pub status: String,
    pub mime_type: String,
    pub size: i64,
    pub created: String,
    pub agent_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileInfoResponse {
    pub data: FileInfo,
}

/// The file of an action, if the caller may read it: the user must be allowed
/// to send the action's command (get-file: file operations).
async fn action_file(state: &AppState, user: &AuthUser, action_id: &str, file_id: &str) -> Result<FileRow, ResponseError> {
    let action = store::get_action(&state.db, action_id).await?.ok_or_else(|| super::not_found(action_id))?;
    let command = ResponseCommand::parse(&action.command).unwrap_or(ResponseCommand::GetFile);
    if !matches!(command, ResponseCommand::GetFile | ResponseCommand::Upload | ResponseCommand::Execute | ResponseCommand::Runscript) {
        return Err(ResponseError::BadRequest(format!("Action [{action_id}] has no files: it is a {} action", command.console_name())));
    }
    super::authorize_command(state, user, command)?;
    let file = store::get_file(&state.db, file_id).await?.filter(|f| f.action_id.as_deref() == Some(action_id));
    let file = file.ok_or_else(|| ResponseError::NotFound(format!("File with id '{file_id}' not found for action '{action_id}'")))?;
    Ok(file)
}

pub async fn file_info(state: &AppState, user: &AuthUser, action_id: &str, file_id: &str) -> Result<FileInfoResponse, ResponseError> {
    let file = action_file(state, user, action_id, file_id).await?;
    Ok(FileInfoResponse {
        data: FileInfo {
            id: file.id,
            agent_id: file.agent_id.unwrap_or_default(),
            action_id: action_id.to_owned(),
            name: file.name,
            status: file.status,
            mime_type: file.mime_type,
            size: file.size,
            created: crate::fleet::rfc3339(file.created_at),
            agent_type: "endpoint".into(),
        },
    })
}

/// The file's bytes, once it is ready.
pub async fn download(state: &AppState, user: &AuthUser, action_id: &str, file_id: &str) -> Result<(FileRow, Vec<u8>), ResponseError> {
    let file = action_file(state, user, action_id, file_id).await?;
    if file.status != "READY" {
        return Err(ResponseError::BadRequest(format!("File '{file_id}' is not ready for download (status {})", file.status)));
    }
    let bytes = store::file_bytes(&state.db, &file.id).await?;
    Ok((file, bytes))
}

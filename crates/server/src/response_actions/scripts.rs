//! The scripts library `runscript` picks from (Kibana 9.4): a script is
//! uploaded once with a name, description and input help, and runs by id.
//! Reading it needs `scripts_library:read`, changing it `scripts_library:all`.

use warden_core::response_actions::{EndpointScript, ScriptFields, ScriptResponse, ScriptsListResponse};

use super::ResponseError;
use crate::AppState;
use crate::auth::{AuthUser, sha256_hex};
use crate::db::{begin_write, now_ms};
use crate::fleet::rfc3339;
use crate::store::response_actions::{self as store, FileRow, ScriptRow};

type Result<T, E = ResponseError> = std::result::Result<T, E>;

/// A script file as a form sent it.
pub struct ScriptFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Scripts are small: at most 1 MiB each.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

fn to_script(row: ScriptRow) -> EndpointScript {
    EndpointScript {
        download_uri: warden_core::paths::script_download(&row.id),
        platform: serde_json::from_str(&row.platform).unwrap_or_default(),
        requires_input: row.requires_input != 0,
        id: row.id,
        name: row.name,
        description: row.description,
        instructions: row.instructions,
        example: row.example,
        file_name: row.file_name,
        file_size: row.file_size,
        file_hash: row.file_hash,
        created_by: row.created_by,
        created_at: rfc3339(row.created_at),
        updated_by: row.updated_by,
        updated_at: rfc3339(row.updated_at),
    }
}

fn not_found(id: &str) -> ResponseError {
    ResponseError::NotFound(format!("Script with id '{id}' not found"))
}

fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> ResponseError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => ResponseError::Conflict(format!("A script named [{name}] already exists")),
        _ => ResponseError::Database(err),
    }
}

/// Stores the script's bytes as a library file (kept until the script goes).
async fn store_file(tx: &mut sqlx::AnyConnection, file: &ScriptFile, now: i64) -> Result<FileRow> {
    if file.bytes.is_empty() {
        return Err(ResponseError::BadRequest("[request body.file]: the script file is empty".into()));
    }
    if file.bytes.len() > MAX_SCRIPT_BYTES {
        return Err(ResponseError::TooLarge(format!("A script may be at most {MAX_SCRIPT_BYTES} bytes; this one is {}", file.bytes.len())));
    }
    let name = file.name.rsplit(['/', '\\']).next().unwrap_or_default().trim().to_owned();
    if name.is_empty() || name == "." || name == ".." {
        return Err(ResponseError::BadRequest("[request body.file]: the script file needs a name".into()));
    }
    let row = FileRow {
        id: uuid::Uuid::new_v4().to_string(),
        direction: "library".into(),
        action_id: None,
        agent_id: None,
        upload_id: None,
        name,
        mime_type: "text/x-shellscript".into(),
        size: file.bytes.len() as i64,
        sha256: Some(sha256_hex(&file.bytes)),
        status: "READY".into(),
        chunk_size: super::files::CHUNK_SIZE,
        created_at: now,
        expires_at: None,
    };
    store::put_file(tx, &row).await?;
    super::files::put_chunks(tx, &row.id, &file.bytes).await?;
    Ok(row)
}

pub async fn create(state: &AppState, user: &AuthUser, fields: ScriptFields, file: Option<ScriptFile>) -> Result<ScriptResponse> {
    let name = fields
        .name
        .clone()
        .ok_or_else(|| ResponseError::BadRequest("[request body.name]: expected value of type [string] but got [undefined]".into()))?;
    let file = file.ok_or_else(|| ResponseError::BadRequest("[request body.file]: expected a file".into()))?;
    let now = now_ms();
    let mut tx = begin_write(&state.db, state.engine).await?;
    let stored = store_file(&mut tx, &file, now).await?;
    let row = ScriptRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.clone(),
        description: fields.description.unwrap_or_default(),
        instructions: fields.instructions.unwrap_or_default(),
        example: fields.example.unwrap_or_default(),
        platform: serde_json::json!(fields.platform.unwrap_or_else(|| vec!["linux".into(), "macos".into()])).to_string(),
        requires_input: fields.requires_input.unwrap_or(false) as i64,
        file_id: stored.id,
        file_name: stored.name,
        file_size: stored.size,
        file_hash: stored.sha256.unwrap_or_default(),
        created_by: user.username.clone(),
        created_at: now,
        updated_by: user.username.clone(),
        updated_at: now,
    };
    store::insert_script(&mut tx, &row).await.map_err(name_taken(&name))?;
    tx.commit().await?;
    tracing::info!(script = %row.id, name = %row.name, user = %user.username, "script added to the library");
    Ok(ScriptResponse { data: to_script(row) })
}

pub async fn update(state: &AppState, user: &AuthUser, id: &str, fields: ScriptFields, file: Option<ScriptFile>) -> Result<ScriptResponse> {
    let now = now_ms();
    let mut tx = begin_write(&state.db, state.engine).await?;
    let mut row = store::get_script(&mut *tx, id).await?.ok_or_else(|| not_found(id))?;
    if let Some(file) = file {
        // A new file; the old one stays for the actions that ran it.
        let stored = store_file(&mut tx, &file, now).await?;
        row.file_id = stored.id;
        row.file_name = stored.name;
        row.file_size = stored.size;
        row.file_hash = stored.sha256.unwrap_or_default();
    }
    let name = fields.name.unwrap_or_else(|| row.name.clone());
    row.name = name.clone();
    row.description = fields.description.unwrap_or(row.description);
    row.instructions = fields.instructions.unwrap_or(row.instructions);
    row.example = fields.example.unwrap_or(row.example);
    if let Some(platform) = fields.platform {
        row.platform = serde_json::json!(platform).to_string();
    }
    if let Some(requires_input) = fields.requires_input {
        row.requires_input = requires_input as i64;
    }
    row.updated_by = user.username.clone();
    row.updated_at = now;
    store::update_script(&mut tx, &row).await.map_err(name_taken(&name))?;
    tx.commit().await?;
    Ok(ScriptResponse { data: to_script(row) })
}

pub async fn delete(state: &AppState, id: &str) -> Result<()> {
    let mut tx = begin_write(&state.db, state.engine).await?;
    if !store::delete_script(&mut tx, id).await? {
        return Err(not_found(id));
    }
    tx.commit().await?;
    Ok(())
}

pub async fn get(state: &AppState, id: &str) -> Result<ScriptResponse> {
    let row = store::get_script(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    Ok(ScriptResponse { data: to_script(row) })
}

/// Every script, by name (the library is small: a page holds it all).
pub async fn list(state: &AppState) -> Result<ScriptsListResponse> {
    let rows = store::list_scripts(&state.db).await?;
    let total = rows.len() as u64;
    Ok(ScriptsListResponse { data: rows.into_iter().map(to_script).collect(), total, page: 1, page_size: total.max(1) })
}

/// The script's file.
pub async fn download(state: &AppState, id: &str) -> Result<(String, Vec<u8>)> {
    let row = store::get_script(&state.db, id).await?.ok_or_else(|| not_found(id))?;
    let bytes = store::file_bytes(&state.db, &row.file_id).await?;
    Ok((row.file_name, bytes))
}

//! Response actions (`/api/endpoint/action…`, Kibana's shapes and errors),
//! the endpoint authz answer, the scripts library, and the agents' file
//! routes of Fleet Server. Every route refuses with 403 `Endpoint
//! authorization failure` what the core's endpoint authz does not allow,
//! before the body is read.

use std::marker::PhantomData;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::error::ErrorBody;
use warden_core::response_actions::{
    AUTHZ_FAILURE, ActionDetailsResponse, ActionListQuery, ActionListResponse, ActionResponse, ActionStatusResponse, EndpointAuthz,
    EndpointAuthzResponse, MdeHostsResponse, ResponseActionRequest, ResponseCommand, ScriptFields, ScriptResponse, ScriptsListResponse,
    endpoint_authz,
};

use super::fleet_server::AgentAuth;
use super::openapi::{AgentKeyErrors, BodyTooLarge, SignedInErrors, Xsrf};
use super::{JsonBody, QueryPairs};
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, Result};
use crate::response_actions::files::{self, FileInfoResponse, UploadBegin, UploadFinish, UploadStarted};
use crate::response_actions::scripts::{self, ScriptFile};
use crate::response_actions::{self as service, ResponseError, UploadedFile};

/// Largest body of the routes that carry files (a chunk, an upload form, a
/// script); the settings' `response_file_max_bytes` is enforced inside.
const FILE_ROUTE_BODY_LIMIT: usize = 104_857_600 + 1_048_576;

pub fn router() -> OpenApiRouter<AppState> {
    let files = OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(create_script, list_scripts))
        .routes(routes!(update_script, get_script, delete_script))
        .layer(DefaultBodyLimit::max(FILE_ROUTE_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(isolate))
        .routes(routes!(unisolate))
        .routes(routes!(kill_process))
        .routes(routes!(suspend_process))
        .routes(routes!(running_procs))
        .routes(routes!(get_file))
        .routes(routes!(execute))
        .routes(routes!(scan))
        .routes(routes!(run_script))
        .routes(routes!(cancel))
        .routes(routes!(list))
        .routes(routes!(details))
        .routes(routes!(action_status))
        .routes(routes!(file_info))
        .routes(routes!(file_download))
        .routes(routes!(authz))
        .routes(routes!(mde_hosts))
        .routes(routes!(script_download))
        .merge(files)
}

/// Fleet Server's file routes, for agents (no kbn-xsrf; their key authenticates).
pub fn agent_router() -> OpenApiRouter<AppState> {
    let chunks = OpenApiRouter::new().routes(routes!(upload_chunk)).layer(DefaultBodyLimit::max(FILE_ROUTE_BODY_LIMIT));
    OpenApiRouter::new().routes(routes!(upload_begin)).routes(routes!(upload_finish)).routes(routes!(file_delivery)).merge(chunks)
}

/// A check of the endpoint authz, as a type a route can name.
pub trait EndpointCheck {
    fn allowed(authz: &EndpointAuthz) -> bool;
}

/// `EndpointAuthz<C>`: the signed-in caller passes `C` under the licence in force.
pub struct RequireEndpoint<C>(pub AuthUser, PhantomData<C>);

impl<C: EndpointCheck> FromRequestParts<AppState> for RequireEndpoint<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let privileges = warden_core::authz::privileges_of(&user.roles);
        if !C::allowed(&endpoint_authz(&privileges, state.license())) {
            return Err(ResponseError::Forbidden(AUTHZ_FAILURE.into()).into());
        }
        Ok(RequireEndpoint(user, PhantomData))
    }
}

/// The caller may send this command (privilege and licence), checked before the body.
pub struct RequireCommand<C>(pub AuthUser, pub(super) PhantomData<C>);

pub trait CommandRoute {
    const COMMAND: ResponseCommand;
}

impl<C: CommandRoute> FromRequestParts<AppState> for RequireCommand<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        service::authorize_command(state, &user, C::COMMAND)?;
        Ok(RequireCommand(user, PhantomData))
    }
}

macro_rules! endpoint_checks {
    ($($name:ident => |$a:ident| $check:expr),* $(,)?) => {$(
        pub struct $name;
        impl EndpointCheck for $name {
            fn allowed($a: &EndpointAuthz) -> bool {
                $check
            }
        }
    )*};
}

endpoint_checks! {
    ReadActionsLog => |a| a.can_read_actions_log_management || a.can_access_endpoint_actions_log_management,
    ReadSecuritySolution => |a| a.can_read_security_solution,
    ReadScripts => |a| a.can_read_scripts_library,
    WriteScripts => |a| a.can_write_scripts_library,
}

/// One annotated `POST` handler per command that takes a JSON body.
macro_rules! command_route {
    ($handler:ident, $marker:ident, $command:expr, $path:literal, $doc:literal) => {
        pub struct $marker;
        impl CommandRoute for $marker {
            const COMMAND: ResponseCommand = $command;
        }

        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "response-actions",
            params(Xsrf),
            request_body = ResponseActionRequest,
            responses(
                (status = 200, description = "The action, pending until its hosts answer (isolate and unisolate also carry the legacy `action`)", body = ActionResponse),
                (status = 400, description = "No kbn-xsrf header, a malformed body or parameter (Kibana's message), an unknown or unenrolled endpoint, or a host that cannot run the command", body = ErrorBody),
                (status = 403, description = "`Endpoint authorization failure`: the command's privilege, or the licence it needs", body = ErrorBody),
                SignedInErrors,
                BodyTooLarge,
            ))]
        #[tracing::instrument(skip_all, fields(user = %user.username))]
        async fn $handler(
            State(state): State<AppState>,
            RequireCommand(user, _): RequireCommand<$marker>,
            JsonBody(request): JsonBody<ResponseActionRequest>,
        ) -> Result<axum::Json<ActionResponse>> {
            Ok(axum::Json(service::create(&state, $command, &request, &user, None).await?))
        }
    };
}

command_route!(
    isolate,
    IsolateRoute,
    ResponseCommand::Isolate,
    "/api/endpoint/action/isolate",
    "Isolates hosts from the network (Warden still reaches them)."
);
command_route!(unisolate, UnisolateRoute, ResponseCommand::Unisolate, "/api/endpoint/action/unisolate", "Releases isolated hosts.");
command_route!(
    kill_process,
    KillProcessRoute,
    ResponseCommand::KillProcess,
    "/api/endpoint/action/kill_process",
    "Kills a process (`pid` or `entity_id`)."
);
command_route!(
    suspend_process,
    SuspendProcessRoute,
    ResponseCommand::SuspendProcess,
    "/api/endpoint/action/suspend_process",
    "Suspends a process (`pid` or `entity_id`)."
);
command_route!(
    running_procs,
    RunningProcessesRoute,
    ResponseCommand::RunningProcesses,
    "/api/endpoint/action/running_procs",
    "Lists the hosts' running processes."
);
command_route!(
    get_file,
    GetFileRoute,
    ResponseCommand::GetFile,
    "/api/endpoint/action/get_file",
    "Fetches a file from hosts (a zip, passcode `elastic`)."
);
command_route!(
    execute,
    ExecuteRoute,
    ResponseCommand::Execute,
    "/api/endpoint/action/execute",
    "Runs a command on hosts, stopped after `timeout` seconds (default 4 hours)."
);
command_route!(scan, ScanRoute, ResponseCommand::Scan, "/api/endpoint/action/scan", "Scans a path on hosts.");
command_route!(
    run_script,
    RunScriptRoute,
    ResponseCommand::Runscript,
    "/api/endpoint/action/run_script",
    "Runs a script of the scripts library (`scriptId`, `scriptInput`)."
);

pub struct CancelRoute;
impl CommandRoute for CancelRoute {
    const COMMAND: ResponseCommand = ResponseCommand::Cancel;
}

/// Cancels a pending action (`parameters.id`) on the hosts named (those of
/// the action still pending). Allowed to whoever may send the original
/// command; a cancel only to its sender, while it is pending.
#[utoipa::path(post, path = "/api/endpoint/action/cancel", tag = "response-actions",
    params(Xsrf),
    request_body = ResponseActionRequest,
    responses(
        (status = 200, description = "The cancel action, pending until the hosts answer", body = ActionResponse),
        (status = 400, description = "No kbn-xsrf header; a missing `parameters.id`; the action already completed or failed; an endpoint that is not part of it; an agent that cannot cancel; the MDE flag off", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: no cancellable command at all, not the original command's privilege, or another user's cancel", body = ErrorBody),
        (status = 404, description = "`Action with id '<id>' not found.`", body = ErrorBody),
        SignedInErrors,
        BodyTooLarge,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn cancel(
    State(state): State<AppState>,
    RequireCommand(user, _): RequireCommand<CancelRoute>,
    JsonBody(request): JsonBody<ResponseActionRequest>,
) -> Result<axum::Json<ActionResponse>> {
    Ok(axum::Json(service::create(&state, ResponseCommand::Cancel, &request, &user, None).await?))
}

pub struct UploadRoute;
impl CommandRoute for UploadRoute {
    const COMMAND: ResponseCommand = ResponseCommand::Upload;
}

/// The upload form, for the document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file to put in each host's folder.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
    /// JSON array of agent ids, e.g. `["a1"]` (or the field repeated, one id each).
    endpoint_ids: String,
    /// JSON object: `{"overwrite": false}`.
    parameters: Option<String>,
    comment: Option<String>,
    agent_type: Option<String>,
}

/// Reads a multipart field as text, bounded.
async fn field_text(field: axum::extract::multipart::Field<'_>) -> Result<String> {
    let bytes = field_bytes(field, 1_048_576).await?;
    String::from_utf8(bytes).map_err(|_| ApiError::BadRequest("[request body]: a form field is not UTF-8 text".into()))
}

/// Reads a multipart field's bytes, refusing with 413 past `max`.
async fn field_bytes(mut field: axum::extract::multipart::Field<'_>, max: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::BadRequest(format!("[request body]: {e}")))? {
        if bytes.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(format!("The file is larger than {max} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn json_list(field: &str, text: &str) -> Result<Vec<String>> {
    let text = text.trim();
    if text.starts_with('[') {
        serde_json::from_str(text).map_err(|e| ApiError::BadRequest(format!("[request body.{field}]: {e}")))
    } else {
        Ok(vec![text.to_owned()])
    }
}

/// Puts a file on hosts (multipart: `file`, `endpoint_ids`, `parameters`, `comment`).
#[utoipa::path(post, path = "/api/endpoint/action/upload", tag = "response-actions",
    params(Xsrf),
    request_body(content_type = "multipart/form-data", content = UploadForm),
    responses(
        (status = 200, description = "The action; its parameters gain file_id, file_name, file_sha256 and file_size", body = ActionResponse),
        (status = 400, description = "No kbn-xsrf header, no file, or a malformed field", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 413, description = "The file is larger than `response_file_max_bytes`", body = ErrorBody),
        SignedInErrors,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username))]
async fn upload(
    State(state): State<AppState>,
    RequireCommand(user, _): RequireCommand<UploadRoute>,
    mut form: Multipart,
) -> Result<axum::Json<ActionResponse>> {
    let mut request = ResponseActionRequest::default();
    let mut file = None;
    let bad = |e: axum::extract::multipart::MultipartError| ApiError::BadRequest(format!("[request body]: {e}"));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let mime_type = field.content_type().unwrap_or_default().to_owned();
                let bytes = field_bytes(field, state.config.response_file_max_bytes).await?;
                file = Some(UploadedFile { name: file_name, mime_type, bytes });
            }
            "endpoint_ids" => request.endpoint_ids.extend(json_list("endpoint_ids", &field_text(field).await?)?),
            "alert_ids" => request.alert_ids.get_or_insert_with(Vec::new).extend(json_list("alert_ids", &field_text(field).await?)?),
            "case_ids" => request.case_ids.get_or_insert_with(Vec::new).extend(json_list("case_ids", &field_text(field).await?)?),
            "comment" => request.comment = Some(field_text(field).await?),
            "agent_type" => {
                let text = field_text(field).await?;
                let parsed = serde_json::from_value(serde_json::Value::String(text.trim().to_owned()))
                    .map_err(|e| ApiError::BadRequest(format!("[request body.agent_type]: {e}")))?;
                request.agent_type = Some(parsed);
            }
            "parameters" => {
                let text = field_text(field).await?;
                request.parameters = Some(serde_json::from_str(&text).map_err(|e| ApiError::BadRequest(format!("[request body.parameters]: {e}")))?);
            }
            other => return Err(ApiError::BadRequest(format!("[request body.{other}]: definition for this key is missing"))),
        }
    }
    Ok(axum::Json(service::create(&state, ResponseCommand::Upload, &request, &user, file).await?))
}

/// The history's query, for the document; the handler reads the pairs.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, style = Form)]
#[allow(dead_code)]
struct ListParams {
    /// Agent ids (repeat, or comma-separated).
    #[param(rename = "agentIds")]
    agent_ids: Option<Vec<String>>,
    #[param(rename = "agentTypes")]
    agent_types: Option<Vec<String>>,
    /// Command names, e.g. `isolate`, `running-processes`.
    commands: Option<Vec<String>>,
    /// failed, pending, successful (1 to 3).
    statuses: Option<Vec<String>>,
    /// User names of who sent the actions.
    #[param(rename = "userIds")]
    user_ids: Option<Vec<String>>,
    /// automated or manual.
    types: Option<Vec<String>>,
    /// Action ids whose outputs are included.
    #[param(rename = "withOutputs")]
    with_outputs: Option<Vec<String>>,
    /// ISO 8601 or date math (`now-7d`, `now-1d/d`); no bound when left out.
    #[param(rename = "startDate")]
    start_date: Option<String>,
    #[param(rename = "endDate")]
    end_date: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1)]
    page: Option<u64>,
    /// 1 to 10,000 (default 10).
    #[param(rename = "pageSize", minimum = 1, maximum = 10000)]
    page_size: Option<u64>,
}

/// The response actions history, newest first, filtered and paged, with `total`.
#[utoipa::path(get, path = "/api/endpoint/action", tag = "response-actions",
    params(ListParams),
    responses(
        (status = 200, body = ActionListResponse),
        (status = 400, description = "An unknown or out-of-bounds query parameter, or a date that is neither ISO 8601 nor date math", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: response_actions_log:read with a Platinum licence or better", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list(
    State(state): State<AppState>,
    _: RequireEndpoint<ReadActionsLog>,
    QueryPairs(pairs): QueryPairs,
) -> Result<axum::Json<ActionListResponse>> {
    let query = ActionListQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(ApiError::BadRequest)?;
    Ok(axum::Json(service::list(&state, &query).await?))
}

/// One action, with every host's output.
#[utoipa::path(get, path = "/api/endpoint/action/{id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The action's id")),
    responses(
        (status = 200, body = ActionDetailsResponse),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "`Action with id '<id>' not found.`", body = ErrorBody),
        SignedInErrors,
    ))]
async fn details(
    State(state): State<AppState>,
    _: RequireEndpoint<ReadActionsLog>,
    Path(id): Path<String>,
) -> Result<axum::Json<ActionDetailsResponse>> {
    Ok(axum::Json(ActionDetailsResponse { data: service::get(&state, &id).await? }))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct StatusParams {
    /// 1 to 50 agent ids (repeat, or comma-separated).
    #[param(min_items = 1, max_items = 50)]
    agent_ids: Vec<String>,
}

/// Pending actions per agent, by command.
#[utoipa::path(get, path = "/api/endpoint/action_status", tag = "response-actions",
    params(StatusParams),
    responses(
        (status = 200, body = ActionStatusResponse),
        (status = 400, description = "No agent id, or more than 50", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        SignedInErrors,
    ))]
async fn action_status(
    State(state): State<AppState>,
    _: RequireEndpoint<ReadSecuritySolution>,
    QueryPairs(pairs): QueryPairs,
) -> Result<axum::Json<ActionStatusResponse>> {
    let mut ids: Vec<String> = Vec::new();
    for (key, value) in &pairs {
        match key.as_str() {
            "agent_ids" => ids.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)),
            other => return Err(ApiError::BadRequest(format!("[request query.{other}]: definition for this key is missing"))),
        }
    }
    ids.sort();
    ids.dedup();
    if ids.is_empty() || ids.len() > 50 {
        return Err(ApiError::BadRequest(format!("[request query.agent_ids]: array size is [{}], but must be between [1] and [50]", ids.len())));
    }
    Ok(axum::Json(service::pending_by_agent(&state, &ids).await?))
}

/// A get-file result's info (`file_id` is `<action id>.<agent id>`).
#[utoipa::path(get, path = "/api/endpoint/action/{id}/file/{file_id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The action's id"), ("file_id" = String, Path, min_length = 1, description = "`<action id>.<agent id>`")),
    responses(
        (status = 200, body = FileInfoResponse),
        (status = 400, description = "The action moves no files", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: the caller may not send the action's command", body = ErrorBody),
        (status = 404, description = "No such action or file", body = ErrorBody),
        SignedInErrors,
    ))]
async fn file_info(
    State(state): State<AppState>,
    RequireEndpoint(user, _): RequireEndpoint<ReadActionsLog>,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<axum::Json<FileInfoResponse>> {
    Ok(axum::Json(files::file_info(&state, &user, &id, &file_id).await?))
}

fn attachment(name: &str, mime_type: &str, bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(mime_type).unwrap_or(HeaderValue::from_static("application/octet-stream")));
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, Body::from(bytes)).into_response()
}

/// A get-file result as the zip the agent made (passcode `elastic`).
#[utoipa::path(get, path = "/api/endpoint/action/{id}/file/{file_id}/download", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The action's id"), ("file_id" = String, Path, min_length = 1, description = "`<action id>.<agent id>`")),
    responses(
        (status = 200, description = "The zip, as an attachment", content_type = "application/octet-stream"),
        (status = 400, description = "The action moves no files, or the file is not ready", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "No such action or file", body = ErrorBody),
        SignedInErrors,
    ))]
async fn file_download(
    State(state): State<AppState>,
    RequireEndpoint(user, _): RequireEndpoint<ReadActionsLog>,
    Path((id, file_id)): Path<(String, String)>,
) -> Result<Response> {
    let (file, bytes) = files::download(&state, &user, &id, &file_id).await?;
    Ok(attachment(&file.name, &file.mime_type, bytes))
}

/// What the caller may do with endpoints (Kibana's EndpointAuthz), with the
/// licence and flags the SPA needs to apply the same rules.
#[utoipa::path(get, path = "/internal/endpoint/authz", tag = "response-actions",
    responses((status = 200, body = EndpointAuthzResponse), SignedInErrors))]
async fn authz(State(state): State<AppState>, user: AuthUser) -> axum::Json<EndpointAuthzResponse> {
    axum::Json(service::authz_of(&state, &user))
}

/// The hosts Microsoft Defender for Endpoint knows, through the MDE
/// connector (`configured: false` without one).
#[utoipa::path(get, path = "/internal/endpoint/mde/hosts", tag = "response-actions",
    responses(
        (status = 200, body = MdeHostsResponse),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 502, description = "Microsoft Defender for Endpoint refused or could not be reached (the message says which)", body = ErrorBody),
        SignedInErrors,
    ))]
async fn mde_hosts(State(state): State<AppState>, _: RequireEndpoint<ReadSecuritySolution>) -> Result<axum::Json<MdeHostsResponse>> {
    Ok(axum::Json(crate::response_actions::mde::hosts(&state).await?))
}

/// The script form, for the document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ScriptForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: Option<String>,
    /// 1 to 256 characters, unique.
    name: Option<String>,
    description: Option<String>,
    /// How to give the script input, shown in the console's help.
    instructions: Option<String>,
    example: Option<String>,
    /// linux, macos, windows (comma-separated or repeated).
    platform: Option<String>,
    /// `true` or `false`.
    #[schema(rename = "requiresInput")]
    requires_input: Option<String>,
}

async fn script_form(mut form: Multipart) -> Result<(ScriptFields, Option<ScriptFile>)> {
    let mut fields = ScriptFields::default();
    let mut file = None;
    let bad = |e: axum::extract::multipart::MultipartError| ApiError::BadRequest(format!("[request body]: {e}"));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let bytes = field_bytes(field, scripts::MAX_SCRIPT_BYTES).await?;
            file = Some(ScriptFile { name: file_name, bytes });
        } else {
            let text = field_text(field).await?;
            fields.set(&name, &text).map_err(ApiError::BadRequest)?;
        }
    }
    Ok((fields, file))
}

/// Adds a script to the library (multipart: `file`, `name`, `description`, …).
#[utoipa::path(post, path = "/api/endpoint/scripts_library", tag = "response-actions",
    params(Xsrf),
    request_body(content_type = "multipart/form-data", content = ScriptForm),
    responses(
        (status = 200, body = ScriptResponse),
        (status = 400, description = "No kbn-xsrf header, no file or name, or a field out of bounds", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`: scripts_library:all with an Enterprise licence", body = ErrorBody),
        (status = 409, description = "A script of that name exists", body = ErrorBody),
        (status = 413, description = "A script larger than 1 MiB", body = ErrorBody),
        SignedInErrors,
    ))]
async fn create_script(
    State(state): State<AppState>,
    RequireEndpoint(user, _): RequireEndpoint<WriteScripts>,
    form: Multipart,
) -> Result<axum::Json<ScriptResponse>> {
    let (fields, file) = script_form(form).await?;
    Ok(axum::Json(scripts::create(&state, &user, fields, file).await?))
}

/// The scripts of the library, by name.
#[utoipa::path(get, path = "/api/endpoint/scripts_library", tag = "response-actions",
    responses(
        (status = 200, body = ScriptsListResponse),
        (status = 403, description = "`Endpoint authorization failure`: scripts_library:read with an Enterprise licence", body = ErrorBody),
        SignedInErrors,
    ))]
async fn list_scripts(State(state): State<AppState>, _: RequireEndpoint<ReadScripts>) -> Result<axum::Json<ScriptsListResponse>> {
    Ok(axum::Json(scripts::list(&state).await?))
}

/// One script.
#[utoipa::path(get, path = "/api/endpoint/scripts_library/{id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The script's id")),
    responses(
        (status = 200, body = ScriptResponse),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        SignedInErrors,
    ))]
async fn get_script(State(state): State<AppState>, _: RequireEndpoint<ReadScripts>, Path(id): Path<String>) -> Result<axum::Json<ScriptResponse>> {
    Ok(axum::Json(scripts::get(&state, &id).await?))
}

/// Changes a script: the fields sent, and its file if one is sent.
#[utoipa::path(patch, path = "/api/endpoint/scripts_library/{id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The script's id"), Xsrf),
    request_body(content_type = "multipart/form-data", content = ScriptForm),
    responses(
        (status = 200, body = ScriptResponse),
        (status = 400, description = "No kbn-xsrf header, or a field out of bounds", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        (status = 409, description = "Another script has that name", body = ErrorBody),
        (status = 413, description = "A script larger than 1 MiB", body = ErrorBody),
        SignedInErrors,
    ))]
async fn update_script(
    State(state): State<AppState>,
    RequireEndpoint(user, _): RequireEndpoint<WriteScripts>,
    Path(id): Path<String>,
    form: Multipart,
) -> Result<axum::Json<ScriptResponse>> {
    let (fields, file) = script_form(form).await?;
    Ok(axum::Json(scripts::update(&state, &user, &id, fields, file).await?))
}

/// Removes a script (actions that ran it keep their record).
#[utoipa::path(delete, path = "/api/endpoint/scripts_library/{id}", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The script's id"), Xsrf),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        SignedInErrors,
    ))]
async fn delete_script(State(state): State<AppState>, _: RequireEndpoint<WriteScripts>, Path(id): Path<String>) -> Result<StatusCode> {
    scripts::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A script's file.
#[utoipa::path(get, path = "/api/endpoint/scripts_library/{id}/download", tag = "response-actions",
    params(("id" = String, Path, min_length = 1, description = "The script's id")),
    responses(
        (status = 200, description = "The script file, as an attachment", content_type = "application/octet-stream"),
        (status = 403, description = "`Endpoint authorization failure`", body = ErrorBody),
        (status = 404, description = "No such script", body = ErrorBody),
        SignedInErrors,
    ))]
async fn script_download(State(state): State<AppState>, _: RequireEndpoint<ReadScripts>, Path(id): Path<String>) -> Result<Response> {
    let (name, bytes) = scripts::download(&state, &id).await?;
    Ok(attachment(&name, "text/plain; charset=utf-8", bytes))
}

/// Fleet Server: an agent begins uploading a file (a get-file result).
#[utoipa::path(post, path = "/api/fleet/uploads", tag = "fleet-server",
    request_body = UploadBegin,
    responses(
        (status = 200, body = UploadStarted),
        (status = 400, description = "Fleet Server's errors: ErrFileInfoBodyRequired, ErrAgentIDMissing, ErrFieldRequired, ErrFileSizeRequired, ErrFileSizeTooLarge", body = ErrorBody),
        (status = 403, description = "ErrAgentIdentity: the agent_id is not the key's agent", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn upload_begin(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    JsonBody(body): JsonBody<UploadBegin>,
) -> Result<axum::Json<UploadStarted>> {
    Ok(axum::Json(files::begin_upload(&state, &agent, body).await?))
}

/// Fleet Server: one chunk of an upload, its SHA-256 in `X-Chunk-SHA2`.
#[utoipa::path(put, path = "/api/fleet/uploads/{id}/{chunk}", tag = "fleet-server",
    params(("id" = String, Path, min_length = 1, description = "The upload id"), ("chunk" = String, Path, min_length = 1, description = "The chunk's number, from 0"),
        ("X-Chunk-SHA2" = String, Header, description = "Hex SHA-256 of the body")),
    request_body(content_type = "application/octet-stream", content = Vec<u8>),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "ErrInvalidFileID, ErrUploadExpired, ErrStatusNoUploads, ErrInvalidChunkNum, ErrHashMismatch, ErrFailValidation (wrong size)", body = ErrorBody),
        (status = 403, description = "ErrAgentIdentity", body = ErrorBody),
        (status = 413, description = "A chunk larger than 100 MiB (every chunk but the last is exactly 4 MiB)", body = ErrorBody),
        AgentKeyErrors,
    ))]
async fn upload_chunk(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path((id, chunk)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    let sha2 = headers.get("x-chunk-sha2").and_then(|v| v.to_str().ok());
    files::put_chunk(&state, &agent, &id, &chunk, sha2, &body).await?;
    Ok(StatusCode::OK)
}

/// Fleet Server: the upload is complete; `transithash.sha256` is the SHA-256
/// over the chunks' digests, in order.
#[utoipa::path(post, path = "/api/fleet/uploads/{id}", tag = "fleet-server",
    params(("id" = String, Path, min_length = 1, description = "The upload id")),
    request_body = UploadFinish,
    responses(
        (status = 200, description = "`{\"status\":\"ok\"}`"),
        (status = 400, description = "TransitHashRequired, ErrMissingChunks, ErrFailValidation, ErrStatusNoUploads, ErrInvalidFileID", body = ErrorBody),
        (status = 403, description = "ErrAgentIdentity", body = ErrorBody),
        AgentKeyErrors,
        BodyTooLarge,
    ))]
async fn upload_finish(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UploadFinish>,
) -> Result<axum::Json<serde_json::Value>> {
    files::finish_upload(&state, &agent, &id, body).await?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})))
}

/// Fleet Server: a file an action sends to this agent (an upload's file, a
/// library script).
#[utoipa::path(get, path = "/api/fleet/file/{id}", tag = "fleet-server",
    params(("id" = String, Path, min_length = 1, description = "The file id")),
    responses(
        (status = 200, description = "The file; `X-File-SHA2` holds its SHA-256", content_type = "application/octet-stream"),
        (status = 404, description = "`file not found`: unknown, not ready, or not sent to this agent", body = ErrorBody),
        AgentKeyErrors,
    ))]
async fn file_delivery(State(state): State<AppState>, AgentAuth(agent): AgentAuth, Path(id): Path<String>) -> Result<Response> {
    let (file, bytes) = files::deliver(&state, &agent, &id).await?;
    let mut response = attachment(&file.name, &file.mime_type, bytes);
    if let Some(sha) = file.sha256.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
        response.headers_mut().insert("x-file-sha2", sha);
    }
    Ok(response)
}

//! Warden's API, one typed client per resource (`api::fleet::list_agents`, …).
//! Below them, one request helper: paths are relative to the document's
//! `<base href>` (so Warden works behind a proxy at a sub-path), every request
//! carries `kbn-xsrf`, and error bodies become a typed, cloneable `ApiError`.
//! Pages call the resource clients, never the helper.

pub mod actions;
pub mod alerts;
pub mod api_keys;
pub mod bulk_actions;
pub mod cases;
pub mod cloud_connectors;
pub mod fleet;
pub mod response_actions;
pub mod rules;
pub mod session;
pub mod tasks;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warden_core::error::ErrorBody;
use warden_core::paths::XSRF_HEADER;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status, or 0 when Warden could not be reached.
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

fn unreachable(err: gloo_net::Error) -> ApiError {
    ApiError { status: 0, message: format!("Cannot reach Warden: {err}") }
}

async fn send(builder: RequestBuilder, body: Option<String>) -> ApiResult<Response> {
    let builder = builder.header(XSRF_HEADER, "warden");
    let request = match body {
        Some(json) => builder.header("content-type", "application/json").body(json),
        None => builder.build(),
    }
    .map_err(unreachable)?;
    checked(request.send().await.map_err(unreachable)?).await
}

/// The response if it succeeded, else its error body as an `ApiError`.
async fn checked(response: Response) -> ApiResult<Response> {
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let message = match response.json::<ErrorBody>().await {
        Ok(body) => body.message,
        Err(_) => format!("{} {}", status, response.status_text()),
    };
    if status == 401 {
        crate::session::on_unauthorized();
    }
    Err(ApiError { status, message })
}

async fn decode<T: DeserializeOwned>(response: Response) -> ApiResult<T> {
    let status = response.status();
    response.json::<T>().await.map_err(|err| ApiError { status, message: format!("Unexpected answer from Warden: {err}") })
}

async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    decode(send(Request::get(path), None).await?).await
}

async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    let json = serde_json::to_string(body).map_err(|e| ApiError { status: 0, message: e.to_string() })?;
    decode(send(Request::post(path), Some(json)).await?).await
}

/// A multipart POST (a file with its fields); the browser sets the boundary.
async fn post_form<T: DeserializeOwned>(path: &str, form: web_sys::FormData) -> ApiResult<T> {
    let request = Request::post(path).header(XSRF_HEADER, "warden").body(form).map_err(unreachable)?;
    decode(checked(request.send().await.map_err(unreachable)?).await?).await
}

/// A POST without a body whose answer is JSON.
async fn post_without_body<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    decode(send(Request::post(path), None).await?).await
}

/// A POST whose answer has no body (204).
async fn post_empty(path: &str) -> ApiResult<()> {
    send(Request::post(path), None).await.map(|_| ())
}

async fn put<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    let json = serde_json::to_string(body).map_err(|e| ApiError { status: 0, message: e.to_string() })?;
    decode(send(Request::put(path), Some(json)).await?).await
}

async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    let json = serde_json::to_string(body).map_err(|e| ApiError { status: 0, message: e.to_string() })?;
    decode(send(Request::patch(path), Some(json)).await?).await
}

/// A DELETE whose answer has no body (204).
async fn delete_empty(path: &str) -> ApiResult<()> {
    send(Request::delete(path), None).await.map(|_| ())
}

/// A DELETE with a JSON body (Elasticsearch's invalidate-keys shape).
async fn delete<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    let json = serde_json::to_string(body).map_err(|e| ApiError { status: 0, message: e.to_string() })?;
    decode(send(Request::delete(path), Some(json)).await?).await
}

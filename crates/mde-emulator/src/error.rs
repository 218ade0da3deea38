//! The two error bodies an MDE client meets: the API's
//! `{"error":{"code","message","target"}}` (target = a correlation id) and
//! Entra ID's (AAD's) token-endpoint body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// An MDE API error. `code` is one of MDE's documented codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdeError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429, and faults that ask for it).
    pub retry_after: Option<u64>,
}

impl MdeError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        MdeError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestBody", message)
    }

    pub fn odata(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ODataError", message)
    }

    pub fn already_in_progress() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ActiveRequestAlreadyExists", "Action is already in progress")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", message)
    }

    pub fn machine_not_found(id: &str) -> Self {
        Self::not_found(format!("Machine {id} was not found"))
    }

    pub fn action_not_found(id: &str) -> Self {
        Self::not_found(format!("Machine action {id} was not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        MdeError { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message) }
    }

    /// The body MDE would send for a status (the emulator's injected faults).
    pub fn for_status(status: StatusCode, retry_after: Option<u64>) -> Self {
        let (code, message) = match status.as_u16() {
            429 => ("TooManyRequests", "Rate limit is exceeded. Try again later."),
            401 => ("Unauthorized", "Authorization has been denied for this request."),
            403 => ("Forbidden", "The application does not have the permission for this operation."),
            404 => ("NotFound", "The resource was not found."),
            400..=499 => ("BadRequest", "The request was refused (emulated fault)."),
            _ => ("InternalServerError", "An error has occurred (emulated fault)."),
        };
        MdeError { retry_after, ..Self::new(status, code, message) }
    }
}

impl IntoResponse for MdeError {
    fn into_response(self) -> Response {
        let target = uuid::Uuid::new_v4().to_string();
        tracing::info!(status = self.status.as_u16(), code = self.code, %target, "{}", self.message);
        let body = json!({"error": {"code": self.code, "message": self.message, "target": target}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An Entra ID (AAD) token-endpoint error, e.g. `invalid_client` with
/// `AADSTS7000215`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl AadError {
    pub fn new(status: StatusCode, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        AadError { status, error, code, description: description.into() }
    }
}

#[derive(Serialize)]
struct AadBody<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: String,
    correlation_id: String,
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        tracing::info!(status = self.status.as_u16(), error = self.error, "AADSTS{}: {}", self.code, self.description);
        let body = AadBody {
            error: self.error,
            error_description: format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            error_codes: [self.code],
            timestamp,
            trace_id,
            correlation_id,
        };
        (self.status, Json(body)).into_response()
    }
}

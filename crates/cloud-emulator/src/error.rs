//! IAM's error body, as JSON: `{"Error":{"Type","Code","Message"},
//! "RequestId"}` (the fields of IAM's `ErrorResponse`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An IAM API error. `code` is one of IAM's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (injected throttling).
    pub retry_after: Option<u64>,
}

impl IamError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        IamError { status, code, message: message.into(), retry_after: None }
    }

    /// 400: the request does not follow the API's constraints.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// 403: the caller may not act as the principal (unknown, or wrong proof).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// The body IAM would send for a status (the emulator's injected faults).
    pub fn for_status(status: StatusCode, retry_after: Option<u64>) -> Self {
        let (code, message) = match status.as_u16() {
            429 => ("Throttling", "Rate exceeded"),
            403 => ("AccessDenied", "Access denied (emulated fault)."),
            404 => ("NoSuchEntity", "The request was rejected because it referenced an entity that does not exist (emulated fault)."),
            400..=499 => ("InvalidInput", "The request was refused (emulated fault)."),
            503 => ("ServiceUnavailable", "The service is unavailable. Please try again later (emulated fault)."),
            _ => ("ServiceFailure", "The request processing has failed because of an unknown error, exception or failure (emulated fault)."),
        };
        IamError { retry_after, ..Self::new(status, code, message) }
    }

    /// Who is at fault, as IAM's `Type` says.
    fn fault_type(&self) -> &'static str {
        if self.status.is_server_error() { "Receiver" } else { "Sender" }
    }
}

impl IntoResponse for IamError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::info!(status = self.status.as_u16(), code = self.code, %request_id, "{}", self.message);
        let body = json!({"Error": {"Type": self.fault_type(), "Code": self.code, "Message": self.message}, "RequestId": request_id});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

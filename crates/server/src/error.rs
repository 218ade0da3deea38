//! The one error type of the HTTP layer. Every error leaves Warden as a JSON
//! body in Kibana's shape; anything unexpected is logged and becomes a 500
//! with a generic message, never a leak of internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warden_core::authz::Privilege;
use warden_core::error::ErrorBody;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("missing privilege: {}", privilege_name(.0))]
    Forbidden(Privilege),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Unavailable(String),
    /// Overloaded for a moment (a full queue, a busy database): 503 with
    /// `Retry-After`, so the client waits instead of hammering.
    #[error("{message}")]
    Busy { message: String, retry_after_secs: u64 },
    /// Fleet Server's errors carry a code in `error`, e.g. `AgentNotFound`.
    #[error("{message}")]
    Coded { status: StatusCode, code: &'static str, message: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn privilege_name(privilege: &Privilege) -> String {
    serde_json::to_value(privilege).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Coded { status, .. } => *status,
            ApiError::Database(err) if is_busy(err) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(err) if is_unstorable_text(err) => StatusCode::BAD_REQUEST,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Database(err) if is_busy(err) => DATABASE_BUSY_MESSAGE.to_owned(),
            ApiError::Database(err) if is_unstorable_text(err) => UNSTORABLE_TEXT_MESSAGE.to_owned(),
            ApiError::Database(_) | ApiError::Internal(_) => "An internal server error occurred".to_owned(),
            other => other.to_string(),
        };
        match self {
            ApiError::Coded { code, .. } => ErrorBody { status_code: self.status().as_u16(), error: (*code).to_owned(), message },
            _ => ErrorBody::new(self.status().as_u16(), message),
        }
    }

    /// Maps a unique-constraint violation to 409 with `message`, after the
    /// query ran (no racy check before it); other errors pass through.
    pub fn on_unique_violation(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> ApiError {
        move |err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => ApiError::Conflict(message.into()),
            _ => ApiError::Database(err),
        }
    }
}

const DATABASE_BUSY_MESSAGE: &str = "The database is busy; try again in a moment";
const UNSTORABLE_TEXT_MESSAGE: &str = "A value contains a character that cannot be stored (such as NUL, \\u0000)";

/// Client text PostgreSQL refuses to store (a NUL character, \u0000): the
/// client's mistake, not the server's.
fn is_unstorable_text(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")))
}

/// A database that is momentarily busy (SQLite's writer lock held past
/// `busy_timeout`, every pooled connection in use, a PostgreSQL lock or
/// serialization conflict) is the client's cue to retry, not a server fault.
pub fn is_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: 5 SQLITE_BUSY and 6 SQLITE_LOCKED with their extended codes;
            // PostgreSQL: serialization failure, deadlock, lock not available.
            // SQLite's codes are short numbers; PostgreSQL's are five-character SQLSTATEs.
            let sqlite_busy = code.len() <= 4 && code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite_busy || matches!(code.as_ref(), "40001" | "40P01" | "55P03") || db.message().contains("database is locked")
        }
        _ => false,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = ?self, "request failed");
        } else if matches!(self, ApiError::Database(_)) {
            tracing::warn!(error = ?self, "database busy; asked the client to retry");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after_secs = match self {
            ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::Busy { retry_after_secs, .. } => Some(retry_after_secs),
            ApiError::Database(_) if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_error_to_its_status_and_message() {
        let cases = [
            (ApiError::BadRequest("[request body.username]: missing".into()), 400, "Bad Request"),
            (ApiError::Unauthorized("Unauthorized".into()), 401, "Unauthorized"),
            (ApiError::Forbidden(Privilege::FleetAll), 403, "Forbidden"),
            (ApiError::NotFound("Not Found".into()), 404, "Not Found"),
            (ApiError::Conflict("exists".into()), 409, "Conflict"),
            (ApiError::PayloadTooLarge("too big".into()), 413, "Payload Too Large"),
            (ApiError::TooManyRequests { message: "slow down".into(), retry_after_secs: 3 }, 429, "Too Many Requests"),
        ];
        for (error, status, phrase) in cases {
            let body = error.body();
            assert_eq!(body.status_code, status);
            assert_eq!(body.error, phrase);
        }
        assert_eq!(ApiError::Forbidden(Privilege::FleetAll).body().message, "missing privilege: fleet:all");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let body = ApiError::Internal(anyhow::anyhow!("password=hunter2 in connection string")).body();
        assert_eq!(body.status_code, 500);
        assert!(!body.message.contains("hunter2"));
    }

    #[test]
    fn busy_answers_503_with_retry_after() {
        let response = ApiError::Busy { message: "queue full".into(), retry_after_secs: 2 }.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = ApiError::Database(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(ApiError::Database(sqlx::Error::PoolTimedOut).body().message, DATABASE_BUSY_MESSAGE);
        assert_eq!(ApiError::Database(sqlx::Error::RowNotFound).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn too_many_requests_sets_retry_after() {
        let response = ApiError::TooManyRequests { message: "wait".into(), retry_after_secs: 42 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}

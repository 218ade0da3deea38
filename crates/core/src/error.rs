//! The error body every Warden route returns, in Kibana's (Boom's) shape:
//! `{"statusCode":403,"error":"Forbidden","message":"…"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How Kibana's `@kbn/config-schema` names a value's type in its messages
/// (`expected value of type [number] but got [string]`); `None` is a field
/// that is not there.
pub fn config_schema_type(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "Array",
        Some(Value::Object(_)) => "Object",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub status_code: u16,
    /// The HTTP reason phrase (`"Bad Request"`), or a Fleet Server error code
    /// such as `"ErrAuditReasonConflict"`.
    pub error: String,
    pub message: String,
}

impl ErrorBody {
    /// An error body whose `error` is the reason phrase of `status_code`.
    pub fn new(status_code: u16, message: impl Into<String>) -> Self {
        Self { status_code, error: reason_phrase(status_code).to_owned(), message: message.into() }
    }
}

/// The reason phrase Kibana puts in `error` for the status codes Warden uses.
pub fn reason_phrase(status_code: u16) -> &'static str {
    match status_code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// The message Kibana sends when a state-changing request lacks `kbn-xsrf`.
pub const XSRF_MISSING_MESSAGE: &str = "Request must contain a kbn-xsrf header.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_kibana_shape() {
        let body = ErrorBody::new(403, "Endpoint authorization failure");
        let json = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "statusCode": 403,
                "error": "Forbidden",
                "message": "Endpoint authorization failure"
            })
        );
    }

    #[test]
    fn reason_phrases_match_http() {
        for (code, phrase) in [(400, "Bad Request"), (401, "Unauthorized"), (409, "Conflict"), (413, "Payload Too Large"), (429, "Too Many Requests")]
        {
            assert_eq!(ErrorBody::new(code, "x").error, phrase);
        }
        assert_eq!(reason_phrase(599), "Error");
    }
}

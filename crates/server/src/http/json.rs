use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Result};

/// A JSON request body whose errors name the field, in Kibana's form:
/// `[request body.username]: invalid type: integer, expected a string`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out: no body, or `null` (Fleet's nullable bodies).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        let text = bytes.trim_ascii();
        if text.is_empty() || text == b"null" { Ok(OptionalJsonBody(None)) } else { parse(text).map(|value| OptionalJsonBody(Some(value))) }
    }
}

/// The body's bytes, with a 413 in Kibana's shape past `max_body_bytes`.
struct RawBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self> {
        Bytes::from_request(request, state).await.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("Request body is too large".into())
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::BadRequest("[request body]: expected a JSON body but got nothing".into())),
        // Every body Warden takes is an object; serde would also read a
        // struct from an array of its fields (`["admin", "pw"]`), which no
        // documented client sends.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::BadRequest("[request body]: expected a JSON object".into())),
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let place = if path == "." || path == "?" { "request body".to_owned() } else { format!("request body.{path}") };
        ApiError::BadRequest(format!("[{place}]: {inner}"))
    })
}

/// Query parameters whose errors are a 400 in Kibana's shape.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| QueryParams(value))
            .map_err(|rejection| ApiError::BadRequest(format!("[request query]: {}", rejection.body_text())))
    }
}

/// The query string as its decoded pairs, in order, for parameters that may
/// repeat (`status=open&status=closed`); the core parses them.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(pairs)| QueryPairs(pairs))
            .map_err(|rejection| ApiError::BadRequest(format!("[request query]: {}", rejection.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::api::LoginRequest;

    fn message(body: &str) -> String {
        match parse::<LoginRequest>(body.as_bytes()) {
            Err(ApiError::BadRequest(message)) => message,
            other => panic!("expected 400, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert!(message(r#"{"username": 7, "password": "x"}"#).starts_with("[request body.username]: invalid type"));
        assert!(message(r#"{"username": "a"}"#).contains("missing field `password`"));
        assert!(message(r#"{"username": "a", "password": "b", "admin": true}"#).contains("unknown field `admin`"));
        assert!(message("{not json").starts_with("[request body]"));
        assert!(message("").contains("got nothing"));
        assert_eq!(message(r#"["admin", "warden-demo"]"#), "[request body]: expected a JSON object");
        assert_eq!(message(" null"), "[request body]: expected a JSON object");
    }
}

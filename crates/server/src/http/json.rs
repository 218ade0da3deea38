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

/// The body unparsed, for handlers that check the caller's privileges before
/// they look at it (a forbidden caller gets 403 whatever they sent).
pub struct RawBody(pub Bytes);

impl RawBody {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        parse(&self.0)
    }
}

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
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("[request body]: expected a JSON body but got nothing".into()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let place = if path == "." || path == "?" { "request body".to_owned() } else { format!("request body.{path}") };
        ApiError::BadRequest(format!("[{place}]: {inner}"))
    })
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
    }
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

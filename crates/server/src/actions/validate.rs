//! Each connector type's config, secrets and params schema, with Kibana's
//! messages (`error validating connector type config: …`). Unknown keys are
//! refused, as Kibana's schemas do.

use serde_json::{Map, Value};
use warden_core::actions::{ConnectorTypeSpec, EMAIL, MICROSOFT_DEFENDER_ENDPOINT, SERVER_LOG, WEBHOOK};

use super::{ActionsError, OutboundGuard};

type Fields = Map<String, Value>;

pub const WEBHOOK_METHODS: [&str; 5] = ["post", "put", "patch", "get", "delete"];
const BASIC_AUTH: &str = "webhook-authentication-basic";
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];
/// The largest webhook body or log message a connector sends.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

fn config_error(detail: impl std::fmt::Display) -> ActionsError {
    ActionsError::BadRequest(format!("error validating connector type config: {detail}"))
}

fn secrets_error(detail: impl std::fmt::Display) -> ActionsError {
    ActionsError::BadRequest(format!("error validating connector type secrets: {detail}"))
}

fn params_error(detail: impl std::fmt::Display) -> ActionsError {
    ActionsError::BadRequest(format!("error validating action params: {detail}"))
}

fn only_keys(fields: &Fields, allowed: &[&str], error: fn(String) -> ActionsError) -> Result<(), ActionsError> {
    match fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(error(format!("[{key}]: definition for this key is missing"))),
        None => Ok(()),
    }
}

fn optional_text<'a>(fields: &'a Fields, key: &str, error: fn(String) -> ActionsError) -> Result<Option<&'a str>, ActionsError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => {
            Err(error(format!("[{key}]: expected value of type [string] but got [{}]", warden_core::error::config_schema_type(Some(other)))))
        }
    }
}

/// The config as stored (defaults filled in), after checking it and the secrets.
pub fn config_and_secrets(spec: &ConnectorTypeSpec, config: Fields, secrets: &Fields, guard: &OutboundGuard) -> Result<Fields, ActionsError> {
    match spec.id {
        WEBHOOK => webhook(config, secrets, guard),
        EMAIL => email(config, secrets, guard),
        SERVER_LOG => {
            only_keys(&config, &[], config_error)?;
            only_keys(secrets, &[], secrets_error)?;
            Ok(config)
        }
        MICROSOFT_DEFENDER_ENDPOINT => microsoft_defender_endpoint(config, secrets, guard),
        other => Err(ActionsError::BadRequest(format!("Action type \"{other}\" cannot be configured"))),
    }
}

fn webhook(mut config: Fields, secrets: &Fields, guard: &OutboundGuard) -> Result<Fields, ActionsError> {
    only_keys(&config, &["url", "method", "headers", "hasAuth", "authType"], config_error)?;
    let url =
        optional_text(&config, "url", config_error)?.ok_or_else(|| config_error("[url]: expected value of type [string] but got [undefined]"))?;
    let parsed =
        reqwest::Url::parse(url).map_err(|_| config_error(format!("error validation webhook action config: unable to parse url \"{url}\"")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(config_error(format!("error validation webhook action config: url \"{url}\" must be http or https, with a host")));
    }
    // The config is stored in clear and shown to every reader: credentials go in the secrets.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(config_error(
            "error validation webhook action config: the url may not hold a user or password; use basic authentication, whose secrets are encrypted",
        ));
    }
    if let Some(refusal) = guard.check_url(&parsed) {
        return Err(config_error(format!("error validation webhook action config: {refusal}")));
    }
    let method = optional_text(&config, "method", config_error)?.unwrap_or("post").to_owned();
    if !WEBHOOK_METHODS.contains(&method.as_str()) {
        return Err(config_error(format!("[method]: expected one of {} but got [{method}]", WEBHOOK_METHODS.join(", "))));
    }
    match config.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let valid_name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
                let valid_value = value.as_str().is_some_and(|v| reqwest::header::HeaderValue::from_str(v).is_ok());
                if !valid_name || !valid_value {
                    return Err(config_error(format!("[headers.{name}]: must be a header name with a text value")));
                }
            }
        }
        Some(other) => {
            return Err(config_error(format!(
                "[headers]: expected value of type [Object] but got [{}]",
                warden_core::error::config_schema_type(Some(other))
            )));
        }
    }
    let has_auth = match config.get("hasAuth") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(config_error(format!(
                "[hasAuth]: expected value of type [boolean] but got [{}]",
                warden_core::error::config_schema_type(Some(other))
            )));
        }
    };
    let auth_type = optional_text(&config, "authType", config_error)?.map(str::to_owned);
    match (&auth_type, has_auth) {
        (Some(_), false) => return Err(config_error("error validation webhook action config: authType must be null when hasAuth is false")),
        (Some(kind), true) if kind != BASIC_AUTH => {
            return Err(config_error(format!("[authType]: {kind} is not supported by Warden yet (only {BASIC_AUTH})")));
        }
        _ => {}
    }
    only_keys(secrets, &["user", "password"], secrets_error)?;
    let user = optional_text(secrets, "user", secrets_error)?;
    let password = optional_text(secrets, "password", secrets_error)?;
    if auth_type.is_some() && (user.is_none() || password.is_none()) {
        return Err(secrets_error("both user and password must be specified for basic authentication"));
    }
    if user.is_some() != password.is_some() {
        return Err(secrets_error("both user and password must be specified"));
    }
    config.insert("method".into(), Value::String(method));
    config.insert("hasAuth".into(), Value::Bool(has_auth));
    config.insert("authType".into(), auth_type.map_or(Value::Null, Value::String));
    config.entry("headers").or_insert(Value::Null);
    Ok(config)
}

/// The five config fields (trimmed as stored) and the client secret, by the
/// core's rules (the connector form's too); both URLs parsed and allowed by the guard.
fn microsoft_defender_endpoint(config: Fields, secrets: &Fields, guard: &OutboundGuard) -> Result<Fields, ActionsError> {
    let checked = warden_core::mde::validate_config(&config).map_err(config_error)?;
    for (key, url) in [("oAuthServerUrl", &checked.oauth_server_url), ("apiUrl", &checked.api_url)] {
        let parsed = reqwest::Url::parse(url).map_err(|_| config_error(format!("[{key}]: unable to parse url \"{url}\"")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(config_error(format!("[{key}]: the url may not hold a user or password")));
        }
        if let Some(refusal) = guard.check_url(&parsed) {
            return Err(config_error(format!("[{key}]: {refusal}")));
        }
    }
    warden_core::mde::validate_secrets(secrets).map_err(secrets_error)?;
    match serde_json::to_value(checked) {
        Ok(Value::Object(config)) => Ok(config),
        _ => Err(ActionsError::Internal(anyhow::anyhow!("the config does not serialize to an object"))),
    }
}

/// Recipients per field (`to`, `cc`, `bcc`), as Kibana's schema.
pub const MAX_RECIPIENTS: usize = 100;

fn email(mut config: Fields, secrets: &Fields, guard: &OutboundGuard) -> Result<Fields, ActionsError> {
    only_keys(&config, &["service", "host", "port", "secure", "from", "hasAuth"], config_error)?;
    let service = optional_text(&config, "service", config_error)?.unwrap_or("other").to_owned();
    if service != "other" {
        return Err(config_error(format!("[service]: {service} is not supported by Warden yet (only other: a host and port)")));
    }
    let host = optional_text(&config, "host", config_error)?
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| config_error("[host]: required when service is other"))?
        .trim()
        .to_owned();
    let port = match config.get("port") {
        Some(Value::Number(n)) => n.as_u64().filter(|p| (1..=65535).contains(p)),
        _ => None,
    }
    .ok_or_else(|| config_error("[port]: required when service is other, a number from 1 to 65535"))?;
    let secure = match config.get("secure") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(config_error(format!(
                "[secure]: expected value of type [boolean] but got [{}]",
                warden_core::error::config_schema_type(Some(other))
            )));
        }
    };
    let from =
        optional_text(&config, "from", config_error)?.ok_or_else(|| config_error("[from]: expected value of type [string] but got [undefined]"))?;
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(config_error(format!("[from]: \"{from}\" is not an email address")));
    }
    if let Some(refusal) = guard.allowed_hosts.check_url(&format!("smtp://{host}:{port}"), &host) {
        return Err(config_error(format!("error validation email action config: {refusal}")));
    }
    let has_auth = match config.get("hasAuth") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(config_error(format!(
                "[hasAuth]: expected value of type [boolean] but got [{}]",
                warden_core::error::config_schema_type(Some(other))
            )));
        }
    };
    only_keys(secrets, &["user", "password"], secrets_error)?;
    let user = optional_text(secrets, "user", secrets_error)?;
    let password = optional_text(secrets, "password", secrets_error)?;
    if has_auth && (user.is_none() || password.is_none()) {
        return Err(secrets_error("[user] and [password] are required when hasAuth is true"));
    }
    config.insert("service".into(), Value::String(service));
    config.insert("host".into(), Value::String(host));
    config.insert("secure".into(), secure.map_or(Value::Null, Value::Bool));
    config.insert("hasAuth".into(), Value::Bool(has_auth));
    Ok(config)
}

/// `to`, `cc` or `bcc`: a list of addresses, at most `MAX_RECIPIENTS`.
fn recipients(params: &Fields, key: &str) -> Result<usize, ActionsError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(items)) if items.len() <= MAX_RECIPIENTS => {
            for item in items {
                match item.as_str() {
                    Some(address) if address.parse::<lettre::message::Mailbox>().is_ok() => {}
                    _ => return Err(params_error(format!("[{key}]: {item} is not an email address"))),
                }
            }
            Ok(items.len())
        }
        Some(Value::Array(_)) => Err(params_error(format!("[{key}]: at most {MAX_RECIPIENTS} addresses"))),
        Some(other) => {
            Err(params_error(format!("[{key}]: expected value of type [Array] but got [{}]", warden_core::error::config_schema_type(Some(other)))))
        }
    }
}

/// The params of one execution, checked.
pub fn params(spec: &ConnectorTypeSpec, params: Fields) -> Result<Fields, ActionsError> {
    match spec.id {
        WEBHOOK => {
            only_keys(&params, &["body"], params_error)?;
            if optional_text(&params, "body", params_error)?.is_some_and(|body| body.len() > MAX_TEXT_BYTES) {
                return Err(params_error(format!("[body]: longer than {MAX_TEXT_BYTES} bytes")));
            }
        }
        EMAIL => {
            only_keys(&params, &["to", "cc", "bcc", "subject", "message", "messageHTML", "replyTo"], params_error)?;
            let count = recipients(&params, "to")? + recipients(&params, "cc")? + recipients(&params, "bcc")?;
            if count == 0 {
                return Err(params_error("At least one email recipient must be specified"));
            }
            for key in ["subject", "message"] {
                if optional_text(&params, key, params_error)?.is_none() {
                    return Err(params_error(format!("[{key}]: expected value of type [string] but got [undefined]")));
                }
            }
            for key in ["message", "messageHTML"] {
                if optional_text(&params, key, params_error)?.is_some_and(|text| text.len() > MAX_TEXT_BYTES) {
                    return Err(params_error(format!("[{key}]: longer than {MAX_TEXT_BYTES} bytes")));
                }
            }
            if let Some(reply_to) = optional_text(&params, "replyTo", params_error)?
                && reply_to.parse::<lettre::message::Mailbox>().is_err()
            {
                return Err(params_error(format!("[replyTo]: \"{reply_to}\" is not an email address")));
            }
        }
        SERVER_LOG => {
            only_keys(&params, &["message", "level"], params_error)?;
            let message = optional_text(&params, "message", params_error)?;
            match message {
                None => return Err(params_error("[message]: expected value of type [string] but got [undefined]")),
                Some(text) if text.len() > MAX_TEXT_BYTES => return Err(params_error(format!("[message]: longer than {MAX_TEXT_BYTES} bytes"))),
                Some(_) => {}
            }
            if let Some(level) = optional_text(&params, "level", params_error)?
                && !LOG_LEVELS.contains(&level)
            {
                return Err(params_error(format!("[level]: expected one of {} but got [{level}]", LOG_LEVELS.join(", "))));
            }
        }
        MICROSOFT_DEFENDER_ENDPOINT => {
            warden_core::mde::validate_params(&params).map_err(params_error)?;
        }
        _ => {}
    }
    Ok(params)
}

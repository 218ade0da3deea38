//! The OpenAPI document (`GET /api/openapi.json`): every route with the
//! status codes it really answers and the limits its inputs really have, so a
//! client generated from it is right.
//!
//! Codes that come from a shared extractor or layer rather than from the
//! handler are described once here and named in each route's `responses`:
//! [`SignedInErrors`] (the `AuthUser` extractor), [`AgentKeyErrors`] (the
//! agent routes' `AgentAuth`), [`BodyTooLarge`] (`max_body_bytes`),
//! [`DatabaseBusy`], and the [`Xsrf`] header (the `require_xsrf` layer). Each
//! route writes its own 400, 403, 404 and 409, whose causes differ.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};
use warden_core::authz::Role;
use warden_core::error::ErrorBody;
use warden_core::kuery::MAX_KUERY_LENGTH;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Warden", description = "Warden's HTTP API: Kibana- and Fleet Server-compatible routes for the SOC console."),
    components(schemas(ErrorBody)),
    tags(
        (name = "status", description = "Health and this document"),
        (name = "security", description = "Sign-in, sessions, users and API keys"),
        (name = "task_manager", description = "Background tasks: health and run now"),
        (name = "cases", description = "Kibana's Cases API: cases, comments and alert attachments"),
        (name = "events", description = "Live events for the browser (server-sent events)"),
        (name = "fleet", description = "Kibana's Fleet API: agents, policies, enrollment keys"),
        (name = "fleet-server", description = "Fleet Server's agent API: enroll, check-in, acks, audit"),
        (name = "actions", description = "Kibana's actions API: connectors, connector types, system actions"),
        (name = "alerting", description = "Kibana's alerting API: rules, their runs and their alerts"),
    )
)]
/// The document's frame (title, tags, shared schemas); the paths come from
/// the routers themselves (`http::document`), and `Constraints` is applied
/// last, once every route's schemas are in.
pub struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document. No authentication needed.
#[utoipa::path(get, path = "/api/openapi.json", tag = "status",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> axum::Json<&'static Document> {
    static DOCUMENT: std::sync::OnceLock<Document> = std::sync::OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(super::document))
}

/// What the `AuthUser` extractor answers, on every route that takes a user
/// (session cookie, HTTP Basic, or `Authorization: ApiKey`).
#[derive(IntoResponses)]
pub enum SignedInErrors {
    /// Not signed in, or the session, user name and password, or API key is not valid.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Too many failed sign-ins for this user name or client address (HTTP
    /// Basic and API key credentials are throttled like the login form).
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
    TooManyRequests(ErrorBody),
    /// The password-check queue is full or the database is busy.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
    Busy(ErrorBody),
}

/// What the agent routes that name an agent answer before their handler runs
/// (`AgentAuth` with `Authorization: ApiKey <the agent's access key>`).
#[derive(IntoResponses)]
pub enum AgentKeyErrors {
    /// `ErrUnauthorized`: no or a malformed `Authorization: ApiKey`, an unknown
    /// key, or an agent that is unenrolled or whose key was revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `ErrAgentIdentity`: the key belongs to another agent.
    #[response(status = 403)]
    WrongAgent(ErrorBody),
    /// The database is busy.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
    Busy(ErrorBody),
}

/// The body is larger than `max_body_bytes`.
#[derive(IntoResponses)]
#[response(status = 413)]
pub struct BodyTooLarge(pub ErrorBody);

/// The database is busy.
#[derive(IntoResponses)]
#[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))]
pub struct DatabaseBusy(pub ErrorBody);

/// Kibana's CSRF rule (`require_xsrf` in `http/mod.rs`): every state-changing
/// browser route needs this header; the agent routes do not.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct Xsrf {
    /// Any value, e.g. `true` (`kbn-version` is accepted in its place).
    /// Without either, the request is a 400.
    #[param(rename = "kbn-xsrf")]
    pub kbn_xsrf: String,
}

/// `sortField` of `GET /api/fleet/agents`: the fields `list_agents` sorts by.
pub fn agent_sort_field() -> Object {
    string_enum("The field to sort by (default `enrolled_at`); any other is a 400.", warden_core::fleet_api::AgentSortField::NAMES)
}

/// `sortOrder` of `GET /api/fleet/agents`.
pub fn sort_order() -> Object {
    string_enum("`desc` (the default) or `asc`; any other is a 400.", ["asc", "desc"])
}

fn string_enum<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(values)).build()
}

/// What `#[schema(...)]` cannot say: closed sets the handlers hold as
/// constants or string lists rather than as Rust enums (taken from the same
/// constant where there is one), the role names an API key's
/// `role_descriptors` may use, and the limits of `BulkTarget`'s variants
/// (utoipa takes no limits on an enum's variants).
pub struct Constraints;

impl Modify for Constraints {
    fn modify(&self, openapi: &mut Document) {
        let Some(components) = openapi.components.as_mut() else { return };
        let schemas = &mut components.schemas;
        if let Some(RefOr::T(Schema::Object(request))) = schemas.get_mut("CreateApiKeyRequest")
            && let Some(RefOr::T(Schema::Object(descriptors))) = request.properties.get_mut("role_descriptors")
        {
            let roles: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
            descriptors.property_names = Some(Box::new(string_enum("A Warden role the caller holds", roles).into()));
        }
        if let Some(RefOr::T(Schema::OneOf(target))) = schemas.get_mut("BulkTarget") {
            for variant in &mut target.items {
                match variant {
                    // At most SO_SEARCH_LIMIT ids, as `bulk_unenroll` checks.
                    RefOr::T(Schema::Array(ids)) => ids.max_items = Some(10_000),
                    RefOr::T(Schema::Object(kuery)) => kuery.max_length = Some(MAX_KUERY_LENGTH),
                    _ => {}
                }
            }
        }
    }
}

//! Request and response bodies shared by the server and the SPA.

use serde::{Deserialize, Serialize};

use crate::authz::{Privilege, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Not blank: at least one character that is not Unicode white space.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"))]
    pub username: String,
    pub password: String,
}

/// The signed-in user, as `GET /internal/security/me` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub username: String,
    pub full_name: Option<String>,
    pub roles: Vec<Role>,
    /// Everything the roles grant, so the UI can hide what the user may not do.
    pub privileges: Vec<Privilege>,
    /// `session`, `basic` or (later) `api_key`.
    pub authentication_type: String,
}

impl CurrentUser {
    pub fn can(&self, privilege: Privilege) -> bool {
        self.privileges.contains(&privilege)
    }
}

/// One user as an administrator sees it (`GET /internal/security/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    pub username: String,
    pub full_name: Option<String>,
    pub roles: Vec<Role>,
    pub enabled: bool,
}

/// `GET /api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    pub name: String,
    pub version: VersionInfo,
    pub status: OverallStatus,
    pub uptime_ms: u64,
    /// Agent check-ins this node is holding open right now.
    pub waiting_checkins: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverallStatus {
    /// `available` when every part below is, `unavailable` otherwise.
    pub overall: StatusLevel,
    pub database: DatabaseStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusLevel {
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseStatus {
    pub level: String,
    /// `sqlite` or `postgres`.
    pub engine: String,
}

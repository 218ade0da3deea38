//! Route paths, relative to Warden's base path. The SPA prefixes nothing: it
//! requests them relative to the document's `<base href>`, so the same paths
//! work at `/` and behind a proxy at `/warden/`.

pub const STATUS: &str = "api/status";
pub const OPENAPI: &str = "api/openapi.json";
pub const LOGIN: &str = "internal/security/login";
pub const LOGOUT: &str = "internal/security/logout";
pub const ME: &str = "internal/security/me";
pub const USERS: &str = "internal/security/users";

/// The header every state-changing request must carry (any value), as in Kibana.
pub const XSRF_HEADER: &str = "kbn-xsrf";

//! Route paths, relative to Warden's base path. The SPA prefixes nothing: it
//! requests them relative to the document's `<base href>`, so the same paths
//! work at `/` and behind a proxy at `/warden/`.

pub const STATUS: &str = "api/status";
pub const OPENAPI: &str = "api/openapi.json";
pub const LOGIN: &str = "internal/security/login";
pub const LOGOUT: &str = "internal/security/logout";
pub const ME: &str = "internal/security/me";
pub const USERS: &str = "internal/security/users";
pub const API_KEYS: &str = "internal/security/api_key";
pub const TASK_HEALTH: &str = "api/task_manager/_health";
/// The browser's one server-sent-events stream (`events` module).
pub const EVENTS: &str = "internal/warden/events";

/// `POST` here runs a recurring task now.
pub fn task_run_soon(task_id: &str) -> String {
    format!("internal/task_manager/tasks/{task_id}/_run_soon")
}

/// The header every state-changing request must carry (any value), as in Kibana.
pub const XSRF_HEADER: &str = "kbn-xsrf";

/// Where the SPA may return after sign-in: only a path inside Warden
/// (`/fleet?x=1`), never another site (`//evil.example`, `https://…`,
/// `/\evil`). Anything else goes home.
pub fn safe_return_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') && !path.contains("://") => path,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_inside_warden() {
        for (next, expected) in [
            (Some("/fleet"), "/fleet"),
            (Some("/fleet/agents/42?tab=log"), "/fleet/agents/42?tab=log"),
            (Some("//evil.example/x"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/redirect?to=https://evil.example"), "/"),
            (Some("fleet"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_return_path(next), expected, "{next:?}");
        }
    }
}

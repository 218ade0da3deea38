//! Route paths, relative to Warden's base path. The SPA prefixes nothing: it
//! requests them relative to the document's `<base href>`, so the same paths
//! work at `/` and behind a proxy at `/warden/`.
//!
//! Every route the server answers is declared once in `routes!` below: a
//! constant for a fixed path, a function for a path with an id (the id
//! percent-encoded as one path segment). [`ALL`] lists each as its OpenAPI
//! template, and an API test holds it to the server's OpenAPI document both
//! ways, so no route exists without its path here.

use std::fmt::Write;

/// Declares each route path once; see the module's documentation.
macro_rules! routes {
    ($($(#[doc = $doc:literal])* $kind:ident $name:ident $(($($id:ident),+))? = $template:literal;)*) => {
        $(routes!(@one $(#[doc = $doc])* $kind $name $(($($id),+))? = $template);)*

        /// Every route path Warden serves, as its OpenAPI template (`{id}`
        /// where the function takes an id), in the order declared.
        pub const ALL: &[&str] = &[$($template),*];
    };
    (@one $(#[doc = $doc:literal])* const $name:ident = $template:literal) => {
        $(#[doc = $doc])*
        pub const $name: &str = $template;
    };
    (@one $(#[doc = $doc:literal])* fn $name:ident($id:ident) = $template:literal) => {
        $(#[doc = $doc])*
        #[doc = concat!("\n\n`", $template, "`, with `", stringify!($id), "` percent-encoded.")]
        pub fn $name($id: &str) -> String {
            $template.replace(concat!("{", stringify!($id), "}"), &encode($id))
        }
    };
    (@one $(#[doc = $doc:literal])* fn $name:ident($first:ident, $second:ident) = $template:literal) => {
        $(#[doc = $doc])*
        #[doc = concat!("\n\n`", $template, "`, with each id percent-encoded.")]
        pub fn $name($first: &str, $second: &str) -> String {
            $template
                .replace(concat!("{", stringify!($first), "}"), &encode($first))
                .replace(concat!("{", stringify!($second), "}"), &encode($second))
        }
    };
}

routes! {
    /// `GET`: Warden's health; public.
    const STATUS = "api/status";
    /// `GET`: the OpenAPI document; public.
    const OPENAPI = "api/openapi.json";

    /// `POST`: sign in.
    const LOGIN = "internal/security/login";
    /// `POST`: sign out.
    const LOGOUT = "internal/security/logout";
    /// `GET`: the signed-in user.
    const ME = "internal/security/me";
    /// `GET`: the users.
    const USERS = "internal/security/users";
    /// `GET` lists, `POST` creates, `DELETE` invalidates API keys.
    const API_KEYS = "internal/security/api_key";

    /// `GET`: the task manager's health and its tasks.
    const TASK_HEALTH = "api/task_manager/_health";
    /// `POST`: run a recurring task now.
    fn task_run_soon(id) = "internal/task_manager/tasks/{id}/_run_soon";

    /// `GET`: the connectors (never system actions).
    const CONNECTORS = "api/actions/connectors";
    /// `GET`: the connectors and the system actions the caller may use (the rule form).
    const CONNECTORS_INTERNAL = "internal/actions/connectors";
    /// `POST`: create a connector with a new id.
    const CONNECTOR_CREATE = "api/actions/connector";
    /// `GET` reads, `POST` creates with this id, `PUT` updates, `DELETE` deletes one connector.
    fn connector(id) = "api/actions/connector/{id}";
    /// `POST`: run a connector now with params.
    fn connector_execute(id) = "api/actions/connector/{id}/_execute";
    /// `GET`: a connector's runs.
    fn connector_executions(id) = "internal/actions/connector/{id}/_executions";
    /// `GET`: a connector's change history.
    fn connector_history(id) = "internal/actions/connector/{id}/_history";
    /// `GET`: the connector types (never system action types).
    const CONNECTOR_TYPES = "api/actions/connector_types";
    /// `GET`: the connector types and the system action types the caller may use.
    const CONNECTOR_TYPES_INTERNAL = "internal/actions/connector_types";

    /// `POST` opens a case, `PATCH` changes cases, `DELETE` deletes them (`?ids=`).
    const CASES = "api/cases";
    /// `GET`: cases, filtered and paged, with counts by status.
    const CASES_FIND = "api/cases/_find";
    /// `GET`: one case (without its comments).
    fn case(id) = "api/cases/{id}";
    /// `POST`: comment on a case or attach alerts to it.
    fn case_comments(id) = "api/cases/{id}/comments";
    /// `GET`: a case's attachments, a page at a time.
    fn case_comments_find(id) = "api/cases/{id}/comments/_find";

    /// `POST`: create a rule with a new id.
    const RULE_CREATE = "api/alerting/rule";
    /// `GET`, `PUT`, `DELETE` a rule; `POST` creates one with this id.
    fn rule(id) = "api/alerting/rule/{id}";
    /// `POST`: run the rule again (as whoever enables it).
    fn rule_enable(id) = "api/alerting/rule/{id}/_enable";
    /// `POST`: stop the rule; its active alerts become untracked.
    fn rule_disable(id) = "api/alerting/rule/{id}/_disable";
    /// `POST`: keep tracking alerts but fire no action.
    fn rule_mute_all(id) = "api/alerting/rule/{id}/_mute_all";
    /// `POST`: let the rule's actions fire again.
    fn rule_unmute_all(id) = "api/alerting/rule/{id}/_unmute_all";
    /// `GET`: rules, a page at a time.
    const RULES_FIND = "api/alerting/rules/_find";
    /// `GET`: the rule types and whether the caller may create each.
    const RULE_TYPES = "api/alerting/rule_types";
    /// `GET`: a rule's runs, newest first.
    fn rule_runs(id) = "internal/alerting/rule/{id}/_runs";
    /// `GET`: who changed a rule, when, and what.
    fn rule_history(id) = "internal/alerting/rule/{id}/_history";
    /// `GET`: the actions a rule ran.
    fn rule_action_executions(id) = "internal/alerting/rule/{id}/_action_executions";
    /// `GET`: what the rule form must know (the minimum schedule interval).
    const ALERTING_CONFIG = "internal/alerting/_config";
    /// `GET`: alerts across rules, filtered and paged.
    const ALERTS_FIND = "internal/alerting/alerts/_find";
    /// `GET`: one alert.
    fn alert(id) = "internal/alerting/alert/{id}";

    /// `GET`: the browser's one server-sent-events stream (`events` module).
    const EVENTS = "internal/warden/events";

    /// `GET`: the agents, a page at a time (query: [`with_query`]).
    const AGENTS = "api/fleet/agents";
    /// `GET`: one agent.
    fn agent(id) = "api/fleet/agents/{id}";
    /// `GET`: one agent's activity log.
    fn agent_events(id) = "api/fleet/agents/{id}/events";
    /// `POST`: unenroll one agent.
    fn agent_unenroll(id) = "api/fleet/agents/{id}/unenroll";
    /// `POST`: unenroll agents by ids or kuery.
    const BULK_UNENROLL = "api/fleet/agents/bulk_unenroll";
    /// `GET`: counts per status.
    const AGENT_STATUS = "api/fleet/agent_status";
    /// `GET` lists, `POST` creates agent policies.
    const AGENT_POLICIES = "api/fleet/agent_policies";
    /// `GET` reads, `PUT` updates one agent policy.
    fn agent_policy(id) = "api/fleet/agent_policies/{id}";
    /// `POST`: delete an agent policy.
    const AGENT_POLICIES_DELETE = "api/fleet/agent_policies/delete";
    /// `GET` lists, `POST` creates enrollment API keys.
    const ENROLLMENT_API_KEYS = "api/fleet/enrollment_api_keys";
    /// `GET` reads, `DELETE` revokes one enrollment API key.
    fn enrollment_api_key(id) = "api/fleet/enrollment_api_keys/{id}";

    /// `GET` lists, `POST` creates cloud connectors.
    const CLOUD_CONNECTORS = "api/fleet/cloud_connectors";
    /// `GET` reads, `PUT` updates, `DELETE` deletes one cloud connector.
    fn cloud_connector(id) = "api/fleet/cloud_connectors/{id}";
    /// `GET`: the package policies that use a cloud connector.
    fn cloud_connector_usage(id) = "api/fleet/cloud_connectors/{id}/usage";
    /// `POST`: verify a cloud connector's permissions soon ("Verify now").
    fn cloud_connector_verify(id) = "internal/fleet/cloud_connectors/{id}/_verify";
    /// `GET` lists, `POST` creates package policies.
    const PACKAGE_POLICIES = "api/fleet/package_policies";
    /// `GET` reads, `PUT` updates, `DELETE` deletes one package policy.
    fn package_policy(id) = "api/fleet/package_policies/{id}";
    /// `POST`: delete package policies by id.
    const PACKAGE_POLICIES_DELETE = "api/fleet/package_policies/delete";

    /// Fleet Server, `POST`: an agent enrolls with an enrollment token.
    const AGENT_ENROLL = "api/fleet/agents/enroll";
    /// Fleet Server, `POST`: an agent's long-poll check-in.
    fn agent_checkin(id) = "api/fleet/agents/{id}/checkin";
    /// Fleet Server, `POST`: an agent acknowledges actions.
    fn agent_acks(id) = "api/fleet/agents/{id}/acks";
    /// Fleet Server, `POST`: an agent's final message (uninstalled, orphaned, …).
    fn agent_audit_unenroll(id) = "api/fleet/agents/{id}/audit/unenroll";
    /// Fleet Server, `POST`: a permission verifier's results (one record per permission).
    fn agent_verification_results(id) = "api/fleet/agents/{id}/verification_results";
    /// Fleet Server, `POST`: an agent begins a file upload (a get-file result).
    const FLEET_UPLOADS = "api/fleet/uploads";
    /// Fleet Server, `PUT`: one chunk of an upload.
    fn fleet_upload_chunk(id, chunk) = "api/fleet/uploads/{id}/{chunk}";
    /// Fleet Server, `POST`: an upload is complete (with its transit hash).
    fn fleet_upload_finish(id) = "api/fleet/uploads/{id}";
    /// Fleet Server, `GET`: a file for the agent (an upload action's file).
    fn fleet_file(id) = "api/fleet/file/{id}";

    /// `POST`: isolate hosts.
    const ACTION_ISOLATE = "api/endpoint/action/isolate";
    /// `POST`: release hosts.
    const ACTION_UNISOLATE = "api/endpoint/action/unisolate";
    /// `POST`: kill a process.
    const ACTION_KILL_PROCESS = "api/endpoint/action/kill_process";
    /// `POST`: suspend a process.
    const ACTION_SUSPEND_PROCESS = "api/endpoint/action/suspend_process";
    /// `POST`: list running processes.
    const ACTION_RUNNING_PROCS = "api/endpoint/action/running_procs";
    /// `POST`: fetch a file from hosts.
    const ACTION_GET_FILE = "api/endpoint/action/get_file";
    /// `POST`: run a command on hosts.
    const ACTION_EXECUTE = "api/endpoint/action/execute";
    /// `POST` (multipart): put a file on hosts.
    const ACTION_UPLOAD = "api/endpoint/action/upload";
    /// `POST`: scan a path.
    const ACTION_SCAN = "api/endpoint/action/scan";
    /// `POST`: run a script of the library.
    const ACTION_RUN_SCRIPT = "api/endpoint/action/run_script";
    /// `POST`: cancel a pending action.
    const ACTION_CANCEL = "api/endpoint/action/cancel";
    /// `GET`: response actions, filtered and paged.
    const ACTIONS = "api/endpoint/action";
    /// `GET`: one response action.
    fn action(id) = "api/endpoint/action/{id}";
    /// `GET`: pending actions per agent, by command.
    const ACTION_STATUS = "api/endpoint/action_status";
    /// `GET`: a get-file result's file info.
    fn action_file(id, file_id) = "api/endpoint/action/{id}/file/{file_id}";
    /// `GET`: a get-file result as a zip (passcode `elastic`).
    fn action_file_download(id, file_id) = "api/endpoint/action/{id}/file/{file_id}/download";
    /// `GET`: what the caller may do with endpoints (Kibana's EndpointAuthz).
    const ENDPOINT_AUTHZ = "internal/endpoint/authz";
    /// `GET`: the hosts Microsoft Defender for Endpoint knows (through the MDE connector).
    const MDE_HOSTS = "internal/endpoint/mde/hosts";
    /// `GET` lists, `POST` (multipart) adds scripts to the library.
    const SCRIPTS_LIBRARY = "api/endpoint/scripts_library";
    /// `GET` reads, `PATCH` changes, `DELETE` removes one script.
    fn script(id) = "api/endpoint/scripts_library/{id}";
    /// `GET`: a script's file.
    fn script_download(id) = "api/endpoint/scripts_library/{id}/download";
    /// `POST`: one command to many hosts (ids or a kuery): one action per 1,000 hosts, linked by a bulk id.
    const BULK_ACTIONS = "internal/warden/response_actions/bulk";
    /// `POST`: what a bulk action would do: how many hosts, and which cannot take it and why.
    const BULK_ACTIONS_PREVIEW = "internal/warden/response_actions/bulk/_preview";
    /// `GET`: a bulk action's progress: counts and a page of its hosts.
    fn bulk_action(id) = "internal/warden/response_actions/bulk/{id}";
    /// `POST`: cancel a bulk action's still-pending hosts (one cancel per action).
    fn bulk_action_cancel(id) = "internal/warden/response_actions/bulk/{id}/_cancel";
}

/// The `POST` route of a response command.
pub fn action_command(command: crate::response_actions::ResponseCommand) -> String {
    format!("api/endpoint/action/{}", command.route_segment())
}

/// Percent-encodes `text` for one path segment or one query value: every
/// byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), so a
/// `/`, `?`, `#` or `%` in an id stays inside its segment. (A whole id of `.`
/// or `..` is still a dot segment: URL parsers resolve it even encoded.
/// Warden's ids are never that.)
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// `path` with a query string of `params`, each value percent-encoded (names
/// are the API's own, plain ASCII); `path` alone when there are none.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let mut url = path.to_owned();
    for (i, (name, value)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&encode(value));
    }
    url
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
    fn ids_are_encoded_as_one_segment() {
        for (path, expected) in [
            (agent("5f0c-a1_b.c~d"), "api/fleet/agents/5f0c-a1_b.c~d"),
            (agent("a/b"), "api/fleet/agents/a%2Fb"),
            (agent_events("x?y#z"), "api/fleet/agents/x%3Fy%23z/events"),
            (agent_unenroll("100%"), "api/fleet/agents/100%25/unenroll"),
            (agent_checkin("a b+c"), "api/fleet/agents/a%20b%2Bc/checkin"),
            (agent_acks("é"), "api/fleet/agents/%C3%A9/acks"),
            (agent_audit_unenroll("{id}"), "api/fleet/agents/%7Bid%7D/audit/unenroll"),
            (agent_policy("p:1"), "api/fleet/agent_policies/p%3A1"),
            (enrollment_api_key("k&1=2"), "api/fleet/enrollment_api_keys/k%261%3D2"),
            (task_run_soon("sessions_cleanup"), "internal/task_manager/tasks/sessions_cleanup/_run_soon"),
            (case_comments("c/1"), "api/cases/c%2F1/comments"),
            (agent(""), "api/fleet/agents/"),
            (action_file("a/1", "a/1.b"), "api/endpoint/action/a%2F1/file/a%2F1.b"),
            (fleet_upload_chunk("u", "0"), "api/fleet/uploads/u/0"),
            (bulk_action_cancel("b/1"), "internal/warden/response_actions/bulk/b%2F1/_cancel"),
        ] {
            assert_eq!(path, expected);
        }
    }

    #[test]
    fn every_template_is_relative_and_declared_once() {
        for path in ALL {
            assert!(!path.starts_with('/') && !path.ends_with('/') && !path.contains("//"), "{path}");
            let param = |s: &str| {
                s.strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            };
            assert!(path.split('/').all(|segment| param(segment) || !segment.contains(['{', '}'])), "{path}");
            assert_eq!(ALL.iter().filter(|p| p == &path).count(), 1, "{path}");
        }
    }

    #[test]
    fn every_command_has_its_declared_route() {
        for command in crate::response_actions::ResponseCommand::ALL {
            let path = action_command(*command);
            assert!(ALL.contains(&path.as_str()), "{path}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(with_query(AGENTS, &[]), "api/fleet/agents");
        assert_eq!(
            with_query(AGENTS, &[("page", "2"), ("sortField", "local_metadata.host.hostname"), ("kuery", r#"status:online and tags:"a&b""#)]),
            "api/fleet/agents?page=2&sortField=local_metadata.host.hostname&kuery=status%3Aonline%20and%20tags%3A%22a%26b%22"
        );
    }

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

//! Every route × every role (and anonymous): the server enforces the same
//! table the SPA reads from `warden_core::authz`. A new route adds a row.

use reqwest::{Method, StatusCode};
use warden_core::authz::{Privilege, Role, has_privilege};

use crate::helpers::{Options, spawn_app, spawn_app_with};

enum Access {
    Public,
    SignedIn,
    Needs(Privilege),
    /// Fleet Server routes: only an agent's API key, never a user.
    AgentKey,
    /// Creating API keys: the privilege, and not through an API key.
    NeedsSignIn(Privilege),
    /// The privilege, then the handler's own 404 (the target does not exist).
    NeedsThen404(Privilege),
    /// What the core's endpoint authz allows (the demo's trial licence).
    Endpoint(fn(&EndpointAuthz) -> bool),
    /// The endpoint authz, then the handler's own 404.
    EndpointThen404(fn(&EndpointAuthz) -> bool),
}

fn read_log(a: &EndpointAuthz) -> bool {
    a.can_read_actions_log_management || a.can_access_endpoint_actions_log_management
}

use Privilege::{FleetAll, FleetRead};
use warden_core::actions::License;
use warden_core::authz::privileges_of;
use warden_core::response_actions::{EndpointAuthz, endpoint_authz};

/// Bodies sent as multipart forms.
const SCRIPT_FORM: &str = "multipart:script";
const UPLOAD_FORM: &str = "multipart:upload";

/// Method, path, who may call it, and a body. In paths and bodies, `{n}` is a
/// fresh number, `{agent}` an enrolled agent, `{fresh_agent}` a new agent for
/// this call, `{fresh_policy}` a new empty policy for this call, `{connector}`
/// a server-log connector, `{fresh_connector}` a new one for this call,
/// `{rule}` a `fleet.agent_status` rule, `{fresh_rule}` a new one for this call,
/// `{case}` a case, `{fresh_case}` and `{fresh_case_version}` a new case for
/// this call and its version, `{endpoint}` an agent that reports every
/// endpoint capability, `{pending}` an isolate action pending on it,
/// `{get_file}` a get-file action on it, `{script}` a library script,
/// `{fresh_script}` a new one for this call, `{bulk}` a bulk isolate of
/// `{endpoint}`.
const ROUTES: &[(&str, &str, Access, Option<&str>)] = &[
    ("GET", "api/status", Access::Public, None),
    ("GET", "api/openapi.json", Access::Public, None),
    ("GET", "internal/security/me", Access::SignedIn, None),
    ("GET", "internal/security/users", Access::Needs(Privilege::UsersAdmin), None),
    ("GET", "internal/security/api_key", Access::Needs(Privilege::ApiKeysManageOwn), None),
    ("POST", "internal/security/api_key", Access::NeedsSignIn(Privilege::ApiKeysManageOwn), Some(r#"{"name": "key {n}"}"#)),
    ("DELETE", "internal/security/api_key", Access::Needs(Privilege::ApiKeysManageOwn), Some(r#"{"ids": ["no-such-key-{n}"]}"#)),
    ("GET", "api/actions/connectors", Access::Needs(Privilege::ActionsRead), None),
    ("GET", "internal/actions/connectors", Access::Needs(Privilege::ActionsRead), None),
    ("GET", "api/actions/connector_types", Access::Needs(Privilege::ActionsRead), None),
    ("GET", "internal/actions/connector_types", Access::Needs(Privilege::ActionsRead), None),
    ("POST", "api/actions/connector", Access::Needs(Privilege::ActionsAll), Some(r#"{"name": "log {n}", "connector_type_id": ".server-log"}"#)),
    (
        "POST",
        "api/actions/connector/authz-{n}",
        Access::Needs(Privilege::ActionsAll),
        Some(r#"{"name": "log {n}", "connector_type_id": ".server-log"}"#),
    ),
    ("GET", "api/actions/connector/{connector}", Access::Needs(Privilege::ActionsRead), None),
    ("PUT", "api/actions/connector/{connector}", Access::Needs(Privilege::ActionsAll), Some(r#"{"name": "renamed {n}"}"#)),
    ("POST", "api/actions/connector/{connector}/_execute", Access::Needs(Privilege::ActionsAll), Some(r#"{"params": {"message": "authz {n}"}}"#)),
    ("GET", "internal/actions/connector/{connector}/_history", Access::Needs(Privilege::ActionsRead), None),
    ("GET", "internal/actions/connector/{connector}/_executions", Access::Needs(Privilege::ActionsRead), None),
    ("DELETE", "api/actions/connector/{fresh_connector}", Access::Needs(Privilege::ActionsAll), None),
    ("POST", "api/cases", Access::Needs(Privilege::CasesAll), Some(CASE_BODY)),
    (
        "PATCH",
        "api/cases",
        Access::Needs(Privilege::CasesAll),
        Some(r#"{"cases": [{"id": "{fresh_case}", "version": "{fresh_case_version}", "title": "patched {n}"}]}"#),
    ),
    ("GET", "api/cases/_find", Access::Needs(Privilege::CasesRead), None),
    ("GET", "api/cases/{case}", Access::Needs(Privilege::CasesRead), None),
    (
        "POST",
        "api/cases/{case}/comments",
        Access::Needs(Privilege::CasesAll),
        Some(r#"{"type": "user", "comment": "authz {n}", "owner": "securitySolution"}"#),
    ),
    ("GET", "api/cases/{case}/comments/_find", Access::Needs(Privilege::CasesRead), None),
    ("DELETE", "api/cases?ids={fresh_case}", Access::Needs(Privilege::CasesAll), None),
    (
        "POST",
        "api/alerting/rule",
        Access::Needs(Privilege::RulesAll),
        Some(
            r#"{"name": "rule {n}", "rule_type_id": "fleet.agent_status", "consumer": "alerts", "schedule": {"interval": "1h"}, "params": {"statuses": ["uninstalled"]}}"#,
        ),
    ),
    (
        "POST",
        "api/alerting/rule/authz-rule-{n}",
        Access::Needs(Privilege::RulesAll),
        Some(
            r#"{"name": "rule {n}", "rule_type_id": "fleet.agent_status", "consumer": "alerts", "schedule": {"interval": "1h"}, "params": {"statuses": ["uninstalled"]}}"#,
        ),
    ),
    ("GET", "api/alerting/rule/{rule}", Access::Needs(Privilege::RulesRead), None),
    (
        "PUT",
        "api/alerting/rule/{rule}",
        Access::Needs(Privilege::RulesAll),
        Some(r#"{"name": "rule {n}", "schedule": {"interval": "1h"}, "params": {"statuses": ["orphaned"]}}"#),
    ),
    ("GET", "api/alerting/rules/_find", Access::Needs(Privilege::RulesRead), None),
    ("POST", "api/alerting/rule/{rule}/_disable", Access::Needs(Privilege::RulesAll), None),
    ("POST", "api/alerting/rule/{rule}/_enable", Access::Needs(Privilege::RulesAll), None),
    ("POST", "api/alerting/rule/{rule}/_mute_all", Access::Needs(Privilege::RulesAll), None),
    ("POST", "api/alerting/rule/{rule}/_unmute_all", Access::Needs(Privilege::RulesAll), None),
    ("GET", "api/alerting/rule_types", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/_config", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/rule/{rule}/_runs", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/rule/{rule}/_history", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/rule/{rule}/_action_executions", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/alerts/_find", Access::Needs(Privilege::RulesRead), None),
    ("GET", "internal/alerting/alert/no-such-alert", Access::NeedsThen404(Privilege::RulesRead), None),
    ("DELETE", "api/alerting/rule/{fresh_rule}", Access::Needs(Privilege::RulesAll), None),
    ("GET", "api/task_manager/_health", Access::SignedIn, None),
    ("GET", "internal/warden/events", Access::SignedIn, None),
    ("POST", "internal/task_manager/tasks/no-such-task/_run_soon", Access::NeedsThen404(Privilege::TasksAdmin), None),
    ("GET", "api/fleet/agents", Access::Needs(FleetRead), None),
    ("GET", "api/fleet/agents/{agent}", Access::Needs(FleetRead), None),
    ("GET", "api/fleet/agents/{agent}/events", Access::Needs(FleetRead), None),
    ("GET", "api/fleet/agent_status", Access::Needs(FleetRead), None),
    ("POST", "api/fleet/agents/{fresh_agent}/unenroll", Access::Needs(FleetAll), Some(r#"{"force": true}"#)),
    ("POST", "api/fleet/agents/bulk_unenroll", Access::Needs(FleetAll), Some(r#"{"agents": "tags:nobody-has-this"}"#)),
    ("GET", "api/fleet/agent_policies", Access::Needs(FleetRead), None),
    ("GET", "api/fleet/agent_policies/demo-endpoints", Access::Needs(FleetRead), None),
    ("POST", "api/fleet/agent_policies", Access::Needs(FleetAll), Some(r#"{"name": "policy {n}"}"#)),
    ("PUT", "api/fleet/agent_policies/demo-endpoints", Access::Needs(FleetAll), Some(r#"{"name": "Endpoints"}"#)),
    ("POST", "api/fleet/agent_policies/delete", Access::Needs(FleetAll), Some(r#"{"agentPolicyId": "{fresh_policy}"}"#)),
    ("GET", "api/fleet/enrollment_api_keys", Access::Needs(FleetAll), None),
    ("GET", "api/fleet/enrollment_api_keys/demo-endpoints-key", Access::Needs(FleetAll), None),
    ("POST", "api/fleet/enrollment_api_keys", Access::Needs(FleetAll), Some(r#"{"policy_id": "demo-endpoints"}"#)),
    ("GET", "api/fleet/cloud_connectors", Access::Needs(FleetRead), None),
    ("POST", "api/fleet/cloud_connectors", Access::Needs(FleetAll), Some(CLOUD_BODY)),
    ("GET", "api/fleet/cloud_connectors/{cloud}", Access::Needs(FleetRead), None),
    ("PUT", "api/fleet/cloud_connectors/{cloud}", Access::Needs(FleetAll), Some(r#"{"name": "cloud renamed {n}"}"#)),
    ("GET", "api/fleet/cloud_connectors/{cloud}/usage", Access::Needs(FleetRead), None),
    ("POST", "internal/fleet/cloud_connectors/{cloud}/_verify", Access::Needs(FleetAll), None),
    ("DELETE", "api/fleet/cloud_connectors/{fresh_cloud}", Access::Needs(FleetAll), None),
    ("GET", "api/fleet/package_policies", Access::Needs(FleetRead), None),
    ("POST", "api/fleet/package_policies", Access::Needs(FleetAll), Some(PACKAGE_POLICY_BODY)),
    ("GET", "api/fleet/package_policies/{package_policy}", Access::Needs(FleetRead), None),
    ("PUT", "api/fleet/package_policies/{package_policy}", Access::Needs(FleetAll), Some(PACKAGE_POLICY_BODY)),
    ("DELETE", "api/fleet/package_policies/{fresh_package_policy}", Access::Needs(FleetAll), None),
    ("POST", "api/fleet/package_policies/delete", Access::Needs(FleetAll), Some(r#"{"packagePolicyIds": ["{fresh_package_policy}"]}"#)),
    ("POST", "api/endpoint/action/isolate", Access::Endpoint(|a| a.can_isolate_host), Some(r#"{"endpoint_ids": ["{endpoint}"]}"#)),
    ("POST", "api/endpoint/action/unisolate", Access::Endpoint(|a| a.can_un_isolate_host), Some(r#"{"endpoint_ids": ["{endpoint}"]}"#)),
    (
        "POST",
        "api/endpoint/action/kill_process",
        Access::Endpoint(|a| a.can_kill_process),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"pid": 4}}"#),
    ),
    (
        "POST",
        "api/endpoint/action/suspend_process",
        Access::Endpoint(|a| a.can_suspend_process),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"pid": 4}}"#),
    ),
    ("POST", "api/endpoint/action/running_procs", Access::Endpoint(|a| a.can_get_running_processes), Some(r#"{"endpoint_ids": ["{endpoint}"]}"#)),
    (
        "POST",
        "api/endpoint/action/get_file",
        Access::Endpoint(|a| a.can_write_file_operations),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"path": "notes.txt"}}"#),
    ),
    (
        "POST",
        "api/endpoint/action/execute",
        Access::Endpoint(|a| a.can_write_execute_operations),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"command": "ls"}}"#),
    ),
    ("POST", "api/endpoint/action/upload", Access::Endpoint(|a| a.can_write_file_operations), Some(UPLOAD_FORM)),
    (
        "POST",
        "api/endpoint/action/scan",
        Access::Endpoint(|a| a.can_write_scan_operations),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"path": "."}}"#),
    ),
    (
        "POST",
        "api/endpoint/action/run_script",
        Access::Endpoint(|a| a.can_write_execute_operations),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"scriptId": "{script}"}}"#),
    ),
    // Cancelling the admin's isolate: whoever may isolate.
    (
        "POST",
        "api/endpoint/action/cancel",
        Access::Endpoint(|a| a.can_isolate_host),
        Some(r#"{"endpoint_ids": ["{endpoint}"], "parameters": {"id": "{pending}"}}"#),
    ),
    ("GET", "api/endpoint/action", Access::Endpoint(read_log), None),
    ("GET", "api/endpoint/action/{pending}", Access::Endpoint(read_log), None),
    ("GET", "api/endpoint/action_status?agent_ids={endpoint}", Access::Endpoint(|a| a.can_read_security_solution), None),
    (
        "GET",
        "api/endpoint/action/{get_file}/file/{get_file}.{endpoint}",
        Access::EndpointThen404(|a| read_log(a) && a.can_write_file_operations),
        None,
    ),
    (
        "GET",
        "api/endpoint/action/{get_file}/file/{get_file}.{endpoint}/download",
        Access::EndpointThen404(|a| read_log(a) && a.can_write_file_operations),
        None,
    ),
    // Bulk: the pre-body check is "some command in bulk", then the command sent (isolate).
    ("POST", "internal/warden/response_actions/bulk", Access::Endpoint(|a| a.can_isolate_host), Some(BULK_ISOLATE)),
    ("POST", "internal/warden/response_actions/bulk/_preview", Access::Endpoint(|a| a.can_isolate_host), Some(BULK_ISOLATE)),
    ("GET", "internal/warden/response_actions/bulk/{bulk}", Access::Endpoint(read_log), None),
    ("GET", "internal/warden/response_actions/bulk/{bulk}?outcome=pending&pageSize=10", Access::Endpoint(read_log), None),
    // Cancelling the admin's bulk isolate: whoever may isolate.
    ("POST", "internal/warden/response_actions/bulk/{bulk}/_cancel", Access::Endpoint(|a| a.can_isolate_host), None),
    ("GET", "internal/endpoint/authz", Access::SignedIn, None),
    ("GET", "internal/endpoint/mde/hosts", Access::Endpoint(|a| a.can_read_security_solution), None),
    ("POST", "api/endpoint/scripts_library", Access::Endpoint(|a| a.can_write_scripts_library), Some(SCRIPT_FORM)),
    ("GET", "api/endpoint/scripts_library", Access::Endpoint(|a| a.can_read_scripts_library), None),
    ("GET", "api/endpoint/scripts_library/{script}", Access::Endpoint(|a| a.can_read_scripts_library), None),
    ("PATCH", "api/endpoint/scripts_library/{script}", Access::Endpoint(|a| a.can_write_scripts_library), Some(SCRIPT_FORM)),
    ("GET", "api/endpoint/scripts_library/{script}/download", Access::Endpoint(|a| a.can_read_scripts_library), None),
    ("DELETE", "api/endpoint/scripts_library/{fresh_script}", Access::Endpoint(|a| a.can_write_scripts_library), None),
    ("POST", "api/fleet/uploads", Access::AgentKey, Some(r#"{"action_id": "x"}"#)),
    ("PUT", "api/fleet/uploads/no-such-upload/0", Access::AgentKey, None),
    ("POST", "api/fleet/uploads/no-such-upload", Access::AgentKey, Some(r#"{"transithash": {"sha256": "00"}}"#)),
    ("GET", "api/fleet/file/no-such-file", Access::AgentKey, None),
    ("POST", "api/fleet/agents/enroll", Access::AgentKey, Some(r#"{"type": "PERMANENT"}"#)),
    ("POST", "api/fleet/agents/{agent}/checkin", Access::AgentKey, Some(r#"{"status": "online"}"#)),
    ("POST", "api/fleet/agents/{agent}/acks", Access::AgentKey, Some(r#"{"events": []}"#)),
    ("POST", "api/fleet/agents/{agent}/verification_results", Access::AgentKey, Some(r#"{"verification_id": "none", "records": []}"#)),
    ("POST", "api/fleet/agents/{agent}/audit/unenroll", Access::AgentKey, Some(r#"{"reason": "uninstall", "timestamp": "2026-01-01T00:00:00Z"}"#)),
    // Last: revoking the demo token stops {fresh_agent}, and logout ends the callers' sessions.
    ("DELETE", "api/fleet/enrollment_api_keys/demo-endpoints-key", Access::Needs(FleetAll), None),
    ("POST", "internal/security/logout", Access::Public, None),
    // After logout: signing in replaces the caller's session.
    ("POST", "internal/security/login", Access::Public, Some(r#"{"username": "viewer", "password": "warden-demo"}"#)),
];

const CLOUD_BODY: &str = r#"{"name": "cloud {n}", "cloudProvider": "aws", "vars": {"role_arn": "arn:aws:iam::123456789012:role/authz", "external_id": {"type": "password", "value": "authz-external-id"}}}"#;

const PACKAGE_POLICY_BODY: &str = r#"{"name": "aws {n}", "policy_ids": ["demo-endpoints"], "package": {"name": "aws", "version": "2.17.0"}, "inputs": [{"type": "aws-s3", "policy_template": "cloudtrail", "enabled": true}], "cloud_connector_id": "{cloud}"}"#;

const BULK_ISOLATE: &str = r#"{"command": "isolate", "agents": ["{endpoint}"], "comment": "authz {n}"}"#;

const CASE_BODY: &str = r#"{"title": "case {n}", "description": "d", "tags": [], "connector": {"id": "none", "name": "none", "type": ".none", "fields": null}, "settings": {"syncAlerts": false}, "owner": "securitySolution"}"#;

/// Whether `path` (with concrete ids, and perhaps a query) is an instance of
/// the document's `template` (`/api/fleet/agents/{id}`).
fn instance_of(path: &str, template: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (path, template): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), template.trim_start_matches('/').split('/').collect());
    path.len() == template.len() && path.iter().zip(&template).all(|(p, t)| p == t || (t.starts_with('{') && t.ends_with('}')))
}

/// The table above covers every route the server declares, and declares
/// nothing that is not a route: a new route cannot be left out of the matrix.
#[tokio::test]
async fn the_matrix_covers_every_route() {
    let app = spawn_app().await;
    let document: serde_json::Value = app.client().get(app.url("api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut declared = Vec::new();
    for (template, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            declared.push((method.to_uppercase(), template.clone()));
        }
    }
    let missing: Vec<String> = declared
        .iter()
        .filter(|(method, template)| !ROUTES.iter().any(|(m, path, _, _)| m == method && instance_of(path, template)))
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert!(missing.is_empty(), "routes without a row in the authorization matrix:\n{}", missing.join("\n"));
    let unknown: Vec<String> = ROUTES
        .iter()
        .filter(|(m, path, _, _)| !declared.iter().any(|(method, template)| m == method && instance_of(path, template)))
        .map(|(m, path, _, _)| format!("{m} {path}"))
        .collect();
    assert!(unknown.is_empty(), "rows for routes the server does not declare:\n{}", unknown.join("\n"));
}

/// The demo user that holds each role.
fn demo_user(role: Role) -> &'static str {
    match role {
        Role::Superuser => "admin",
        Role::Viewer => "viewer",
        Role::T1Analyst => "t1",
        Role::T2Analyst => "t2",
        Role::T3Analyst => "t3",
        Role::RuleAuthor => "author",
        Role::SocManager => "manager",
        Role::PlatformEngineer => "platform",
        Role::EndpointOperationsAnalyst => "endpoint_ops",
    }
}

fn cloud_body(name: &str) -> serde_json::Value {
    let mut body: serde_json::Value = serde_json::from_str(CLOUD_BODY).unwrap();
    body["name"] = name.into();
    body
}

fn package_policy_body(name: &str, cloud: &str) -> serde_json::Value {
    let mut body: serde_json::Value = serde_json::from_str(&PACKAGE_POLICY_BODY.replace("{cloud}", cloud)).unwrap();
    body["name"] = name.into();
    body
}

#[tokio::test]
async fn every_route_for_every_role() {
    // The verifier on, so "Verify now" is a route that can succeed.
    let options = Options { extra_args: vec!["--enable-otel-verifier".into(), "true".into()], ..Options::default() };
    let app = spawn_app_with(options).await;
    // Every role signed in, and every role through a personal API key of
    // its own (the key carries the role; a viewer may not create keys).
    let mut callers = vec![(None, false, app.client())];
    for role in Role::ALL {
        let client = app.signed_in(demo_user(role)).await;
        if has_privilege(&[role], Privilege::ApiKeysManageOwn) {
            callers.push((Some(role), true, api_key_client(&app, &client).await));
        }
        callers.push((Some(role), false, client));
    }
    let admin = app.signed_in("admin").await;
    let agent = crate::fleet::enroll(&app, "authz-agent").await.id;
    let log_connector = serde_json::json!({"name": "authz log", "connector_type_id": ".server-log"});
    let connector = post_json(&admin, &app.url("api/actions/connector"), log_connector.clone()).await["id"].as_str().unwrap().to_owned();
    let case_body: serde_json::Value = serde_json::from_str(&CASE_BODY.replace("{n}", "0")).unwrap();
    let case = post_json(&admin, &app.url("api/cases"), case_body.clone()).await["id"].as_str().unwrap().to_owned();
    let status_rule = serde_json::json!({
        "name": "authz rule", "rule_type_id": "fleet.agent_status", "consumer": "alerts",
        "schedule": {"interval": "1h"}, "params": {"statuses": ["uninstalled"]},
        "actions": [{"id": connector, "group": "default", "params": {"message": "{{context.agent.id}} is {{context.status}}"}}]
    });
    let rule = post_json(&admin, &app.url("api/alerting/rule"), status_rule.clone()).await["id"].as_str().unwrap().to_owned();
    let endpoint = crate::response_actions::endpoint(&app, "authz-endpoint", crate::response_actions::ALL_CAPABILITIES).await.id;
    let on_endpoint = |route: &str, parameters: serde_json::Value| {
        let (admin, app, endpoint) = (&admin, &app, &endpoint);
        let route = route.to_owned();
        async move {
            let body = serde_json::json!({"endpoint_ids": [endpoint], "parameters": parameters});
            post_json(admin, &app.url(&format!("api/endpoint/action/{route}")), body).await["data"]["id"].as_str().unwrap().to_owned()
        }
    };
    let pending = on_endpoint("isolate", serde_json::json!({})).await;
    let get_file = on_endpoint("get_file", serde_json::json!({"path": "notes.txt"})).await;
    let add_script = |name: String| {
        let (admin, app) = (&admin, &app);
        async move {
            let response =
                admin.post(app.url("api/endpoint/scripts_library")).header("kbn-xsrf", "t").multipart(script_form(&name)).send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()["data"]["id"].as_str().unwrap().to_owned()
        }
    };
    let script = add_script("authz script".into()).await;
    let bulk_body = serde_json::json!({"command": "isolate", "agents": [endpoint]});
    let bulk = post_json(&admin, &app.url("internal/warden/response_actions/bulk"), bulk_body).await["bulkId"].as_str().unwrap().to_owned();
    let cloud = post_json(&admin, &app.url("api/fleet/cloud_connectors"), cloud_body("authz")).await["item"]["id"].as_str().unwrap().to_owned();
    let package_policy = post_json(&admin, &app.url("api/fleet/package_policies"), package_policy_body("authz", &cloud)).await["item"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut n = 0;
    let mut failures = Vec::new();
    for (method, path, access, body) in ROUTES {
        for (role, by_key, client) in &callers {
            let expected_ok = match (access, role) {
                (Access::Public, _) => true,
                (Access::AgentKey, _) | (_, None) => false,
                (Access::SignedIn, Some(_)) => true,
                (Access::Needs(privilege) | Access::NeedsThen404(privilege), Some(role)) => has_privilege(&[*role], *privilege),
                (Access::NeedsSignIn(privilege), Some(role)) => !by_key && has_privilege(&[*role], *privilege),
                (Access::Endpoint(check) | Access::EndpointThen404(check), Some(role)) => {
                    check(&endpoint_authz(&privileges_of(&[*role]), License::Trial))
                }
            };
            n += 1;
            let mut path = path
                .replace("{agent}", &agent)
                .replace("{endpoint}", &endpoint)
                .replace("{pending}", &pending)
                .replace("{get_file}", &get_file)
                .replace("{script}", &script)
                .replace("{bulk}", &bulk)
                .replace("{connector}", &connector)
                .replace("{case}", &case)
                .replace("{rule}", &rule)
                .replace("{cloud}", &cloud)
                .replace("{package_policy}", &package_policy)
                .replace("{n}", &n.to_string());
            if path.contains("{fresh_rule}") {
                let fresh = post_json(&admin, &app.url("api/alerting/rule"), status_rule.clone()).await["id"].as_str().unwrap().to_owned();
                path = path.replace("{fresh_rule}", &fresh);
            }
            if path.contains("{fresh_script}") {
                path = path.replace("{fresh_script}", &add_script(format!("fresh script {n}")).await);
            }
            let mut body = body.map(|b| {
                b.replace("{n}", &n.to_string())
                    .replace("{endpoint}", &endpoint)
                    .replace("{pending}", &pending)
                    .replace("{script}", &script)
                    .replace("{cloud}", &cloud)
            });
            if path.contains("{fresh_cloud}") {
                let fresh = post_json(&admin, &app.url("api/fleet/cloud_connectors"), cloud_body(&format!("fresh {n}"))).await;
                path = path.replace("{fresh_cloud}", fresh["item"]["id"].as_str().unwrap());
            }
            if path.contains("{fresh_package_policy}") || body.as_ref().is_some_and(|b| b.contains("{fresh_package_policy}")) {
                let fresh = post_json(&admin, &app.url("api/fleet/package_policies"), package_policy_body(&format!("fresh {n}"), &cloud)).await;
                let id = fresh["item"]["id"].as_str().unwrap();
                path = path.replace("{fresh_package_policy}", id);
                body = body.map(|b| b.replace("{fresh_package_policy}", id));
            }
            if path.contains("{fresh_case}") || body.as_ref().is_some_and(|b| b.contains("{fresh_case}")) {
                let fresh = post_json(&admin, &app.url("api/cases"), case_body.clone()).await;
                let (id, version) = (fresh["id"].as_str().unwrap(), fresh["version"].as_str().unwrap());
                path = path.replace("{fresh_case}", id);
                body = body.map(|b| b.replace("{fresh_case_version}", version).replace("{fresh_case}", id));
            }
            if path.contains("{fresh_connector}") {
                let fresh = post_json(&admin, &app.url("api/actions/connector"), log_connector.clone()).await["id"].as_str().unwrap().to_owned();
                path = path.replace("{fresh_connector}", &fresh);
            }
            if path.contains("{fresh_agent}") {
                let fresh = crate::fleet::enroll(&app, &format!("fresh-{n}")).await.id;
                path = path.replace("{fresh_agent}", &fresh);
            }
            if let Some(text) = body.as_mut().filter(|b| b.contains("{fresh_policy}")) {
                let created = post_json(&admin, &app.url("api/fleet/agent_policies"), serde_json::json!({"name": format!("to delete {n}")})).await;
                *text = text.replace("{fresh_policy}", created["item"]["id"].as_str().unwrap());
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = client.request(method.clone(), app.url(&path)).header("kbn-xsrf", "t");
            let body_sent = body.is_some();
            match body.as_deref() {
                Some(SCRIPT_FORM) => request = request.multipart(script_form(&format!("script {n}"))),
                Some(UPLOAD_FORM) => {
                    let form = reqwest::multipart::Form::new()
                        .part("file", reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("hello.txt"))
                        .text("endpoint_ids", serde_json::json!([endpoint]).to_string());
                    request = request.multipart(form);
                }
                Some(body) => request = request.header("content-type", "application/json").body(body.to_owned()),
                None => {}
            }
            let status = request.send().await.unwrap().status();
            let ok = if matches!(access, Access::NeedsThen404(_) | Access::EndpointThen404(_)) {
                status == StatusCode::NOT_FOUND
            } else {
                status.is_success()
            };
            let expected_denial = if role.is_none() || matches!(access, Access::AgentKey) { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            // A caller who may not use the route learns nothing from its body:
            // a malformed one is refused as forbidden too, not parsed first.
            if !expected_ok && body_sent {
                let malformed = client
                    .request(method.clone(), app.url(&path))
                    .header("kbn-xsrf", "t")
                    .header("content-type", "application/json")
                    .body("{not json");
                let status = malformed.send().await.unwrap().status();
                if status != expected_denial {
                    failures.push(format!("{method} {path} as {role:?} with a malformed body: got {status}, expected {expected_denial}"));
                }
            }
            if ok != expected_ok || (!ok && status != expected_denial) {
                let how = if *by_key { " (API key)" } else { "" };
                failures.push(format!(
                    "{method} {path} as {role:?}{how}: got {status}, expected {}",
                    if expected_ok { "2xx".into() } else { expected_denial.to_string() }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "authorization mismatches:\n{}", failures.join("\n"));
}

/// A library script's form, named `name`.
fn script_form(name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"#!/bin/sh\necho ok\n".to_vec()).file_name("ok.sh"))
        .text("name", name.to_owned())
}

/// A client that authenticates with a new personal API key of `signed_in`'s user.
async fn api_key_client(app: &crate::helpers::TestApp, signed_in: &reqwest::Client) -> reqwest::Client {
    let created = post_json(signed_in, &app.url("internal/security/api_key"), serde_json::json!({"name": "authz matrix"})).await;
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("ApiKey {}", created["encoded"].as_str().unwrap());
    headers.insert("authorization", value.parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

async fn post_json(client: &reqwest::Client, url: &str, body: serde_json::Value) -> serde_json::Value {
    client.post(url).header("kbn-xsrf", "t").json(&body).send().await.unwrap().json().await.unwrap()
}

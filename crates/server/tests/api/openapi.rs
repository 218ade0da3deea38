//! The OpenAPI document says what each route really answers and what its
//! inputs really accept, so a client generated from it is right: checked on
//! the document itself, and against what a running Warden answers.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use warden_core::api_keys::MAX_NAME_LEN;
use warden_core::fleet::AuditReason;
use warden_core::fleet_api::CheckinStatus;
use warden_core::kuery::MAX_KUERY_LENGTH;

use crate::fleet::enroll;
use crate::helpers::{DEMO_PASSWORD, TestApp, spawn_app};

/// Routes anyone may call: they never answer 401.
const PUBLIC: &[(&str, &str)] = &[("get", "/api/status"), ("get", "/api/openapi.json"), ("post", "/internal/security/logout")];

/// Routes whose path parameter names what they create: it cannot be unknown (a taken id is a 409).
const CREATES_AT_ID: &[(&str, &str)] = &[("post", "/api/actions/connector/{id}"), ("post", "/api/alerting/rule/{id}")];

/// Deletes that succeed for an unknown id, as Fleet's do (idempotent).
const IDEMPOTENT_DELETE: &[(&str, &str)] = &[("delete", "/api/fleet/package_policies/{id}")];

/// Routes that take a user but check no privilege, and the routes that take
/// no user: they never answer 403 for a missing privilege.
const NO_PRIVILEGE: &[(&str, &str)] = &[
    ("get", "/internal/security/me"),
    ("get", "/api/task_manager/_health"),
    // Sends each user only the events their privileges allow.
    ("get", "/internal/warden/events"),
    // Answers what the caller may do; refuses nothing.
    ("get", "/internal/endpoint/authz"),
    ("post", "/internal/security/login"),
    ("post", "/api/fleet/agents/enroll"),
];

struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    spec: &'a Value,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn is(&self, list: &[(&str, &str)]) -> bool {
        list.contains(&(self.method, self.path))
    }

    fn documents(&self, status: u16) -> bool {
        self.spec["responses"].get(status.to_string()).is_some()
    }

    fn parameters(&self, place: &str) -> Vec<&Value> {
        self.spec["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == place).collect()
    }

    fn parameter(&self, name: &str) -> &Value {
        self.spec["parameters"].as_array().into_iter().flatten().find(|p| p["name"] == name).unwrap_or(&Value::Null)
    }

    fn has_body(&self) -> bool {
        self.spec.get("requestBody").is_some()
    }

    /// Fleet Server's agent routes: their own key, no kbn-xsrf, no sign-in throttling.
    fn is_agent_route(&self) -> bool {
        self.spec["tags"].as_array().is_some_and(|tags| tags.contains(&json!("fleet-server")))
    }

    fn changes_state(&self) -> bool {
        !matches!(self.method, "get" | "head" | "options")
    }

    /// A request for this operation, with `id` for every path parameter.
    fn request(&self, app: &TestApp, client: &reqwest::Client, id: &str) -> RequestBuilder {
        let path: Vec<&str> = self.path.split('/').map(|segment| if segment.starts_with('{') { id } else { segment }).collect();
        let method = Method::from_bytes(self.method.to_uppercase().as_bytes()).unwrap();
        client.request(method, app.url(&path.join("/")))
    }
}

async fn document(app: &TestApp) -> Value {
    let response = app.client().get(app.url("api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"].as_object().expect("paths");
    let operations: Vec<Operation<'_>> = paths
        .iter()
        .flat_map(|(path, item)| item.as_object().into_iter().flatten().map(move |(method, spec)| Operation { method, path, spec }))
        .collect();
    assert!(operations.len() >= 30, "only {} operations documented", operations.len());
    operations
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// Fails with every operation `check` finds wanting, not just the first.
fn assert_all(doc: &Value, what: &str, check: impl Fn(&Operation<'_>) -> bool) {
    let missing: Vec<String> = operations(doc).iter().filter(|op| !check(op)).map(Operation::name).collect();
    assert!(missing.is_empty(), "{what}: {missing:#?}");
}

#[tokio::test]
async fn every_operation_documents_the_errors_it_can_answer() {
    let app = spawn_app().await;
    let doc = document(&app).await;

    assert_all(&doc, "400 for a request body or query parameters", |op| {
        let takes_input = op.has_body() || !op.parameters("query").is_empty();
        !takes_input || op.documents(400)
    });
    assert_all(&doc, "413 for a request body", |op| !op.has_body() || op.documents(413));
    assert_all(&doc, "401 except on public routes", |op| op.is(PUBLIC) || op.documents(401));
    assert_all(&doc, "403 where a privilege or the agent's own key is checked", |op| op.is(PUBLIC) || op.is(NO_PRIVILEGE) || op.documents(403));
    assert_all(&doc, "404 for an unknown id", |op| {
        !op.path.contains('{') || op.is_agent_route() || op.is(CREATES_AT_ID) || op.is(IDEMPOTENT_DELETE) || op.documents(404)
    });
    assert_all(&doc, "429 and 503 with Retry-After where a user signs in", |op| {
        op.is(PUBLIC) || op.is_agent_route() || ["429", "503"].iter().all(|code| op.spec["responses"][code]["headers"].get("Retry-After").is_some())
    });
    assert_all(&doc, "503 where the database is asked", |op| op.path == "/api/openapi.json" || op.documents(503));
    assert_all(&doc, "a required kbn-xsrf header and its 400 on state-changing browser routes", |op| {
        let header = op.parameter("kbn-xsrf");
        !op.changes_state() || op.is_agent_route() || (header["in"] == "header" && header["required"] == true && op.documents(400))
    });
    assert_all(&doc, "no kbn-xsrf header on the agent routes", |op| !op.is_agent_route() || op.parameter("kbn-xsrf").is_null());
    assert_all(&doc, "a non-empty id", |op| op.parameters("path").iter().all(|p| p["schema"]["minLength"] == 1));
    // `GET /api/status` answers its usual body with 503.
    assert_all(&doc, "error answers in the ErrorBody shape", |op| {
        op.spec["responses"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(code, _)| code.as_str() >= "400" && op.path != "/api/status")
            .all(|(_, response)| response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody")
    });
}

/// The enrollment key `warden serve --demo` seeds (as in `fleet.rs`).
const DEMO_ENROLLMENT_KEY: &str = "ZGVtby1lbnJvbGxtZW50OndhcmRlbi1kZW1vLWVucm9sbG1lbnQtc2VjcmV0";

/// Every status a running Warden answers is one the document lists for that
/// operation: signed out, as a user without privileges, as an administrator
/// (an agent, on the agent routes), without kbn-xsrf, with a body over
/// `max_body_bytes`, and with another agent's key.
#[tokio::test]
async fn every_status_the_server_answers_is_documented() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let client = app.client();
    let viewer = app.signed_in("viewer").await;
    let agent = enroll(&app, "openapi-1").await;
    let other_agent = enroll(&app, "openapi-2").await;
    let too_large = format!(r#"{{"name": "{}"}}"#, "x".repeat(1_048_576));

    let mut answered = Vec::new();
    for op in operations(&doc) {
        // Browser routes get an unknown id; agent routes their own agent's.
        let id = if op.is_agent_route() { agent.id.as_str() } else { "x" };
        let with_body = |request: RequestBuilder, body: &str| {
            if op.has_body() { request.header("content-type", "application/json").body(body.to_owned()) } else { request }
        };
        // The administrator, or on the agent routes the key they take.
        let privileged = |request: RequestBuilder| match (op.is_agent_route(), op.path) {
            (true, "/api/fleet/agents/enroll") => request.header("authorization", format!("ApiKey {DEMO_ENROLLMENT_KEY}")),
            (true, _) => request.header("authorization", format!("ApiKey {}", agent.key)),
            (false, _) => request.basic_auth("admin", Some(DEMO_PASSWORD)),
        };
        let mut cases = vec![
            ("signed out", with_body(op.request(&app, &client, id).header("kbn-xsrf", "true"), "{}")),
            ("privileged", with_body(privileged(op.request(&app, &client, id)).header("kbn-xsrf", "true"), "{}")),
            ("without kbn-xsrf", with_body(privileged(op.request(&app, &client, id)), "{}")),
        ];
        // File routes (multipart, raw chunks) have their own larger limit and
        // refuse a JSON body before reading it; the server then closes the
        // connection while the client may still be sending 1 MiB (a reset,
        // not an answer), so the case is asked only of the other routes.
        let file_route = op.has_body() && op.spec["requestBody"]["content"].get("application/json").is_none();
        if !file_route {
            cases.push(("over max_body_bytes", with_body(privileged(op.request(&app, &client, id)).header("kbn-xsrf", "true"), &too_large)));
        }
        // Signing the viewer out would sign them out of the cases after it.
        if op.path != "/internal/security/logout" {
            cases.push(("as viewer", with_body(op.request(&app, &viewer, id).header("kbn-xsrf", "true"), "{}")));
        }
        if op.is_agent_route() && op.path.contains('{') {
            // A valid body: the body is parsed before the key's agent is checked.
            let body = match op.path.rsplit('/').next() {
                Some("checkin") => r#"{"status": "online", "poll_timeout": "0s"}"#,
                Some("acks") => r#"{"events": []}"#,
                _ => r#"{"reason": "uninstall", "timestamp": "2026-11-23T10:00:00Z"}"#,
            };
            let request = op.request(&app, &client, &other_agent.id).header("authorization", format!("ApiKey {}", agent.key));
            cases.push(("with another agent's key", with_body(request, body)));
        }
        for (case, request) in cases {
            let response = request.send().await.unwrap_or_else(|e| panic!("{} {case}: {e}", op.name()));
            let status = response.status().as_u16();
            answered.push((op.name(), case, status, op.documents(status)));
            if case == "over max_body_bytes" && op.has_body() {
                assert_eq!(status, 413, "{} with a body over max_body_bytes", op.name());
            }
        }
    }

    let undocumented: Vec<_> = answered.iter().filter(|(.., documented)| !documented).collect();
    assert!(undocumented.is_empty(), "statuses the document does not list: {undocumented:#?}");
    // The cases reached what they were meant to.
    for (status, at_least) in [(400, 15), (401, 25), (403, 15), (404, 8)] {
        let seen = answered.iter().filter(|(_, _, s, _)| *s == status).count();
        assert!(seen >= at_least, "{status} answered {seen} times; expected at least {at_least}: {answered:#?}");
    }
}

#[tokio::test]
async fn the_agent_list_limits_are_documented_and_enforced() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let operations = operations(&doc);
    let list = operations.iter().find(|op| op.method == "get" && op.path == "/api/fleet/agents").expect("GET /api/fleet/agents");
    let status = operations.iter().find(|op| op.method == "get" && op.path == "/api/fleet/agent_status").expect("GET /api/fleet/agent_status");

    for name in ["page", "perPage"] {
        let schema = &list.parameter(name)["schema"];
        assert_eq!(list.parameter(name)["in"], "query", "{name}");
        assert_eq!((schema["minimum"].as_u64(), schema["maximum"].as_u64()), (Some(1), Some(10_000)), "{name}: {schema}");
    }
    for op in [list, status] {
        assert_eq!(op.parameter("kuery")["schema"]["maxLength"], MAX_KUERY_LENGTH, "{}", op.name());
        assert!(op.parameters("query").iter().all(|p| p["required"] == false), "{}: optional query parameters", op.name());
    }
    assert_eq!(list.parameter("sortOrder")["schema"]["enum"], json!(["asc", "desc"]));
    let sort_fields = list.parameter("sortField")["schema"]["enum"].as_array().expect("sortField enum").clone();

    // The server agrees at the edges, and accepts every documented sort field.
    let client = app.signed_in("admin").await;
    let list_status = |query: String| {
        let request = client.get(app.url(&format!("api/fleet/agents?{query}")));
        async move { request.send().await.unwrap().status() }
    };
    for (query, expected) in [
        ("perPage=10000".to_owned(), StatusCode::OK),
        ("perPage=10001".to_owned(), StatusCode::BAD_REQUEST),
        ("perPage=0".to_owned(), StatusCode::BAD_REQUEST),
        ("page=0".to_owned(), StatusCode::BAD_REQUEST),
        ("page=10000&perPage=1".to_owned(), StatusCode::OK),
        ("page=2&perPage=10000".to_owned(), StatusCode::BAD_REQUEST),
        ("sortOrder=up".to_owned(), StatusCode::BAD_REQUEST),
        ("sortField=id".to_owned(), StatusCode::BAD_REQUEST),
        (format!("kuery=tags:{}", "a".repeat(MAX_KUERY_LENGTH - 5)), StatusCode::OK),
        (format!("kuery=tags:{}", "a".repeat(MAX_KUERY_LENGTH - 4)), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(list_status(query.clone()).await, expected, "{query}");
    }
    for field in sort_fields {
        let field = field.as_str().unwrap();
        assert_eq!(list_status(format!("sortField={field}&sortOrder=asc")).await, StatusCode::OK, "sortField={field}");
    }
}

#[tokio::test]
async fn request_body_limits_are_documented() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let property = |schema_name: &str, name: &str| schema(&doc, schema_name)["properties"][name].clone();

    let name = property("CreateApiKeyRequest", "name");
    assert_eq!((name["minLength"].as_u64(), name["maxLength"].as_u64()), (Some(1), Some(MAX_NAME_LEN as u64)), "{name}");
    assert!(name["pattern"].is_string(), "a blank API key name is refused: {name}");
    let expiration = property("CreateApiKeyRequest", "expiration")["pattern"].clone();
    assert!(expiration.as_str().is_some_and(|p| p.starts_with('^') && p.ends_with("s)$")), "{expiration}");
    assert_eq!(property("EnrollmentApiKeyRequest", "expiration")["pattern"], expiration, "one syntax for both expirations");
    let roles = &property("CreateApiKeyRequest", "role_descriptors")["propertyNames"]["enum"];
    assert!(roles.as_array().is_some_and(|r| r.contains(&json!("superuser"))), "{roles}");

    let ids = property("InvalidateApiKeyRequest", "ids");
    assert_eq!((ids["minItems"].as_u64(), ids["maxItems"].as_u64()), (Some(1), Some(1000)), "{ids}");
    assert_eq!(property("AckRequest", "events")["maxItems"], 1000, "MAX_ACK_EVENTS");

    assert!(property("LoginRequest", "username")["pattern"].is_string(), "a blank user name is refused");
    assert!(property("AgentPolicyRequest", "name")["pattern"].is_string(), "a blank policy name is refused");
    assert_eq!(property("AgentPolicyRequest", "namespace")["pattern"], "^[a-z0-9_]+$");
    assert_eq!(property("AgentPolicyRequest", "inactivity_timeout")["minimum"], 1);

    let targets = schema(&doc, "BulkTarget")["oneOf"].as_array().expect("BulkTarget is ids or a kuery").clone();
    let of_type = |ty: &str| targets.iter().find(|t| t["type"] == ty).cloned().unwrap_or_default();
    assert_eq!(of_type("array")["maxItems"], 10_000);
    assert_eq!(of_type("string")["maxLength"], MAX_KUERY_LENGTH);

    assert_eq!(property("CheckinRequest", "status")["$ref"], "#/components/schemas/CheckinStatus");
    let statuses: Vec<&str> = CheckinStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(schema(&doc, "CheckinStatus")["enum"], json!(statuses));
    assert_eq!(property("EnrollRequest", "type")["$ref"], "#/components/schemas/AgentType");
    assert_eq!(schema(&doc, "AgentType")["enum"], json!(["PERMANENT", "EPHEMERAL", "TEMPORARY"]));
    assert_eq!(property("AuditUnenrollRequest", "reason")["$ref"], "#/components/schemas/AuditReason");
    let reasons: Vec<&str> = AuditReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(schema(&doc, "AuditReason")["enum"], json!(reasons));

    // The optional unenroll body: no body is `{}`.
    let unenroll = &doc["paths"]["/api/fleet/agents/{id}/unenroll"]["post"]["requestBody"];
    assert_ne!(unenroll["required"], true, "{unenroll}");
}

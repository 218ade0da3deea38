//! The emulator's HTTP behaviour, through its router (`oneshot`): what an MDE
//! client (Warden's connector) sees. Time moves with `/_emulator/advance`,
//! so nothing sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly on purpose

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use warden_mde_emulator::{Config, Emulator, api};

const OK: &str = "m-ok";
const BAD: &str = "m-bad";
const STUCK: &str = "m-stuck";

fn config(action_delay: &str, token_lifetime: &str) -> String {
    format!(
        r#"
        tenant_id = "tenant-1"
        client_id = "client-1"
        client_secret = "secret-1"
        token_lifetime = "{token_lifetime}"
        action_delay = "{action_delay}"
        [[machines]]
        id = "{OK}"
        computerDnsName = "ok.corp.example"
        machineTags = ["vip", "finance"]
        outcome = "succeed"
        [[machines]]
        id = "{BAD}"
        computerDnsName = "bad.corp.example"
        osPlatform = "WindowsServer2022"
        healthStatus = "Inactive"
        outcome = "fail"
        [[machines]]
        id = "{STUCK}"
        computerDnsName = "stuck.corp.example"
        outcome = "hang"
        [[scripts]]
        fileName = "hello.ps1"
        description = "Says hello"
        hasParameters = true
        parametersDescription = "-Name N"
        output = "hello"
        [[scripts]]
        fileName = "broken.ps1"
        output = ""
        exit_code = 3
        script_errors = "boom"
        "#
    )
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone)]
struct Emu {
    router: Router,
}

impl Emu {
    /// Tokens live an hour.
    fn new(action_delay: &str) -> Self {
        Self::with_token_lifetime(action_delay, "1h")
    }

    fn with_token_lifetime(action_delay: &str, token_lifetime: &str) -> Self {
        let config = Config::parse(&config(action_delay, token_lifetime)).unwrap();
        Emu { router: api::router(Arc::new(Emulator::new(config))) }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    async fn call(&self, method: Method, uri: &str, bearer: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri).header(header::HOST, "emu.test:8092");
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    async fn token_form(&self, tenant: &str, form: &str) -> Reply {
        let request = Request::post(format!("/{tenant}/oauth2/v2.0/token"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        self.send(request).await
    }

    async fn token(&self) -> String {
        let reply = self
            .token_form("tenant-1", "grant_type=client_credentials&client_id=client-1&client_secret=secret-1&scope=https%3A%2F%2Fapi.securitycenter.microsoft.com%2F.default")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, token: &str, uri: &str) -> Reply {
        self.call(Method::GET, uri, Some(token), None).await
    }

    async fn post(&self, token: &str, uri: &str, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(token), Some(body)).await
    }

    async fn advance(&self, by: &str) {
        let reply = self.call(Method::POST, "/_emulator/advance", None, Some(json!({ "by": by }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    async fn isolate(&self, token: &str, machine: &str) -> Reply {
        self.post(token, &format!("/api/machines/{machine}/isolate"), json!({"Comment": "contain it", "IsolationType": "Full"})).await
    }

    async fn run_script(&self, token: &str, machine: &str, script: &str) -> Reply {
        let body = json!({
            "Commands": [{"type": "RunScript", "params": [{"key": "ScriptName", "value": script}, {"key": "Args", "value": "--noargs"}]}],
            "Comment": "triage"
        });
        self.post(token, &format!("/api/machines/{machine}/runliveresponse"), body).await
    }

    async fn action(&self, token: &str, id: &str) -> Value {
        let reply = self.get(token, &format!("/api/machineactions/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }
}

/// MDE's error body: `{"error":{"code","message","target"}}`, target a uuid.
fn assert_error(reply: &Reply, status: StatusCode, code: &str, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{}", reply.body);
    let text = error["message"].as_str().unwrap();
    assert!(text.contains(message), "{text:?} should contain {message:?}");
    assert!(uuid::Uuid::parse_str(error["target"].as_str().unwrap()).is_ok(), "{}", reply.body);
    assert_eq!(reply.body.as_object().unwrap().len(), 1);
    assert_eq!(error.as_object().unwrap().len(), 3);
}

fn id(reply: &Reply) -> String {
    reply.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_token_endpoint_issues_bearer_tokens_that_expire() {
    let emu = Emu::with_token_lifetime("0s", "2s");
    let reply = emu
        .token_form("tenant-1", "grant_type=client_credentials&client_id=client-1&client_secret=secret-1&scope=https%3A%2F%2Fsecuritycenter.onmicrosoft.com%2Fwindowsatpservice%2F.default")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 2);
    assert_eq!(reply.body["ext_expires_in"], 0);
    let token = reply.body["access_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32);

    assert_eq!(emu.get(&token, "/api/machines").await.status, StatusCode::OK);
    emu.advance("3s").await;
    assert_error(&emu.get(&token, "/api/machines").await, StatusCode::UNAUTHORIZED, "Unauthorized", "expired");

    // A new token works: what a client does after a 401.
    let fresh = emu.token().await;
    assert_ne!(fresh, token);
    assert_eq!(emu.get(&fresh, "/api/machines").await.status, StatusCode::OK);
    let stats = emu.call(Method::GET, "/_emulator/stats", None, None).await.body;
    assert_eq!(stats["tokens_issued"], 2);
}

#[tokio::test]
async fn the_token_endpoint_answers_entra_id_errors() {
    let emu = Emu::new("0s");
    let good = "grant_type=client_credentials&client_id=client-1&client_secret=secret-1&scope=x%2F.default";
    let cases = [
        ("other-tenant", good, StatusCode::BAD_REQUEST, "invalid_request", "AADSTS90002"),
        (
            "tenant-1",
            "grant_type=client_credentials&client_id=nobody&client_secret=secret-1&scope=x%2F.default",
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016",
        ),
        (
            "tenant-1",
            "grant_type=client_credentials&client_id=client-1&client_secret=wrong&scope=x%2F.default",
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided",
        ),
        (
            "tenant-1",
            "grant_type=client_credentials&client_id=client-1&scope=x%2F.default",
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000216",
        ),
        (
            "tenant-1",
            "grant_type=password&client_id=client-1&client_secret=secret-1&scope=x%2F.default",
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003",
        ),
        ("tenant-1", "client_id=client-1&client_secret=secret-1&scope=x%2F.default", StatusCode::BAD_REQUEST, "invalid_request", "'grant_type'"),
        (
            "tenant-1",
            "grant_type=client_credentials&client_id=client-1&client_secret=secret-1&scope=x",
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012",
        ),
    ];
    for (tenant, form, status, error, description) in cases {
        let reply = emu.token_form(tenant, form).await;
        assert_eq!(reply.status, status, "{form}: {}", reply.body);
        assert_eq!(reply.body["error"], error, "{form}");
        assert!(reply.body["error_description"].as_str().unwrap().contains(description), "{form}: {}", reply.body);
        assert!(reply.body["error_codes"].is_array());
    }
    // A JSON body is not a form.
    let request = Request::post("/tenant-1/oauth2/v2.0/token").header(header::CONTENT_TYPE, "application/json").body(Body::from("{}")).unwrap();
    let reply = emu.send(request).await;
    assert_eq!((reply.status, reply.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let stats = emu.call(Method::GET, "/_emulator/stats", None, None).await.body;
    assert_eq!(stats["tokens_issued"], 0);
}

#[tokio::test]
async fn api_routes_need_a_valid_bearer_token() {
    let emu = Emu::new("0s");
    for uri in ["/api/machines", &format!("/api/machines/{OK}"), "/api/machineactions", "/api/libraryfiles"] {
        let reply = emu.call(Method::GET, uri, None, None).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "Unauthorized", "Authorization has been denied");
        assert_error(&emu.get("not-a-token", uri).await, StatusCode::UNAUTHORIZED, "Unauthorized", "denied");
    }
    let token = emu.token().await;
    let basic = Request::get("/api/machines").header(header::AUTHORIZATION, format!("Basic {token}")).body(Body::empty()).unwrap();
    assert_error(&emu.send(basic).await, StatusCode::UNAUTHORIZED, "Unauthorized", "denied");
    let reply = emu.call(Method::POST, &format!("/api/machines/{OK}/isolate"), None, Some(json!({"Comment": "x"}))).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Unauthorized", "denied");
    // The bearer scheme is case-insensitive.
    let lower = Request::get("/api/machines").header(header::AUTHORIZATION, format!("bearer {token}")).body(Body::empty()).unwrap();
    assert_eq!(emu.send(lower).await.status, StatusCode::OK);
}

#[tokio::test]
async fn machines_have_mde_fields_and_a_404_of_their_own() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.get(&token, "/api/machines").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["@odata.context"], "http://emu.test:8092/api/$metadata#Machines");
    assert!(reply.body.get("@odata.count").is_none());
    let machines = reply.body["value"].as_array().unwrap();
    assert_eq!(machines.len(), 3);
    let machine = &machines[0];
    for field in [
        "id",
        "computerDnsName",
        "firstSeen",
        "lastSeen",
        "osPlatform",
        "onboardingStatus",
        "osProcessor",
        "version",
        "osBuild",
        "lastIpAddress",
        "lastExternalIpAddress",
        "healthStatus",
        "rbacGroupName",
        "rbacGroupId",
        "riskScore",
        "aadDeviceId",
        "machineTags",
        "exposureLevel",
        "deviceValue",
        "ipAddresses",
        "osArchitecture",
        "isolated",
    ] {
        assert!(machine.get(field).is_some(), "machine lacks {field}: {machine}");
    }
    assert_eq!(machine["id"], OK);
    assert_eq!(machine["machineTags"], json!(["vip", "finance"]));
    assert_eq!(machine["isolated"], false);

    let one = emu.get(&token, &format!("/api/machines/{BAD}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!((one.body["computerDnsName"].as_str(), one.body["healthStatus"].as_str()), (Some("bad.corp.example"), Some("Inactive")));
    assert_error(&emu.get(&token, "/api/machines/nope").await, StatusCode::NOT_FOUND, "ResourceNotFound", "Machine nope was not found");
}

#[tokio::test]
async fn machine_lists_take_filter_top_skip_and_count() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let ids = |reply: &Reply| reply.body["value"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();

    let reply = emu.get(&token, &format!("/api/machines?$filter=id%20eq%20'{BAD}'")).await;
    assert_eq!(ids(&reply), [BAD]);
    let reply = emu.get(&token, "/api/machines?$filter=computerDnsName+eq+'STUCK.corp.example'").await;
    assert_eq!(ids(&reply), [STUCK]);
    let reply = emu.get(&token, &format!("/api/machines?$filter=id+in+('{OK}','{STUCK}','ghost')&$count=true")).await;
    assert_eq!((ids(&reply), reply.body["@odata.count"].as_u64()), (vec![OK.to_owned(), STUCK.to_owned()], Some(2)));
    let reply = emu.get(&token, "/api/machines?$filter=machineTags+eq+'finance'").await;
    assert_eq!(ids(&reply), [OK]);
    let reply = emu.get(&token, "/api/machines?$top=1&$skip=1&$count=true").await;
    assert_eq!((ids(&reply), reply.body["@odata.count"].as_u64()), (vec![BAD.to_owned()], Some(3)));
    let reply = emu.get(&token, "/api/machines?$filter=id+eq+'ghost'").await;
    assert_eq!((reply.status, ids(&reply).len()), (StatusCode::OK, 0));

    for bad in ["$filter=id+ne+'x'", "$filter=secret+eq+'x'", "$filter=id+eq+'x", "$top=abc", "$top=10001"] {
        assert_error(&emu.get(&token, &format!("/api/machines?{bad}")).await, StatusCode::BAD_REQUEST, "ODataError", "");
    }
    let long = format!("/api/machines?$filter=id+eq+'{}'", "x".repeat(5000));
    assert_error(&emu.get(&token, &long).await, StatusCode::BAD_REQUEST, "ODataError", "longer than 4096 bytes");
}

const ACTION_FIELDS: &[&str] = &[
    "@odata.context",
    "id",
    "type",
    "title",
    "scope",
    "requestor",
    "externalID",
    "requestSource",
    "requestorComment",
    "status",
    "machineId",
    "computerDnsName",
    "creationDateTimeUtc",
    "lastUpdateDateTimeUtc",
    "cancellationRequestor",
    "cancellationComment",
    "cancellationDateTimeUtc",
    "errorResult",
    "commands",
    "relatedFileInfo",
    "troubleshootInfo",
];

#[tokio::test]
async fn an_isolation_is_pending_then_in_progress_then_succeeds_and_isolates_the_machine() {
    let emu = Emu::new("10s");
    let token = emu.token().await;

    let reply = emu.isolate(&token, OK).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    for field in ACTION_FIELDS {
        assert!(reply.body.get(*field).is_some(), "action lacks {field}: {}", reply.body);
    }
    assert_eq!(reply.body["@odata.context"], "http://emu.test:8092/api/$metadata#MachineActions/$entity");
    assert_eq!(reply.body["type"], "Isolate");
    assert_eq!(reply.body["scope"], "Full");
    assert_eq!(reply.body["status"], "Pending");
    assert_eq!(reply.body["requestor"], "client-1");
    assert_eq!(reply.body["requestorComment"], "contain it");
    assert_eq!(reply.body["machineId"], OK);
    assert_eq!(reply.body["computerDnsName"], "ok.corp.example");
    assert_eq!(reply.body["cancellationRequestor"], Value::Null);
    let action = id(&reply);

    // A second isolation, or a release, while it is open: refused.
    assert_error(&emu.isolate(&token, OK).await, StatusCode::BAD_REQUEST, "ActiveRequestAlreadyExists", "Action is already in progress");
    let release = emu.post(&token, &format!("/api/machines/{OK}/unisolate"), json!({"Comment": "done"})).await;
    assert_error(&release, StatusCode::BAD_REQUEST, "ActiveRequestAlreadyExists", "Action is already in progress");

    emu.advance("4s").await;
    assert_eq!(emu.action(&token, &action).await["status"], "Pending");
    emu.advance("2s").await;
    assert_eq!(emu.action(&token, &action).await["status"], "InProgress");
    assert_eq!(emu.get(&token, &format!("/api/machines/{OK}")).await.body["isolated"], false);
    emu.advance("5s").await;
    let done = emu.action(&token, &action).await;
    assert_eq!(done["status"], "Succeeded");
    assert_eq!(done["errorResult"], 0);
    assert!(done["lastUpdateDateTimeUtc"].as_str().unwrap() > done["creationDateTimeUtc"].as_str().unwrap());
    assert_eq!(emu.get(&token, &format!("/api/machines/{OK}")).await.body["isolated"], true);

    // Release: 201 Unisolate, and the machine is released once it ends.
    let release = emu.post(&token, &format!("/api/machines/{OK}/unisolate"), json!({"Comment": "done"})).await;
    assert_eq!((release.status, release.body["type"].as_str(), release.body["scope"].clone()), (StatusCode::CREATED, Some("Unisolate"), Value::Null));
    emu.advance("11s").await;
    assert_eq!(emu.action(&token, &id(&release)).await["status"], "Succeeded");
    assert_eq!(emu.get(&token, &format!("/api/machines/{OK}")).await.body["isolated"], false);
}

#[tokio::test]
async fn isolation_requests_are_checked() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let uri = format!("/api/machines/{OK}/isolate");
    assert_error(&emu.post(&token, &uri, json!({"IsolationType": "Full"})).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", "Comment");
    // Body parameters are case-sensitive.
    assert_error(&emu.post(&token, &uri, json!({"comment": "x"})).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", "Comment");
    assert_error(&emu.post(&token, &uri, json!({"Comment": "  "})).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", "Comment");
    assert_error(
        &emu.post(&token, &uri, json!({"Comment": "x", "IsolationType": "Partial"})).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        "IsolationType",
    );
    let not_json = Request::post(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{"))
        .unwrap();
    assert_error(&emu.send(not_json).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", "");
    assert_error(&emu.isolate(&token, "ghost").await, StatusCode::NOT_FOUND, "ResourceNotFound", "Machine ghost was not found");
    assert_error(
        &emu.post(&token, &format!("/api/machines/{OK}/unisolate"), json!({})).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        "Comment",
    );

    let selective = emu.post(&token, &uri, json!({"Comment": "x", "IsolationType": "Selective"})).await;
    assert_eq!((selective.status, selective.body["scope"].as_str()), (StatusCode::CREATED, Some("Selective")));
    // Without IsolationType: Full.
    let full = emu.post(&token, &uri, json!({"Comment": "again"})).await;
    assert_eq!((full.status, full.body["scope"].as_str()), (StatusCode::CREATED, Some("Full")));
}

#[tokio::test]
async fn a_failing_machine_fails_its_actions_and_stays_unisolated() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.isolate(&token, BAD).await;
    assert_eq!(reply.body["status"], "Pending");
    let action = emu.action(&token, &id(&reply)).await;
    assert_eq!(action["status"], "Failed");
    assert_ne!(action["errorResult"], 0);
    assert_eq!(emu.get(&token, &format!("/api/machines/{BAD}")).await.body["isolated"], false);

    let reply = emu.run_script(&token, BAD, "hello.ps1").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let action = emu.action(&token, &id(&reply)).await;
    assert_eq!(action["status"], "Failed");
    assert_eq!(action["commands"][0]["commandStatus"], "Failed");
    assert!(!action["commands"][0]["errors"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_hanging_action_is_cancelled_and_a_final_one_cannot_be() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let action = id(&emu.isolate(&token, STUCK).await);
    emu.advance("1h").await;
    let token = emu.token().await;
    assert_eq!(emu.action(&token, &action).await["status"], "InProgress");

    let cancel = format!("/api/machineactions/{action}/cancel");
    assert_error(&emu.post(&token, &cancel, json!({})).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", "Comment");
    let reply = emu.post(&token, &cancel, json!({"Comment": "Machine action was canceled by automation"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "Cancelled");
    assert_eq!(reply.body["cancellationRequestor"], "client-1");
    assert_eq!(reply.body["cancellationComment"], "Machine action was canceled by automation");
    assert!(reply.body["cancellationDateTimeUtc"].is_string());
    assert_eq!(emu.action(&token, &action).await["status"], "Cancelled");
    assert_eq!(emu.get(&token, &format!("/api/machines/{STUCK}")).await.body["isolated"], false);

    assert_error(
        &emu.post(&token, &cancel, json!({"Comment": "again"})).await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Action {action} is already in final state Cancelled"),
    );
    let succeeded = id(&emu.isolate(&token, OK).await);
    let reply = emu.post(&token, &format!("/api/machineactions/{succeeded}/cancel"), json!({"Comment": "late"})).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "BadRequest", &format!("Action {succeeded} is already in final state Succeeded"));
    let reply = emu.post(&token, "/api/machineactions/ghost/cancel", json!({"Comment": "x"})).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "ResourceNotFound", "ghost");
    assert_error(&emu.get(&token, "/api/machineactions/ghost").await, StatusCode::NOT_FOUND, "ResourceNotFound", "ghost");
    // After the cancel, the machine takes a new isolation.
    assert_eq!(emu.isolate(&token, STUCK).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_script_runs_and_its_transcript_downloads_from_the_result_link() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.run_script(&token, OK, "hello.ps1").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["type"], "LiveResponse");
    assert_eq!(reply.body["status"], "Pending");
    assert_eq!(reply.body["requestorComment"], "triage");
    let command = &reply.body["commands"][0];
    assert_eq!(command["index"], 0);
    assert_eq!(command["commandStatus"], "Created");
    assert_eq!(command["errors"], json!([]));
    assert_eq!(
        command["command"],
        json!({"type": "RunScript", "params": [{"key": "ScriptName", "value": "hello.ps1"}, {"key": "Args", "value": "--noargs"}]})
    );
    let action = id(&reply);

    let done = emu.action(&token, &action).await;
    assert_eq!(done["status"], "Succeeded");
    assert_eq!(done["commands"][0]["commandStatus"], "Completed");
    assert!(done["commands"][0]["startTime"].is_string() && done["commands"][0]["endTime"].is_string());

    let link = emu.get(&token, &format!("/api/machineactions/{action}/GetLiveResponseResultDownloadLink(index=0)")).await;
    assert_eq!(link.status, StatusCode::OK, "{}", link.body);
    assert_eq!(link.body["@odata.context"], "http://emu.test:8092/api/$metadata#Edm.String");
    let url = link.body["value"].as_str().unwrap();
    let path = url.strip_prefix("http://emu.test:8092").unwrap();
    assert!(path.starts_with("/_blob/"), "{url}");
    // No bearer: the link is the credential.
    let transcript = emu.call(Method::GET, path, None, None).await;
    assert_eq!(transcript.status, StatusCode::OK);
    assert_eq!(transcript.body, json!({"script_name": "hello.ps1", "exit_code": 0, "script_output": "hello", "script_errors": ""}));

    let no_command = emu.get(&token, &format!("/api/machineactions/{action}/GetLiveResponseResultDownloadLink(index=1)")).await;
    assert_error(&no_command, StatusCode::BAD_REQUEST, "BadRequest", "no command at index 1");
    // Links last 30 minutes.
    emu.advance("31m").await;
    assert_eq!(emu.call(Method::GET, path, None, None).await.status, StatusCode::FORBIDDEN);

    // A script's exit code and errors come from its configuration.
    let token = emu.token().await;
    let broken = id(&emu.run_script(&token, OK, "broken.ps1").await);
    assert_eq!(emu.action(&token, &broken).await["status"], "Succeeded");
    let link = emu.get(&token, &format!("/api/machineactions/{broken}/GetLiveResponseResultDownloadLink(index=0)")).await;
    let path = link.body["value"].as_str().unwrap().strip_prefix("http://emu.test:8092").unwrap().to_owned();
    let transcript = emu.call(Method::GET, &path, None, None).await.body;
    assert_eq!((transcript["exit_code"].as_i64(), transcript["script_errors"].as_str()), (Some(3), Some("boom")));
}

#[tokio::test]
async fn an_unknown_script_fails_the_action_with_an_error_in_its_command() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.run_script(&token, OK, "nope.ps1").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let action = emu.action(&token, &id(&reply)).await;
    assert_eq!(action["status"], "Failed");
    assert_eq!(action["commands"][0]["commandStatus"], "Failed");
    assert!(action["commands"][0]["errors"][0].as_str().unwrap().contains("'nope.ps1' was not found"), "{action}");
    let link = emu.get(&token, &format!("/api/machineactions/{}/GetLiveResponseResultDownloadLink(index=0)", id(&reply))).await;
    assert_error(&link, StatusCode::BAD_REQUEST, "BadRequest", "status is Failed");
    // Even on a hanging machine the unknown script ends the action.
    let stuck = emu.run_script(&token, STUCK, "nope.ps1").await;
    assert_eq!(emu.action(&token, &id(&stuck)).await["status"], "Failed");
}

#[tokio::test]
async fn live_response_requests_are_checked_and_one_runs_per_machine() {
    let emu = Emu::new("10s");
    let token = emu.token().await;
    let uri = format!("/api/machines/{OK}/runliveresponse");
    let script = |name: &str| json!({"type": "RunScript", "params": [{"key": "ScriptName", "value": name}]});
    let cases = [
        (json!({"Comment": "x"}), "Commands is required"),
        (json!({"Commands": []}), "at least one command"),
        (json!({"Commands": [{"type": "Format", "params": []}]}), "unsupported type 'Format'"),
        (json!({"Commands": [{"type": "RunScript", "params": [{"key": "Args", "value": "x"}]}]}), "'ScriptName' is required"),
        (json!({"Commands": [{"type": "GetFile", "params": [{"key": "Path", "value": "C:\\x"}]}, script("hello.ps1")]}), "in this order"),
    ];
    for (body, message) in cases {
        assert_error(&emu.post(&token, &uri, body).await, StatusCode::BAD_REQUEST, "InvalidRequestBody", message);
    }
    assert_error(&emu.run_script(&token, "ghost", "hello.ps1").await, StatusCode::NOT_FOUND, "ResourceNotFound", "Machine ghost was not found");

    // Several commands in MDE's order, without a Comment.
    let body = json!({"Commands": [{"type": "PutFile", "params": [{"key": "FileName", "value": "hello.ps1"}]}, script("hello.ps1"), {"type": "GetFile", "params": [{"key": "Path", "value": "C:\\out.txt"}]}]});
    let first = emu.post(&token, &uri, body).await;
    assert_eq!((first.status, first.body["commands"].as_array().map(Vec::len)), (StatusCode::CREATED, Some(3)));
    // One session per machine; an isolation is not blocked by it.
    assert_error(&emu.run_script(&token, OK, "hello.ps1").await, StatusCode::BAD_REQUEST, "ActiveRequestAlreadyExists", "already in progress");
    assert_eq!(emu.isolate(&token, OK).await.status, StatusCode::CREATED);
    emu.advance("10s").await;
    let done = emu.action(&token, &id(&first)).await;
    assert_eq!(done["status"], "Succeeded");
    assert!(done["commands"].as_array().unwrap().iter().all(|c| c["commandStatus"] == "Completed"));
    assert_eq!(emu.run_script(&token, OK, "hello.ps1").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn live_response_is_rate_limited_to_ten_calls_a_minute() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    for call in 0..10 {
        assert_eq!(emu.run_script(&token, OK, "hello.ps1").await.status, StatusCode::CREATED, "call {call}");
    }
    let reply = emu.run_script(&token, OK, "hello.ps1").await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Rate limit is exceeded");
    let retry_after: u64 = reply.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Other routes are not limited by it.
    assert_eq!(emu.isolate(&token, OK).await.status, StatusCode::CREATED);
    emu.advance("61s").await;
    assert_eq!(emu.run_script(&token, OK, "hello.ps1").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn machine_action_lists_take_filter_top_skip_count_and_orderby() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let isolate_ok = id(&emu.isolate(&token, OK).await);
    emu.advance("1s").await;
    let isolate_bad = id(&emu.isolate(&token, BAD).await);
    emu.advance("1s").await;
    let script_stuck = id(&emu.run_script(&token, STUCK, "hello.ps1").await);
    let ids = |reply: &Reply| reply.body["value"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();

    let reply = emu.get(&token, "/api/machineactions?$count=true").await;
    assert_eq!(reply.body["@odata.context"], "http://emu.test:8092/api/$metadata#MachineActions");
    assert_eq!((ids(&reply), reply.body["@odata.count"].as_u64()), (vec![isolate_ok.clone(), isolate_bad.clone(), script_stuck.clone()], Some(3)));
    let reply = emu.get(&token, &format!("/api/machineactions?$filter=machineId+eq+'{BAD}'")).await;
    assert_eq!(ids(&reply), [isolate_bad.as_str()]);
    // Kibana's shape: `in` lists joined with ` AND `, $count, $top.
    let query = format!("$filter=id+in+('{isolate_ok}','{script_stuck}')+AND+status+in+('Succeeded','Failed')&$count=true&$top=1000");
    let reply = emu.get(&token, &format!("/api/machineactions?{query}")).await;
    assert_eq!((ids(&reply), reply.body["@odata.count"].as_u64()), (vec![isolate_ok.clone()], Some(1)));
    let reply = emu.get(&token, "/api/machineactions?$filter=type+eq+'LiveResponse'+and+status+eq+'InProgress'").await;
    assert_eq!(ids(&reply), [script_stuck.as_str()]);
    let reply = emu.get(&token, "/api/machineactions?$filter=status+eq+'Failed'").await;
    assert_eq!(ids(&reply), [isolate_bad.as_str()]);
    let reply = emu.get(&token, "/api/machineactions?$orderby=creationDateTimeUtc+desc&$top=2&$skip=0&$count=true").await;
    assert_eq!((ids(&reply), reply.body["@odata.count"].as_u64()), (vec![script_stuck, isolate_bad], Some(3)));
    let reply = emu.get(&token, "/api/machineactions?$top=1&$skip=2").await;
    assert_eq!(ids(&reply).len(), 1);
    assert_error(&emu.get(&token, "/api/machineactions?$filter=scope+eq+'Full'").await, StatusCode::BAD_REQUEST, "ODataError", "'scope'");
}

#[tokio::test]
async fn injected_faults_answer_the_next_api_calls() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 429, "count": 2, "retry_after": 1}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The token endpoint is not an API call: it still answers.
    let token2 = emu.token().await;
    for _ in 0..2 {
        let reply = emu.get(&token2, "/api/machines").await;
        assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Rate limit");
        assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    }
    assert_eq!(emu.get(&token, "/api/machines").await.status, StatusCode::OK);

    emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 500}))).await;
    let reply = emu.isolate(&token, OK).await;
    assert_error(&reply, StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "");
    assert!(reply.headers.get(header::RETRY_AFTER).is_none());
    // The failed call created nothing.
    assert_eq!(emu.get(&token, "/api/machineactions?$count=true").await.body["@odata.count"], 0);

    emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 503, "count": 1}))).await;
    // A fault comes before authentication, as at a gateway.
    assert_error(&emu.call(Method::GET, "/api/machines", None, None).await, StatusCode::SERVICE_UNAVAILABLE, "InternalServerError", "");

    let stats = emu.call(Method::GET, "/_emulator/stats", None, None).await.body;
    assert_eq!(stats["tokens_issued"], 2);
    assert_eq!(stats["api_calls"], 6);
    assert_eq!(stats["by_route"]["GET /api/machines"], 4);
    assert_eq!(stats["by_route"]["POST /api/machines/{id}/isolate"], 1);
    assert_eq!(stats["by_route"]["GET /api/machineactions"], 1);
    assert_eq!(stats["by_route"]["POST /{tenant}/oauth2/v2.0/token"], 2);

    for bad in [json!({"status": 200}), json!({"status": 999}), json!({"count": 1}), json!({"status": 429, "oops": 1})] {
        assert_eq!(emu.call(Method::POST, "/_emulator/fail-next", None, Some(bad.clone())).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // count 0 clears a queued fault.
    emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 500, "count": 5}))).await;
    emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 500, "count": 0}))).await;
    assert_eq!(emu.get(&token, "/api/machines").await.status, StatusCode::OK);
}

#[tokio::test]
async fn reset_forgets_actions_faults_counters_and_isolation_but_keeps_tokens() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    emu.isolate(&token, OK).await;
    assert_eq!(emu.get(&token, &format!("/api/machines/{OK}")).await.body["isolated"], true);
    emu.call(Method::POST, "/_emulator/fail-next", None, Some(json!({"status": 500, "count": 3}))).await;

    let reply = emu.call(Method::POST, "/_emulator/reset", None, None).await;
    assert_eq!((reply.status, reply.body["api_calls"].as_u64(), reply.body["actions"].as_u64()), (StatusCode::OK, Some(0), Some(0)));
    let machine = emu.get(&token, &format!("/api/machines/{OK}")).await;
    assert_eq!((machine.status, machine.body["isolated"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(emu.get(&token, "/api/machineactions").await.body["value"], json!([]));
}

#[tokio::test]
async fn library_files_list_the_configured_scripts() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    let reply = emu.get(&token, "/api/libraryfiles").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["@odata.context"], "http://emu.test:8092/api/$metadata#LibraryFiles");
    let files = reply.body["value"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let hello = &files[0];
    assert_eq!(hello["fileName"], "hello.ps1");
    assert_eq!(hello["description"], "Says hello");
    assert_eq!(hello["hasParameters"], true);
    assert_eq!(hello["parametersDescription"], "-Name N");
    assert_eq!(hello["sha256"].as_str().unwrap().len(), 64);
    for field in ["creationTime", "lastUpdatedTime", "createdBy"] {
        assert!(hello[field].is_string(), "{field}");
    }
    assert_eq!(files[1]["parametersDescription"], Value::Null);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_mde_error_bodies() {
    let emu = Emu::new("0s");
    let token = emu.token().await;
    assert_error(&emu.get(&token, "/api/nothing").await, StatusCode::NOT_FOUND, "NotFound", "");
    assert_error(&emu.get(&token, "/api/machineactions/x/Other(index=0)").await, StatusCode::NOT_FOUND, "NotFound", "");
    let reply = emu.call(Method::DELETE, "/api/machines", Some(&token), None).await;
    assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "BadRequest", "DELETE");
    assert_error(
        &emu.call(Method::GET, "/api/machineactions/x/cancel", Some(&token), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "BadRequest",
        "GET",
    );
}

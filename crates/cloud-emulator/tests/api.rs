//! The emulator's HTTP behaviour, through its router (`oneshot`): what a
//! caller of the policy simulator (Warden's verifier) sees, and what the
//! admin routes change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly on purpose

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use warden_cloud_emulator::{Config, Emulator, api};

const ROLE: &str = "arn:aws:iam::111122223333:role/reader";
const PROOF: &str = "external-1";
const CONFIG: &str = r#"
    [[principals]]
    id = "arn:aws:iam::111122223333:role/reader"
    proof = "external-1"
    allow = ["s3:GetObject", "cloudtrail:*"]
    deny = ["cloudtrail:DeleteTrail"]

    [[principals]]
    id = "reader@project.iam.gserviceaccount.com"
    proof = "//iam.googleapis.com/audience"
    allow = ["logging.logEntries.list"]
"#;

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
    fn new() -> Self {
        Emu { router: api::router(Arc::new(Emulator::new(Config::parse(CONFIG).unwrap()))) }
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

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    async fn simulate(&self, body: Value) -> Reply {
        self.call(Method::POST, "/iam/simulate-principal-policy", Some(body)).await
    }

    /// Simulates `actions` for the reader role with its external id.
    async fn decide(&self, actions: &[&str]) -> Vec<(String, String)> {
        let reply = self.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": actions})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        decisions(&reply.body)
    }

    async fn admin(&self, route: &str, body: Value) -> Reply {
        self.call(Method::POST, &format!("/_emulator/{route}"), Some(body)).await
    }

    async fn stats(&self) -> Value {
        self.call(Method::GET, "/_emulator/stats", None).await.body
    }
}

fn decisions(body: &Value) -> Vec<(String, String)> {
    body["EvaluationResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["EvalActionName"].as_str().unwrap().to_owned(), r["EvalDecision"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, d)| ((*a).to_owned(), (*d).to_owned())).collect()
}

#[tokio::test]
async fn each_action_is_allowed_implicitly_denied_or_explicitly_denied() {
    let emu = Emu::new();
    let reply = emu
        .simulate(json!({
            "PolicySourceArn": ROLE,
            "ExternalId": PROOF,
            "ActionNames": ["s3:GetObject", "s3:ListBucket", "cloudtrail:LookupEvents", "cloudtrail:DeleteTrail"],
        }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["IsTruncated"], false);
    assert!(reply.body.get("Marker").is_none());
    assert_eq!(reply.body["EvaluationResults"][0], json!({"EvalActionName": "s3:GetObject", "EvalResourceName": "*", "EvalDecision": "allowed"}));
    assert_eq!(
        decisions(&reply.body),
        pairs(&[
            ("s3:GetObject", "allowed"),
            ("s3:ListBucket", "implicitDeny"),
            ("cloudtrail:LookupEvents", "allowed"),
            ("cloudtrail:DeleteTrail", "explicitDeny"),
        ])
    );
    // Names compare without case; each name is answered as it was asked, duplicates included.
    assert_eq!(emu.decide(&["S3:getobject", "s3:GetObject"]).await, pairs(&[("S3:getobject", "allowed"), ("s3:GetObject", "allowed")]));
}

#[tokio::test]
async fn an_unknown_principal_or_a_wrong_proof_is_access_denied_alike() {
    let emu = Emu::new();
    let mut messages = Vec::new();
    for (principal, proof) in [
        (Some(ROLE), Some("wrong")),
        (Some(ROLE), None),
        (Some("arn:aws:iam::111122223333:role/nobody"), Some(PROOF)),
        // Another principal's proof does not do.
        (Some("reader@project.iam.gserviceaccount.com"), Some(PROOF)),
    ] {
        let mut body = json!({"ActionNames": ["s3:GetObject"]});
        if let Some(principal) = principal {
            body["PolicySourceArn"] = json!(principal);
        }
        if let Some(proof) = proof {
            body["ExternalId"] = json!(proof);
        }
        let reply = emu.simulate(body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{principal:?} {proof:?}: {}", reply.body);
        assert_eq!(reply.body["Error"]["Code"], "AccessDenied");
        assert_eq!(reply.body["Error"]["Type"], "Sender");
        assert!(reply.body["RequestId"].is_string());
        let message = reply.body["Error"]["Message"].as_str().unwrap().to_owned();
        assert!(!message.contains(principal.unwrap()), "the principal is not echoed: {message}");
        messages.push(message);
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "one message whatever was wrong: {messages:?}");

    let gcp = emu
        .simulate(json!({"PolicySourceArn": "reader@project.iam.gserviceaccount.com", "ExternalId": "//iam.googleapis.com/audience", "ActionNames": ["logging.logEntries.list", "s3:GetObject"]}))
        .await;
    assert_eq!(decisions(&gcp.body), pairs(&[("logging.logEntries.list", "allowed"), ("s3:GetObject", "implicitDeny")]));
    let stats = emu.stats().await;
    assert_eq!(stats["calls"], 5);
    assert_eq!(stats["access_denied"], 4);
    assert_eq!(stats["by_principal"], json!({ROLE: 2, "reader@project.iam.gserviceaccount.com": 2}));
}

#[tokio::test]
async fn results_are_paged_with_max_items_and_the_marker() {
    let emu = Emu::new();
    let actions: Vec<String> = (0..250).map(|n| format!("s3:Action{n}")).collect();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": actions});
        if let Some(marker) = &marker {
            body["Marker"] = json!(marker);
        }
        let reply = emu.simulate(body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        pages += 1;
        seen.extend(decisions(&reply.body).into_iter().map(|(action, _)| action));
        match reply.body["IsTruncated"].as_bool().unwrap() {
            true => marker = Some(reply.body["Marker"].as_str().unwrap().to_owned()),
            false => {
                assert!(reply.body.get("Marker").is_none());
                break;
            }
        }
    }
    assert_eq!(pages, 3, "100 a page by default");
    assert_eq!(seen, actions);

    let reply = emu.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["a:1", "a:2", "a:3"], "MaxItems": 2})).await;
    assert_eq!(decisions(&reply.body).len(), 2);
    assert_eq!(reply.body["IsTruncated"], true);
    let next = reply.body["Marker"].clone();
    let reply = emu
        .simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["a:1", "a:2", "a:3"], "MaxItems": 2, "Marker": next}))
        .await;
    assert_eq!(decisions(&reply.body), pairs(&[("a:3", "implicitDeny")]));
    assert_eq!(reply.body["IsTruncated"], false);
}

#[tokio::test]
async fn requests_outside_the_constraints_are_validation_errors() {
    let emu = Emu::new();
    let too_many: Vec<String> = (0..1001).map(|n| format!("s3:Action{n}")).collect();
    for (body, needle) in [
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF}), "'actionNames'"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": []}), "greater than or equal to 1"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": too_many}), "less than or equal to 1000"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject", ""]}), "actionNames.2"),
        (json!({"ExternalId": PROOF, "ActionNames": ["s3:GetObject"]}), "'policySourceArn'"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"], "MaxItems": 0}), "'maxItems'"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"], "MaxItems": 1001}), "'maxItems'"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"], "Marker": "7"}), "Invalid Marker"),
        (json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": "s3:GetObject"}), "not a SimulatePrincipalPolicy request"),
        (json!(["s3:GetObject"]), "not a SimulatePrincipalPolicy request"),
    ] {
        let reply = emu.simulate(body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert_eq!(reply.body["Error"]["Code"], "ValidationError", "{body}");
        let message = reply.body["Error"]["Message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Validation comes first: a bad request says so even for a wrong proof.
    let reply = emu.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": "wrong", "ActionNames": []})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let broken =
        Request::post("/iam/simulate-principal-policy").header(header::CONTENT_TYPE, "application/json").body(Body::from("{\"Policy")).unwrap();
    let reply = emu.send(broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["Error"]["Code"], "ValidationError");

    // Any content type: the body is read as JSON.
    let plain = Request::post("/iam/simulate-principal-policy")
        .body(Body::from(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"]}).to_string()))
        .unwrap();
    assert_eq!(emu.send(plain).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_body_is_bounded() {
    let emu = Emu::new();
    let huge = json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"], "Padding": "x".repeat(api::MAX_BODY_BYTES)});
    let reply = emu.simulate(huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.body);
    assert_eq!(reply.body["Error"]["Code"], "RequestEntityTooLarge");
    // 1000 of the longest names fit.
    let longest: Vec<String> = (0..1000).map(|n| format!("{n:0>128}")).collect();
    let reply = emu.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": longest, "MaxItems": 1000})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(decisions(&reply.body).len(), 1000);
}

#[tokio::test]
async fn revoke_and_grant_change_decisions_until_reset() {
    let emu = Emu::new();
    let reply = emu.admin("revoke", json!({"principal": ROLE, "action": "s3:GetObject"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["decision"], "implicitDeny");
    assert_eq!(reply.body["allow"], json!(["cloudtrail:*"]));
    assert_eq!(emu.decide(&["s3:GetObject"]).await, pairs(&[("s3:GetObject", "implicitDeny")]));

    let reply = emu.admin("grant", json!({"principal": ROLE, "action": "sqs:ReceiveMessage"})).await;
    assert_eq!(reply.body["decision"], "allowed");
    assert_eq!(emu.decide(&["sqs:ReceiveMessage"]).await, pairs(&[("sqs:ReceiveMessage", "allowed")]));
    // Granting twice keeps one allow; an explicit deny still wins over a grant.
    let again = emu.admin("grant", json!({"principal": ROLE, "action": "SQS:receivemessage"})).await;
    assert_eq!(again.body["allow"], json!(["cloudtrail:*", "sqs:ReceiveMessage"]));
    let denied = emu.admin("grant", json!({"principal": ROLE, "action": "cloudtrail:DeleteTrail"})).await;
    assert_eq!(denied.body["decision"], "explicitDeny");
    // Revoking a name a wildcard covers leaves the wildcard: the answer says so.
    let covered = emu.admin("revoke", json!({"principal": ROLE, "action": "cloudtrail:LookupEvents"})).await;
    assert_eq!(covered.body["decision"], "allowed");

    for (body, status) in [
        (json!({"principal": "arn:aws:iam::111122223333:role/nobody", "action": "s3:GetObject"}), StatusCode::NOT_FOUND),
        (json!({"principal": ROLE, "action": ""}), StatusCode::BAD_REQUEST),
        (json!({"principal": ROLE}), StatusCode::BAD_REQUEST),
        (json!({"principal": ROLE, "action": "s3:GetObject", "extra": 1}), StatusCode::BAD_REQUEST),
    ] {
        let reply = emu.admin("revoke", body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(reply.body["error"].is_string());
    }

    let reply = emu.admin("reset", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["calls"], 0);
    assert_eq!(
        emu.decide(&["s3:GetObject", "sqs:ReceiveMessage", "cloudtrail:DeleteTrail"]).await,
        pairs(&[("s3:GetObject", "allowed"), ("sqs:ReceiveMessage", "implicitDeny"), ("cloudtrail:DeleteTrail", "explicitDeny")])
    );
}

#[tokio::test]
async fn fail_next_answers_the_next_calls_with_the_status_then_recovers() {
    let emu = Emu::new();
    let reply = emu.admin("fail-next", json!({"status": 500, "count": 2})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["faults_pending"], 2);
    for _ in 0..2 {
        let reply = emu.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"]})).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.body["Error"]["Code"], "ServiceFailure");
        assert_eq!(reply.body["Error"]["Type"], "Receiver");
    }
    assert_eq!(emu.decide(&["s3:GetObject"]).await, pairs(&[("s3:GetObject", "allowed")]));

    emu.admin("fail-next", json!({"status": 429})).await;
    let reply = emu.simulate(json!({"PolicySourceArn": ROLE, "ExternalId": PROOF, "ActionNames": ["s3:GetObject"]})).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.body["Error"]["Code"], "Throttling");
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");

    emu.admin("fail-next", json!({"status": 503, "count": 5})).await;
    let cleared = emu.admin("fail-next", json!({"status": 503, "count": 0})).await;
    assert_eq!(cleared.body["faults_pending"], 0);
    assert_eq!(emu.decide(&["s3:GetObject"]).await.len(), 1);

    for body in [json!({"status": 200}), json!({"status": 700}), json!({"count": 1}), json!({"status": 500, "colour": "red"})] {
        let reply = emu.admin("fail-next", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
    }
    // A queued fault is forgotten by reset.
    emu.admin("fail-next", json!({"status": 500})).await;
    emu.admin("reset", json!({})).await;
    assert_eq!(emu.decide(&["s3:GetObject"]).await.len(), 1);
    assert_eq!(emu.stats().await["calls"], 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_iam_s_shape() {
    let emu = Emu::new();
    let reply = emu.call(Method::GET, "/iam/nothing", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["Error"]["Code"], "NotFound");
    let reply = emu.call(Method::GET, "/iam/simulate-principal-policy", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.body["Error"]["Message"].as_str().unwrap().contains("GET"));
}

#[tokio::test]
async fn held_calls_wait_until_released() {
    let emu = Emu::new();
    emu.admin("hold", json!({})).await;
    let waiting = tokio::spawn({
        let emu = emu.clone();
        async move { emu.decide(&["s3:GetObject"]).await }
    });
    // The call is parked, not answered: wait until the emulator counts it.
    for turn in 0.. {
        if emu.stats().await["waiting"] == 1 {
            break;
        }
        assert!(turn < 100_000, "the call never reached the emulator");
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished());
    assert_eq!(emu.stats().await["held"], true);
    emu.admin("release", json!({})).await;
    assert_eq!(waiting.await.unwrap(), [("s3:GetObject".to_owned(), "allowed".to_owned())]);
    assert_eq!(emu.stats().await["held"], false);
    // A reset forgets a hold too.
    emu.admin("hold", json!({})).await;
    emu.admin("reset", json!({})).await;
    assert_eq!(emu.decide(&["s3:GetObject"]).await.len(), 1);
}

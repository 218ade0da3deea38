use std::sync::Mutex;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use warden_core::cloud_connectors::{AccountType, CloudProvider, plan_checks};

use super::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/warden-demo";
const EXTERNAL_ID: &str = "warden-demo-external-id";

fn check(policy: &str, template: &str, action: &str, required: bool) -> PermissionCheck {
    PermissionCheck {
        package_policy_id: policy.into(),
        policy_template: template.into(),
        package_name: "aws".into(),
        action: action.into(),
        required,
    }
}

fn options() -> Options {
    Options { timeout: Duration::from_secs(5), concurrency: 2 }
}

fn deployment(fleet_url: &str, cloud_url: &str, checks: Vec<PermissionCheck>) -> VerifierDeployment {
    VerifierDeployment {
        fleet_url: fleet_url.into(),
        enrollment_token: "one-time-token".into(),
        verification_id: "5f3c2a1b-9d8e-4f7a-b6c5-d4e3f2a1b0c9".into(),
        connector_id: "connector-1".into(),
        connector_name: "Production AWS".into(),
        provider: CloudProvider::Aws,
        account_type: AccountType::SingleAccount,
        cloud_url: cloud_url.into(),
        principal: ROLE.into(),
        proof: EXTERNAL_ID.into(),
        checks,
    }
}

/// The AWS templates' checks for two package policies (cloudtrail and cspm
/// on the first, cloudtrail again on the second: its actions are asked once).
fn aws_checks() -> Vec<PermissionCheck> {
    let templates = [("pp-1", "cloudtrail"), ("pp-1", "cspm"), ("pp-2", "cloudtrail")];
    let templates: Vec<(String, String, String)> = templates.iter().map(|(p, t)| ((*p).into(), "aws".into(), (*t).into())).collect();
    plan_checks(CloudProvider::Aws, &templates)
}

/// The cloud emulator over real HTTP on a free port, with its demo principals.
async fn cloud() -> String {
    let config = warden_cloud_emulator::Config::demo().unwrap();
    let app = warden_cloud_emulator::Application::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until(std::future::pending()));
    url
}

async fn admin(cloud: &str, route: &str, body: Value) -> Value {
    let response = reqwest::Client::new().post(format!("{cloud}/_emulator/{route}")).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{route} {body}");
    response.json().await.unwrap()
}

async fn stats(cloud: &str) -> Value {
    reqwest::get(format!("{cloud}/_emulator/stats")).await.unwrap().json().await.unwrap()
}

async fn check_all(deployment: &VerifierDeployment, options: Options) -> Vec<VerificationRecord> {
    let http = reqwest::Client::builder().timeout(options.timeout).build().unwrap();
    check_permissions(&http, deployment, options).await
}

/// A server on a free port.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// --- Pure rules ---

#[test]
fn a_decision_becomes_granted_denied_or_error() {
    let c = check("pp-1", "cloudtrail", "s3:GetObject", true);
    let cases = [
        (Outcome::Decision("allowed".into()), PermissionStatus::Granted, None, None),
        (
            Outcome::Decision("implicitDeny".into()),
            PermissionStatus::Denied,
            Some("implicitDeny"),
            Some("implicitDeny: no policy allows s3:GetObject".to_owned()),
        ),
        (
            Outcome::Decision("explicitDeny".into()),
            PermissionStatus::Denied,
            Some("explicitDeny"),
            Some("explicitDeny: a policy explicitly denies s3:GetObject".to_owned()),
        ),
        (
            Outcome::Decision("maybe".into()),
            PermissionStatus::Error,
            Some("UnknownDecision"),
            Some("The cloud answered \"maybe\" for s3:GetObject, not a decision".to_owned()),
        ),
        (Outcome::AccessDenied("Not authorized".into()), PermissionStatus::Error, Some("AccessDenied"), Some("Not authorized".to_owned())),
        (
            Outcome::failed("Timeout", "The cloud did not answer within 1s"),
            PermissionStatus::Error,
            Some("Timeout"),
            Some("The cloud did not answer within 1s".to_owned()),
        ),
    ];
    for (outcome, status, code, message) in cases {
        let record = record(&c, &outcome, 42);
        assert_eq!((record.status, record.error_code.as_deref(), record.message.clone()), (status, code, message), "{outcome:?}");
        assert_eq!(record.method.as_deref(), Some("api_call"));
        assert_eq!(record.duration_ms, Some(42));
        assert_eq!((record.package_policy_id.as_str(), record.policy_template.as_str(), record.package_name.as_str()), ("pp-1", "cloudtrail", "aws"));
        assert_eq!((record.action.as_str(), record.required), ("s3:GetObject", true));
    }
    // The decision's spelling does not matter; an optional permission stays optional.
    let optional = record(&check("pp-1", "cspm", "config:DescribeConfigRules", false), &Outcome::Decision("IMPLICITDENY".into()), 1);
    assert_eq!((optional.status, optional.required), (PermissionStatus::Denied, false));
    // A cloud's long message is clipped.
    let long = record(&c, &Outcome::failed("HTTP500", "x".repeat(5000)), 1);
    assert_eq!(long.message.unwrap().chars().count(), MESSAGE_MAX);
}

#[test]
fn each_distinct_action_is_asked_once_in_calls_of_at_most_100() {
    let checks = aws_checks();
    let calls = batches(&checks);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0],
        [
            "cloudtrail:LookupEvents",
            "cloudtrail:DescribeTrails",
            "s3:GetObject",
            "s3:ListBucket",
            "sqs:ReceiveMessage",
            "iam:GetAccountSummary",
            "securityhub:GetFindings",
            "config:DescribeConfigRules"
        ]
    );
    let many: Vec<PermissionCheck> =
        (0..250).flat_map(|n| [check("pp-1", "t", &format!("s3:A{n}"), true), check("pp-2", "t", &format!("s3:A{n}"), true)]).collect();
    let sizes: Vec<usize> = batches(&many).iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert!(batches(&[]).is_empty());
}

#[test]
fn the_report_goes_in_parts_of_at_most_max_records() {
    let record = record(&check("pp-1", "t", "s3:GetObject", true), &Outcome::Decision("allowed".into()), 1);
    let sizes = |n: usize| report_parts(&vec![record.clone(); n]).iter().map(|p| p.len()).collect::<Vec<_>>();
    assert_eq!(sizes(0), [0], "nothing to report still reports");
    assert_eq!(sizes(3), [3]);
    assert_eq!(sizes(MAX_RECORDS), [MAX_RECORDS]);
    assert_eq!(sizes(2 * MAX_RECORDS + 500), [MAX_RECORDS, MAX_RECORDS, 500]);
}

#[test]
fn busy_or_unreachable_answers_are_retried_refusals_are_not() {
    for (status, again) in [(429, true), (502, true), (503, true), (504, true), (400, false), (401, false), (404, false), (409, false), (500, false)]
    {
        assert_eq!(retryable(reqwest::StatusCode::from_u16(status).unwrap()), again, "{status}");
    }
}

#[test]
fn the_host_name_names_the_verification() {
    assert_eq!(hostname("5f3c2a1b-9d8e-4f7a"), "verifier-5f3c2a1b");
    assert_eq!(hostname("abc"), "verifier-abc");
    assert_eq!(hostname("ééééééééé"), "verifier-éééééééé");
}

#[tokio::test]
async fn the_deployment_is_one_bounded_json_document() {
    let good = serde_json::to_vec(&deployment("http://127.0.0.1:8080", "http://127.0.0.1:8093", aws_checks())).unwrap();
    let read = read_deployment(good.as_slice()).await.unwrap();
    assert_eq!(read.checks.len(), aws_checks().len());

    let mut huge = good.clone();
    huge.extend(std::iter::repeat_n(b' ', MAX_DEPLOYMENT_BYTES as usize));
    let bad_url = serde_json::to_vec(&deployment("127.0.0.1:8080", "http://127.0.0.1:8093", vec![])).unwrap();
    let no_token = serde_json::to_vec(&VerifierDeployment { enrollment_token: " ".into(), ..deployment("http://a", "http://b", vec![]) }).unwrap();
    for (input, needle) in [
        (huge, "larger than 1048576 bytes"),
        (b"  \n".to_vec(), "no deployment on stdin"),
        (b"{\"fleet_url\": 1}".to_vec(), "not a VerifierDeployment"),
        (bad_url, "fleet_url must be an http:// or https:// URL"),
        (no_token, "enrollment_token is empty"),
    ] {
        let error = format!("{:#}", read_deployment(input.as_slice()).await.unwrap_err());
        assert!(error.contains(needle), "{error}");
    }
}

// --- Against the cloud emulator ---

#[tokio::test]
async fn permissions_are_checked_against_the_cloud_emulator() {
    let cloud = cloud().await;
    admin(&cloud, "revoke", json!({"principal": ROLE, "action": "s3:GetObject"})).await;
    let deployment = deployment("http://unused", &cloud, aws_checks());
    let records = check_all(&deployment, options()).await;

    assert_eq!(records.len(), deployment.checks.len());
    for (record, check) in records.iter().zip(&deployment.checks) {
        assert_eq!(
            (&record.package_policy_id, &record.policy_template, &record.action),
            (&check.package_policy_id, &check.policy_template, &check.action)
        );
        let expected = match check.action.as_str() {
            "s3:GetObject" | "config:DescribeConfigRules" => PermissionStatus::Denied,
            _ => PermissionStatus::Granted,
        };
        assert_eq!(record.status, expected, "{}", check.action);
    }
    let denied: Vec<(&str, &str, Option<&str>)> = records
        .iter()
        .filter(|r| r.status == PermissionStatus::Denied)
        .map(|r| (r.package_policy_id.as_str(), r.action.as_str(), r.error_code.as_deref()))
        .collect();
    assert_eq!(
        denied,
        [
            ("pp-1", "s3:GetObject", Some("implicitDeny")),
            ("pp-1", "config:DescribeConfigRules", Some("implicitDeny")),
            ("pp-2", "s3:GetObject", Some("implicitDeny"))
        ]
    );
    assert_eq!(stats(&cloud).await["calls"], 1, "8 distinct actions: one call");
    // What Warden makes of it: the cloudtrail templates fail on s3:GetObject, the optional one is skipped.
    let (status, reason) = warden_core::cloud_connectors::roll_up(&deployment.checks, &records);
    assert_eq!(status, warden_core::cloud_connectors::VerificationStatus::Failed);
    assert!(reason.unwrap().starts_with("2 of "), "two required checks missing");
}

#[tokio::test]
async fn many_actions_go_in_several_calls_at_once() {
    let cloud = cloud().await;
    let checks: Vec<PermissionCheck> = (0..250).map(|n| check("pp-1", "t", &format!("s3:Action{n}"), true)).collect();
    let records = check_all(&deployment("http://unused", &cloud, checks), Options { concurrency: 3, ..options() }).await;
    assert_eq!(records.len(), 250);
    assert!(records.iter().all(|r| r.error_code.as_deref() == Some("implicitDeny")));
    assert_eq!(stats(&cloud).await["calls"], 3);
}

#[tokio::test]
async fn a_wrong_proof_makes_every_check_an_access_denied_error() {
    let cloud = cloud().await;
    let deployment = VerifierDeployment { proof: "not-the-external-id".into(), ..deployment("http://unused", &cloud, aws_checks()) };
    let records = check_all(&deployment, options()).await;
    assert_eq!(records.len(), aws_checks().len());
    for record in &records {
        assert_eq!(record.status, PermissionStatus::Error);
        assert_eq!(record.error_code.as_deref(), Some("AccessDenied"));
        assert!(record.message.as_deref().unwrap().starts_with("Not authorized"), "{:?}", record.message);
    }
}

#[tokio::test]
async fn a_failing_or_silent_cloud_gives_errors_that_say_why() {
    let cloud = cloud().await;
    admin(&cloud, "fail-next", json!({"status": 503})).await;
    let records = check_all(&deployment("http://unused", &cloud, aws_checks()), options()).await;
    assert!(records.iter().all(|r| r.status == PermissionStatus::Error && r.error_code.as_deref() == Some("ServiceUnavailable")));
    assert!(records[0].message.as_deref().unwrap().starts_with("The cloud answered HTTP 503 Service Unavailable: The service is unavailable"));

    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let records = check_all(&deployment("http://unused", &closed, aws_checks()), options()).await;
    assert_eq!(records[0].error_code.as_deref(), Some("ConnectionError"), "{:?}", records[0].message);
    assert!(records[0].message.as_deref().unwrap().starts_with(&format!("Cannot reach the cloud at {closed}/iam/simulate-principal-policy")));

    // Listening, never answering.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let options = Options { timeout: Duration::from_millis(300), ..options() };
    let records = check_all(&deployment("http://unused", &silent_url, aws_checks()), options).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(records[0].error_code.as_deref(), Some("Timeout"));
    assert_eq!(
        records[0].message.as_deref(),
        Some(format!("The cloud did not answer within 300ms ({silent_url}/iam/simulate-principal-policy)").as_str())
    );

    // Something that is not the policy simulator.
    let other = serve(axum::Router::new().fallback(|| async { "<html>hello</html>" })).await;
    let records = check_all(&deployment("http://unused", &other, aws_checks()), options).await;
    assert_eq!(records[0].error_code.as_deref(), Some("UnreadableResponse"));
    assert!(records[0].message.as_deref().unwrap().ends_with("<html>hello</html>"));
}

/// A policy simulator that answers two results a page, or a Marker that
/// never moves (`stuck`).
async fn paging_cloud(stuck: bool) -> String {
    let app = axum::Router::new().fallback(move |axum::Json(body): axum::Json<Value>| async move {
        let actions: Vec<String> = serde_json::from_value(body["ActionNames"].clone()).unwrap();
        let start: usize = body["Marker"].as_str().map_or(0, |m| m.parse().unwrap());
        let end = (start + 2).min(actions.len());
        let results: Vec<Value> =
            actions[start..end].iter().map(|a| json!({"EvalActionName": a, "EvalResourceName": "*", "EvalDecision": "allowed"})).collect();
        let marker = if stuck { Some("0".to_owned()) } else { (end < actions.len()).then(|| end.to_string()) };
        axum::Json(json!({"EvaluationResults": results, "IsTruncated": marker.is_some(), "Marker": marker}))
    });
    serve(app).await
}

#[tokio::test]
async fn pages_are_followed_to_the_end_and_a_stuck_marker_ends() {
    let checks = aws_checks();
    let records = check_all(&deployment("http://unused", &paging_cloud(false).await, checks.clone()), options()).await;
    assert!(records.iter().all(|r| r.status == PermissionStatus::Granted), "{records:?}");

    let records = check_all(&deployment("http://unused", &paging_cloud(true).await, checks), options()).await;
    let codes: Vec<Option<&str>> = records.iter().filter(|r| r.package_policy_id == "pp-1").map(|r| r.error_code.as_deref()).collect();
    // The first page's two actions were decided; the rest could not be.
    assert_eq!(codes[..2], [None, None]);
    assert!(codes[2..].iter().all(|c| *c == Some("BadMarker")), "{codes:?}");
}

// --- The whole run, with a fake Warden ---

#[derive(Default)]
struct FakeWarden {
    enrolled: Option<(String, Value)>,
    reports: Vec<(String, VerificationReport)>,
    /// Answers for the report calls, in order (then 200).
    report_statuses: Vec<u16>,
}

type Shared = Arc<Mutex<FakeWarden>>;

async fn fake_warden(report_statuses: Vec<u16>) -> (String, Shared) {
    use axum::routing::post;
    let shared: Shared = Arc::new(Mutex::new(FakeWarden { report_statuses, ..FakeWarden::default() }));
    let app = axum::Router::new()
        .route(
            "/api/fleet/agents/enroll",
            post(|State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                let authorization = headers["authorization"].to_str().unwrap().to_owned();
                s.lock().unwrap().enrolled = Some((authorization, body.clone()));
                axum::Json(json!({
                    "action": "created",
                    "item": {
                        "id": "agent-v1", "active": true, "policy_id": "verifier-policy", "type": body["type"],
                        "enrolled_at": "2026-01-01T00:00:00.000Z", "user_provided_metadata": {}, "local_metadata": body["metadata"]["local"],
                        "actions": [], "access_api_key_id": "key-id", "access_api_key": "agent-key", "status": "online", "tags": body["metadata"]["tags"],
                    }
                }))
            }),
        )
        .route(
            "/api/fleet/agents/{id}/verification_results",
            post(|State(s): State<Shared>, UrlPath(id): UrlPath<String>, headers: HeaderMap, axum::Json(report): axum::Json<VerificationReport>| async move {
                assert_eq!(id, "agent-v1");
                let mut s = s.lock().unwrap();
                s.reports.push((headers["authorization"].to_str().unwrap().to_owned(), report));
                let status = if s.report_statuses.is_empty() { 200 } else { s.report_statuses.remove(0) };
                let status = StatusCode::from_u16(status).unwrap();
                ([("retry-after", "0")], (status, axum::Json(json!({"message": format!("answered {status}")})))).into_response()
            }),
        )
        .with_state(shared.clone());
    (serve(app).await, shared)
}

#[tokio::test]
async fn a_run_enrolls_checks_and_reports_in_parts_through_a_busy_warden() {
    let cloud = cloud().await;
    let (warden, fake) = fake_warden(vec![503, 429]).await;
    let mut checks = aws_checks();
    checks.extend((0..MAX_RECORDS).map(|n| check("pp-3", "cspm", &format!("s3:Extra{n}"), false)));
    let total = checks.len();
    let summary = run(deployment(&warden, &cloud, checks), options()).await.unwrap();
    assert_eq!(
        summary.to_string(),
        format!(
            "verification 5f3c2a1b-9d8e-4f7a-b6c5-d4e3f2a1b0c9: 12 granted, {} denied, 0 could not be checked; reported to Warden as agent agent-v1",
            total - 12
        )
    );

    let fake = fake.lock().unwrap();
    let (authorization, enroll) = fake.enrolled.clone().unwrap();
    assert_eq!(authorization, "ApiKey one-time-token");
    assert_eq!(enroll["type"], "EPHEMERAL");
    assert_eq!(enroll["metadata"]["tags"], json!(["verifier"]));
    assert_eq!(enroll["metadata"]["local"]["host"]["hostname"], "verifier-5f3c2a1b");
    assert_eq!(enroll["metadata"]["local"]["endpoint"]["capabilities"], json!([]), "a verifier offers no response action");

    // The first part was refused twice (503, 429), then taken; then the second.
    let sizes: Vec<usize> = fake.reports.iter().map(|(_, r)| r.records.len()).collect();
    assert_eq!(sizes, [MAX_RECORDS, MAX_RECORDS, MAX_RECORDS, total - MAX_RECORDS]);
    assert!(fake.reports.iter().all(|(auth, r)| auth == "ApiKey agent-key" && r.verification_id == "5f3c2a1b-9d8e-4f7a-b6c5-d4e3f2a1b0c9"));
    let reported: Vec<&VerificationRecord> = fake.reports[2..].iter().flat_map(|(_, r)| &r.records).collect();
    assert_eq!(reported.len(), total);
}

#[tokio::test]
async fn a_run_fails_when_warden_refuses_the_report_or_the_enrollment() {
    let cloud = cloud().await;
    let (warden, fake) = fake_warden(vec![400]).await;
    let error = format!("{:#}", run(deployment(&warden, &cloud, aws_checks()), options()).await.unwrap_err());
    assert!(error.starts_with("reporting the results to Warden (part 1 of 1): Warden refused the report: 400 Bad Request"), "{error}");
    assert_eq!(fake.lock().unwrap().reports.len(), 1, "a refusal is not retried");

    // Busy every time: a few tries, then give up.
    let (warden, fake) = fake_warden(vec![503; 10]).await;
    let error = format!("{:#}", run(deployment(&warden, &cloud, vec![]), options()).await.unwrap_err());
    assert!(error.contains(&format!("Warden did not take the report after {REPORT_TRIES} tries: 503 Service Unavailable")), "{error}");
    {
        let fake = fake.lock().unwrap();
        assert_eq!(fake.reports.len(), REPORT_TRIES as usize);
        assert!(fake.reports[0].1.records.is_empty(), "no checks: an empty report");
    }

    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let error = format!("{:#}", run(deployment(&nowhere, &cloud, aws_checks()), options()).await.unwrap_err());
    assert!(error.starts_with("enrolling with Warden"), "{error}");
}

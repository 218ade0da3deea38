//! The permission verifier end to end, nothing faked: Warden's task deploys
//! the real `warden-agent verifier`, which enrolls through the Fleet API and
//! checks each permission at the cloud emulator; the connector turns success
//! or failed with the permission that was denied, a rule hears a revoke, and
//! two Warden nodes on one database verify one connector at a time.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::cloud_connectors::{aws_connector, aws_package_policy, create_connector, send};
use crate::emulators::Emulator;
use crate::helpers::{Options, TestApp, eventually, spawn_app_with};
use crate::rules::{receiver, webhook_connector};

const ROLE: &str = "arn:aws:iam::123456789012:role/warden-demo";
const EXTERNAL_ID: &str = "warden-demo-external-id";

fn verifier_options(cloud: &Emulator, database_url: Option<String>) -> Options {
    Options {
        extra_args: vec!["--enable-otel-verifier".into(), "true".into(), "--verifier-cloud-url".into(), cloud.url.clone()],
        database_url,
        ..Options::default()
    }
}

/// A connector for the emulator's AWS principal, used by a package policy with `templates`.
async fn connector_in_use(app: &TestApp, admin: &Client, name: &str, templates: &[&str]) -> String {
    let connector = create_connector(admin, app, aws_connector(name, ROLE, EXTERNAL_ID)).await;
    let id = connector["id"].as_str().unwrap().to_owned();
    let policy = aws_package_policy(&format!("{name} integration"), "demo-endpoints", &id, templates);
    let created = send(admin, app, Method::POST, "api/fleet/package_policies", Some(policy)).await;
    assert_eq!(created.status(), StatusCode::OK);
    id
}

async fn connector(app: &TestApp, client: &Client, id: &str) -> Value {
    let response = send(client, app, Method::GET, &format!("api/fleet/cloud_connectors/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["item"].clone()
}

async fn verify_now(app: &TestApp, client: &Client, id: &str) {
    let response = send(client, app, Method::POST, &format!("internal/fleet/cloud_connectors/{id}/_verify"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Waits until the connector's verifications have ended with `status` and it
/// is not due again (none in flight, none asked for), and returns it.
async fn settled(app: &TestApp, client: &Client, id: &str, status: &str) -> Value {
    eventually(&format!("the connector is {status} and not due"), || async {
        let now = connector(app, client, id).await;
        now["verification_status"] == status && now["verification_in_flight"] == false && now["next_verification_at"].is_string()
    })
    .await;
    connector(app, client, id).await
}

/// The permissions of a verification as (action, status) pairs, sorted.
fn permissions(connector: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = connector["verification_permissions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["permissions"].as_array().unwrap().iter())
        .map(|p| (p["action"].as_str().unwrap().to_owned(), p["status"].as_str().unwrap().to_owned()))
        .collect();
    all.sort();
    all
}

async fn verifier_policies(app: &TestApp, client: &Client) -> usize {
    let response = send(client, app, Method::GET, "api/fleet/agent_policies?perPage=100", None).await;
    let policies: Value = response.json().await.unwrap();
    policies["items"].as_array().unwrap().iter().filter(|p| p["is_verifier"] == true).count()
}

#[tokio::test]
async fn the_verifier_reports_each_permission_and_a_rule_hears_a_revoke() {
    let cloud = Emulator::cloud();
    let app = spawn_app_with(verifier_options(&cloud, None)).await;
    let admin = app.signed_in("admin").await;
    let id = connector_in_use(&app, &admin, "AWS production", &["cloudtrail", "guardduty"]).await;

    // A rule that alerts through a real webhook when the connector loses a permission.
    let (url, mut received) = receiver().await;
    let webhook = webhook_connector(&app, &admin, &url).await;
    let rule = json!({
        "name": "Cloud permissions lost",
        "rule_type_id": "fleet.cloud_connector_verification",
        "consumer": "alerts",
        "schedule": {"interval": "1h"},
        "params": {"on_failed": true, "on_revoked": true},
        "actions": [{
            "id": webhook,
            "group": "default",
            "params": {"body": "{\"connector\": \"{{context.connector.name}}\", \"status\": \"{{context.status}}\", \"revoked\": \"{{context.revoked}}\"}"},
            "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null}
        }]
    });
    assert_eq!(send(&admin, &app, Method::POST, "api/alerting/rule", Some(rule)).await.status(), StatusCode::OK);

    // Never verified: the task verifies it as soon as a package policy uses it.
    let first = settled(&app, &admin, &id, "success").await;
    assert_eq!(
        permissions(&first),
        [
            ("cloudtrail:DescribeTrails", "granted"),
            ("cloudtrail:LookupEvents", "granted"),
            ("guardduty:GetFindings", "granted"),
            ("guardduty:ListDetectors", "granted"),
            ("guardduty:ListFindings", "granted"),
            ("s3:GetObject", "granted"),
            ("s3:ListBucket", "granted"),
            ("sqs:ReceiveMessage", "granted"),
        ]
        .map(|(a, s)| (a.to_owned(), s.to_owned())),
        "{first}"
    );
    assert!(first["verification_failed_at"].is_null());
    assert_eq!(verifier_policies(&app, &admin).await, 0, "the verifier's policy is removed once its results are in");

    // The cloud revokes one permission: the next verification names it.
    cloud.admin("revoke", json!({"principal": ROLE, "action": "guardduty:GetFindings"})).await;
    verify_now(&app, &admin, &id).await;
    let second = settled(&app, &admin, &id, "failed").await;
    let denied: Vec<_> = permissions(&second).into_iter().filter(|(_, status)| status != "granted").collect();
    assert_eq!(denied, [("guardduty:GetFindings".to_owned(), "denied".to_owned())], "{second}");
    let reason = second["verification_failed_reason"].as_str().unwrap();
    assert!(reason.contains("guardduty:GetFindings"), "{reason}");
    let guardduty = second["verification_permissions"].as_array().unwrap().iter().find(|t| t["policy_template"] == "guardduty").unwrap();
    assert_eq!(guardduty["status"], "failed");
    let cloudtrail = second["verification_permissions"].as_array().unwrap().iter().find(|t| t["policy_template"] == "cloudtrail").unwrap();
    assert_eq!(cloudtrail["status"], "success");

    let body = tokio::time::timeout(std::time::Duration::from_secs(30), received.recv()).await.expect("the webhook is called").unwrap();
    let body: Value = serde_json::from_str(&body).expect("the rendered body is JSON");
    assert_eq!(body, json!({"connector": "AWS production", "status": "failed", "revoked": "guardduty:GetFindings (guardduty)"}));
    assert_eq!(verifier_policies(&app, &admin).await, 0);
}

#[tokio::test]
async fn two_nodes_on_one_database_verify_one_connector_at_a_time() {
    let cloud = Emulator::cloud();
    let first = spawn_app_with(verifier_options(&cloud, None)).await;
    let second = spawn_app_with(verifier_options(&cloud, Some(first.database_url.clone()))).await;
    let (admin_one, admin_two) = (first.signed_in("admin").await, second.signed_in("admin").await);
    let mut ids = Vec::new();
    for (n, (app, admin)) in [(&first, &admin_one), (&second, &admin_two), (&first, &admin_one)].into_iter().enumerate() {
        ids.push(connector_in_use(app, admin, &format!("AWS account {n}"), &["cloudtrail"]).await);
    }
    // Every node is asked for every connector at once.
    for id in &ids {
        verify_now(&first, &admin_one, id).await;
        verify_now(&second, &admin_two, id).await;
    }
    for id in &ids {
        settled(&first, &admin_one, id, "success").await;
    }

    // The verifications, in the order they ran, never overlapped.
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as("select started_at, finished_at from cloud_connector_verifications order by started_at")
        .fetch_all(&first.db().await)
        .await
        .unwrap();
    assert!(rows.len() >= ids.len(), "{rows:?}");
    for pair in rows.windows(2) {
        let ended = pair[0].1.expect("every verification ended");
        assert!(ended <= pair[1].0, "a verification started before the one before it ended: {rows:?}");
    }
    assert_eq!(verifier_policies(&second, &admin_two).await, 0);
}

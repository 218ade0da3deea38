//! Cloud connectors and package policies through the API: Kibana's shapes
//! and messages, write-only secrets, and what a change of credentials does.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

pub async fn send(client: &Client, app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = client.request(method, app.url(path)).header("kbn-xsrf", "t");
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

pub fn aws_connector(name: &str, role: &str, external_id: &str) -> Value {
    json!({
        "name": name,
        "cloudProvider": "aws",
        "vars": {"role_arn": role, "external_id": {"type": "password", "value": external_id}},
    })
}

pub fn aws_package_policy(name: &str, policy_id: &str, connector: &str, templates: &[&str]) -> Value {
    let inputs: Vec<Value> = templates.iter().map(|t| json!({"type": format!("aws-{t}"), "policy_template": t, "enabled": true})).collect();
    json!({
        "name": name,
        "policy_ids": [policy_id],
        "package": {"name": "aws", "title": "AWS", "version": "2.17.0"},
        "inputs": inputs,
        "cloud_connector_id": connector,
    })
}

pub async fn create_connector(client: &Client, app: &TestApp, body: Value) -> Value {
    let response = send(client, app, reqwest::Method::POST, "api/fleet/cloud_connectors", Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["item"].clone()
}

#[tokio::test]
async fn a_connector_keeps_its_secrets_and_shows_only_references() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let created = create_connector(&admin, &app, aws_connector("  AWS   prod ", "arn:aws:iam::123456789012:role/warden", "very-secret-id")).await;
    assert_eq!(created["name"], "AWS prod", "trimmed, one space");
    assert_eq!(created["cloudProvider"], "aws");
    assert_eq!(created["accountType"], "single-account");
    assert_eq!(created["verification_status"], "pending");
    assert_eq!(created["packagePolicyCount"], 0);
    assert_eq!(created["vars"]["role_arn"], json!({"type": "text", "value": "arn:aws:iam::123456789012:role/warden"}));
    assert_eq!(created["vars"]["external_id"]["type"], "password");
    assert_eq!(created["vars"]["external_id"]["value"]["isSecretRef"], true);
    let id = created["id"].as_str().unwrap();
    let listed: Value = admin.get(app.url("api/fleet/cloud_connectors")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 1);
    assert!(!listed.to_string().contains("very-secret-id"), "a secret never leaves: {listed}");
    // Stored encrypted, not as text.
    let stored: String = sqlx::query_scalar("select secrets from cloud_connectors").fetch_one(&app.db().await).await.unwrap();
    assert!(!stored.contains("very-secret-id"));

    // A rename sends the reference back: the secret stays, the status too.
    let reference = created["vars"]["external_id"].clone();
    let path = format!("api/fleet/cloud_connectors/{id}");
    let renamed = send(&admin, &app, reqwest::Method::PUT, &path, Some(json!({"name": "AWS production", "vars": {"external_id": reference}}))).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["item"]["name"], "AWS production");
    assert_eq!(renamed["item"]["vars"]["external_id"]["value"]["isSecretRef"], true);

    // A reference to a secret it does not have is refused.
    let bad_reference = json!({"vars": {"role_arn": {"type": "password", "value": {"isSecretRef": true, "id": "x"}}}});
    let message = assert_error(send(&admin, &app, reqwest::Method::PUT, &path, Some(bad_reference)).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "[vars.role_arn] is not a secret: send its value");
}

#[tokio::test]
async fn bad_connectors_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let post = |body: Value| send(&admin, &app, reqwest::Method::POST, "api/fleet/cloud_connectors", Some(body));
    create_connector(&admin, &app, aws_connector("Shared", "arn:aws:iam::123456789012:role/a", "e")).await;
    let duplicate = post(aws_connector("shared", "arn:aws:iam::123456789012:role/b", "e")).await;
    assert_eq!(assert_error(duplicate, StatusCode::CONFLICT).await, "A cloud connector with this name already exists");
    let bad_arn = post(aws_connector("Bad ARN", "arn:aws:s3:::bucket", "e")).await;
    assert!(assert_error(bad_arn, StatusCode::BAD_REQUEST).await.contains("must be an IAM role ARN"));
    let missing = post(json!({"name": "Azure", "cloudProvider": "azure", "vars": {"tenant_id": {"type": "password", "value": "t"}}})).await;
    assert_eq!(assert_error(missing, StatusCode::BAD_REQUEST).await, "Azure connectors need [vars.client_id] (Client ID)");
    let unknown_provider = post(json!({"name": "Oracle", "cloudProvider": "oci", "vars": {"x": "y"}})).await;
    assert_eq!(unknown_provider.status(), StatusCode::BAD_REQUEST);
    let long_name = post(aws_connector(&"n".repeat(256), "arn:aws:iam::123456789012:role/a", "e")).await;
    assert_eq!(assert_error(long_name, StatusCode::BAD_REQUEST).await, "[name]: must be at most 255 characters");
    let missing_one = send(&admin, &app, reqwest::Method::GET, "api/fleet/cloud_connectors/nope", None).await;
    assert_eq!(assert_error(missing_one, StatusCode::NOT_FOUND).await, "Cloud connector nope not found");
    let paging = send(&admin, &app, reqwest::Method::GET, "api/fleet/cloud_connectors?perPage=10001", None).await;
    assert_eq!(paging.status(), StatusCode::BAD_REQUEST);

    // Kibana's kuery over the stored attributes filters the list and its total.
    for (kuery, total) in
        [("cloudProvider:aws", 1), ("fleet-cloud-connector.attributes.cloudProvider:gcp", 0), ("name:shar* and verification_status:pending", 1)]
    {
        let response = admin.get(app.url("api/fleet/cloud_connectors")).query(&[("kuery", kuery)]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["total"], total, "{kuery}: {body}");
        assert_eq!(body["items"].as_array().unwrap().len(), total, "{kuery}");
    }
    let bad_kuery = admin.get(app.url("api/fleet/cloud_connectors")).query(&[("kuery", "vars.role_arn:x")]).send().await.unwrap();
    assert!(assert_error(bad_kuery, StatusCode::BAD_REQUEST).await.contains("cloudProvider"));
}

#[tokio::test]
async fn package_policies_use_a_connector_of_their_provider_and_block_its_deletion() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let connector = create_connector(&admin, &app, aws_connector("AWS", "arn:aws:iam::123456789012:role/a", "e")).await;
    let id = connector["id"].as_str().unwrap();
    let post = |body: Value| send(&admin, &app, reqwest::Method::POST, "api/fleet/package_policies", Some(body));

    let wrong_template = post(aws_package_policy("s3", "demo-endpoints", id, &["s3"])).await;
    assert!(assert_error(wrong_template, StatusCode::BAD_REQUEST).await.contains("expected one of cloudtrail, guardduty, cspm"));
    let mut gcp = aws_package_policy("gcp", "demo-endpoints", id, &["audit"]);
    gcp["package"]["name"] = "gcp".into();
    assert!(assert_error(post(gcp).await, StatusCode::BAD_REQUEST).await.contains("cannot use a AWS cloud connector"));
    let no_policy = post(aws_package_policy("nowhere", "no-such-policy", id, &["cloudtrail"])).await;
    assert_eq!(assert_error(no_policy, StatusCode::NOT_FOUND).await, "Agent policy no-such-policy not found");
    let mut verifier = aws_package_policy("mine", "demo-endpoints", id, &["cloudtrail"]);
    verifier["package"]["name"] = "verifier_otel".into();
    assert!(assert_error(post(verifier).await, StatusCode::BAD_REQUEST).await.contains("Warden's own"));

    let created = post(aws_package_policy("aws-cloudtrail", "demo-endpoints", id, &["cloudtrail", "guardduty"])).await;
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.unwrap();
    let policy_id = created["item"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["item"]["policy_ids"], json!(["demo-endpoints"]));
    assert_eq!(created["item"]["supports_cloud_connector"], true);
    let again = post(aws_package_policy("aws-cloudtrail", "demo-endpoints", id, &["cloudtrail"])).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    let read: Value = admin.get(app.url(&format!("api/fleet/cloud_connectors/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["item"]["packagePolicyCount"], 1);
    let usage: Value = admin.get(app.url(&format!("api/fleet/cloud_connectors/{id}/usage"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(usage["total"], 1);
    assert_eq!(usage["items"][0]["name"], "aws-cloudtrail");

    let path = format!("api/fleet/cloud_connectors/{id}");
    let in_use = send(&admin, &app, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        assert_error(in_use, StatusCode::BAD_REQUEST).await,
        "Cannot delete cloud connector \"AWS\" as it is being used by 1 package policies"
    );
    let forced = send(&admin, &app, reqwest::Method::DELETE, &format!("{path}?force=true"), None).await;
    assert_eq!(forced.status(), StatusCode::OK);
    let detached: Value = admin.get(app.url(&format!("api/fleet/package_policies/{policy_id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(detached["item"]["cloud_connector_id"], Value::Null, "the package policy stays, without the connector");

    let bulk =
        send(&admin, &app, reqwest::Method::POST, "api/fleet/package_policies/delete", Some(json!({"packagePolicyIds": [policy_id, "nope"]}))).await;
    let bulk: Value = bulk.json().await.unwrap();
    assert_eq!(bulk[0]["success"], true);
    assert_eq!(bulk[1]["statusCode"], 404);
    let gone = send(&admin, &app, reqwest::Method::DELETE, &format!("api/fleet/package_policies/{policy_id}"), None).await;
    assert_eq!(gone.status(), StatusCode::OK, "idempotent, as Fleet's");
}

#[tokio::test]
async fn deleting_an_agent_policy_deletes_its_package_policies() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let connector = create_connector(&admin, &app, aws_connector("AWS", "arn:aws:iam::123456789012:role/a", "e")).await;
    let post = |path: &'static str, body: Value| send(&admin, &app, reqwest::Method::POST, path, Some(body));
    let policy: Value = post("api/fleet/agent_policies", json!({"name": "Cloud integrations"})).await.json().await.unwrap();
    let policy_id = policy["item"]["id"].as_str().unwrap();
    let package: Value = post("api/fleet/package_policies", aws_package_policy("aws", policy_id, connector["id"].as_str().unwrap(), &["cloudtrail"]))
        .await
        .json()
        .await
        .unwrap();
    let deleted = post("api/fleet/agent_policies/delete", json!({"agentPolicyId": policy_id})).await;
    assert_eq!(deleted.status(), StatusCode::OK, "as Fleet, not a foreign-key 500");
    let path = format!("api/fleet/package_policies/{}", package["item"]["id"].as_str().unwrap());
    assert_eq!(send(&admin, &app, reqwest::Method::GET, &path, None).await.status(), StatusCode::NOT_FOUND);
    let connector =
        send(&admin, &app, reqwest::Method::GET, &format!("api/fleet/cloud_connectors/{}", connector["id"].as_str().unwrap()), None).await;
    assert_eq!(connector.json::<Value>().await.unwrap()["item"]["packagePolicyCount"], 0);
}

#[tokio::test]
async fn verify_now_is_refused_while_the_verifier_is_off() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let connector = create_connector(&admin, &app, aws_connector("AWS", "arn:aws:iam::123456789012:role/a", "e")).await;
    let path = format!("internal/fleet/cloud_connectors/{}/_verify", connector["id"].as_str().unwrap());
    let message = assert_error(send(&admin, &app, reqwest::Method::POST, &path, None).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "The permission verifier is off on this Warden (enable_otel_verifier)");
}

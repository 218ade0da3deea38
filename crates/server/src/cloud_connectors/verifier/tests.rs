//! The task's phases against a fresh database (SQLite, or PostgreSQL when
//! `TEST_POSTGRES_URL` names a server): a failure injected after each step of
//! starting a verification leaves nothing behind (the review finding Kibana
//! only half fixed), a verifier that cannot be started fails its connector,
//! the gate holds one verification at a time, an expired verifier policy is
//! swept and fails its verification, and only the verifier's own agent may
//! report, within its plan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use sqlx::AnyConnection;
use warden_core::cloud_connectors::{
    CloudProvider, CreateCloudConnector, PackagePolicyInput, PackagePolicyRequest, PackageRef, PermissionStatus, VerificationRecord,
};
use warden_core::fleet_api::{AgentType, EnrollMetadata, EnrollRequest};

use super::*;
use crate::Application;
use crate::config::{Config, Secret};

struct Fixture {
    app: Application,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn state(&self) -> &AppState {
        self.app.state()
    }
}

async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(server) => {
            let server = server.trim_end_matches('/');
            let name = format!("warden_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::any::install_default_drivers();
            let mut admin = <AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres")).await.unwrap();
            sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(format!("create database {name}"))).await.unwrap();
            format!("{server}/{name}")
        }
        Err(_) => format!("sqlite://{}/warden.db", dir.display()),
    }
}

/// Warden with the verifier on; `program` is what a deploy starts.
async fn fixture(program: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: fresh_database(dir.path()).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        encryption_key: Some(Secret("a test encryption key of 32 characters or more".to_owned())),
        enable_otel_verifier: true,
        verifier_cloud_url: "http://127.0.0.1:9".into(),
        verifier_program: program.into(),
        ..Config::default()
    };
    Fixture { app: Application::build(config).await.unwrap(), _dir: dir }
}

/// An AWS connector used by a cloudtrail package policy; returns its id.
async fn connector_in_use(state: &AppState) -> String {
    let connector = super::super::create(
        state,
        CreateCloudConnector {
            name: "AWS prod".into(),
            cloud_provider: CloudProvider::Aws,
            account_type: None,
            namespace: None,
            vars: serde_json::from_value(json!({
                "role_arn": "arn:aws:iam::123456789012:role/warden",
                "external_id": {"type": "password", "value": "external-id-1"},
            }))
            .unwrap(),
        },
        "admin",
    )
    .await
    .unwrap();
    let policy =
        crate::fleet::service::create_policy(state, &serde_json::from_value(json!({"name": "Cloud integrations", "namespace": "default"})).unwrap())
            .await
            .unwrap();
    super::super::create_package_policy(
        state,
        PackagePolicyRequest {
            name: "aws-cloudtrail".into(),
            description: None,
            namespace: None,
            policy_id: Some(policy.id.as_str().to_owned()),
            policy_ids: vec![],
            package: PackageRef { name: "aws".into(), title: Some("AWS".into()), version: "2.17.0".into() },
            inputs: vec![PackagePolicyInput {
                input_type: "aws-s3".into(),
                policy_template: Some("cloudtrail".into()),
                enabled: true,
                streams: vec![],
                vars: None,
            }],
            enabled: true,
            cloud_connector_id: Some(connector.id.clone()),
            supports_cloud_connector: Some(true),
        },
        "admin",
    )
    .await
    .unwrap();
    connector.id
}

struct FailAfter(Step);

impl Faults for FailAfter {
    fn after(&self, step: Step) -> anyhow::Result<()> {
        if step == self.0 { Err(anyhow::anyhow!("injected failure after {step:?}")) } else { Ok(()) }
    }
}

async fn count(state: &AppState, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&state.db).await.unwrap()
}

/// Nothing a verification creates is left.
async fn assert_nothing_left(state: &AppState, after: &str) {
    assert_eq!(count(state, "select count(*) from agent_policies where is_verifier = 1").await, 0, "a verifier policy is left after {after}");
    assert_eq!(count(state, "select count(*) from package_policies where package_name = 'verifier_otel'").await, 0, "after {after}");
    assert_eq!(count(state, "select count(*) from enrollment_api_keys where single_use = 1").await, 0, "after {after}");
    assert_eq!(count(state, "select count(*) from cloud_connector_verifications where finished_at is null").await, 0, "after {after}");
}

#[tokio::test]
async fn a_failure_after_any_step_leaves_nothing_behind_and_fails_the_connector() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    let id = connector_in_use(state).await;
    for step in Step::ALL {
        let summary = run(state, &FailAfter(step)).await.unwrap();
        assert!(summary.contains("failed to start"), "{step:?}: {summary}");
        assert_nothing_left(state, &format!("{step:?}")).await;
        let connector = super::super::get(state, &id).await.unwrap();
        assert_eq!(connector.verification_status, Some(VerificationStatus::Failed), "{step:?}");
        let reason = connector.verification_failed_reason.unwrap_or_default();
        assert!(reason.contains(&format!("injected failure after {step:?}")), "{step:?}: {reason}");
        // The next try skips the cooldown, as an analyst's "Verify now" does.
        super::super::request_verification(state, &id).await.unwrap();
    }
    // Unasked, a connector whose verification cannot start waits out its
    // cooldown instead of being picked again on every run.
    run(state, &FailAfter(Step::Stamp)).await.unwrap();
    assert!(run(state, &NoFaults).await.unwrap().contains("none due"));
}

#[tokio::test]
async fn a_verifier_that_cannot_start_fails_its_connector_and_is_removed() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    let id = connector_in_use(state).await;
    let summary = run(state, &NoFaults).await.unwrap();
    assert!(summary.contains("could not start /nonexistent/warden-agent"), "{summary}");
    assert_nothing_left(state, "a failed deploy").await;
    let connector = super::super::get(state, &id).await.unwrap();
    assert_eq!(connector.verification_status, Some(VerificationStatus::Failed));
    // Failed a moment ago: the cooldown holds until an analyst asks.
    let summary = run(state, &NoFaults).await.unwrap();
    assert!(summary.contains("none due"), "{summary}");
}

#[tokio::test]
async fn a_connector_without_an_enabled_template_is_not_a_candidate() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    connector_in_use(state).await;
    sqlx::query("update package_policies set enabled = 0").execute(&state.db).await.unwrap();
    let summary = run(state, &NoFaults).await.unwrap();
    assert_eq!(summary, "0 connectors in use, none due");
}

#[tokio::test]
async fn the_gate_holds_one_verification_at_a_time() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    let id = connector_in_use(state).await;
    let now = now_ms();
    store::insert_verifier_policy(&state.db, "in-flight", "Verifier in flight", "another node's", &id, 3600, now, now + VERIFICATION_TTL_MS)
        .await
        .unwrap();
    let summary = run(state, &NoFaults).await.unwrap();
    assert!(summary.contains("verification in flight (verifier policy in-flight)"), "{summary}");
    // What makes it hold across nodes: a second verifier policy cannot exist.
    let second = store::insert_verifier_policy(&state.db, "second", "Second verifier", "", &id, 3600, now, now + VERIFICATION_TTL_MS).await;
    assert!(matches!(second, Err(sqlx::Error::Database(ref db)) if db.is_unique_violation()), "{second:?}");
    // And a node that lost the race reports the gate, without failing the connector.
    let connector = store::connector(&state.db, &id).await.unwrap().unwrap();
    let templates = vec![("pp".to_owned(), "aws".to_owned(), "cloudtrail".to_owned())];
    assert!(prepare(state, &connector, &templates, &NoFaults).await.unwrap().is_none());
    assert_eq!(super::super::get(state, &id).await.unwrap().verification_status, Some(VerificationStatus::Pending));
}

/// Starts a verification by hand (no deploy): its policy, plan and key.
async fn started(state: &AppState, id: &str) -> Prepared {
    let connector = store::connector(&state.db, id).await.unwrap().unwrap();
    let policies = store::package_policies_of_connector(&state.db, id).await.unwrap();
    let templates = vec![(policies[0].id.clone(), "aws".to_owned(), "cloudtrail".to_owned())];
    prepare(state, &connector, &templates, &NoFaults).await.unwrap().expect("no verification in flight")
}

#[tokio::test]
async fn an_expired_verifier_policy_is_swept_and_fails_its_verification() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    let id = connector_in_use(state).await;
    let prepared = started(state, &id).await;
    assert_eq!(prepared.deployment.checks.len(), 5, "cloudtrail's five permissions");
    assert_eq!(prepared.deployment.principal, "arn:aws:iam::123456789012:role/warden");
    assert_eq!(prepared.deployment.proof, "external-id-1");
    // Its one-time key is nobody's to see, and nobody may make another.
    let keys = crate::fleet::service::list_enrollment_keys(state).await.unwrap();
    assert!(keys.iter().all(|key| key.policy_id.as_str() != prepared.policy_id), "{keys:?}");
    let another = serde_json::from_value(json!({"policy_id": prepared.policy_id})).unwrap();
    assert!(crate::fleet::service::create_enrollment_key(state, another, None).await.is_err());
    sqlx::query("update agent_policies set expires_at = $1 where id = $2")
        .bind(now_ms() - 1)
        .bind(&prepared.policy_id)
        .execute(&state.db)
        .await
        .unwrap();
    let summary = run(state, &NoFaults).await.unwrap();
    assert!(summary.starts_with("1 expired verifier policies removed"), "{summary}");
    assert_nothing_left(state, "the sweep").await;
    let connector = super::super::get(state, &id).await.unwrap();
    assert_eq!(connector.verification_status, Some(VerificationStatus::Failed));
    assert_eq!(connector.verification_failed_reason.as_deref(), Some("The verifier did not report within 5 minutes (0 of 5 results arrived)"));
}

fn record(action: &str, package_policy_id: &str, status: PermissionStatus) -> VerificationRecord {
    VerificationRecord {
        package_policy_id: package_policy_id.into(),
        policy_template: "cloudtrail".into(),
        package_name: "aws".into(),
        action: action.into(),
        status,
        required: false,
        error_code: None,
        message: None,
        method: Some("api_call".into()),
        duration_ms: Some(3),
    }
}

#[tokio::test]
async fn only_the_verifier_reports_within_its_plan_and_the_last_result_ends_it() {
    let fixture = fixture("/nonexistent/warden-agent").await;
    let state = fixture.state();
    let id = connector_in_use(state).await;
    let prepared = started(state, &id).await;
    let plan = prepared.deployment.checks.clone();
    let (key_id, secret) = {
        let decoded = crate::api_keys::Credentials::decode(&prepared.deployment.enrollment_token).unwrap();
        (decoded.id, decoded.secret)
    };
    let enroll = |hostname: &'static str| EnrollRequest {
        agent_type: AgentType::Ephemeral,
        enrollment_id: None,
        shared_id: None,
        replace_token: None,
        metadata: EnrollMetadata { local: json!({"host": {"hostname": hostname}}), ..EnrollMetadata::default() },
    };
    let key = crate::fleet::service::enrollment_key(state, &key_id, &secret).await.unwrap();
    let verifier = crate::fleet::service::enroll(state, key.clone(), enroll("verifier-1")).await.unwrap();
    // The key works once.
    assert!(crate::fleet::service::enrollment_key(state, &key_id, &secret).await.is_err());
    assert!(crate::fleet::service::enroll(state, key, enroll("impostor")).await.is_err());
    let agent = crate::store::fleet::agent(&state.db, verifier.item.id.as_str()).await.unwrap().unwrap();

    let verification_id = prepared.deployment.verification_id.clone();
    let outside = VerificationReport {
        verification_id: verification_id.clone(),
        records: vec![record("iam:PassRole", &plan[0].package_policy_id, PermissionStatus::Granted)],
    };
    assert!(matches!(report(state, &agent, outside).await, Err(CloudError::Invalid(_))));

    let mut other = agent.clone();
    other.policy_id = "another-policy".into();
    let from_other = VerificationReport { verification_id: verification_id.clone(), records: vec![] };
    assert!(matches!(report(state, &other, from_other).await, Err(CloudError::Forbidden(_))));

    // All but the last: still in flight. A repeat counts once.
    let records: Vec<_> = plan.iter().map(|c| record(&c.action, &c.package_policy_id, PermissionStatus::Granted)).collect();
    let (first, last) = records.split_at(records.len() - 1);
    let partial = VerificationReport { verification_id: verification_id.clone(), records: first.to_vec() };
    assert_eq!(report(state, &agent, partial.clone()).await.unwrap(), first.len());
    assert_eq!(report(state, &agent, partial).await.unwrap(), 0);
    assert!(super::super::get(state, &id).await.unwrap().verification_in_flight);

    let mut denied = last.to_vec();
    denied[0].status = PermissionStatus::Denied;
    let required_denied = plan.last().unwrap().required;
    report(state, &agent, VerificationReport { verification_id: verification_id.clone(), records: denied }).await.unwrap();
    assert_nothing_left(state, "the last result").await;
    assert_eq!(count(state, "select count(*) from agents").await, 0, "the verifier's agent goes with its policy");
    let connector = super::super::get(state, &id).await.unwrap();
    assert!(!connector.verification_in_flight);
    let expected = if required_denied { VerificationStatus::Failed } else { VerificationStatus::Success };
    assert_eq!(connector.verification_status, Some(expected));
    assert_eq!(connector.verification_permissions.len(), 1);
    assert_eq!(connector.verification_permissions[0].permissions.len(), plan.len());
    // The plan, not the reporter, says what is required.
    let last_action = &plan.last().unwrap().action;
    let shown = connector.verification_permissions[0].permissions.iter().find(|p| &p.action == last_action).unwrap();
    assert_eq!(shown.required, required_denied);
    // Ended: a late report is refused.
    let late = VerificationReport { verification_id, records: vec![] };
    assert!(report(state, &agent, late).await.is_err());
}

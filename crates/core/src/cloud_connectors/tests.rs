use serde_json::json;

use super::*;

const MIN: i64 = 60 * 1000;
const NOW: i64 = 1_000 * 60 * MIN;

fn facts() -> ConnectorFacts {
    ConnectorFacts { created_at: NOW - 600 * MIN, updated_at: NOW - 600 * MIN, ..ConnectorFacts::default() }
}

fn verified(status: VerificationStatus, started_ago: i64) -> ConnectorFacts {
    ConnectorFacts { status: Some(status), started_at: Some(NOW - started_ago), ..facts() }
}

fn eligible(facts: &ConnectorFacts) -> Option<Eligibility> {
    eligibility(facts, NOW, Windows::default())
}

#[test]
fn a_connector_never_verified_is_eligible() {
    assert_eq!(eligible(&ConnectorFacts { status: Some(VerificationStatus::Pending), ..facts() }), Some(Eligibility::NeverVerified));
}

#[test]
fn a_recently_created_connector_is_eligible_until_a_verification_starts_after_it() {
    let created = ConnectorFacts { created_at: NOW - 2 * MIN, updated_at: NOW - 2 * MIN, ..verified(VerificationStatus::Success, 90 * MIN) };
    assert_eq!(eligible(&created), Some(Eligibility::RecentlyCreated));
    // Kibana verifies it again on every run of those five minutes; once one started after the creation, it waits.
    let started_after = ConnectorFacts { started_at: Some(NOW - MIN), ..created };
    assert_eq!(eligible(&started_after), None);
}

#[test]
fn a_recently_updated_connector_is_eligible_once() {
    let updated = ConnectorFacts { updated_at: NOW - 3 * MIN, ..verified(VerificationStatus::Success, 10 * MIN) };
    assert_eq!(eligible(&updated), Some(Eligibility::RecentlyUpdated));
    let older_change = ConnectorFacts { updated_at: NOW - 6 * MIN, ..verified(VerificationStatus::Success, 10 * MIN) };
    assert_eq!(eligible(&older_change), None, "a change older than the window waits for the re-verification");
    let verified_since = ConnectorFacts { updated_at: NOW - 3 * MIN, ..verified(VerificationStatus::Success, 2 * MIN) };
    assert_eq!(eligible(&verified_since), None);
}

#[test]
fn a_verified_connector_is_due_after_the_reverification_interval() {
    assert_eq!(eligible(&verified(VerificationStatus::Success, 59 * MIN)), None);
    assert_eq!(eligible(&verified(VerificationStatus::Success, 60 * MIN)), Some(Eligibility::Due));
    assert_eq!(eligible(&verified(VerificationStatus::Pending, 61 * MIN)), Some(Eligibility::Due));
}

#[test]
fn a_failed_connector_waits_for_the_cooldown() {
    // Kibana's test: failed two minutes ago (started two minutes ago too) is not eligible.
    let failed = |ago: i64| ConnectorFacts { failed_at: Some(NOW - ago), ..verified(VerificationStatus::Failed, ago) };
    assert_eq!(eligible(&failed(2 * MIN)), None);
    assert_eq!(eligible(&failed(5 * MIN)), Some(Eligibility::CooldownExpired));
    // A failed one is never "due": only the cooldown brings it back.
    let failed_long_ago_started = ConnectorFacts { failed_at: Some(NOW - MIN), ..verified(VerificationStatus::Failed, 120 * MIN) };
    assert_eq!(eligible(&failed_long_ago_started), None);
    let failed_without_time = verified(VerificationStatus::Failed, 120 * MIN);
    assert_eq!(eligible(&failed_without_time), Some(Eligibility::CooldownExpired));
    // One that could not even start (never stamped) waits too, instead of
    // being picked on every run ahead of every other connector.
    let never_started = ConnectorFacts { status: Some(VerificationStatus::Failed), failed_at: Some(NOW - MIN), ..facts() };
    assert_eq!(eligible(&never_started), None);
    assert_eq!(eligible(&ConnectorFacts { failed_at: Some(NOW - 6 * MIN), ..never_started }), Some(Eligibility::NeverVerified));
}

#[test]
fn a_connector_without_status_is_eligible() {
    assert_eq!(eligible(&ConnectorFacts { status: None, started_at: Some(NOW - MIN), ..facts() }), Some(Eligibility::NoStatus));
}

#[test]
fn verify_now_skips_the_cooldown_once() {
    let failed = ConnectorFacts { failed_at: Some(NOW - MIN), requested_at: Some(NOW - 10), ..verified(VerificationStatus::Failed, MIN) };
    assert_eq!(eligible(&failed), Some(Eligibility::Requested));
    let served = ConnectorFacts { started_at: Some(NOW - 5), ..failed };
    assert_eq!(eligible(&served), None, "the request was served by the verification that started after it");
}

#[test]
fn windows_are_configurable() {
    let windows = Windows { recent: MIN, reverify_after: 10 * MIN, failure_cooldown: 30 * MIN };
    assert_eq!(eligibility(&verified(VerificationStatus::Success, 11 * MIN), NOW, windows), Some(Eligibility::Due));
    let failed = ConnectorFacts { failed_at: Some(NOW - 20 * MIN), ..verified(VerificationStatus::Failed, 20 * MIN) };
    assert_eq!(eligibility(&failed, NOW, windows), None);
}

#[test]
fn next_verification_is_when_the_interval_or_the_cooldown_ends() {
    let ok = verified(VerificationStatus::Success, 20 * MIN);
    assert_eq!(next_verification(&ok, NOW, Windows::default()), Some(NOW + 40 * MIN));
    let failed = ConnectorFacts { failed_at: Some(NOW - 2 * MIN), ..verified(VerificationStatus::Failed, 2 * MIN) };
    assert_eq!(next_verification(&failed, NOW, Windows::default()), Some(NOW + 3 * MIN));
    assert_eq!(next_verification(&facts(), NOW, Windows::default()), None, "eligible now");
}

#[test]
fn pick_prefers_a_request_then_the_longest_unverified() {
    let a = "a";
    let b = "b";
    let c = "c";
    let candidates = [
        (&a, verified(VerificationStatus::Success, 70 * MIN)),
        (&b, verified(VerificationStatus::Success, 90 * MIN)),
        (&c, verified(VerificationStatus::Success, 5 * MIN)),
    ];
    assert_eq!(pick(candidates, NOW, Windows::default()), Some((&b, Eligibility::Due)));
    let requested = ConnectorFacts { requested_at: Some(NOW - 1), ..verified(VerificationStatus::Success, 5 * MIN) };
    let candidates = [(&a, verified(VerificationStatus::Success, 70 * MIN)), (&c, requested)];
    assert_eq!(pick(candidates, NOW, Windows::default()), Some((&c, Eligibility::Requested)));
    let none = [(&c, verified(VerificationStatus::Success, MIN))];
    assert_eq!(pick(none, NOW, Windows::default()), None);
}

fn vars(pairs: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    serde_json::from_value(pairs).unwrap_or_default()
}

#[test]
fn aws_vars_need_a_role_arn_and_an_external_id_kept_secret() {
    let checked = check_vars(
        CloudProvider::Aws,
        &vars(json!({"role_arn": "arn:aws:iam::123456789012:role/warden-cspm", "external_id": {"type": "password", "value": "abc-123"}})),
        &[],
        &BTreeMap::new(),
        false,
    )
    .unwrap_or_default();
    assert_eq!(checked.text.get("role_arn").map(String::as_str), Some("arn:aws:iam::123456789012:role/warden-cspm"));
    assert_eq!(checked.new_secrets.get("external_id").map(String::as_str), Some("abc-123"));
    let missing = check_vars(CloudProvider::Aws, &vars(json!({"role_arn": "arn:aws:iam::123456789012:role/x"})), &[], &BTreeMap::new(), false);
    assert_eq!(missing, Err("AWS connectors need [vars.external_id] (External ID)".into()));
    for bad in ["arn:aws:s3:::bucket", "arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/x", "role"] {
        let result = check_vars(CloudProvider::Aws, &vars(json!({"role_arn": bad, "external_id": "e"})), &[], &BTreeMap::new(), false);
        assert!(result.is_err_and(|e| e.contains("IAM role ARN")), "{bad}");
    }
}

#[test]
fn a_secret_reference_keeps_only_a_secret_the_connector_has() {
    let reference = json!({"type": "password", "value": {"isSecretRef": true, "id": "external_id"}});
    let stored_text = BTreeMap::from([("role_arn".to_owned(), "arn:aws:iam::123456789012:role/x".to_owned())]);
    let kept = check_vars(CloudProvider::Aws, &vars(json!({"external_id": reference.clone()})), &["external_id".into()], &stored_text, true);
    assert_eq!(kept.map(|c| c.kept_secrets), Ok(vec!["external_id".to_owned()]));
    let unknown = check_vars(CloudProvider::Aws, &vars(json!({"external_id": reference})), &[], &stored_text, true);
    assert!(unknown.is_err_and(|e| e.contains("does not have")));
}

#[test]
fn vars_are_checked_by_name_shape_and_size() {
    let unknown = check_vars(CloudProvider::Gcp, &vars(json!({"role_arn": "x"})), &[], &BTreeMap::new(), false);
    assert!(unknown.is_err_and(|e| e.contains("Unknown variable [role_arn] for gcp")));
    let secret_as_text = check_vars(CloudProvider::Gcp, &vars(json!({"audience": {"type": "password", "value": "x"}})), &[], &BTreeMap::new(), true);
    assert!(secret_as_text.is_err_and(|e| e.contains("not a secret")));
    let long = "x".repeat(VAR_VALUE_MAX + 1);
    let too_long = check_vars(CloudProvider::Azure, &vars(json!({"tenant_id": long, "client_id": "c"})), &[], &BTreeMap::new(), false);
    assert!(too_long.is_err_and(|e| e.contains("longer than 1000")));
    let odd = check_vars(CloudProvider::Azure, &vars(json!({"tenant_id": 42})), &[], &BTreeMap::new(), true);
    assert!(odd.is_err_and(|e| e.contains("expected a string")));
    assert_eq!(check_vars(CloudProvider::Azure, &BTreeMap::new(), &[], &BTreeMap::new(), false), Err("vars must not be empty".into()));
    let email = check_vars(CloudProvider::Gcp, &vars(json!({"service_account": "nope", "audience": "a"})), &[], &BTreeMap::new(), false);
    assert!(email.is_err_and(|e| e.contains("service account's email")));
}

#[test]
fn names_are_trimmed_and_bounded() {
    assert_eq!(normalize_name("  AWS   prod\taccount "), Ok("AWS prod account".into()));
    assert!(normalize_name("  ").is_err());
    assert!(normalize_name(&"n".repeat(256)).is_err());
}

fn check(policy: &str, template: &str, action: &str, required: bool) -> PermissionCheck {
    PermissionCheck {
        package_policy_id: policy.into(),
        policy_template: template.into(),
        package_name: "aws".into(),
        action: action.into(),
        required,
    }
}

fn record(check: &PermissionCheck, status: PermissionStatus) -> VerificationRecord {
    VerificationRecord {
        package_policy_id: check.package_policy_id.clone(),
        policy_template: check.policy_template.clone(),
        package_name: check.package_name.clone(),
        action: check.action.clone(),
        status,
        required: check.required,
        error_code: None,
        message: None,
        method: None,
        duration_ms: None,
    }
}

#[test]
fn plan_covers_every_template_once() {
    let templates = vec![
        ("pp1".to_owned(), "aws".to_owned(), "guardduty".to_owned()),
        ("pp1".to_owned(), "aws".to_owned(), "guardduty".to_owned()),
        ("pp2".to_owned(), "aws".to_owned(), "cloudtrail".to_owned()),
        ("pp2".to_owned(), "aws".to_owned(), "unknown".to_owned()),
    ];
    let checks = plan_checks(CloudProvider::Aws, &templates);
    assert_eq!(checks.len(), 3 + 5);
    assert!(checks.iter().any(|c| c.action == "sqs:ReceiveMessage" && !c.required));
}

#[test]
fn roll_up_succeeds_only_when_every_required_permission_is_granted() {
    let checks = vec![check("pp", "cloudtrail", "s3:GetObject", true), check("pp", "cloudtrail", "sqs:ReceiveMessage", false)];
    let granted: Vec<_> = checks.iter().map(|c| record(c, PermissionStatus::Granted)).collect();
    assert_eq!(roll_up(&checks, &granted), (VerificationStatus::Success, None));
    let optional_denied = vec![record(&checks[0], PermissionStatus::Granted), record(&checks[1], PermissionStatus::Denied)];
    assert_eq!(roll_up(&checks, &optional_denied).0, VerificationStatus::Success);
    let denied = vec![record(&checks[0], PermissionStatus::Denied), record(&checks[1], PermissionStatus::Granted)];
    assert_eq!(
        roll_up(&checks, &denied),
        (VerificationStatus::Failed, Some("1 of 1 required permissions missing: s3:GetObject denied (cloudtrail)".into()))
    );
    let errored = vec![record(&checks[0], PermissionStatus::Error)];
    assert!(roll_up(&checks, &errored).1.is_some_and(|r| r.contains("could not be checked")));
    assert!(roll_up(&checks, &[]).1.is_some_and(|r| r.contains("not reported")));
    assert_eq!(roll_up(&[], &[]).0, VerificationStatus::Failed);
}

#[test]
fn roll_up_names_three_and_counts_the_rest() {
    let checks: Vec<_> = (0..5).map(|n| check("pp", "cloudtrail", &format!("a:{n}"), true)).collect();
    let denied: Vec<_> = checks.iter().map(|c| record(c, PermissionStatus::Denied)).collect();
    let reason = roll_up(&checks, &denied).1.unwrap_or_default();
    assert!(reason.starts_with("5 of 5 required permissions missing: a:0 denied"), "{reason}");
    assert!(reason.ends_with("and 2 more"), "{reason}");
}

#[test]
fn newly_denied_lists_what_was_granted_before() {
    let c = check("pp", "cloudtrail", "s3:GetObject", true);
    let d = check("pp", "cloudtrail", "s3:ListBucket", true);
    let before = vec![record(&c, PermissionStatus::Granted), record(&d, PermissionStatus::Denied)];
    let after = vec![record(&c, PermissionStatus::Denied), record(&d, PermissionStatus::Denied)];
    let newly: Vec<&str> = newly_denied(&before, &after).iter().map(|r| r.action.as_str()).collect();
    assert_eq!(newly, vec!["s3:GetObject"]);
    assert!(newly_denied(&[], &after).is_empty());
    // A check that errored (a timeout, a throttle) is no revoke.
    let errored = vec![record(&c, PermissionStatus::Error), record(&d, PermissionStatus::Denied)];
    assert!(newly_denied(&before, &errored).is_empty());
}

#[test]
fn template_results_group_and_map_optional_denials_to_skipped() {
    let checks = [check("pp", "cloudtrail", "s3:GetObject", true), check("pp", "cloudtrail", "sqs:ReceiveMessage", false)];
    let records = vec![record(&checks[0], PermissionStatus::Granted), record(&checks[1], PermissionStatus::Denied)];
    let results = template_results(&records, |id| format!("policy {id}"), "2026-01-01T00:00:00Z");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, VerificationStatus::Success);
    assert_eq!(results[0].package_policy_name, "policy pp");
    assert_eq!(results[0].permissions[1].status, PermissionStatus::Skipped);
}

fn package_request(package: &str, templates: &[&str]) -> PackagePolicyRequest {
    PackagePolicyRequest {
        name: "aws-1".into(),
        description: None,
        namespace: None,
        policy_id: None,
        policy_ids: vec!["policy-1".into()],
        package: PackageRef { name: package.into(), title: None, version: "2.0.0".into() },
        inputs: templates
            .iter()
            .map(|t| PackagePolicyInput {
                input_type: format!("{t}-input"),
                policy_template: Some((*t).into()),
                enabled: true,
                streams: vec![],
                vars: None,
            })
            .collect(),
        enabled: true,
        cloud_connector_id: Some("cc".into()),
        supports_cloud_connector: None,
    }
}

#[test]
fn a_package_policy_with_a_connector_names_its_provider_and_known_templates() {
    assert_eq!(check_package_policy(&package_request("aws", &["cloudtrail"]), Some(CloudProvider::Aws)), Ok("policy-1".into()));
    let wrong_package = check_package_policy(&package_request("gcp", &["audit"]), Some(CloudProvider::Aws));
    assert!(wrong_package.is_err_and(|e| e.contains("cannot use a AWS cloud connector")));
    let unknown = check_package_policy(&package_request("aws", &["s3"]), Some(CloudProvider::Aws));
    assert!(unknown.is_err_and(|e| e.contains("expected one of cloudtrail, guardduty, cspm")));
    assert!(check_package_policy(&package_request("nginx", &["logs"]), None).is_ok(), "without a connector any package goes");
}

#[test]
fn a_package_policy_belongs_to_one_agent_policy() {
    let mut request = package_request("aws", &["cloudtrail"]);
    request.policy_ids = vec![];
    assert!(check_package_policy(&request, None).is_err_and(|e| e.contains("name the agent policy")));
    request.policy_id = Some("p".into());
    assert_eq!(check_package_policy(&request, None), Ok("p".into()));
    request.policy_ids = vec!["q".into(), "r".into()];
    assert!(check_package_policy(&request, None).is_err());
}

#[test]
fn enabled_templates_skip_disabled_inputs() {
    let mut inputs = package_request("aws", &["cloudtrail", "guardduty", "cloudtrail"]).inputs;
    inputs[1].enabled = false;
    assert_eq!(enabled_templates(&inputs), vec!["cloudtrail".to_owned()]);
}

#[test]
fn every_provider_has_a_principal_and_a_proof_variable() {
    for provider in CloudProvider::ALL {
        let names: Vec<&str> = provider.vars().iter().map(|v| v.name).collect();
        assert!(names.contains(&provider.principal_var()), "{provider:?}");
        assert!(names.contains(&provider.proof_var()), "{provider:?}");
        assert!(!policy_templates(*provider).is_empty());
    }
}

#[test]
fn a_kuery_filters_on_the_stored_attributes() {
    let subject = ConnectorSubject {
        name: "AWS production",
        cloud_provider: "aws",
        account_type: "single-account",
        namespace: "default",
        verification_status: Some("failed"),
    };
    let matches = |text: &str| parse_connector_kuery(text).unwrap().is_none_or(|q| q.matches(&subject));
    assert!(matches(""));
    assert!(matches("cloudProvider:aws and verification_status:failed"));
    assert!(matches("fleet-cloud-connector.attributes.name:aws*"));
    assert!(!matches("cloudProvider:gcp"));
    assert!(!matches("not verification_status:failed"));
    let never_verified = ConnectorSubject { verification_status: None, ..subject };
    assert!(!parse_connector_kuery("verification_status:*").unwrap().unwrap().matches(&never_verified));
    let unknown = parse_connector_kuery("vars.role_arn:x").unwrap_err().to_string();
    assert!(unknown.contains("name, cloudProvider, accountType, namespace or verification_status"), "{unknown}");
}

//! `run_case_action` against a fresh SQLite database (the rules engine that
//! calls it is built elsewhere): grouping into cases, reuse within the time
//! window, a new case after it, reopen or a new case for a closed one,
//! idempotence, and nothing for no alerts. On PostgreSQL instead when
//! `TEST_POSTGRES_URL` names a server, as the API tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use warden_core::cases::{
    AlertForCase, CasePatch, CaseSortField, CaseStatus, CaseUser, CasesActionParams, CasesFindQuery, CasesPatchRequest, RuleForCase, SortOrder,
    validate_cases_action_params,
};

use super::*;
use crate::Application;
use crate::config::{Config, Secret};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

struct Fixture {
    app: Application,
    _dir: tempfile::TempDir,
}

/// A SQLite file in `dir`, or a new PostgreSQL database.
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

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: fresh_database(dir.path()).await,
        listen: "127.0.0.1:0".parse().unwrap(),
        encryption_key: Some(Secret("a test encryption key of 32 characters or more".to_owned())),
        ..Config::default()
    };
    Fixture { app: Application::build(config).await.unwrap(), _dir: dir }
}

fn user() -> CaseUser {
    CaseUser { username: "rule-owner".into(), full_name: Some("Rule Owner".into()), email: None, profile_uid: Some("u-1".into()) }
}

fn rule() -> RuleForCase {
    RuleForCase { id: "rule-1".into(), name: "Brute force".into(), tags: vec!["mitre:T1110".into()] }
}

fn alert(id: &str, host: Option<&str>) -> AlertForCase {
    let fields = match host {
        Some(host) => json!({"host.name": host, "kibana.alert.rule.uuid": "rule-1"}),
        None => json!({"kibana.alert.rule.uuid": "rule-1"}),
    };
    AlertForCase { id: id.into(), index: ".alerts-security.alerts-default".into(), fields }
}

fn params(sub: Value) -> CasesActionParams {
    validate_cases_action_params(&json!({"subAction": "run", "subActionParams": sub})).unwrap()
}

fn by_host() -> CasesActionParams {
    params(json!({"groupingBy": ["host.name"]}))
}

async fn case(app: &Application, id: &str) -> Case {
    get(app.state(), id).await.unwrap()
}

async fn all_cases(app: &Application) -> Vec<Case> {
    let query = CasesFindQuery {
        tags: vec![],
        status: vec![],
        severity: vec![],
        assignees: vec![],
        reporters: vec![],
        owner: vec![],
        category: vec![],
        search: None,
        search_fields: vec![],
        sort_field: CaseSortField::CreatedAt,
        sort_order: SortOrder::Asc,
        page: 1,
        per_page: 100,
    };
    find(app.state(), &query).await.unwrap().cases
}

async fn set_status(app: &Application, id: &str, status: CaseStatus) {
    let current = case(app, id).await;
    let patch = CasePatch { id: id.into(), version: current.version, status: Some(status), ..CasePatch::default() };
    update(app.state(), &CasesPatchRequest { cases: vec![patch] }, &user()).await.unwrap();
}

#[tokio::test]
async fn alerts_are_grouped_into_one_case_per_value_with_kibanas_title_and_tags() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let alerts = [alert("a1", Some("web-01")), alert("a2", Some("db-01")), alert("a3", Some("web-01")), alert("a4", None)];
    let outcome = run_case_action_at(state, &user(), &rule(), &alerts, &by_host(), now).await.unwrap();
    assert_eq!((outcome.opened.len(), outcome.updated.len(), outcome.alerts_attached), (3, 0, 4), "{outcome:?}");
    assert!(!outcome.grouping_fell_back);

    let cases = all_cases(&f.app).await;
    let mut titles: Vec<(&str, u64)> = cases.iter().map(|c| (c.title.as_str(), c.total_alerts)).collect();
    titles.sort();
    assert_eq!(
        titles,
        vec![
            ("Brute force - Grouping by db-01 (Auto-created)", 1),
            ("Brute force - Grouping by unknown (Auto-created)", 1),
            ("Brute force - Grouping by web-01 (Auto-created)", 2),
        ]
    );
    let web = cases.iter().find(|c| c.title.contains("web-01")).unwrap();
    assert_eq!(web.tags, vec!["auto-generated", "rule:rule-1", "host.name", "host.name:web-01", "mitre:T1110"]);
    assert_eq!(web.description, "This case was created by the rule Brute force. The assigned alerts are grouped by `host.name: web-01`.");
    assert_eq!((web.owner, web.status, web.settings.sync_alerts), (CaseOwner::SecuritySolution, CaseStatus::Open, false));
    assert_eq!(web.created_by.username, "rule-owner");

    // The attachment names the rule and the alerts.
    let attachments = find_attachments(state, &web.id, AttachmentsFindQuery { page: 1, per_page: 20, sort_order: SortOrder::Asc }).await.unwrap();
    assert_eq!(attachments.total, 1);
    match &attachments.comments[0].body {
        AttachmentBody::Alert { alert_id, rule, .. } => {
            assert_eq!(alert_id, &OneOrMany::Many(vec!["a1".into(), "a3".into()]));
            assert_eq!((rule.id.as_deref(), rule.name.as_deref()), (Some("rule-1"), Some("Brute force")));
        }
        other => panic!("{other:?}"),
    }

    // No grouping: one case for every alert.
    let other = RuleForCase { id: "rule-2".into(), name: "Malware".into(), tags: vec![] };
    let outcome = run_case_action_at(state, &user(), &other, &alerts, &params(json!({"groupingBy": []})), now).await.unwrap();
    assert_eq!((outcome.opened.len(), outcome.alerts_attached), (1, 4));
    assert_eq!(case(&f.app, &outcome.opened[0]).await.title, "Malware (Auto-created)");
}

#[tokio::test]
async fn more_groups_than_allowed_make_one_case() {
    let f = fixture().await;
    let alerts: Vec<AlertForCase> = (0..4).map(|i| alert(&format!("a{i}"), Some(&format!("host-{i}")))).collect();
    let limited = params(json!({"groupingBy": ["host.name"], "maximumCasesToOpen": 3}));
    let outcome = run_case_action_at(f.app.state(), &user(), &rule(), &alerts, &limited, now_ms()).await.unwrap();
    assert!(outcome.grouping_fell_back);
    assert_eq!((outcome.opened.len(), outcome.alerts_attached), (1, 4));
    assert_eq!(case(&f.app, &outcome.opened[0]).await.title, "Brute force (Auto-created)");
}

#[tokio::test]
async fn no_alerts_open_nothing() {
    let f = fixture().await;
    let outcome = run_case_action_at(f.app.state(), &user(), &rule(), &[], &by_host(), now_ms()).await.unwrap();
    assert_eq!(outcome, CaseActionOutcome::default());
    assert!(all_cases(&f.app).await.is_empty());
    let count: i64 = sqlx::query_scalar("select count(*) from case_rule_groups").fetch_one(&f.app.state().db).await.unwrap();
    assert_eq!(count, 0, "no record either");
}

#[tokio::test]
async fn a_second_run_within_the_window_adds_to_the_same_case_and_the_same_alerts_add_nothing() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let first = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &by_host(), now).await.unwrap();
    let case_id = first.opened[0].clone();
    let version = case(&f.app, &case_id).await.version;

    // The same alert again: nothing changes, not even the version.
    let again = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &by_host(), now + 1000).await.unwrap();
    assert_eq!((again.opened.len(), again.updated.len(), again.unchanged.clone(), again.alerts_attached), (0, 0, vec![case_id.clone()], 0));
    assert_eq!(case(&f.app, &case_id).await.version, version);

    // A day later, a new alert and the old one: the new one joins the case.
    let later = [alert("a1", Some("web-01")), alert("a2", Some("web-01"))];
    let outcome = run_case_action_at(state, &user(), &rule(), &later, &by_host(), now + DAY_MS).await.unwrap();
    assert_eq!((outcome.updated.clone(), outcome.alerts_attached), (vec![case_id.clone()], 1));
    let updated = case(&f.app, &case_id).await;
    assert_eq!(updated.total_alerts, 2);
    assert_ne!(updated.version, version);
    assert_eq!(all_cases(&f.app).await.len(), 1);
}

#[tokio::test]
async fn after_the_window_a_new_case_is_opened_and_numbered() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let short = params(json!({"groupingBy": ["host.name"], "timeWindow": "1h"}));
    let first = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &short, now).await.unwrap();
    let within = run_case_action_at(state, &user(), &rule(), &[alert("a2", Some("web-01"))], &short, now + 3_600_000).await.unwrap();
    assert_eq!(within.updated, first.opened, "exactly one hour is still inside the window");
    let after = run_case_action_at(state, &user(), &rule(), &[alert("a3", Some("web-01"))], &short, now + 3_600_001).await.unwrap();
    assert_eq!(after.opened.len(), 1);
    assert_ne!(after.opened, first.opened);
    assert_eq!(case(&f.app, &after.opened[0]).await.title, "Brute force - Grouping by web-01 (2) (Auto-created)");
    // The old case keeps its alerts; the window now runs from the new case.
    assert_eq!(case(&f.app, &first.opened[0]).await.total_alerts, 2);
    let next = run_case_action_at(state, &user(), &rule(), &[alert("a4", Some("web-01"))], &short, now + 3_600_002).await.unwrap();
    assert_eq!(next.updated, after.opened);
}

#[tokio::test]
async fn a_closed_case_is_reopened_only_when_asked() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let first = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &by_host(), now).await.unwrap();
    let case_id = first.opened[0].clone();
    set_status(&f.app, &case_id, CaseStatus::Closed).await;

    // Not asked: a new case, numbered; the closed one stays closed.
    let outcome = run_case_action_at(state, &user(), &rule(), &[alert("a2", Some("web-01"))], &by_host(), now + 1000).await.unwrap();
    assert_eq!((outcome.opened.len(), outcome.reopened.len()), (1, 0));
    let second = outcome.opened[0].clone();
    assert_ne!(second, case_id);
    assert_eq!(case(&f.app, &case_id).await.status, CaseStatus::Closed);
    assert!(case(&f.app, &second).await.title.contains("(2)"));

    // Asked: the closed case comes back open, closed_at cleared, with the alert.
    set_status(&f.app, &second, CaseStatus::Closed).await;
    assert!(case(&f.app, &second).await.closed_at.is_some());
    let reopen = params(json!({"groupingBy": ["host.name"], "reopenClosedCases": true}));
    let outcome = run_case_action_at(state, &user(), &rule(), &[alert("a3", Some("web-01"))], &reopen, now + 2000).await.unwrap();
    assert_eq!((outcome.reopened.clone(), outcome.opened.len(), outcome.alerts_attached), (vec![second.clone()], 0, 1));
    let reopened = case(&f.app, &second).await;
    assert_eq!((reopened.status, reopened.closed_at.clone(), reopened.duration, reopened.total_alerts), (CaseStatus::Open, None, None, 2));
    assert_eq!(all_cases(&f.app).await.len(), 2);
}

#[tokio::test]
async fn a_deleted_case_is_replaced() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let first = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &by_host(), now).await.unwrap();
    delete(state, &first.opened).await.unwrap();
    let outcome = run_case_action_at(state, &user(), &rule(), &[alert("a1", Some("web-01"))], &by_host(), now + 1000).await.unwrap();
    assert_eq!((outcome.opened.len(), outcome.alerts_attached), (1, 1));
    assert_eq!(case(&f.app, &outcome.opened[0]).await.title, "Brute force - Grouping by web-01 (Auto-created)");
}

#[tokio::test]
async fn a_full_case_takes_no_more_alerts_and_the_run_goes_on() {
    let f = fixture().await;
    let state = f.app.state();
    let now = now_ms();
    let many: Vec<AlertForCase> = (0..1000).map(|i| alert(&format!("a{i}"), None)).collect();
    let everything = params(json!({"groupingBy": []}));
    let first = run_case_action_at(state, &user(), &rule(), &many, &everything, now).await.unwrap();
    assert_eq!(first.alerts_attached, 1000);
    let outcome = run_case_action_at(state, &user(), &rule(), &[alert("one-more", None)], &everything, now + 1000).await.unwrap();
    assert_eq!((outcome.unchanged.clone(), outcome.alerts_attached), (first.opened.clone(), 0));
    assert_eq!(case(&f.app, &first.opened[0]).await.total_alerts, 1000);
}

#[tokio::test]
async fn concurrent_runs_agree_on_one_case_per_group() {
    let f = fixture().await;
    let state = f.app.state().clone();
    let now = now_ms();
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move {
                let alerts = [alert("a1", Some("web-01")), alert(&format!("b{i}"), Some("web-01"))];
                run_case_action_at(&state, &user(), &rule(), &alerts, &by_host(), now).await
            })
        })
        .collect();
    let mut opened = 0;
    for run in runs {
        opened += run.await.unwrap().unwrap().opened.len();
    }
    assert_eq!(opened, 1);
    let cases = all_cases(&f.app).await;
    assert_eq!((cases.len(), cases[0].total_alerts), (1, 5));
}

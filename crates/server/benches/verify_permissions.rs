//! Runs of the `fleet:verify_permissions` task over 1,000 cloud connectors in
//! use, of which only a few are due: each run sweeps, gates, pre-filters every
//! package policy, picks the first eligible connector and starts its
//! verification (one transaction: verifier agent policy, package policy,
//! one-time enrollment key, plan, stamp; then the deploy spawns the verifier
//! program, here a script that reads the deployment and exits). Not a test: it
//! prints the figures recorded in docs/perf.md, and fails only if a run did
//! not start the verification it should have.
//!
//!     cargo bench -p warden-server --bench verify_permissions
//!     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p warden-server --bench verify_permissions

use std::time::{Duration, Instant};

use serde_json::json;
use warden_core::cloud_connectors::{CloudProvider, CreateCloudConnector, PackagePolicyInput, PackagePolicyRequest, PackageRef};
use warden_server::Application;
use warden_server::cloud_connectors::{self as service, verifier};
use warden_server::config::{Config, Secret};
use warden_server::db::now_ms;

const CONNECTORS: usize = 1_000;
/// Connectors never verified (eligible); the others were verified ten minutes ago.
const DUE: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    // Stands in for warden-agent: the bench times Warden's side up to the spawn.
    let program = dir.path().join("verifier");
    std::fs::write(&program, "#!/bin/sh\ncat > /dev/null\n")?;
    let mut permissions = std::fs::metadata(&program)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&program, permissions)?;
    let config = Config {
        database_url: url.clone(),
        listen: "127.0.0.1:0".parse()?,
        encryption_key: Some(Secret("the bench's encryption key of 32 characters or more".to_owned())),
        enable_otel_verifier: true,
        verifier_cloud_url: "http://127.0.0.1:9".into(),
        verifier_program: program.display().to_string(),
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let state = app.state();
    let db = &state.db;
    let run = uuid::Uuid::new_v4().simple().to_string();

    let seeded = Instant::now();
    let agent_policy = warden_server::fleet::service::create_policy(
        state,
        &serde_json::from_value(json!({"name": format!("Cloud integrations {run}"), "namespace": "default"}))?,
    )
    .await?;
    let mut due = Vec::new();
    for i in 0..CONNECTORS {
        let connector = service::create(
            state,
            CreateCloudConnector {
                name: format!("AWS account {i:04} {run}"),
                cloud_provider: CloudProvider::Aws,
                account_type: None,
                namespace: None,
                vars: serde_json::from_value(json!({
                    "role_arn": format!("arn:aws:iam::{:012}:role/warden", i),
                    "external_id": {"type": "password", "value": format!("external-id-{i}")},
                }))?,
            },
            "bench",
        )
        .await?;
        service::create_package_policy(state, package_policy(&format!("aws {i:04} {run}"), agent_policy.id.as_str(), &connector.id), "bench").await?;
        if i >= CONNECTORS - DUE {
            due.push(connector.id);
        }
    }
    // Created an hour ago; all but the due ones verified ten minutes ago.
    let hour_ago = now_ms() - 3_600_000;
    let verified_at = now_ms() - 600_000;
    sqlx::query("update cloud_connectors set created_at = $1, updated_at = $1, verification_status = 'success', verification_started_at = $2, verification_finished_at = $2")
        .bind(hour_ago)
        .bind(verified_at)
        .execute(db)
        .await?;
    for id in &due {
        sqlx::query(
            "update cloud_connectors set verification_status = null, verification_started_at = null, verification_finished_at = null where id = $1",
        )
        .bind(id)
        .execute(db)
        .await?;
    }
    println!(
        "engine {}, seeded {CONNECTORS} connectors in use ({DUE} due) in {:.2?}",
        warden_server::db::Engine::of_url(&url).name(),
        seeded.elapsed()
    );

    let mut timings = Vec::new();
    for _ in 0..DUE {
        let started = Instant::now();
        let summary = verifier::run(state, &verifier::NoFaults).await?;
        timings.push(started.elapsed());
        anyhow::ensure!(summary.starts_with("verifying"), "the run did not start a verification: {summary}");
        // Close that verification as if its results had arrived, so the next run may start one.
        let now = now_ms();
        for sql in [
            "delete from enrollment_api_keys where single_use = 1",
            "delete from package_policies where package_name = 'verifier_otel'",
            "delete from agent_policies where is_verifier = 1",
            "update cloud_connector_verifications set finished_at = $1, status = 'success' where finished_at is null",
            "update cloud_connectors set verification_status = 'success', verification_finished_at = $1 where verification_finished_at is null",
        ] {
            sqlx::query(sql).bind(now).execute(db).await.map_err(|err| anyhow::anyhow!("{sql}: {err}"))?;
        }
    }
    let summary = verifier::run(state, &verifier::NoFaults).await?;
    anyhow::ensure!(summary.contains("none due"), "every due connector was verified once: {summary}");

    timings.sort();
    let median = timings[timings.len() / 2];
    let max = timings.last().copied().unwrap_or(Duration::ZERO);
    println!("{DUE} runs, each picking and starting one of {CONNECTORS} connectors: min {:.2?}, median {median:.2?}, max {max:.2?}", timings[0]);
    let started = Instant::now();
    verifier::run(state, &verifier::NoFaults).await?;
    println!("a run with none due: {:.2?}", started.elapsed());
    Ok(())
}

fn package_policy(name: &str, agent_policy: &str, connector: &str) -> PackagePolicyRequest {
    PackagePolicyRequest {
        name: name.into(),
        description: None,
        namespace: None,
        policy_id: Some(agent_policy.to_owned()),
        policy_ids: vec![],
        package: PackageRef { name: "aws".into(), title: Some("AWS".into()), version: "2.17.0".into() },
        inputs: ["cloudtrail", "guardduty"]
            .map(|template| PackagePolicyInput {
                input_type: format!("aws-{template}"),
                policy_template: Some(template.into()),
                enabled: true,
                streams: vec![],
                vars: None,
            })
            .to_vec(),
        enabled: true,
        cloud_connector_id: Some(connector.to_owned()),
        supports_cloud_connector: Some(true),
    }
}

//! `warden serve --demo`: demo users, one per role, created if missing.

use warden_core::authz::Role;

use crate::db::Db;
use crate::passwords::PasswordChecker;
use crate::store;

/// The password every demo user gets. Demo mode only; printed at start.
pub const DEMO_PASSWORD: &str = "warden-demo";

pub const DEMO_USERS: &[(&str, &str, Role)] = &[
    ("admin", "Ada Admin", Role::Superuser),
    ("viewer", "Vic Viewer", Role::Viewer),
    ("t1", "Tia Tier-One", Role::T1Analyst),
    ("t2", "Tom Tier-Two", Role::T2Analyst),
    ("t3", "Tess Tier-Three", Role::T3Analyst),
    ("author", "Rui Rule-Author", Role::RuleAuthor),
    ("manager", "Sam SOC-Manager", Role::SocManager),
    ("platform", "Pat Platform", Role::PlatformEngineer),
    ("endpoint_ops", "Eli Endpoint-Ops", Role::EndpointOperationsAnalyst),
];

/// Creates the demo users that do not exist yet; leaves existing ones alone.
pub async fn seed(db: &Db, passwords: &PasswordChecker) -> anyhow::Result<()> {
    let mut created = 0;
    for (username, full_name, role) in DEMO_USERS {
        if store::users::by_username(db, username).await?.is_some() {
            continue;
        }
        // On the password checker, whose threads reuse their 19 MiB: hashing
        // on the blocking pool left ≈ 180 MB behind in malloc's arenas.
        let hash = passwords.hash(DEMO_PASSWORD.to_owned()).await?;
        match store::users::insert(db, username, Some(full_name), &hash, &[*role]).await {
            Ok(_) => created += 1,
            // Another node seeded it at the same moment.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(created, "demo users seeded");
    seed_fleet(db).await
}

/// The demo policy's enrollment token, fixed so `make run` can start a swarm
/// of simulated agents against it. Demo mode only.
pub const DEMO_ENROLLMENT_TOKEN_ID: &str = "demo-enrollment";
pub const DEMO_ENROLLMENT_SECRET: &str = "warden-demo-enrollment-secret";

/// `base64(id:secret)`, what `warden-agent enroll --enrollment-token` takes.
pub fn demo_enrollment_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{DEMO_ENROLLMENT_TOKEN_ID}:{DEMO_ENROLLMENT_SECRET}"))
}

async fn seed_fleet(db: &Db) -> anyhow::Result<()> {
    use crate::store::fleet as fleet_store;
    const POLICY_ID: &str = "demo-endpoints";
    let now = crate::db::now_ms();
    if fleet_store::policy(db, POLICY_ID).await?.is_none() {
        let policy = fleet_store::PolicyWrite {
            id: POLICY_ID,
            name: "Endpoints",
            namespace: "default",
            description: Some("Laptops and servers protected by Elastic Defend"),
            is_managed: false,
            inactivity_timeout: 1_209_600,
            keep_agent_id_on_reenroll: false,
            now,
        };
        let inserted = fleet_store::insert_policy(db, policy).await;
        match inserted {
            Ok(()) | Err(sqlx::Error::Database(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if fleet_store::enrollment_key_by_key_id(db, DEMO_ENROLLMENT_TOKEN_ID).await?.is_none() {
        let key = fleet_store::EnrollmentKeyRow {
            id: "demo-endpoints-key".into(),
            name: Some("Demo enrollment token".into()),
            api_key_id: DEMO_ENROLLMENT_TOKEN_ID.into(),
            api_key: demo_enrollment_token(),
            secret_hash: crate::auth::sha256_hex(DEMO_ENROLLMENT_SECRET.as_bytes()),
            policy_id: POLICY_ID.into(),
            active: 1,
            created_at: now,
            expires_at: None,
        };
        match fleet_store::insert_enrollment_key(db, &key).await {
            Ok(()) | Err(sqlx::Error::Database(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The table printed at start in demo mode.
pub fn logins_table() -> String {
    let mut out = format!("Demo logins (password for all: {DEMO_PASSWORD}; unchanged if you changed it):\n");
    for (username, _, role) in DEMO_USERS {
        out.push_str(&format!("  {username:<14} {role}\n"));
    }
    out.push_str(&format!("Demo enrollment token (policy \"Endpoints\"): {}\n", demo_enrollment_token()));
    out
}

/// Two demo connectors, so the Connectors page has something to test: a
/// server-log connector, and a webhook that GETs this Warden's own status
/// (`address`: where it listens), a receiver that always answers.
pub async fn seed_connectors(state: &crate::AppState, address: std::net::SocketAddr) -> anyhow::Result<()> {
    use serde_json::json;
    use warden_core::actions::CreateConnectorRequest;

    use crate::actions::{self, ActionsError};

    let base = &state.config.public_base_path;
    let seeds = [
        (
            "demo-server-log",
            CreateConnectorRequest {
                name: "Warden log".into(),
                connector_type_id: ".server-log".into(),
                config: Default::default(),
                secrets: Default::default(),
            },
        ),
        (
            "demo-webhook",
            CreateConnectorRequest {
                name: "Demo webhook (Warden's own status)".into(),
                connector_type_id: ".webhook".into(),
                config: json!({"url": format!("http://{address}{base}/api/status"), "method": "get"}).as_object().cloned().unwrap_or_default(),
                secrets: Default::default(),
            },
        ),
    ];
    for (id, request) in seeds {
        match actions::create(state, Some(id), request, "admin").await {
            // Seeded before, or by another node at the same moment.
            Ok(_) | Err(ActionsError::Conflict(_)) => {}
            // A licence below gold, or allowed hosts without this one, leave it out.
            Err(err @ (ActionsError::License(_) | ActionsError::BadRequest(_))) => tracing::warn!(connector = id, "demo connector not seeded: {err}"),
            Err(err) => return Err(anyhow::anyhow!("seeding connector {id}: {err}")),
        }
    }
    Ok(())
}

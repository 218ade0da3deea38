//! `warden serve --demo`: demo users, one per role, created if missing.

use warden_core::authz::Role;

use crate::auth::hash_password;
use crate::db::Db;
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
pub async fn seed(db: &Db) -> anyhow::Result<()> {
    let mut created = 0;
    for (username, full_name, role) in DEMO_USERS {
        if store::users::by_username(db, username).await?.is_some() {
            continue;
        }
        let hash = tokio::task::spawn_blocking(|| hash_password(DEMO_PASSWORD)).await??;
        match store::users::insert(db, username, Some(full_name), &hash, &[*role]).await {
            Ok(_) => created += 1,
            // Another node seeded it at the same moment.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(created, "demo users seeded");
    Ok(())
}

/// The table printed at start in demo mode.
pub fn logins_table() -> String {
    let mut out = format!("Demo logins (password for all: {DEMO_PASSWORD}; unchanged if you changed it):\n");
    for (username, _, role) in DEMO_USERS {
        out.push_str(&format!("  {username:<14} {role}\n"));
    }
    out
}

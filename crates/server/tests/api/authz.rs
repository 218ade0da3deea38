//! Every route × every role (and anonymous): the server enforces the same
//! table the SPA reads from `warden_core::authz`. A new route adds a row.

use reqwest::{Method, StatusCode};
use warden_core::authz::{Privilege, Role, has_privilege};

use crate::helpers::spawn_app;

enum Access {
    Public,
    SignedIn,
    Needs(Privilege),
}

const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "api/status", Access::Public),
    ("GET", "api/openapi.json", Access::Public),
    ("GET", "internal/security/me", Access::SignedIn),
    ("GET", "internal/security/users", Access::Needs(Privilege::UsersAdmin)),
    // Last: it ends the callers' sessions.
    ("POST", "internal/security/logout", Access::Public),
];

/// The demo user that holds each role.
fn demo_user(role: Role) -> &'static str {
    match role {
        Role::Superuser => "admin",
        Role::Viewer => "viewer",
        Role::T1Analyst => "t1",
        Role::T2Analyst => "t2",
        Role::T3Analyst => "t3",
        Role::RuleAuthor => "author",
        Role::SocManager => "manager",
        Role::PlatformEngineer => "platform",
        Role::EndpointOperationsAnalyst => "endpoint_ops",
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = spawn_app().await;
    let mut callers = vec![(None, app.client())];
    for role in Role::ALL {
        callers.push((Some(role), app.signed_in(demo_user(role)).await));
    }
    let mut failures = Vec::new();
    for (method, path, access) in ROUTES {
        for (role, client) in &callers {
            let expected_ok = match (access, role) {
                (Access::Public, _) => true,
                (_, None) => false,
                (Access::SignedIn, Some(_)) => true,
                (Access::Needs(privilege), Some(role)) => has_privilege(&[*role], *privilege),
            };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response = client.request(method.clone(), app.url(path)).header("kbn-xsrf", "t").send().await.unwrap();
            let status = response.status();
            let ok = status.is_success();
            let expected_denial = if role.is_none() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
            if ok != expected_ok || (!ok && status != expected_denial) {
                failures.push(format!("{method} {path} as {role:?}: got {status}, expected {}", if expected_ok { "2xx".into() } else { expected_denial.to_string() }));
            }
        }
    }
    assert!(failures.is_empty(), "authorization mismatches:\n{}", failures.join("\n"));
}

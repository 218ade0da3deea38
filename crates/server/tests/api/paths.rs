//! Every route's path is declared once, in `warden_core::paths`, and the
//! SPA and the agent simulator use those: the OpenAPI document and
//! `paths::ALL` name the same routes, so a route cannot be added (or removed)
//! without its path in core. `paths::ALL` holds the templates themselves
//! (`api/fleet/agents/{id}`), without the leading `/` of the document's keys.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;
use warden_core::paths;

use crate::fleet::enroll;
use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn the_core_declares_every_documented_route_and_no_other() {
    let app = spawn_app().await;

    let response = app.client().get(app.url(paths::OPENAPI)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();

    let documented: BTreeSet<&str> = doc["paths"].as_object().expect("paths").keys().map(|path| path.trim_start_matches('/')).collect();
    let declared: BTreeSet<&str> = paths::ALL.iter().copied().collect();
    let undeclared: Vec<_> = documented.difference(&declared).collect();
    assert!(undeclared.is_empty(), "routes without their path in warden_core::paths: {undeclared:#?}");
    let unserved: Vec<_> = declared.difference(&documented).collect();
    assert!(unserved.is_empty(), "paths in warden_core::paths that no documented route serves: {unserved:#?}");
}

#[tokio::test]
async fn an_id_reaches_its_route_as_one_segment() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let agent = enroll(&app, "paths-1").await;

    for path in [paths::agent(&agent.id), paths::agent_events(&agent.id)] {
        let response = admin.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Characters that would end the segment, or the path, arrive as sent.
    for id in ["a/b", "x?y#z", "100%", "a b+c", "é", "%2F"] {
        let response = admin.get(app.url(&paths::agent(id))).send().await.unwrap();
        let message = assert_error(response, StatusCode::NOT_FOUND).await;
        assert!(message.contains(id), "{id}: {message}");
    }
}

//! API tests against a real `warden` process with its own temporary database:
//! SQLite by default, PostgreSQL when `TEST_POSTGRES_URL` is set (`make test`
//! runs both).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod abuse;
mod actions;
mod api_keys;
mod authz;
mod bulk_actions;
mod cases;
mod cloud_connectors;
mod config;
mod emulators;
mod encryption;
mod errors;
mod events;
mod fleet;
mod helpers;
mod key_queue;
mod mde_actions;
mod mde_connector;
mod openapi;
mod paths;
mod proxy;
mod response_actions;
mod rules;
mod security;
mod simulator;
mod status;
mod tasks;
mod verification;

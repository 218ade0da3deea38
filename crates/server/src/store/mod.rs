//! SQL, one module per resource. Functions take an executor so they run on the
//! pool or inside a transaction.

pub mod api_keys;
pub mod cases;
pub mod changes;
pub mod cloud_connectors;
pub mod connectors;
pub mod fleet;
pub mod login_failures;
pub mod response_actions;
pub mod rules;
pub mod sessions;
pub mod settings;
pub mod tasks;
pub mod users;

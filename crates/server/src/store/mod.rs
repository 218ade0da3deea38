//! SQL, one module per resource. Functions take an executor so they run on the
//! pool or inside a transaction.

pub mod fleet;
pub mod login_failures;
pub mod sessions;
pub mod users;

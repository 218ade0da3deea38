//! `sessions_cleanup`: drops sessions that can no longer be used, and
//! sign-in throttling windows that have ended, so neither table grows forever
//! (any client can make a throttling row by trying a new user name).

use std::time::Duration;

use super::{RunOutput, TaskDefinition};
use crate::db::{Db, now_ms};
use crate::store;

pub const TASK_TYPE: &str = "sessions_cleanup";
pub const INTERVAL: Duration = Duration::from_secs(600);

pub fn definition(db: Db, idle_timeout: Duration) -> TaskDefinition {
    let mut definition = TaskDefinition::new(TASK_TYPE, "Expired sessions cleanup", move |_ctx| {
        let db = db.clone();
        async move {
            let now = now_ms();
            let removed = store::sessions::delete_expired(&db, now, now - idle_timeout.as_millis() as i64).await?;
            let windows = store::login_failures::delete_before(&db, now - crate::auth::FAILURE_WINDOW.as_millis() as i64).await?;
            Ok(RunOutput { state: None, summary: Some(format!("removed {removed} expired sessions and {windows} ended sign-in throttling windows")) })
        }
    });
    definition.every = Some(INTERVAL);
    definition
}

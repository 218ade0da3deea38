//! `failed_tasks_cleanup`: a one-off task that ran out of attempts stays
//! `failed` for a week, so the Tasks page shows it and its last error, and
//! is then removed (its action parameters already left when it gave up).

use std::time::Duration;

use super::{RunOutput, TaskDefinition};
use crate::db::{Db, now_ms};
use crate::store;

pub const TASK_TYPE: &str = "failed_tasks_cleanup";
pub const INTERVAL: Duration = Duration::from_secs(3600);
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn definition(db: Db) -> TaskDefinition {
    let mut definition = TaskDefinition::new(TASK_TYPE, "Failed tasks cleanup", move |_ctx| {
        let db = db.clone();
        async move {
            let removed = store::tasks::delete_failed_before(&db, now_ms() - KEEP_FOR.as_millis() as i64).await?;
            Ok(RunOutput { state: None, summary: Some(format!("removed {removed} failed one-off tasks older than 7 days")) })
        }
    });
    definition.every = Some(INTERVAL);
    definition
}

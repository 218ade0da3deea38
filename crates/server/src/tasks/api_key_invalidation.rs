//! `api_key_invalidation`: invalidates the queued API keys that have waited
//! `api_key_removal_delay` (or that a user asked to remove) and that no
//! pending, running or retrying action still references; the rest wait for a
//! later run. Each batch is tagged, invalidated and dequeued in one
//! transaction, so a crash mid-run loses nothing and invalidates nothing twice.

use std::time::Duration;

use warden_core::api_keys::queued_before_ms;

use super::{RunOutput, TaskDefinition};
use crate::db::{Db, now_ms};
use crate::store::api_keys as store;

pub const TASK_TYPE: &str = "api_key_invalidation";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub invalidated: u64,
    /// Dequeued without a change: the key was already invalid.
    pub already_invalid: u64,
    pub kept_referenced: i64,
    pub waiting: i64,
}

impl Summary {
    pub fn line(&self) -> String {
        format!("invalidated {}, kept {} still in use, {} waiting for the removal delay", self.invalidated, self.kept_referenced, self.waiting)
    }
}

/// One run over the whole queue.
pub async fn run_once(db: &Db, removal_delay: Duration, batch_size: usize) -> sqlx::Result<Summary> {
    let now = now_ms();
    let queued_before = queued_before_ms(now, removal_delay.as_millis() as i64);
    let mut summary = Summary::default();
    loop {
        let batch = uuid::Uuid::new_v4().to_string();
        let mut tx = db.begin().await?;
        let tagged = store::tag_due_batch(&mut *tx, &batch, queued_before, batch_size as i64).await?;
        if tagged == 0 {
            tx.rollback().await?;
            break;
        }
        let invalidated = store::invalidate_batch(&mut *tx, &batch, now).await?;
        let dequeued = store::dequeue_batch(&mut *tx, &batch).await?;
        tx.commit().await?;
        summary.invalidated += invalidated;
        summary.already_invalid += dequeued - invalidated;
        if tagged < batch_size as u64 {
            break;
        }
    }
    let (kept, waiting) = store::queue_remainder(db, queued_before).await?;
    summary.kept_referenced = kept;
    summary.waiting = waiting;
    Ok(summary)
}

pub fn definition(db: Db, every: Duration, removal_delay: Duration, batch_size: usize) -> TaskDefinition {
    let mut definition = TaskDefinition::new(TASK_TYPE, "API key invalidation", move |_ctx| {
        let db = db.clone();
        async move {
            let summary = run_once(&db, removal_delay, batch_size).await?;
            Ok(RunOutput { state: None, summary: Some(summary.line()) })
        }
    });
    definition.timeout = Duration::from_secs(600);
    definition.retry_base = Duration::from_secs(30);
    definition.retry_cap = Duration::from_secs(600);
    definition.every = Some(every);
    definition
}

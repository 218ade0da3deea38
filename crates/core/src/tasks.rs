//! The task manager's rules: when a task row may be claimed, what happens
//! after a run succeeds or fails, and the health shapes the Tasks page reads.
//! The server's SQL mirrors `claimable`; the tests here pin the rule.

use serde::{Deserialize, Serialize};

/// A task row's status. `claiming`: a node holds the lease but has not
/// started the runner yet; `running`: the runner is working; `failed`: a
/// one-off task ran out of attempts (recurring tasks never end up here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Idle,
    Claiming,
    Running,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Idle => "idle",
            TaskStatus::Claiming => "claiming",
            TaskStatus::Running => "running",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<TaskStatus> {
        [TaskStatus::Idle, TaskStatus::Claiming, TaskStatus::Running, TaskStatus::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

/// Whether a node may claim the task now: it is idle and due, or a node held
/// it and its lease ran out (that node died or stalled). A held lease is
/// never taken over, so a task never runs twice at once.
pub fn claimable(status: TaskStatus, run_at_ms: i64, lease_until_ms: Option<i64>, now_ms: i64) -> bool {
    match status {
        TaskStatus::Idle => run_at_ms <= now_ms,
        TaskStatus::Claiming | TaskStatus::Running => lease_until_ms.is_none_or(|lease| lease < now_ms),
        TaskStatus::Failed => false,
    }
}

/// How long to wait before attempt `attempts + 1`, after `attempts` failed
/// ones: `base`, doubled each time, never more than `cap`.
pub fn retry_delay_ms(attempts: u32, base_ms: i64, cap_ms: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(30);
    base_ms.saturating_mul(1_i64 << doublings).min(cap_ms)
}

/// What the row becomes after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// Idle again, due at this time, with its attempt count reset.
    Reschedule { run_at_ms: i64 },
    /// Idle, retried at this time; the attempt count is kept.
    Retry { run_at_ms: i64 },
    /// A one-off task that succeeded: the row is deleted.
    Done,
    /// A one-off task out of attempts: kept as `failed` for the record.
    GiveUp,
}

/// The schedule of a task row: every `interval_ms`, or once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval_ms: Option<i64>,
    pub max_attempts: u32,
    pub retry_base_ms: i64,
    pub retry_cap_ms: i64,
}

/// The next state of a task whose run (its `attempts`th attempt in a row)
/// just ended. A recurring task that keeps failing retries with backoff until
/// `max_attempts`, then waits for its next interval: it never stops for good.
pub fn after_run(schedule: Schedule, succeeded: bool, attempts: u32, now_ms: i64) -> AfterRun {
    match (succeeded, schedule.interval_ms) {
        (true, Some(interval)) => AfterRun::Reschedule { run_at_ms: now_ms + interval },
        (true, None) => AfterRun::Done,
        (false, interval) if attempts < schedule.max_attempts => {
            let retry = now_ms + retry_delay_ms(attempts, schedule.retry_base_ms, schedule.retry_cap_ms);
            match interval {
                // A retry never lands after the next regular run would.
                Some(interval) => AfterRun::Retry { run_at_ms: retry.min(now_ms + interval) },
                None => AfterRun::Retry { run_at_ms: retry },
            }
        }
        (false, Some(interval)) => AfterRun::Reschedule { run_at_ms: now_ms + interval },
        (false, None) => AfterRun::GiveUp,
    }
}

/// `GET /api/task_manager/_health`, in the spirit of Kibana's: an overall
/// status and, for the Tasks page, one line per recurring task and one per
/// one-off task type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskManagerHealth {
    /// The node that answered.
    pub id: String,
    pub timestamp: String,
    /// `OK`, `warn` (a task's last run failed, or work is overdue) or `error`.
    pub status: String,
    pub configuration: TaskManagerConfiguration,
    pub tasks: Vec<TaskHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskManagerConfiguration {
    pub poll_interval_ms: u64,
    pub lease_ms: u64,
    pub max_workers: u32,
}

/// One recurring task (by id) or one one-off task type (aggregated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskHealth {
    /// The task's id for a recurring task (what "run now" takes); none for a
    /// line that sums up one-off tasks.
    pub id: Option<String>,
    pub task_type: String,
    pub title: String,
    pub interval_ms: Option<i64>,
    /// Rows of this line: 1 for a recurring task, the queue for one-off ones.
    pub count: i64,
    pub status: TaskStatus,
    pub running: i64,
    pub failed: i64,
    pub last_run_at: Option<i64>,
    pub next_run_at: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub runs: i64,
    pub failures: i64,
    pub last_error: Option<String>,
    /// What the last successful run reported, e.g. "invalidated 12, kept 3".
    pub last_result: Option<String>,
}

impl TaskHealth {
    /// A task whose most recent run failed, or that is overdue by more than
    /// `grace_ms`, needs a look.
    pub fn needs_attention(&self, now_ms: i64, grace_ms: i64) -> bool {
        let overdue = self.status == TaskStatus::Idle && self.next_run_at.is_some_and(|next| next + grace_ms < now_ms);
        self.last_error.is_some() || self.failed > 0 || overdue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn who_may_claim() {
        let now = 10_000;
        let cases: &[(TaskStatus, i64, Option<i64>, bool, &str)] = &[
            (Idle, now, None, true, "due now"),
            (Idle, now - 1, None, true, "overdue"),
            (Idle, now + 1, None, false, "not yet due"),
            (Claiming, 0, Some(now + 1), false, "lease held"),
            (Running, 0, Some(now + 1), false, "lease held while running"),
            (Running, 0, Some(now), false, "lease ends this instant: still held"),
            (Running, 0, Some(now - 1), true, "lease expired: the node died"),
            (Claiming, 0, Some(now - 1), true, "claimed, never started, lease expired"),
            (Running, 0, None, true, "no lease at all"),
            (Failed, 0, None, false, "gave up"),
        ];
        for &(status, run_at, lease, expected, why) in cases {
            assert_eq!(claimable(status, run_at, lease, now), expected, "{why}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let delays: Vec<i64> = (1..=7).map(|attempt| retry_delay_ms(attempt, 1_000, 30_000)).collect();
        assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(retry_delay_ms(0, 1_000, 30_000), 1_000);
        assert_eq!(retry_delay_ms(u32::MAX, 1_000, i64::MAX), 1_000 << 30);
    }

    const ONCE: Schedule = Schedule { interval_ms: None, max_attempts: 3, retry_base_ms: 1_000, retry_cap_ms: 60_000 };
    const EVERY_MINUTE: Schedule = Schedule { interval_ms: Some(60_000), ..ONCE };

    #[test]
    fn one_off_tasks_retry_then_give_up() {
        assert_eq!(after_run(ONCE, true, 1, 0), AfterRun::Done);
        assert_eq!(after_run(ONCE, false, 1, 0), AfterRun::Retry { run_at_ms: 1_000 });
        assert_eq!(after_run(ONCE, false, 2, 0), AfterRun::Retry { run_at_ms: 2_000 });
        assert_eq!(after_run(ONCE, false, 3, 0), AfterRun::GiveUp);
        assert_eq!(after_run(ONCE, true, 3, 0), AfterRun::Done, "the last attempt may still succeed");
    }

    #[test]
    fn recurring_tasks_never_stop() {
        assert_eq!(after_run(EVERY_MINUTE, true, 1, 5), AfterRun::Reschedule { run_at_ms: 60_005 });
        assert_eq!(after_run(EVERY_MINUTE, false, 1, 5), AfterRun::Retry { run_at_ms: 1_005 });
        assert_eq!(after_run(EVERY_MINUTE, false, 3, 5), AfterRun::Reschedule { run_at_ms: 60_005 });
        let slow_retry = Schedule { retry_base_ms: 120_000, retry_cap_ms: 600_000, ..EVERY_MINUTE };
        assert_eq!(after_run(slow_retry, false, 1, 0), AfterRun::Retry { run_at_ms: 60_000 }, "no later than the next run");
    }

    #[test]
    fn statuses_round_trip() {
        for status in [Idle, Claiming, Running, Failed] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("done"), None);
    }

    #[test]
    fn attention_when_failing_or_overdue() {
        let healthy = TaskHealth {
            id: Some("t".into()),
            task_type: "t".into(),
            title: "T".into(),
            interval_ms: Some(60_000),
            count: 1,
            status: Idle,
            running: 0,
            failed: 0,
            last_run_at: Some(0),
            next_run_at: Some(60_000),
            last_duration_ms: Some(5),
            runs: 1,
            failures: 0,
            last_error: None,
            last_result: None,
        };
        assert!(!healthy.needs_attention(60_000, 30_000));
        assert!(healthy.needs_attention(100_000, 30_000), "overdue");
        assert!(TaskHealth { last_error: Some("boom".into()), ..healthy.clone() }.needs_attention(0, 30_000));
        assert!(!TaskHealth { status: Running, ..healthy }.needs_attention(100_000, 30_000), "running is not overdue");
    }
}

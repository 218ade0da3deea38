//! Task manager health and "Run now".

use warden_core::paths;
use warden_core::tasks::TaskManagerHealth;

use super::ApiResult;

pub async fn health() -> ApiResult<TaskManagerHealth> {
    super::get(paths::TASK_HEALTH).await
}

/// Makes the task due now (needs tasks:admin).
pub async fn run_soon(id: &str) -> ApiResult<()> {
    super::post_empty(&paths::task_run_soon(id)).await
}

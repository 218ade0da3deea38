//! Task manager health (`/api/task_manager/_health`, as Kibana) and "run now".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use warden_core::error::ErrorBody;
use warden_core::tasks::TaskManagerHealth;

use super::authz::{Require, TasksAdmin};
use super::openapi::{SignedInErrors, Xsrf};
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(run_soon))
}

/// Every recurring task (last run, next run, duration, failures, last error)
/// and the one-off queue per type. Any signed-in user may read it.
#[utoipa::path(get, path = "/api/task_manager/_health", tag = "task_manager",
    responses(
        (status = 200, body = TaskManagerHealth),
        SignedInErrors,
    ))]
async fn health(State(state): State<AppState>, _user: AuthUser) -> Result<axum::Json<TaskManagerHealth>> {
    Ok(axum::Json(state.tasks.health().await?))
}

/// Makes a task due now (needs `tasks:admin`); a task that is running is a 409.
#[utoipa::path(post, path = "/internal/task_manager/tasks/{id}/_run_soon", tag = "task_manager",
    params(("id" = String, Path, min_length = 1, description = "The task's id, e.g. api_key_invalidation"), Xsrf),
    responses(
        (status = 204, description = "The task will run within a moment"),
        (status = 400, description = "No kbn-xsrf header", body = ErrorBody),
        (status = 403, description = "Missing tasks:admin", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is running now", body = ErrorBody),
        SignedInErrors,
    ))]
#[tracing::instrument(skip_all, fields(user = %user.username, task = %id))]
async fn run_soon(State(state): State<AppState>, Require(user, _): Require<TasksAdmin>, Path(id): Path<String>) -> Result<StatusCode> {
    state.tasks.run_soon(&id).await?;
    tracing::info!("task asked to run now");
    Ok(StatusCode::NO_CONTENT)
}

//! Connectors and connector types (`/api/actions`).

use serde_json::{Map, Value};
use warden_core::actions::{
    Connector, ConnectorChange, ConnectorExecution, ConnectorType, CreateConnectorRequest, ExecuteConnectorRequest, ExecuteConnectorResponse,
    UpdateConnectorRequest,
};
use warden_core::paths;

use super::ApiResult;

/// Every connector (never a system action).
pub async fn list() -> ApiResult<Vec<Connector>> {
    super::get(paths::CONNECTORS).await
}

/// The types a connector can have (never a system action type).
pub async fn types() -> ApiResult<Vec<ConnectorType>> {
    super::get(paths::CONNECTOR_TYPES).await
}

pub async fn get(id: &str) -> ApiResult<Connector> {
    super::get(&paths::connector(id)).await
}

pub async fn create(request: &CreateConnectorRequest) -> ApiResult<Connector> {
    super::post(paths::CONNECTOR_CREATE, request).await
}

pub async fn update(id: &str, request: &UpdateConnectorRequest) -> ApiResult<Connector> {
    super::put(&paths::connector(id), request).await
}

pub async fn delete(id: &str) -> ApiResult<()> {
    super::delete_empty(&paths::connector(id)).await
}

/// Runs it now; a failed call is an answer with `status: error`.
pub async fn execute(id: &str, params: Map<String, Value>) -> ApiResult<ExecuteConnectorResponse> {
    super::post(&paths::connector_execute(id), &ExecuteConnectorRequest { params }).await
}

/// Who changed it, when and what, newest first.
pub async fn history(id: &str) -> ApiResult<Vec<ConnectorChange>> {
    super::get(&paths::connector_history(id)).await
}

/// Its runs, newest first.
pub async fn executions(id: &str) -> ApiResult<Vec<ConnectorExecution>> {
    super::get(&paths::connector_executions(id)).await
}

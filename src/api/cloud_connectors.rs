//! Fleet's cloud connectors (`/api/fleet/cloud_connectors`): the list, one
//! connector with its last verification's results, create, edit, delete,
//! the package policies that use one, and "Verify now".

use serde::Deserialize;
use warden_core::cloud_connectors::{
    CloudConnector, CloudConnectorItem, CloudConnectorList, CloudProvider, CreateCloudConnector, PackageRef, UpdateCloudConnector,
};
use warden_core::paths;

use super::ApiResult;

/// One page, newest first (without results: those come with each connector).
pub async fn list(page: usize, per_page: usize) -> ApiResult<CloudConnectorList> {
    super::get(&paths::with_query(paths::CLOUD_CONNECTORS, &[("page", &page.to_string()), ("perPage", &per_page.to_string())])).await
}

/// One connector, with its last verification's per-template results.
pub async fn get(id: &str) -> ApiResult<CloudConnector> {
    super::get::<CloudConnectorItem>(&paths::cloud_connector(id)).await.map(|r| r.item)
}

pub async fn create(request: &CreateCloudConnector) -> ApiResult<CloudConnector> {
    super::post::<_, CloudConnectorItem>(paths::CLOUD_CONNECTORS, request).await.map(|r| r.item)
}

/// What the request leaves out stays as it is.
pub async fn update(id: &str, request: &UpdateCloudConnector) -> ApiResult<CloudConnector> {
    super::put::<_, CloudConnectorItem>(&paths::cloud_connector(id), request).await.map(|r| r.item)
}

/// Refused while package policies use it, unless `force` (which detaches them).
pub async fn delete(id: &str, force: bool) -> ApiResult<()> {
    let path = paths::cloud_connector(id);
    let path = if force { paths::with_query(&path, &[("force", "true")]) } else { path };
    super::delete_empty(&path).await
}

/// "Verify now": the verifier takes it first on its next run, which is soon.
pub async fn verify(id: &str) -> ApiResult<CloudConnector> {
    super::post_without_body::<CloudConnectorItem>(&paths::cloud_connector_verify(id)).await.map(|r| r.item)
}

/// A package policy that uses a connector, as `/usage` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Usage {
    pub id: String,
    pub name: String,
    pub package: PackageRef,
    #[serde(default)]
    pub policy_ids: Vec<String>,
}

#[derive(Deserialize)]
struct UsageList {
    items: Vec<Usage>,
}

/// The package policies that use it (the first 100).
pub async fn usage(id: &str) -> ApiResult<Vec<Usage>> {
    let path = paths::with_query(&paths::cloud_connector_usage(id), &[("perPage", "100")]);
    super::get::<UsageList>(&path).await.map(|r| r.items)
}

/// A connector as pickers and links name it: what other pages read of one,
/// so they do not carry the decoding of whole connectors and their results.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConnectorName {
    pub id: String,
    pub name: String,
    #[serde(rename = "cloudProvider")]
    pub cloud_provider: CloudProvider,
}

#[derive(Deserialize)]
struct NameItem {
    item: ConnectorName,
}

#[derive(Deserialize)]
struct NameList {
    items: Vec<ConnectorName>,
}

/// One connector's name.
pub async fn name(id: &str) -> ApiResult<ConnectorName> {
    super::get::<NameItem>(&paths::cloud_connector(id)).await.map(|r| r.item)
}

/// The first 1,000 connectors' names, newest first.
pub async fn names() -> ApiResult<Vec<ConnectorName>> {
    super::get::<NameList>(&paths::with_query(paths::CLOUD_CONNECTORS, &[("perPage", "1000")])).await.map(|r| r.items)
}

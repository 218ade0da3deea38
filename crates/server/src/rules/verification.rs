//! The `fleet.cloud_connector_verification` rule type: one alert per cloud
//! connector whose last verification failed, or that lost a permission it
//! was granted in the verification before, with the connector, the reason
//! and the revoked permissions as the alert's context.

use serde_json::json;
use warden_core::cloud_connectors::{VerificationStatus, newly_denied};
use warden_core::rules::VerificationParams;

use super::agent_status::Instance;
use crate::AppState;
use crate::store::cloud_connectors as store;

pub async fn evaluate(state: &AppState, params: &VerificationParams) -> anyhow::Result<Vec<Instance>> {
    let mut instances = Vec::new();
    for connector in store::connectors(&state.db).await? {
        if params.connector_ids.as_ref().is_some_and(|ids| !ids.contains(&connector.id)) {
            continue;
        }
        // How the connector's last verification ended, from the connector
        // itself: one that could not even start has no results and fails it
        // all the same, and a verification in flight (pending) does not
        // recover the alert before it ends.
        let failed = connector.verification_finished_at.is_some() && connector.verification_failed_at == connector.verification_finished_at;
        // Revoked: granted in the verification with results before the last one with results.
        let finished = store::finished_verifications(&state.db, &connector.id, 2).await?;
        let revoked: Vec<String> = match (finished.first(), finished.get(1)) {
            (Some(last), Some(before)) => {
                let current = crate::cloud_connectors::records_of(state, &last.id).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
                let previous = crate::cloud_connectors::records_of(state, &before.id).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
                newly_denied(&previous, &current).iter().map(|r| format!("{} ({})", r.action, r.policy_template)).collect()
            }
            _ => Vec::new(),
        };
        if !(params.on_failed && failed || params.on_revoked && !revoked.is_empty()) {
            continue;
        }
        let reason = match (&connector.verification_failed_reason, revoked.is_empty()) {
            (Some(reason), _) if failed => reason.clone(),
            (_, false) => format!("Permissions revoked: {}", revoked.join(", ")),
            _ => "The verification failed".to_owned(),
        };
        let context = json!({
            "connector": {"id": connector.id, "name": connector.name, "provider": connector.cloud_provider},
            "status": if failed { VerificationStatus::Failed.as_str() } else { VerificationStatus::Success.as_str() },
            "reason": reason,
            "revoked": revoked.join(", "),
            "verified_at": connector.verification_finished_at.map(crate::fleet::rfc3339),
        });
        instances.push(Instance { id: connector.id.clone(), context: context.as_object().cloned().unwrap_or_default() });
    }
    Ok(instances)
}

//! `warden-cloud-emulator`: a stand-in for a cloud's permission-check API,
//! modelled on AWS IAM's policy simulator (`iam:SimulatePrincipalPolicy`),
//! for Warden's cloud connector verifier, demos and API tests. Warden's
//! verifier (`warden-agent verifier`) calls it over HTTP as the cloud of
//! every provider: AWS roles, Azure client ids and GCP service accounts are
//! all principals here.
//!
//! It shares no code with Warden: its types carry IAM's own JSON names.
//!
//! - `POST /iam/simulate-principal-policy` `{"PolicySourceArn", "ExternalId",
//!   "ActionNames": [...], "MaxItems"?, "Marker"?}` →
//!   `{"EvaluationResults": [{"EvalActionName", "EvalResourceName": "*",
//!   "EvalDecision": "allowed" | "implicitDeny" | "explicitDeny"}],
//!   "IsTruncated", "Marker"?}`. `ExternalId` is the proof that must
//!   accompany the principal (AWS external id, Azure tenant id, GCP
//!   audience). An unknown principal or a wrong proof: 403 `AccessDenied`;
//!   a request outside the constraints (no or more than 1000 `ActionNames`,
//!   `MaxItems` outside 1..=1000, a bad `Marker`, unreadable JSON): 400
//!   `ValidationError`; a body over [`api::MAX_BODY_BYTES`]: 413.
//! - Admin, no auth: `POST /_emulator/grant` and `/_emulator/revoke`
//!   `{"principal", "action"}`, `POST /_emulator/fail-next` `{"status":500,
//!   "count":1, "retry_after"?}`, `GET /_emulator/stats`, `POST
//!   /_emulator/reset` (back to the loaded configuration).
//!
//! Decisions follow IAM's evaluation: an explicit deny wins, then an allow,
//! else the implicit deny; action names compare without case and policies
//! may use `*` and `?` wildcards.

pub mod api;
pub mod config;
pub mod error;
pub mod policy;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use crate::config::Config;
pub use crate::state::Emulator;

/// A bound emulator: the port is known before it serves (port 0 in tests).
pub struct Application {
    listener: TcpListener,
    emulator: Arc<Emulator>,
}

impl Application {
    pub async fn bind(listen: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Application { listener, emulator: Arc::new(Emulator::new(config)) })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, api::router(self.emulator)).with_graceful_shutdown(shutdown).await
    }
}

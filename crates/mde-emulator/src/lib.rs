//! `warden-mde-emulator`: a stand-in for Microsoft Defender for Endpoint's
//! API, for Warden's demos and API tests. Warden's MDE connector calls it
//! over HTTP exactly as it would call Microsoft: set the connector's OAuth
//! server URL and API URL both to the emulator's URL.
//!
//! It shares no code with Warden: its types carry MDE's own JSON names.
//!
//! - Entra ID: `POST /{tenantId}/oauth2/v2.0/token` (client credentials,
//!   form-encoded) → `{"token_type":"Bearer","expires_in",...}`; AAD's
//!   error bodies (`invalid_client`, `AADSTS7000215`, ...).
//! - MDE, with `Authorization: Bearer <token>`: `GET /api/machines`,
//!   `GET /api/machines/{id}`, `POST /api/machines/{id}/isolate`,
//!   `.../unisolate`, `.../runliveresponse`, `GET /api/machineactions`,
//!   `GET /api/machineactions/{id}`, `POST /api/machineactions/{id}/cancel`,
//!   `GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=N)`,
//!   `GET /api/libraryfiles`. Lists take `$filter` (`eq`, `in`, `and`),
//!   `$top`, `$skip`, `$count=true`, `$orderby`.
//! - `GET /_blob/{token}`: a live-response result (no auth, as a SAS URL).
//! - Admin, no auth: `POST /_emulator/fail-next` `{"status":429,"count":2,
//!   "retry_after":1}`, `GET /_emulator/stats`, `POST /_emulator/reset`,
//!   `POST /_emulator/advance` `{"by":"1h"}` (moves the emulator's clock).
//!
//! Machine actions are settled lazily from timestamps: Pending for the first
//! half of `action_delay`, InProgress for the second, then Succeeded or
//! Failed as the machine's `outcome` says (`hang`: InProgress until
//! cancelled).

pub mod api;
pub mod config;
pub mod error;
pub mod odata;
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

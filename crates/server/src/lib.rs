//! Warden's server: `Application::build` binds the listener (port 0 in tests)
//! and `run_until_stopped` serves the API and the SPA until a signal arrives.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod fleet;
pub mod http;
pub mod store;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::{Db, Engine};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub engine: Engine,
    pub started: Instant,
    pub basic_cache: auth::SharedBasicCache,
    pub hub: Arc<fleet::Hub>,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let db = db::connect(&config.database_url).await?;
        Application::with_db(config, db).await
    }

    pub async fn with_db(config: Config, db: Db) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let state = AppState {
            engine: Engine::of_url(&config.database_url),
            config: Arc::new(config),
            db,
            started: Instant::now(),
            basic_cache: Arc::default(),
            hub: Arc::default(),
        };
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let router = http::router(self.state.clone());
        tokio::spawn(sweep_sessions(self.state.clone()));
        let background = tokio::spawn(fleet::run_background(self.state.clone()));
        let hub = self.state.hub.clone();
        tracing::info!(
            url = %format!("http://{addr}{}/", self.state.config.public_base_path),
            database = %self.state.engine.name(),
            "warden listening"
        );
        axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Release held agent check-ins so in-flight requests can finish.
                hub.shut_down();
            })
            .await
            .context("serving HTTP")?;
        let _ = background.await;
        self.state.db.close().await;
        tracing::info!("warden stopped");
        Ok(())
    }
}

/// Drops sessions that can no longer be used, so the table does not grow
/// forever. (Moves to the task manager when it lands.)
async fn sweep_sessions(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        let now = db::now_ms();
        let idle_cutoff = now - state.config.session_idle_timeout.as_millis() as i64;
        match store::sessions::delete_expired(&state.db, now, idle_cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired sessions removed"),
            Err(err) => tracing::warn!(error = %err, "could not remove expired sessions"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

//! Warden's server: `Application::build` binds the listener (port 0 in tests)
//! and `run_until_stopped` serves the API and the SPA until a signal arrives.

pub mod actions;
pub mod api_keys;
pub mod auth;
pub mod cases;
pub mod cli;
pub mod cloud_connectors;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod fleet;
pub mod http;
pub mod passwords;
pub mod response_actions;
pub mod rules;
pub mod store;
pub mod tasks;
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
    pub passwords: Arc<passwords::PasswordChecker>,
    pub hub: Arc<fleet::Hub>,
    /// Live events: publish after the commit; the browser's stream and the other nodes hear them.
    pub events: Arc<events::EventBus>,
    pub tasks: Arc<tasks::TaskManager>,
    /// Behind an `Arc`: the key schedule is ≈ 1 KB, and every request future holds a copy of `AppState`.
    pub cipher: Arc<crypto::Cipher>,
    /// Where processes Warden starts on this machine reach its Fleet API (the verifier).
    pub fleet_url: String,
}

impl AppState {
    /// The licence in force (`license`; basic when not set).
    pub fn license(&self) -> warden_core::actions::License {
        self.config.license.unwrap_or(warden_core::actions::License::Basic)
    }

    /// The guard on connectors' outbound calls, from the settings.
    pub fn outbound_guard(&self) -> actions::OutboundGuard {
        outbound_guard(&self.config)
    }
}

fn outbound_guard(config: &Config) -> actions::OutboundGuard {
    actions::OutboundGuard {
        allowed_hosts: warden_core::actions::AllowedHosts::new(config.actions_allowed_hosts.iter().cloned()),
        timeout: config.actions_response_timeout,
    }
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
        let Some(encryption_key) = config.encryption_key.as_ref() else {
            anyhow::bail!(
                "encryption_key is not set: Warden encrypts the API keys it keeps for background work with it. \
                 Set WARDEN_ENCRYPTION_KEY (or --encryption-key, or encryption_key in the config file) to a secret of \
                 32 characters or more, e.g. the output of `openssl rand -base64 32` (`warden serve --demo` uses a demo key)"
            );
        };
        actions::check_preconfigured(&config, &outbound_guard(&config))?;
        // Derives the key (Argon2id, once) and re-encrypts secrets stored before v2.
        let cipher = crypto::open(&db, encryption_key).await?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let engine = Engine::of_url(&config.database_url);
        let fleet_url = local_url(listener.local_addr().unwrap_or(config.listen), &config.public_base_path);
        let events = Arc::new(events::EventBus::new(engine));
        let tasks = Arc::new(tasks::TaskManager::new(db.clone(), engine, tasks::TaskSettings::from_config(&config), events.clone()));
        tasks.install(tasks::all(&db, &config)).await?;
        let state = AppState {
            engine,
            config: Arc::new(config),
            db,
            started: Instant::now(),
            basic_cache: Arc::default(),
            passwords: passwords::PasswordChecker::for_this_machine(),
            hub: Arc::default(),
            events,
            tasks,
            cipher: Arc::new(cipher),
            fleet_url,
        };
        // Rule and action runners need the state (keys, connectors, Fleet).
        state.tasks.install(rules::definitions(&state)).await?;
        state.tasks.install(response_actions::definitions(&state)).await?;
        state.tasks.install(vec![cloud_connectors::verifier::definition(&state), fleet::cleanup::definition(&state)]).await?;
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
        let background = tokio::spawn(fleet::background::run_background(self.state.clone()));
        tokio::spawn(fleet::background::run_ack_writer(self.state.clone()));
        let task_poller = tokio::spawn(self.state.tasks.clone().run());
        let event_work = tokio::spawn(events::run_background(&self.state));
        tokio::spawn(rules::run_fleet_trigger(self.state.clone()));
        let hub = self.state.hub.clone();
        let bus = self.state.events.clone();
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
                // End event streams (axum waits for open responses).
                bus.shut_down();
            })
            .await
            .context("serving HTTP")?;
        let _ = background.await;
        // Stop claiming, let running tasks finish (bounded), hand back the rest.
        self.state.tasks.shutdown().await;
        let _ = task_poller.await;
        // The last events reach the other nodes before the pool closes.
        self.state.events.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), event_work).await;
        self.state.db.close().await;
        tracing::info!("warden stopped");
        Ok(())
    }
}

/// This node's own URL for processes on this machine: the bound port on the
/// loopback address when it listens on every address.
fn local_url(addr: SocketAddr, base_path: &str) -> String {
    let ip = if addr.ip().is_unspecified() {
        if addr.is_ipv4() { std::net::IpAddr::from([127, 0, 0, 1]) } else { std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST) }
    } else {
        addr.ip()
    };
    format!("http://{}{}", SocketAddr::new(ip, addr.port()), base_path.trim_end_matches('/'))
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

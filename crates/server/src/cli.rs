//! The `warden` command line.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use warden_core::authz::Role;

use crate::config::{Config, Layer, LogFormat};

/// Warden: the SOC console for endpoints, response actions, Fleet and alerting.
///
/// Settings come from (weakest first) defaults, a TOML file (--config or
/// WARDEN_CONFIG), WARDEN_* environment variables, and these flags.
#[derive(Debug, Parser)]
#[command(name = "warden", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// TOML config file [env: WARDEN_CONFIG]
    #[arg(long, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080) [env: WARDEN_LISTEN]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// sqlite://FILE (default sqlite://data/warden.db) or postgres://… [env: WARDEN_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Path Warden is served under behind a proxy, e.g. /warden [env: WARDEN_PUBLIC_BASE_PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub public_base_path: Option<String>,
    /// Proxy address or network whose X-Forwarded-* headers are trusted; repeat for more [env: WARDEN_TRUSTED_PROXIES, comma-separated]
    #[arg(long = "trusted-proxy", global = true, value_name = "CIDR", value_parser = crate::config::parse_network)]
    pub trusted_proxies: Vec<IpNet>,
    /// Folder with the built SPA (default dist) [env: WARDEN_SPA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub spa_dir: Option<PathBuf>,
    /// Sign out after this long without a request, e.g. 30m (default 8h) [env: WARDEN_SESSION_IDLE_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Option<std::time::Duration>,
    /// Sign out this long after sign-in whatever happens, e.g. 12h (default 30d) [env: WARDEN_SESSION_LIFETIME]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub session_lifetime: Option<std::time::Duration>,
    /// Largest request body in bytes (default 1048576) [env: WARDEN_MAX_BODY_BYTES]
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Log format: text or json (default text) [env: WARDEN_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Longest an agent check-in is held open waiting for an action (default 5m) [env: WARDEN_AGENT_POLL_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub agent_poll_timeout: Option<std::time::Duration>,
    /// How often agent heartbeats are written in one batch (default 30s) [env: WARDEN_AGENT_CHECKIN_FLUSH_INTERVAL]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub agent_checkin_flush_interval: Option<std::time::Duration>,
    /// Silence after which an agent is offline (default 6m) [env: WARDEN_AGENT_OFFLINE_AFTER]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub agent_offline_after: Option<std::time::Duration>,
    /// How often this node looks for due background tasks (default 3s) [env: WARDEN_TASK_POLL_INTERVAL]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub task_poll_interval: Option<std::time::Duration>,
    /// How long a claimed task is held without renewal; a dead node's tasks are retaken after it (default 30s) [env: WARDEN_TASK_LEASE]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub task_lease: Option<std::time::Duration>,
    /// How long a stopping node lets running tasks finish (default 30s) [env: WARDEN_TASK_SHUTDOWN_TIMEOUT]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub task_shutdown_timeout: Option<std::time::Duration>,
    /// How often queued API keys are invalidated (default 5m) [env: WARDEN_API_KEY_INVALIDATION_INTERVAL]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub api_key_invalidation_interval: Option<std::time::Duration>,
    /// How long a replaced rule API key stays valid before invalidation (default 1h) [env: WARDEN_API_KEY_REMOVAL_DELAY]
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub api_key_removal_delay: Option<std::time::Duration>,
    /// Background tasks this node runs at once (default 10) [env: WARDEN_TASK_MAX_WORKERS]
    #[arg(long, global = true, value_name = "N")]
    pub task_max_workers: Option<usize>,
    /// API keys invalidated per transaction (default 500) [env: WARDEN_API_KEY_INVALIDATION_BATCH_SIZE]
    #[arg(long, global = true, value_name = "N")]
    pub api_key_invalidation_batch_size: Option<usize>,
    /// Secret (32+ characters) that encrypts keys kept for background work; required unless --demo. Prefer the env variable [env: WARDEN_ENCRYPTION_KEY]
    #[arg(long, global = true, value_name = "SECRET", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("expected text or json, got `{other}`")),
    }
}

impl SettingsArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        let flags = Layer {
            listen: self.listen,
            database_url: self.database_url.clone(),
            public_base_path: self.public_base_path.clone(),
            trusted_proxies: (!self.trusted_proxies.is_empty()).then(|| self.trusted_proxies.clone()),
            spa_dir: self.spa_dir.clone(),
            session_idle_timeout: self.session_idle_timeout,
            session_lifetime: self.session_lifetime,
            max_body_bytes: self.max_body_bytes,
            log_format: self.log_format,
            agent_poll_timeout: self.agent_poll_timeout,
            agent_checkin_flush_interval: self.agent_checkin_flush_interval,
            agent_offline_after: self.agent_offline_after,
            task_poll_interval: self.task_poll_interval,
            task_lease: self.task_lease,
            task_shutdown_timeout: self.task_shutdown_timeout,
            api_key_invalidation_interval: self.api_key_invalidation_interval,
            api_key_removal_delay: self.api_key_removal_delay,
            task_max_workers: self.task_max_workers,
            api_key_invalidation_batch_size: self.api_key_invalidation_batch_size,
            encryption_key: self.encryption_key.clone().map(crate::config::Secret),
        };
        Config::load(self.config.as_deref(), flags)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and the web app.
    Serve {
        /// Seed demo users and data (idempotent) and print the demo logins.
        #[arg(long)]
        demo: bool,
    },
    /// Manage local users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password or --password-stdin a random password is generated and printed.
    Add {
        name: String,
        /// A role to grant; repeat for more: viewer, t1_analyst, t2_analyst, t3_analyst, rule_author,
        /// soc_manager, platform_engineer, endpoint_operations_analyst, superuser
        #[arg(long = "role", required = true, value_name = "ROLE")]
        roles: Vec<Role>,
        #[arg(long)]
        full_name: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set a user's password and end their sessions.
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List users with their roles.
    List,
    /// Stop a user from signing in and end their sessions at once.
    Disable { name: String },
    /// Let a disabled user sign in again.
    Enable { name: String },
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// The password (visible to other local users in the process list; prefer --password-stdin)
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// The password given, or a generated one (and whether it was generated).
    pub fn resolve(&self) -> anyhow::Result<(String, bool)> {
        let password = if let Some(password) = &self.password {
            password.clone()
        } else if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else {
            return Ok((generate_password(), true));
        };
        if password.chars().count() < 8 {
            bail!("the password must have at least 8 characters");
        }
        Ok((password, false))
    }
}

pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_reach_the_config() {
        let cli = Cli::try_parse_from(["warden", "serve", "--listen", "127.0.0.1:9", "--public-base-path", "/warden/", "--trusted-proxy", "127.0.0.1"]).unwrap();
        let flags = &cli.settings;
        assert_eq!(flags.listen.unwrap().port(), 9);
        assert_eq!(flags.trusted_proxies.len(), 1);
    }

    #[test]
    fn unknown_roles_are_refused_with_the_list() {
        let err = Cli::try_parse_from(["warden", "user", "add", "bob", "--role", "admin"]).unwrap_err().to_string();
        assert!(err.contains("unknown role `admin`"), "{err}");
        assert!(err.contains("t1_analyst"), "{err}");
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}

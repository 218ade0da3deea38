//! Typed settings, from (weakest to strongest) defaults, a TOML file, `WARDEN_*`
//! environment variables and command-line flags. Unknown keys are an error that
//! names the key. Secrets (the database URL's password) are never printed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Where Warden is served behind a proxy: `""` at the root, or `/warden`.
    pub public_base_path: String,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The built SPA (Trunk's `dist/`).
    pub spa_dir: PathBuf,
    pub session_idle_timeout: Duration,
    pub session_lifetime: Duration,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// Longest an agent's check-in is held open waiting for an action.
    pub agent_poll_timeout: Duration,
    /// How often batched agent heartbeats are written.
    pub agent_checkin_flush_interval: Duration,
    /// Silence after which an agent is `offline`.
    pub agent_offline_after: Duration,
    /// How often each node looks for due tasks.
    pub task_poll_interval: Duration,
    /// How long a claim holds a task without being renewed; a node that dies loses its tasks this long after.
    pub task_lease: Duration,
    /// How long a stopping node lets running tasks finish.
    pub task_shutdown_timeout: Duration,
    /// How often queued API keys are looked at.
    pub api_key_invalidation_interval: Duration,
    /// How long a replaced key stays valid (longer than any rule run).
    pub api_key_removal_delay: Duration,
    /// Tasks one node runs at once.
    pub task_max_workers: usize,
    /// Keys invalidated per transaction.
    pub api_key_invalidation_batch_size: usize,
    /// Encrypts secrets kept for background work (rule API keys in action
    /// parameters). Required outside demo mode; never printed.
    pub encryption_key: Option<Secret>,
}

/// A setting that must never reach a log: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://data/warden.db".to_owned(),
            public_base_path: String::new(),
            trusted_proxies: Vec::new(),
            spa_dir: PathBuf::from("dist"),
            session_idle_timeout: Duration::from_secs(8 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            max_body_bytes: 1024 * 1024,
            log_format: LogFormat::Text,
            agent_poll_timeout: Duration::from_secs(300),
            agent_checkin_flush_interval: Duration::from_secs(30),
            agent_offline_after: Duration::from_secs(360),
            task_poll_interval: Duration::from_secs(3),
            task_lease: Duration::from_secs(30),
            task_shutdown_timeout: Duration::from_secs(30),
            api_key_invalidation_interval: Duration::from_secs(300),
            api_key_removal_delay: Duration::from_secs(3600),
            task_max_workers: 10,
            api_key_invalidation_batch_size: 500,
            encryption_key: None,
        }
    }
}

/// One source of settings; every key optional. The TOML file is parsed into
/// this directly, so its keys are exactly these field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub public_base_path: Option<String>,
    #[serde(default, deserialize_with = "networks")]
    pub trusted_proxies: Option<Vec<IpNet>>,
    pub spa_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration_text")]
    pub session_idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub session_lifetime: Option<Duration>,
    pub max_body_bytes: Option<usize>,
    pub log_format: Option<LogFormat>,
    #[serde(default, deserialize_with = "duration_text")]
    pub agent_poll_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub agent_checkin_flush_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub agent_offline_after: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub task_poll_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub task_lease: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub task_shutdown_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub api_key_invalidation_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration_text")]
    pub api_key_removal_delay: Option<Duration>,
    pub task_max_workers: Option<usize>,
    pub api_key_invalidation_batch_size: Option<usize>,
    pub encryption_key: Option<Secret>,
}

fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
}

fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<IpNet>>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    texts.iter().map(|t| parse_network(t).map_err(serde::de::Error::custom)).collect::<Result<_, _>>().map(Some)
}

/// A network (`10.0.0.0/8`) or a single address (`127.0.0.1`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a network such as 10.0.0.0/8"))
}

/// The environment variable for each setting.
const ENV_KEYS: &[(&str, &str)] = &[
    ("WARDEN_LISTEN", "listen"),
    ("WARDEN_DATABASE_URL", "database_url"),
    ("WARDEN_PUBLIC_BASE_PATH", "public_base_path"),
    ("WARDEN_TRUSTED_PROXIES", "trusted_proxies"),
    ("WARDEN_SPA_DIR", "spa_dir"),
    ("WARDEN_SESSION_IDLE_TIMEOUT", "session_idle_timeout"),
    ("WARDEN_SESSION_LIFETIME", "session_lifetime"),
    ("WARDEN_MAX_BODY_BYTES", "max_body_bytes"),
    ("WARDEN_LOG_FORMAT", "log_format"),
    ("WARDEN_AGENT_POLL_TIMEOUT", "agent_poll_timeout"),
    ("WARDEN_AGENT_CHECKIN_FLUSH_INTERVAL", "agent_checkin_flush_interval"),
    ("WARDEN_AGENT_OFFLINE_AFTER", "agent_offline_after"),
    ("WARDEN_TASK_POLL_INTERVAL", "task_poll_interval"),
    ("WARDEN_TASK_LEASE", "task_lease"),
    ("WARDEN_TASK_SHUTDOWN_TIMEOUT", "task_shutdown_timeout"),
    ("WARDEN_API_KEY_INVALIDATION_INTERVAL", "api_key_invalidation_interval"),
    ("WARDEN_API_KEY_REMOVAL_DELAY", "api_key_removal_delay"),
    ("WARDEN_TASK_MAX_WORKERS", "task_max_workers"),
    ("WARDEN_API_KEY_INVALIDATION_BATCH_SIZE", "api_key_invalidation_batch_size"),
    ("WARDEN_ENCRYPTION_KEY", "encryption_key"),
];

/// Variables that are not settings but are Warden's all the same.
const ENV_OTHER: &[&str] = &["WARDEN_CONFIG"];

impl Layer {
    pub fn from_toml(text: &str) -> anyhow::Result<Layer> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// Reads every `WARDEN_*` variable; an unknown one is an error that names it
    /// (a typo must not silently fall back to a default).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Layer> {
        let mut table = toml::Table::new();
        for (name, value) in vars {
            if !name.starts_with("WARDEN_") || ENV_OTHER.contains(&name.as_str()) {
                continue;
            }
            let Some((_, key)) = ENV_KEYS.iter().find(|(env, _)| *env == name) else {
                let known: Vec<&str> = ENV_KEYS.iter().map(|(env, _)| *env).collect();
                bail!("unknown environment variable {name}; Warden reads {}", known.join(", "));
            };
            let value = match *key {
                "trusted_proxies" => toml::Value::Array(
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
                ),
                "max_body_bytes" | "task_max_workers" | "api_key_invalidation_batch_size" => toml::Value::Integer(
                    value.parse().with_context(|| format!("{name}: expected a number, got `{value}`"))?,
                ),
                _ => toml::Value::String(value),
            };
            table.insert((*key).to_owned(), value);
        }
        Layer::deserialize(table).map_err(|e| anyhow::anyhow!("environment: {e}"))
    }

    /// `self`, with the keys it lacks taken from `weaker`.
    pub fn or(self, weaker: Layer) -> Layer {
        Layer {
            listen: self.listen.or(weaker.listen),
            database_url: self.database_url.or(weaker.database_url),
            public_base_path: self.public_base_path.or(weaker.public_base_path),
            trusted_proxies: self.trusted_proxies.or(weaker.trusted_proxies),
            spa_dir: self.spa_dir.or(weaker.spa_dir),
            session_idle_timeout: self.session_idle_timeout.or(weaker.session_idle_timeout),
            session_lifetime: self.session_lifetime.or(weaker.session_lifetime),
            max_body_bytes: self.max_body_bytes.or(weaker.max_body_bytes),
            log_format: self.log_format.or(weaker.log_format),
            agent_poll_timeout: self.agent_poll_timeout.or(weaker.agent_poll_timeout),
            agent_checkin_flush_interval: self.agent_checkin_flush_interval.or(weaker.agent_checkin_flush_interval),
            agent_offline_after: self.agent_offline_after.or(weaker.agent_offline_after),
            task_poll_interval: self.task_poll_interval.or(weaker.task_poll_interval),
            task_lease: self.task_lease.or(weaker.task_lease),
            task_shutdown_timeout: self.task_shutdown_timeout.or(weaker.task_shutdown_timeout),
            api_key_invalidation_interval: self.api_key_invalidation_interval.or(weaker.api_key_invalidation_interval),
            api_key_removal_delay: self.api_key_removal_delay.or(weaker.api_key_removal_delay),
            task_max_workers: self.task_max_workers.or(weaker.task_max_workers),
            api_key_invalidation_batch_size: self.api_key_invalidation_batch_size.or(weaker.api_key_invalidation_batch_size),
            encryption_key: self.encryption_key.or(weaker.encryption_key),
        }
    }
}

impl Config {
    /// Flags over environment over file over defaults.
    pub fn resolve(flags: Layer, env: Layer, file: Layer) -> anyhow::Result<Config> {
        let layer = flags.or(env).or(file);
        let default = Config::default();
        let config = Config {
            listen: layer.listen.unwrap_or(default.listen),
            database_url: layer.database_url.unwrap_or(default.database_url),
            public_base_path: normalize_base_path(&layer.public_base_path.unwrap_or_default())?,
            trusted_proxies: layer.trusted_proxies.unwrap_or(default.trusted_proxies),
            spa_dir: layer.spa_dir.unwrap_or(default.spa_dir),
            session_idle_timeout: layer.session_idle_timeout.unwrap_or(default.session_idle_timeout),
            session_lifetime: layer.session_lifetime.unwrap_or(default.session_lifetime),
            max_body_bytes: layer.max_body_bytes.unwrap_or(default.max_body_bytes),
            log_format: layer.log_format.unwrap_or(default.log_format),
            agent_poll_timeout: layer.agent_poll_timeout.unwrap_or(default.agent_poll_timeout),
            agent_checkin_flush_interval: layer.agent_checkin_flush_interval.unwrap_or(default.agent_checkin_flush_interval),
            agent_offline_after: layer.agent_offline_after.unwrap_or(default.agent_offline_after),
            task_poll_interval: layer.task_poll_interval.unwrap_or(default.task_poll_interval),
            task_lease: layer.task_lease.unwrap_or(default.task_lease),
            task_shutdown_timeout: layer.task_shutdown_timeout.unwrap_or(default.task_shutdown_timeout),
            api_key_invalidation_interval: layer.api_key_invalidation_interval.unwrap_or(default.api_key_invalidation_interval),
            api_key_removal_delay: layer.api_key_removal_delay.unwrap_or(default.api_key_removal_delay),
            task_max_workers: layer.task_max_workers.unwrap_or(default.task_max_workers),
            api_key_invalidation_batch_size: layer.api_key_invalidation_batch_size.unwrap_or(default.api_key_invalidation_batch_size),
            encryption_key: layer.encryption_key.filter(|k| !k.0.is_empty()),
        };
        if config.agent_checkin_flush_interval.is_zero() || config.agent_offline_after.is_zero() {
            bail!("agent_checkin_flush_interval and agent_offline_after must be longer than zero");
        }
        if config.task_poll_interval.is_zero() || config.task_lease < Duration::from_secs(1) || config.api_key_invalidation_interval.is_zero() {
            bail!("task_poll_interval and api_key_invalidation_interval must be longer than zero, task_lease at least 1s");
        }
        if config.task_max_workers == 0 || config.api_key_invalidation_batch_size == 0 {
            bail!("task_max_workers and api_key_invalidation_batch_size must be at least 1");
        }
        if config.encryption_key.as_ref().is_some_and(|k| k.0.chars().count() < 32) {
            bail!("encryption_key must be at least 32 characters (e.g. the output of `openssl rand -base64 32`)");
        }
        if config.session_idle_timeout.is_zero() || config.session_lifetime.is_zero() {
            bail!("session_idle_timeout and session_lifetime must be longer than zero");
        }
        if !(config.database_url.starts_with("sqlite:") || config.database_url.starts_with("postgres://") || config.database_url.starts_with("postgresql://")) {
            bail!("database_url must start with sqlite: or postgres://");
        }
        Ok(config)
    }

    /// Loads the file (if any), reads the environment and applies `flags`.
    pub fn load(file: Option<&std::path::Path>, flags: Layer) -> anyhow::Result<Config> {
        let file_layer = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                Layer::from_toml(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => Layer::default(),
        };
        Config::resolve(flags, Layer::from_env(std::env::vars())?, file_layer)
    }

    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// Settings as a map, for `warden config` style diagnostics and logs.
    pub fn summary(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("listen", self.listen.to_string()),
            ("database_url", self.database_url_redacted()),
            ("public_base_path", self.public_base_path.clone()),
            ("trusted_proxies", format!("{:?}", self.trusted_proxies)),
            ("spa_dir", self.spa_dir.display().to_string()),
        ])
    }
}

/// `"/warden/"` → `"/warden"`, `"/"` or `""` → `""`; anything that is not a
/// plain absolute path is an error.
pub fn normalize_base_path(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid_segment = |s: &str| !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !trimmed.starts_with('/') || !trimmed[1..].split('/').all(valid_segment) {
        bail!("public_base_path must be an absolute path such as /warden, got `{raw}`");
    }
    Ok(trimmed.to_owned())
}

/// `postgres://user:password@host/db?password=…` → `postgres://user:***@host/db?password=***`.
/// The authority ends at the first `/` after `://`, and its credentials at
/// its LAST `@` (as sqlx reads it: a password may hold `@` or `:`, a user
/// name no `:`). If the authority has no `@` but the path does, the password
/// held an unescaped `/`: the credentials end there. Nothing of a password
/// is printed, not even its length; SQLite URLs carry none.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    if scheme.starts_with("sqlite") {
        return url.to_owned();
    }
    let path_start = rest.find('/').unwrap_or(rest.len());
    let query_start = rest[path_start..].find('?').map_or(rest.len(), |i| path_start + i);
    let at = rest[..path_start].rfind('@').or_else(|| rest[..query_start].rfind('@'));
    let (credentials, location) = match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let credentials = match credentials {
        Some(credentials) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@"),
            None => format!("{credentials}@"),
        },
        None => String::new(),
    };
    format!("{scheme}://{}", redact_query(&format!("{credentials}{location}")))
}

/// Masks the value of every query parameter that names a password
/// (`password`, `sslpassword`).
fn redact_query(url: &str) -> String {
    let Some((before, query)) = url.split_once('?') else { return url.to_owned() };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _value)) if name.to_ascii_lowercase().ends_with("password") => format!("{name}=***"),
            _ => param.to_owned(),
        })
        .collect();
    format!("{before}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> anyhow::Result<Layer> {
        Layer::from_env(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    #[test]
    fn defaults_without_any_source() {
        let config = Config::resolve(Layer::default(), Layer::default(), Layer::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = Layer::from_toml("listen = \"127.0.0.1:1000\"\ndatabase_url = \"sqlite://file.db\"\npublic_base_path = \"/file\"").unwrap();
        let env = env(&[("WARDEN_LISTEN", "127.0.0.1:2000"), ("WARDEN_DATABASE_URL", "sqlite://env.db")]).unwrap();
        let flags = Layer { listen: Some("127.0.0.1:3000".parse().unwrap()), ..Layer::default() };
        let config = Config::resolve(flags, env, file).unwrap();
        assert_eq!(config.listen.port(), 3000);
        assert_eq!(config.database_url, "sqlite://env.db");
        assert_eq!(config.public_base_path, "/file");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = Layer::from_toml("listen = \"127.0.0.1:1\"\nlisten_port = 8080").unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn unknown_env_variable_is_named() {
        let err = env(&[("WARDEN_LISTNE", "x")]).unwrap_err().to_string();
        assert!(err.contains("WARDEN_LISTNE"), "{err}");
        assert!(env(&[("WARDEN_CONFIG", "x"), ("HOME", "/root")]).is_ok());
    }

    #[test]
    fn bad_values_say_which_setting() {
        let err = env(&[("WARDEN_LISTEN", "nowhere")]).unwrap_err().to_string();
        assert!(err.contains("listen") || err.contains("socket"), "{err}");
        let err = Layer::from_toml("session_idle_timeout = \"soon\"").unwrap_err().to_string();
        assert!(err.contains("session_idle_timeout"), "{err}");
    }

    #[test]
    fn env_lists_and_durations() {
        let layer = env(&[
            ("WARDEN_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
            ("WARDEN_SESSION_IDLE_TIMEOUT", "15m"),
            ("WARDEN_MAX_BODY_BYTES", "2048"),
        ])
        .unwrap();
        let config = Config::resolve(Layer::default(), layer, Layer::default()).unwrap();
        assert!(config.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(config.is_trusted_proxy("10.1.2.3".parse().unwrap()));
        assert!(!config.is_trusted_proxy("192.168.0.1".parse().unwrap()));
        assert_eq!(config.session_idle_timeout, Duration::from_secs(900));
        assert_eq!(config.max_body_bytes, 2048);
    }

    #[test]
    fn base_path_is_normalized_or_refused() {
        assert_eq!(normalize_base_path("/warden/").unwrap(), "/warden");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/soc/warden").unwrap(), "/soc/warden");
        for bad in ["warden", "/a//b", "/../x", "/war den", "/x?y"] {
            assert!(normalize_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_urls_never_print_a_password() {
        let cases = [
            ("postgres://warden:s3cret@db:5432/warden", "postgres://warden:***@db:5432/warden"),
            ("postgres://u:p@ss@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p@s@s3cret@host:5432/db", "postgres://u:***@host:5432/db"),
            ("postgres://u:p:s3:cret@host/db", "postgres://u:***@host/db"),
            ("postgres://u:p@s:s3cret@host/db?sslmode=require", "postgres://u:***@host/db?sslmode=require"),
            ("postgresql://u:p%40ss@host/db", "postgresql://u:***@host/db"),
            ("postgres://u:s3cret@[::1]:5432/db", "postgres://u:***@[::1]:5432/db"),
            ("postgres://u:s3cret@host", "postgres://u:***@host"),
            ("postgres://u:p@ss@host?sslmode=require", "postgres://u:***@host?sslmode=require"),
            ("postgres://u:@host/db", "postgres://u:***@host/db"),
            // A password with an unescaped `/`: the credentials end at the path's `@`.
            ("postgres://u:p/ss@host/db", "postgres://u:***@host/db"),
            // No password, no credentials.
            ("postgres://warden@host/db", "postgres://warden@host/db"),
            ("postgres://host:5432/db", "postgres://host:5432/db"),
            ("postgres://host/db@x", "postgres://host/db@x"),
            // Query strings: kept, but a password there is masked too.
            ("postgres://u:s3cret@host/db?application_name=a@b&sslmode=require", "postgres://u:***@host/db?application_name=a@b&sslmode=require"),
            ("postgres://host/db?user=u&password=s3cret&sslmode=require", "postgres://host/db?user=u&password=***&sslmode=require"),
            ("postgres://host/db?sslpassword=s3cret", "postgres://host/db?sslpassword=***"),
            ("postgres://host/db?Password=p@ss", "postgres://host/db?Password=***"),
            ("postgres://host?password=s3cret", "postgres://host?password=***"),
            ("postgres://host?password=p@ss", "postgres://host?password=***"),
            // SQLite: a path, never credentials.
            ("sqlite://data/warden.db", "sqlite://data/warden.db"),
            ("sqlite://data/w@x.db?mode=rwc", "sqlite://data/w@x.db?mode=rwc"),
            ("sqlite:warden.db", "sqlite:warden.db"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
        // Odd but possible: an `@` in the query of a URL without a path. The
        // output is mangled, but holds nothing of the password.
        for url in ["postgres://u:s3cret@host?application_name=a@b", "postgres://u:s3/cr@t@host/db"] {
            let redacted = redact_url(url);
            assert!(!redacted.contains("s3") && !redacted.contains("cr"), "{url} → {redacted}");
        }
    }

    #[test]
    fn database_password_is_redacted() {
        let config = Config { database_url: "postgres://warden:s3cret@db:5432/warden".into(), ..Config::default() };
        assert_eq!(config.database_url_redacted(), "postgres://warden:***@db:5432/warden");
        assert!(!format!("{:?}", config.summary()).contains("s3cret"));
        let config = Config { encryption_key: Some(Secret("an encryption key that is long enough".into())), ..Config::default() };
        assert!(!format!("{config:?}").contains("long enough"));
    }
}

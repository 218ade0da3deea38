//! Typed settings, from (weakest to strongest) defaults, a TOML file, `WARDEN_*`
//! environment variables and command-line flags.
//!
//! Every setting is declared once, in the `settings!` table below: its doc
//! comment (the `--help` text), name, type and default. From that row come the
//! file key (the name), the environment variable (`WARDEN_` and the name in
//! capitals), the flag (`--` and the name in kebab case, see `cli.rs`), the field
//! of the resolved [`Config`] and its line in the summary. How a type is read
//! from text and from the file is its [`SettingType`] impl.
//!
//! A table in `macro_rules!` rather than clap's derive with `env`: Warden reads
//! the environment itself, from a list of pairs, so an unknown `WARDEN_*`
//! variable can be a warning, and tests can pass an environment without
//! changing the process's own (which `unsafe_code = "forbid"` rules out); and
//! the file needs no second struct kept in step with the flags.
//!
//! An unknown key in the file is an error that names it. An unknown `WARDEN_*`
//! variable is a warning: Kubernetes sets `WARDEN_PORT`, `WARDEN_SERVICE_HOST`…
//! in every pod when a service is named `warden`. Secrets are never printed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use ipnet::IpNet;
use serde::Deserialize;
use warden_core::actions::License;

/// Declares the settings; see the table below. A row is the setting's doc
/// comment (required: it is the `--help` text), `name: Type = "default"` (the
/// default as one would write it, `""` for none), then optionally
/// `, placeholder "URL"` (the value's name in `--help`, else the type's) and
/// `, alias "old-flag"` (another flag that sets it).
macro_rules! settings {
    (@or $given:literal, $fallback:expr) => { $given };
    (@or $fallback:expr) => { $fallback };
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:literal $(, placeholder $placeholder:literal)? $(, alias $alias:literal)?;
    )*) => {
        /// Warden's settings, resolved (`Config::resolve`). Each is declared once, in `settings!`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $($(#[doc = $doc])+ pub $name: $ty,)*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($name: SettingType::from_text($default).expect(concat!("the default of ", stringify!($name), " is valid")),)* }
            }
        }

        /// One source of settings (the file, the environment or the flags): the settings it sets.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Layer {
            $(pub $name: Option<$ty>,)*
        }

        impl Layer {
            /// `self`, with the settings it lacks taken from `weaker`.
            pub fn or(self, weaker: Layer) -> Layer {
                Layer { $($name: self.$name.or(weaker.$name),)* }
            }

            /// Sets the setting named `key` from a value of the file; `Ok(false)` if no setting has that name.
            pub fn set(&mut self, key: &str, value: toml::Value) -> Result<bool, String> {
                match key {
                    $(stringify!($name) => self.$name = Some(SettingType::from_toml(value)?),)*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// The settings this layer sets, the others from `defaults`.
            fn over(self, defaults: Config) -> Config {
                Config { $($name: self.$name.unwrap_or(defaults.$name),)* }
            }
        }

        impl Config {
            /// Every setting as text; secrets as `***`.
            fn shown(&self) -> BTreeMap<&'static str, String> {
                BTreeMap::from([$((stringify!($name), SettingType::show(&self.$name)),)*])
            }
        }

        /// Every setting, in the table's order: what the flags, the environment and the file know.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            name: stringify!($name),
            help: concat!($($doc),+),
            default: $default,
            placeholder: settings!(@or $($placeholder,)? <$ty as SettingType>::PLACEHOLDER),
            repeatable: <$ty as SettingType>::REPEATABLE,
            aliases: &[$($alias)?],
        }),*];
    };
}

settings! {
    /// Address to listen on
    listen: SocketAddr = "127.0.0.1:8080";
    /// sqlite://FILE or postgres://USER@HOST/DB (a password in it is never printed)
    database_url: String = "sqlite://data/warden.db", placeholder "URL";
    /// Path Warden is served under behind a proxy, e.g. /warden (none: at the root)
    public_base_path: String = "", placeholder "PATH";
    /// Proxy address or network whose X-Forwarded-* headers are believed; repeat the flag for more
    trusted_proxies: Vec<IpNet> = "", alias "trusted-proxy";
    /// Folder with the built SPA (scripts/build-spa.sh writes dist/)
    spa_dir: PathBuf = "dist", placeholder "DIR";
    /// Sign out after this long without a request, e.g. 30m
    session_idle_timeout: Duration = "8h";
    /// Sign out this long after sign-in whatever happens, e.g. 12h
    session_lifetime: Duration = "30d";
    /// Largest request body in bytes
    max_body_bytes: usize = "1048576", placeholder "BYTES";
    /// Log format: text or json
    log_format: LogFormat = "text";
    /// Longest an agent's check-in is held open waiting for an action
    agent_poll_timeout: Duration = "5m";
    /// How often batched agent heartbeats are written
    agent_checkin_flush_interval: Duration = "30s";
    /// Silence after which an agent is offline
    agent_offline_after: Duration = "6m";
    /// Remove agents this long after they became inactive or were replaced (the fleet:cleanup_agents task),
    /// e.g. 30d; empty (the default): never
    agent_cleanup_after: Option<Duration> = "", placeholder "DURATION";
    /// How often the fleet:cleanup_agents task runs
    agent_cleanup_interval: Duration = "1h";
    /// How often this node looks for due background tasks
    task_poll_interval: Duration = "3s";
    /// How long a claim holds a task without being renewed; a dead node's tasks are retaken this long after
    task_lease: Duration = "30s";
    /// How long a stopping node lets running tasks finish
    task_shutdown_timeout: Duration = "30s";
    /// How often queued API keys are invalidated
    api_key_invalidation_interval: Duration = "5m";
    /// How long a replaced rule API key stays valid before invalidation (longer than any rule run)
    api_key_removal_delay: Duration = "1h";
    /// Background tasks this node runs at once
    task_max_workers: usize = "10";
    /// API keys invalidated per transaction
    api_key_invalidation_batch_size: usize = "500";
    /// Secret (32+ characters) that encrypts the keys kept for background work (rule API keys in action
    /// parameters); required unless --demo; never printed. Prefer the environment variable to the flag
    encryption_key: Option<Secret> = "", placeholder "SECRET";
    /// Licence level that gates connector types: basic, standard, gold, platinum, enterprise or trial
    /// (default: trial with --demo, basic otherwise)
    license: Option<License> = "", placeholder "LEVEL";
    /// Hosts connectors may call (* for any, as Kibana's xpack.actions.allowedHosts); link-local and
    /// cloud-metadata addresses only when named; repeat the flag for more
    actions_allowed_hosts: Vec<String> = "*", placeholder "HOST", alias "actions-allowed-host";
    /// Longest a connector's outbound call may take
    actions_response_timeout: Duration = "60s";
    /// Connectors defined here, read-only through the API: a [actions_preconfigured.<id>] table each in the
    /// file (name, connector_type_id, config, secrets), or the same as one JSON object
    actions_preconfigured: Preconfigured = "", placeholder "JSON";
    /// Shortest schedule a rule may have (Kibana's xpack.alerting.rules.minimumScheduleInterval, enforced)
    rules_minimum_interval: Duration = "1m";
    /// Longest one rule run may take before it is stopped and recorded as failed
    rule_run_timeout: Duration = "5m";
    /// Largest file a response action moves (a get-file result, an upload, a library script), in bytes
    response_file_max_bytes: usize = "26214400", placeholder "BYTES";
    /// How long the files of response actions are kept
    response_file_retention: Duration = "30d";
    /// How long response actions stay in the history
    response_action_retention: Duration = "365d";
    /// How often response actions past their expiry are failed (and old ones removed)
    response_action_expiry_interval: Duration = "30s";
    /// How often pending Microsoft Defender for Endpoint machine actions are looked at
    mde_poll_interval: Duration = "5s";
    /// Feature flag: cancel for Microsoft Defender for Endpoint hosts (Kibana's
    /// microsoftDefenderEndpointCancelEnabled): true or false
    mde_cancel: bool = "false";
    /// Feature flag: the permission verifier of cloud connectors, the fleet:verify_permissions task (Kibana's
    /// enableOTelVerifier): true or false
    enable_otel_verifier: bool = "false";
    /// How often the fleet:verify_permissions task looks for a cloud connector to verify
    verify_permissions_interval: Duration = "5m";
    /// A verified cloud connector is verified again after this long
    cloud_connector_reverify_after: Duration = "1h";
    /// A cloud connector whose verification failed waits this long before the next try (Verify now skips it)
    cloud_connector_failure_cooldown: Duration = "5m";
    /// The cloud's permission-check API the verifier asks (warden-cloud-emulator in demos and tests)
    verifier_cloud_url: String = "", placeholder "URL";
    /// The verifier program Warden starts for each verification (default: warden-agent beside warden)
    verifier_program: String = "", placeholder "PATH";
}

/// A declared setting, as the flags, the environment and the file know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The file key and the field of [`Config`].
    pub name: &'static str,
    /// What it does (its doc comment), for `--help`.
    pub help: &'static str,
    /// The default as one would write it (`8h`); empty for none.
    pub default: &'static str,
    /// The value's name in `--help` (`DURATION`).
    pub placeholder: &'static str,
    /// A list: the flag may repeat, the variable is comma-separated.
    pub repeatable: bool,
    /// Other flags that set it, kept for compatibility.
    pub aliases: &'static [&'static str],
}

impl Setting {
    /// The flag without its dashes: `session-idle-timeout`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// The environment variable: `WARDEN_SESSION_IDLE_TIMEOUT`.
    pub fn env(&self) -> String {
        format!("WARDEN_{}", self.name.to_ascii_uppercase())
    }
}

/// How a setting's type is read and shown. Text comes from a flag, a variable or a string in the file.
pub trait SettingType: Sized {
    /// The value's name in `--help`, unless the setting names it.
    const PLACEHOLDER: &'static str;
    /// A list: repeated flags add up, and text is comma-separated.
    const REPEATABLE: bool = false;

    fn from_text(text: &str) -> Result<Self, String>;

    /// From a value of the file: a string is text; a type that takes numbers or arrays says so.
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected a string, got {}", other.type_str())),
        }
    }

    /// For the summary; a secret shows `***`.
    fn show(&self) -> String;
}

impl SettingType for SocketAddr {
    const PLACEHOLDER: &'static str = "ADDR";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e| format!("`{text}`: {e} (expected an address such as 0.0.0.0:8080)"))
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingType for String {
    const PLACEHOLDER: &'static str = "TEXT";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingType for PathBuf {
    const PLACEHOLDER: &'static str = "PATH";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// Humantime: `30s`, `5m`, `8h`, `30d`.
impl SettingType for Duration {
    const PLACEHOLDER: &'static str = "DURATION";
    fn from_text(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration such as 30s, 5m or 8h: {e}"))
    }
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl SettingType for bool {
    const PLACEHOLDER: &'static str = "BOOL";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got `{other}`")),
        }
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Boolean(b) => Ok(b),
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected true or false, got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingType for usize {
    const PLACEHOLDER: &'static str = "N";
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| format!("expected a number, got `{text}`"))
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Integer(n) => usize::try_from(n).map_err(|_| format!("expected a number of 0 or more, got {n}")),
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected a number, got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingType for LogFormat {
    const PLACEHOLDER: &'static str = "FORMAT";
    fn from_text(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected text or json, got `{other}`")),
        }
    }
    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text".to_owned(),
            LogFormat::Json => "json".to_owned(),
        }
    }
}

/// Networks: comma-separated as text (`10.0.0.5, 10.1.0.0/16`), an array in the file.
impl SettingType for Vec<IpNet> {
    const PLACEHOLDER: &'static str = "CIDR";
    const REPEATABLE: bool = true;
    fn from_text(text: &str) -> Result<Self, String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_network).collect()
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(text) => parse_network(&text),
                    other => Err(format!("expected addresses or networks as strings, got {}", other.type_str())),
                })
                .collect(),
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected a list such as [\"10.0.0.5\"], got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.iter().map(IpNet::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Empty text: not set.
impl SettingType for Option<License> {
    const PLACEHOLDER: &'static str = "LEVEL";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        License::parse(text.trim()).map(Some).ok_or_else(|| {
            let levels: Vec<&str> = License::ALL.iter().map(|l| l.as_str()).collect();
            format!("expected one of {}, got `{text}`", levels.join(", "))
        })
    }
    fn show(&self) -> String {
        self.map(|l| l.as_str().to_owned()).unwrap_or_default()
    }
}

/// Comma-separated as text (`a.example, b.example`), an array in the file.
impl SettingType for Vec<String> {
    const PLACEHOLDER: &'static str = "TEXT";
    const REPEATABLE: bool = true;
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text),
                    other => Err(format!("expected strings, got {}", other.type_str())),
                })
                .collect(),
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected a list such as [\"hooks.example.com\"], got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.join(",")
    }
}

/// Connectors from the configuration, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preconfigured(pub BTreeMap<String, PreconfiguredConnector>);

/// One preconfigured connector; `Debug` never prints its secrets.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreconfiguredConnector {
    pub name: String,
    pub connector_type_id: String,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub secrets: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for PreconfiguredConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreconfiguredConnector")
            .field("name", &self.name)
            .field("connector_type_id", &self.connector_type_id)
            .field("config", &self.config)
            .field("secrets", &"***")
            .finish()
    }
}

/// A JSON object as text (flags, environment), tables in the file.
impl SettingType for Preconfigured {
    const PLACEHOLDER: &'static str = "JSON";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Preconfigured::default());
        }
        serde_json::from_str(text).map(Preconfigured).map_err(|e| format!("expected a JSON object of connectors by id: {e}"))
    }
    fn from_toml(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Table(table) => {
                toml::Value::Table(table).try_into().map(Preconfigured).map_err(|e| format!("expected [actions_preconfigured.<id>] tables: {e}"))
            }
            toml::Value::String(text) => Self::from_text(&text),
            other => Err(format!("expected [actions_preconfigured.<id>] tables, got {}", other.type_str())),
        }
    }
    /// The ids only: configs may hold URLs with tokens, secrets hold secrets.
    fn show(&self) -> String {
        self.0.keys().cloned().collect::<Vec<_>>().join(",")
    }
}

/// Empty text: not set.
impl SettingType for Option<Duration> {
    const PLACEHOLDER: &'static str = "DURATION";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() { Ok(None) } else { Duration::from_text(text.trim()).map(Some) }
    }
    fn show(&self) -> String {
        self.map(|d| d.show()).unwrap_or_default()
    }
}

/// Empty text is no secret.
impl SettingType for Option<Secret> {
    const PLACEHOLDER: &'static str = "SECRET";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok((!text.is_empty()).then(|| Secret(text.to_owned())))
    }
    fn show(&self) -> String {
        if self.is_some() { "***".to_owned() } else { String::new() }
    }
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

/// A network (`10.0.0.0/8`) or a single address (`127.0.0.1`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a network such as 10.0.0.0/8"))
}

/// Warden's variables that are not settings.
const ENV_OTHER: &[&str] = &["WARDEN_CONFIG"];

impl Layer {
    /// Sets the setting named `key` from text (a flag, a variable); `Ok(false)` if no setting has that name.
    pub fn set_text(&mut self, key: &str, text: &str) -> Result<bool, String> {
        self.set(key, toml::Value::String(text.to_owned()))
    }

    /// The file's settings; an unknown key is an error that names it.
    pub fn from_toml(text: &str) -> anyhow::Result<Layer> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let mut layer = Layer::default();
        for (key, value) in table {
            match layer.set(&key, value) {
                Ok(true) => {}
                Ok(false) => {
                    let known: Vec<&str> = SETTINGS.iter().map(|setting| setting.name).collect();
                    bail!("unknown key `{key}`; Warden reads {}", known.join(", "));
                }
                Err(e) => bail!("{key}: {e}"),
            }
        }
        Ok(layer)
    }

    /// The `WARDEN_*` variables among `vars`. A bad value is an error that names
    /// the variable. An unknown variable is ignored with a warning, returned so
    /// that it is logged once logging runs: Kubernetes sets `WARDEN_PORT`,
    /// `WARDEN_SERVICE_HOST`… in every pod when a service is named `warden`.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<(Layer, Vec<String>)> {
        let mut layer = Layer::default();
        let mut warnings = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("WARDEN_") || ENV_OTHER.contains(&name.as_str()) {
                continue;
            }
            match SETTINGS.iter().find(|setting| setting.env() == name) {
                Some(setting) => {
                    layer.set_text(setting.name, &value).map_err(|e| anyhow!("environment variable {name}: {e}"))?;
                }
                None => warnings.push(unknown_variable(&name)),
            }
        }
        Ok((layer, warnings))
    }
}

/// The warning for an unknown `WARDEN_*` variable, with the setting it may be a typo of.
fn unknown_variable(name: &str) -> String {
    let closest = SETTINGS.iter().map(Setting::env).map(|env| (edit_distance(&env, name), env)).min();
    match closest {
        Some((distance, env)) if distance <= 2 => format!("ignoring unknown environment variable {name}: did you mean {env}?"),
        _ => format!("ignoring unknown environment variable {name}: no setting has that name (`warden serve --help` lists them)"),
    }
}

/// Levenshtein distance: the fewest one-character insertions, deletions and substitutions from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, b) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(a != *b);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

impl Config {
    /// Flags over environment over file over defaults, then checked.
    pub fn resolve(flags: Layer, env: Layer, file: Layer) -> anyhow::Result<Config> {
        let mut config = flags.or(env).or(file).over(Config::default());
        config.public_base_path = normalize_base_path(&config.public_base_path)?;
        if config.agent_checkin_flush_interval.is_zero() || config.agent_offline_after.is_zero() {
            bail!("agent_checkin_flush_interval and agent_offline_after must be longer than zero");
        }
        if config.agent_cleanup_after.is_some_and(|after| after.is_zero()) || config.agent_cleanup_interval.is_zero() {
            bail!("agent_cleanup_after and agent_cleanup_interval must be longer than zero (leave agent_cleanup_after empty to keep agents)");
        }
        if config.task_poll_interval.is_zero() || config.task_lease < Duration::from_secs(1) || config.api_key_invalidation_interval.is_zero() {
            bail!("task_poll_interval and api_key_invalidation_interval must be longer than zero, task_lease at least 1s");
        }
        if config.task_max_workers == 0 || config.api_key_invalidation_batch_size == 0 {
            bail!("task_max_workers and api_key_invalidation_batch_size must be at least 1");
        }
        if config.api_key_removal_delay < config.rule_run_timeout {
            // A replaced key must outlive any run that may still hold it (reference 004).
            bail!(
                "api_key_removal_delay ({}) must be at least rule_run_timeout ({}): a rule run may still hold the key it replaced",
                humantime::format_duration(config.api_key_removal_delay),
                humantime::format_duration(config.rule_run_timeout)
            );
        }
        if config.rules_minimum_interval.is_zero() || config.rule_run_timeout.is_zero() {
            bail!("rules_minimum_interval and rule_run_timeout must be longer than zero");
        }
        if config.encryption_key.as_ref().is_some_and(|k| k.0.chars().count() < 32) {
            bail!("encryption_key must be at least 32 characters (e.g. the output of `openssl rand -base64 32`)");
        }
        if config.session_idle_timeout.is_zero() || config.session_lifetime.is_zero() {
            bail!("session_idle_timeout and session_lifetime must be longer than zero");
        }
        if !(config.database_url.starts_with("sqlite:")
            || config.database_url.starts_with("postgres://")
            || config.database_url.starts_with("postgresql://"))
        {
            bail!("database_url must start with sqlite: or postgres://");
        }
        Ok(config)
    }

    /// Loads the file (if any), reads the environment and applies `flags`. Also
    /// returns the warnings to log once logging runs (unknown `WARDEN_*` variables).
    pub fn load(file: Option<&Path>, flags: Layer) -> anyhow::Result<(Config, Vec<String>)> {
        let file_layer = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                Layer::from_toml(&text).with_context(|| format!("config file {}", path.display()))?
            }
            None => Layer::default(),
        };
        let (env, warnings) = Layer::from_env(std::env::vars())?;
        Ok((Config::resolve(flags, env, file_layer)?, warnings))
    }

    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }

    /// Every setting as text, for diagnostics and logs: secrets as `***`, the database URL without its password.
    pub fn summary(&self) -> BTreeMap<&'static str, String> {
        let mut summary = self.shown();
        summary.insert("database_url", self.database_url_redacted());
        summary
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

    use crate::cli::Cli;
    use clap::Parser;

    /// The layer and the warnings of an environment made of `pairs`.
    fn env_warnings(pairs: &[(&str, &str)]) -> anyhow::Result<(Layer, Vec<String>)> {
        Layer::from_env(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

    /// The layer of an environment made of `pairs`, which warns of nothing.
    fn env(pairs: &[(&str, &str)]) -> anyhow::Result<Layer> {
        let (layer, warnings) = env_warnings(pairs)?;
        assert_eq!(warnings, Vec::<String>::new());
        Ok(layer)
    }

    /// The settings given as flags to `warden serve`.
    fn flags(args: &[&str]) -> Layer {
        Cli::try_parse_from(["warden", "serve"].iter().chain(args)).unwrap().settings.flags
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
    fn preconfigured_connectors_come_from_tables_or_json_and_never_show_their_secrets() {
        let file = Layer::from_toml(
            "[actions_preconfigured.soc-hook]\nname = \"SOC hook\"\nconnector_type_id = \".webhook\"\n\
             config = { url = \"https://hooks.example.com/x\" }\nsecrets = { user = \"u\", password = \"hunter2\" }",
        )
        .unwrap();
        let config = Config::resolve(Layer::default(), Layer::default(), file).unwrap();
        let hook = &config.actions_preconfigured.0["soc-hook"];
        assert_eq!((hook.name.as_str(), hook.config["url"].as_str()), ("SOC hook", Some("https://hooks.example.com/x")));
        assert_eq!(hook.secrets["password"], "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.summary().get("actions_preconfigured").map(String::as_str), Some("soc-hook"));
        let json = env(&[("WARDEN_ACTIONS_PRECONFIGURED", r#"{"log": {"name": "Log", "connector_type_id": ".server-log"}}"#)]).unwrap();
        assert!(json.actions_preconfigured.unwrap().0.contains_key("log"));
        let err = Layer::from_toml("[actions_preconfigured.x]\nname = \"x\"\nconnector_type_id = \".server-log\"\nsurprise = 1").unwrap_err();
        assert!(err.to_string().contains("surprise"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = Layer::from_toml("listen = \"127.0.0.1:1\"\nlisten_port = 8080").unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_named_even_as_a_table() {
        let err = Layer::from_toml("[server]\nlisten = \"127.0.0.1:1\"").unwrap_err().to_string();
        assert!(err.contains("unknown key `server`"), "{err}");
    }

    #[test]
    fn unknown_env_variable_is_a_warning_that_names_it() {
        // What Kubernetes injects for a service named `warden`, a typo, and a setting.
        let (layer, warnings) = env_warnings(&[
            ("WARDEN_PORT", "tcp://10.96.0.7:8080"),
            ("WARDEN_SERVICE_HOST", "10.96.0.7"),
            ("WARDEN_LISTNE", "127.0.0.1:1"),
            ("WARDEN_LISTEN", "127.0.0.1:2000"),
        ])
        .unwrap();
        assert_eq!(layer.listen, Some("127.0.0.1:2000".parse().unwrap()));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("WARDEN_PORT") && warnings[0].contains("warden serve --help"), "{warnings:?}");
        assert!(warnings[1].contains("WARDEN_SERVICE_HOST"), "{warnings:?}");
        assert!(warnings[2].contains("WARDEN_LISTNE") && warnings[2].contains("did you mean WARDEN_LISTEN?"), "{warnings:?}");
        let config = Config::resolve(Layer::default(), layer, Layer::default()).unwrap();
        assert_eq!(config.listen.port(), 2000);
        // Not settings, but Warden's or not Warden's: no warning.
        assert!(env(&[("WARDEN_CONFIG", "x"), ("HOME", "/root"), ("WARDENX", "y")]).is_ok());
        // A known variable with a bad value still stops Warden.
        let err = env_warnings(&[("WARDEN_PORT", "x"), ("WARDEN_TASK_MAX_WORKERS", "many")]).unwrap_err().to_string();
        assert!(err.contains("WARDEN_TASK_MAX_WORKERS") && err.contains("expected a number"), "{err}");
    }

    #[test]
    fn typos_are_found_within_two_edits() {
        assert_eq!(edit_distance("WARDEN_LISTEN", "WARDEN_LISTEN"), 0);
        assert_eq!(edit_distance("WARDEN_LISTEN", "WARDEN_LISTNE"), 2);
        assert_eq!(edit_distance("WARDEN_SPA_DIR", "WARDEN_SPADIR"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert!(unknown_variable("WARDEN_PORT").contains("no setting"));
        assert!(unknown_variable("WARDEN_TASK_LEAS").contains("did you mean WARDEN_TASK_LEASE?"));
    }

    #[test]
    fn every_setting_has_a_file_key_an_env_variable_and_a_flag() {
        let help = Cli::try_parse_from(["warden", "serve", "--help"]).unwrap_err().to_string();
        let summary = Config::default().summary();
        for setting in SETTINGS {
            let (name, flag, env_name) = (setting.name, setting.flag(), setting.env());
            assert_eq!(env_name, format!("WARDEN_{}", name.to_uppercase()));
            assert_eq!(flag, name.replace('_', "-"));
            assert!(!setting.help.trim().is_empty(), "{name} has no help");
            // The default, given through each source, sets this setting and only it.
            let mut expected = Layer::default();
            assert_eq!(expected.set_text(name, setting.default), Ok(true), "{name}");
            assert_ne!(expected, Layer::default(), "{name}");
            assert_eq!(Layer::from_toml(&format!("{name} = {:?}", setting.default)).unwrap(), expected, "file key {name}");
            assert_eq!(env(&[(&env_name, setting.default)]).unwrap(), expected, "{env_name}");
            assert_eq!(flags(&[&format!("--{flag}"), setting.default]), expected, "--{flag}");
            assert_eq!(expected.over(Config::default()), Config::default(), "{name}");
            // `warden serve --help` tells all of it.
            assert!(help.contains(&format!("--{flag} <{}>", setting.placeholder)), "--{flag} in {help}");
            assert!(help.contains(&format!("[env: {env_name}")), "{env_name} in {help}");
            if !setting.default.is_empty() {
                assert!(help.contains(&format!("[default: {}]", setting.default)), "default of {name} in {help}");
            }
            assert!(summary.contains_key(name), "{name} in the summary");
        }
        let names: std::collections::BTreeSet<&str> = SETTINGS.iter().map(|setting| setting.name).collect();
        assert_eq!(names.len(), SETTINGS.len(), "a setting is declared twice");
        assert_eq!(summary.len(), SETTINGS.len());
    }

    #[test]
    fn file_then_env_then_flags_for_lists_durations_numbers_and_secrets() {
        let file = Layer::from_toml(
            "trusted_proxies = [\"10.0.0.5\"]\nsession_idle_timeout = \"1h\"\nsession_lifetime = \"12h\"\ntask_max_workers = 4\n\
             max_body_bytes = 100\nencryption_key = \"a file encryption key that is long enough\"\nspa_dir = \"/srv/file\"",
        )
        .unwrap();
        let environment = env(&[
            ("WARDEN_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
            ("WARDEN_SESSION_IDLE_TIMEOUT", "15m"),
            ("WARDEN_TASK_MAX_WORKERS", "6"),
            ("WARDEN_ENCRYPTION_KEY", "an environment encryption key, long enough"),
        ])
        .unwrap();
        let given =
            flags(&["--trusted-proxy", "192.168.0.1", "--trusted-proxies", "172.16.0.0/12", "--task-max-workers", "8", "--spa-dir", "/srv/x"]);
        let config = Config::resolve(given, environment.clone(), file.clone()).unwrap();
        assert_eq!(config.trusted_proxies, ["192.168.0.1/32".parse().unwrap(), "172.16.0.0/12".parse().unwrap()]);
        assert_eq!(config.task_max_workers, 8);
        assert_eq!(config.spa_dir, PathBuf::from("/srv/x"));
        assert_eq!(config.session_idle_timeout, Duration::from_secs(15 * 60));
        assert_eq!(config.encryption_key, Some(Secret("an environment encryption key, long enough".into())));
        assert_eq!(config.session_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(config.max_body_bytes, 100);
        assert_eq!(config.listen, Config::default().listen);

        let config = Config::resolve(Layer::default(), environment, file.clone()).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.task_max_workers, 6);
        let config = Config::resolve(Layer::default(), Layer::default(), file).unwrap();
        assert_eq!(config.trusted_proxies, ["10.0.0.5/32".parse().unwrap()]);
        assert_eq!(config.task_max_workers, 4);
        assert_eq!(config.encryption_key, Some(Secret("a file encryption key that is long enough".into())));
        // An empty value is a value: it overrides a weaker source (here: no key, no proxies).
        let empty = env(&[("WARDEN_ENCRYPTION_KEY", ""), ("WARDEN_TRUSTED_PROXIES", "")]).unwrap();
        let file = Layer::from_toml("encryption_key = \"a file encryption key that is long enough\"\ntrusted_proxies = [\"10.0.0.5\"]").unwrap();
        let config = Config::resolve(Layer::default(), empty, file).unwrap();
        assert_eq!((config.encryption_key, config.trusted_proxies), (None, vec![]));
    }

    #[test]
    fn durations_lists_numbers_and_secrets_are_read_or_refused_by_name() {
        for (text, seconds) in [("30s", 30), ("5m", 300), ("8h", 8 * 3600), ("30d", 30 * 24 * 3600), ("1h 30m", 5400)] {
            assert_eq!(Duration::from_text(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        assert_eq!(Vec::<IpNet>::from_text(" 127.0.0.1 ,10.0.0.0/8,, ").unwrap().len(), 2);
        assert!(Vec::<IpNet>::from_text("10.0.0.0/8,nowhere").unwrap_err().contains("nowhere"));
        assert_eq!(Option::<Secret>::from_text(""), Ok(None));
        let err = Layer::from_toml("max_body_bytes = -1").unwrap_err().to_string();
        assert!(err.contains("max_body_bytes"), "{err}");
        let err = Layer::from_toml("trusted_proxies = [1]").unwrap_err().to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
        let err = Layer::from_toml("log_format = \"xml\"").unwrap_err().to_string();
        assert!(err.contains("log_format") && err.contains("text or json"), "{err}");
        let err = Cli::try_parse_from(["warden", "serve", "--session-idle-timeout", "soon"]).unwrap_err().to_string();
        assert!(err.contains("--session-idle-timeout"), "{err}");
        let err = Cli::try_parse_from(["warden", "serve", "--trusted-proxy", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("nowhere"), "{err}");
        // The checks after resolution keep their messages.
        let short = env(&[("WARDEN_ENCRYPTION_KEY", "too short")]).unwrap();
        let err = Config::resolve(Layer::default(), short, Layer::default()).unwrap_err().to_string();
        assert!(err.contains("at least 32 characters"), "{err}");
        let err = Config::resolve(flags(&["--task-max-workers", "0"]), Layer::default(), Layer::default()).unwrap_err().to_string();
        assert!(err.contains("task_max_workers and api_key_invalidation_batch_size must be at least 1"), "{err}");
        let err = Config::resolve(flags(&["--task-lease", "10ms"]), Layer::default(), Layer::default()).unwrap_err().to_string();
        assert!(err.contains("task_lease at least 1s"), "{err}");
        let err = Config::resolve(flags(&["--public-base-path", "warden"]), Layer::default(), Layer::default()).unwrap_err().to_string();
        assert!(err.contains("public_base_path must be an absolute path"), "{err}");
        let config = Config::resolve(flags(&["--public-base-path", "/warden/"]), Layer::default(), Layer::default()).unwrap();
        assert_eq!(config.public_base_path, "/warden");
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
        let layer =
            env(&[("WARDEN_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"), ("WARDEN_SESSION_IDLE_TIMEOUT", "15m"), ("WARDEN_MAX_BODY_BYTES", "2048")])
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
        assert!(!format!("{:?}", config.summary()).contains("long enough"));
        assert_eq!(config.summary()["encryption_key"], "***");
        let flags = flags(&["--encryption-key", "an encryption key that is long enough"]);
        assert!(!format!("{flags:?}").contains("long enough"));
    }
}

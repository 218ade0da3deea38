//! The emulator's configuration: one TOML file (see `demo.toml`, which is also
//! the built-in default). Unknown keys are errors, so a typo does not silently
//! fall back to a default.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The built-in configuration: the demo tenant with 3 machines (one per
/// outcome) and 2 scripts.
pub const DEMO_TOML: &str = include_str!("../demo.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(deserialize_with = "duration", default = "default_token_lifetime")]
    pub token_lifetime: Duration,
    #[serde(deserialize_with = "duration", default = "default_action_delay")]
    pub action_delay: Duration,
    #[serde(default = "default_live_response_rate")]
    pub live_response_rate_per_minute: u32,
    #[serde(default)]
    pub machines: Vec<MachineConfig>,
    #[serde(default)]
    pub scripts: Vec<ScriptConfig>,
}

/// A client secret: compared, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// What a machine's actions do once `action_delay` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeed,
    Fail,
    /// Stays InProgress until cancelled.
    Hang,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MachineConfig {
    pub id: String,
    pub computer_dns_name: String,
    #[serde(default = "default_os_platform")]
    pub os_platform: String,
    #[serde(default = "default_health_status")]
    pub health_status: String,
    #[serde(default = "default_ip")]
    pub last_ip_address: String,
    #[serde(default)]
    pub machine_tags: Vec<String>,
    #[serde(default = "default_risk_score")]
    pub risk_score: String,
    #[serde(default = "default_outcome")]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScriptConfig {
    pub file_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub has_parameters: bool,
    #[serde(default)]
    pub parameters_description: Option<String>,
    /// The transcript's `script_output`.
    #[serde(default)]
    pub output: String,
    /// The transcript's `exit_code` (snake case, as in the transcript).
    #[serde(default, rename = "exit_code")]
    pub exit_code: i32,
    /// The transcript's `script_errors`.
    #[serde(default, rename = "script_errors")]
    pub script_errors: String,
}

#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The built-in demo configuration.
    pub fn demo() -> Result<Self, ConfigError> {
        Self::parse(DEMO_TOML)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [("tenant_id", &self.tenant_id), ("client_id", &self.client_id)] {
            if value.trim().is_empty() {
                return Err(ConfigError(format!("{name} must not be empty")));
            }
        }
        if self.client_secret.expose().is_empty() {
            return Err(ConfigError("client_secret must not be empty".into()));
        }
        if self.token_lifetime.is_zero() {
            return Err(ConfigError("token_lifetime must be longer than 0s".into()));
        }
        let mut ids = HashSet::new();
        for machine in &self.machines {
            if machine.id.is_empty() || machine.id.contains('/') {
                return Err(ConfigError(format!("machine id {:?} must be non-empty and have no '/'", machine.id)));
            }
            if !ids.insert(machine.id.as_str()) {
                return Err(ConfigError(format!("machine id {} appears twice", machine.id)));
            }
        }
        let mut names = HashSet::new();
        for script in &self.scripts {
            if !names.insert(script.file_name.as_str()) {
                return Err(ConfigError(format!("script {} appears twice", script.file_name)));
            }
        }
        Ok(())
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration (e.g. \"1h\", \"2s\"): {e}")))
}

fn default_token_lifetime() -> Duration {
    Duration::from_secs(3600)
}

fn default_action_delay() -> Duration {
    Duration::from_secs(2)
}

fn default_live_response_rate() -> u32 {
    10
}

fn default_os_platform() -> String {
    "Windows11".into()
}

fn default_health_status() -> String {
    "Active".into()
}

fn default_ip() -> String {
    "10.0.0.10".into()
}

fn default_risk_score() -> String {
    "None".into()
}

fn default_outcome() -> Outcome {
    Outcome::Succeed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configuration_has_one_machine_per_outcome_and_two_scripts() {
        let config = Config::demo().unwrap();
        let outcomes: Vec<Outcome> = config.machines.iter().map(|m| m.outcome).collect();
        assert_eq!(outcomes, [Outcome::Succeed, Outcome::Fail, Outcome::Hang]);
        assert_eq!(config.scripts.len(), 2);
        assert_eq!(config.token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn the_brief_example_parses_with_defaults_for_the_rest() {
        let config = Config::parse(
            r#"
            tenant_id = "t"
            client_id = "c"
            client_secret = "s"
            token_lifetime = "2s"
            action_delay = "0s"
            [[machines]]
            id = "mde-host-1"
            computerDnsName = "finance-ws-01.corp.example"
            osPlatform = "Windows11"
            healthStatus = "Active"
            outcome = "hang"
            [[scripts]]
            fileName = "collect-triage.ps1"
            description = "Collects triage data"
            hasParameters = true
            parametersDescription = "-Days N"
            output = "collected"
            "#,
        )
        .unwrap();
        assert_eq!(config.token_lifetime, Duration::from_secs(2));
        assert_eq!(config.action_delay, Duration::ZERO);
        assert_eq!(config.machines[0].outcome, Outcome::Hang);
        assert_eq!(config.live_response_rate_per_minute, 10);
    }

    #[test]
    fn mistakes_are_reported_not_defaulted() {
        let base = "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        for (extra, needle) in [
            ("token_lifetim = \"1h\"", "unknown field"),
            ("action_delay = \"soon\"", "is not a duration"),
            ("[[machines]]\nid = \"a\"\ncomputerDnsName = \"a\"\noutcome = \"explode\"", "unknown variant"),
            ("[[machines]]\nid = \"a\"\ncomputerDnsName = \"a\"\n[[machines]]\nid = \"a\"\ncomputerDnsName = \"b\"", "appears twice"),
            ("token_lifetime = \"0s\"", "longer than 0s"),
        ] {
            let error = Config::parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(error.contains(needle), "{extra}: {error}");
        }
    }

    #[test]
    fn the_secret_is_not_printed() {
        let config = Config::demo().unwrap();
        assert!(!format!("{config:?}").contains("warden-demo-secret"));
    }
}

//! The emulator's configuration: one TOML file (see `demo.toml`, which is also
//! the built-in default). Unknown keys are errors, so a typo does not silently
//! fall back to a default.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::policy;

/// The built-in configuration: one demo principal per provider (AWS, Azure,
/// Google Cloud), granted every permission Warden's templates require.
pub const DEMO_TOML: &str = include_str!("../demo.toml");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
}

/// Who may be checked, what must accompany it, and its policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    /// A role ARN, an Azure client id or a service account's email.
    pub id: String,
    /// The AWS external id, Azure tenant id or GCP audience.
    pub proof: Secret,
    /// Allowed actions (`*` and `?` wildcards, without case).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Denied actions: an explicit deny wins over any allow.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A proof (an external id or tenant id is a secret to Warden): compared,
/// never printed.
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
        let mut ids = HashSet::new();
        for principal in &self.principals {
            if principal.id.trim().is_empty() {
                return Err(ConfigError("a principal's id must not be empty".into()));
            }
            if !ids.insert(principal.id.as_str()) {
                return Err(ConfigError(format!("principal {} appears twice", principal.id)));
            }
            if principal.proof.expose().is_empty() {
                return Err(ConfigError(format!("principal {} needs a proof (external id, tenant id or audience)", principal.id)));
            }
            for action in principal.allow.iter().chain(&principal.deny) {
                policy::check_action(action).map_err(|e| ConfigError(format!("principal {}: {e}", principal.id)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_configuration_has_one_principal_per_provider() {
        let config = Config::demo().unwrap();
        let ids: Vec<&str> = config.principals.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["arn:aws:iam::123456789012:role/warden-demo", "warden-demo-client", "warden@warden-demo.iam.gserviceaccount.com"]);
        assert_eq!(config.principals[0].proof.expose(), "warden-demo-external-id");
        assert_eq!(config.principals[0].allow.len(), 10);
        assert!(config.principals.iter().all(|p| p.deny.is_empty()));
    }

    #[test]
    fn mistakes_are_reported_not_defaulted() {
        for (text, needle) in [
            ("[[principals]]\nid = \"a\"\nproof = \"p\"\nalow = [\"s3:GetObject\"]", "unknown field"),
            ("[[principals]]\nid = \"a\"\nallow = []", "missing field `proof`"),
            ("[[principals]]\nid = \"a\"\nproof = \"\"", "needs a proof"),
            ("[[principals]]\nid = \" \"\nproof = \"p\"", "must not be empty"),
            ("[[principals]]\nid = \"a\"\nproof = \"p\"\n[[principals]]\nid = \"a\"\nproof = \"q\"", "appears twice"),
            ("[[principals]]\nid = \"a\"\nproof = \"p\"\ndeny = [\"s3 Get\"]", "white space"),
            ("principal = []", "unknown field"),
        ] {
            let error = Config::parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn the_proof_is_not_printed() {
        let config = Config::demo().unwrap();
        assert!(!format!("{config:?}").contains("warden-demo-external-id"));
    }
}

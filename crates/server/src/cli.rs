//! The `warden` command line.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::LazyLock;

use anyhow::{Context, bail};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use warden_core::authz::Role;

use crate::config::{Config, Layer, SETTINGS, Setting};

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

/// `--config` and one flag per setting, all global: `warden serve --listen …`
/// and `warden --listen … serve` both work. The flags come from the settings
/// table (`config::SETTINGS`): `--name-in-kebab-case`, whose help names the
/// environment variable and the default.
#[derive(Debug, Clone, Default)]
pub struct SettingsArgs {
    /// The TOML file (`--config` or `WARDEN_CONFIG`).
    pub config: Option<PathBuf>,
    /// The settings given as flags.
    pub flags: Layer,
}

impl SettingsArgs {
    /// The resolved settings, and the warnings to log once logging runs.
    pub fn load(&self) -> anyhow::Result<(Config, Vec<String>)> {
        Config::load(self.config.as_deref(), self.flags.clone())
    }
}

/// Each setting's flag, derived from its name once (clap keeps `&'static str` names).
static FLAGS: LazyLock<Vec<String>> = LazyLock::new(|| SETTINGS.iter().map(Setting::flag).collect());

/// `--flag VALUE` for `setting`; the value is checked as the setting reads it.
fn setting_arg(setting: &'static Setting, flag: &'static str) -> Arg {
    let list = if setting.repeatable { ", comma-separated" } else { "" };
    let default = if setting.default.is_empty() { String::new() } else { format!(" [default: {}]", setting.default) };
    Arg::new(setting.name)
        .long(flag)
        .visible_aliases(setting.aliases.iter().copied())
        .value_name(setting.placeholder)
        .help(format!("{} [env: {}{list}]{default}", setting.help.trim(), setting.env()))
        .action(if setting.repeatable { ArgAction::Append } else { ArgAction::Set })
        .global(true)
        .value_parser(move |text: &str| Layer::default().set_text(setting.name, text).map(|_| text.to_owned()))
}

impl Args for SettingsArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let config = Arg::new("config")
            .long("config")
            .global(true)
            .env("WARDEN_CONFIG")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML config file");
        command.arg(config).args(SETTINGS.iter().zip(FLAGS.iter()).map(|(setting, flag)| setting_arg(setting, flag)))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for SettingsArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = SettingsArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(file) = matches.get_one::<PathBuf>("config") {
            self.config = Some(file.clone());
        }
        for setting in SETTINGS {
            // Repeated flags (a list's) add up as a comma-separated list would.
            let Some(values) = matches.get_many::<String>(setting.name) else { continue };
            let text = values.map(String::as_str).collect::<Vec<_>>().join(",");
            self.flags
                .set_text(setting.name, &text)
                .map_err(|e| clap::Error::raw(ErrorKind::ValueValidation, format!("--{}: {e}\n", setting.flag())))?;
        }
        Ok(())
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
    /// Replace a user's roles. Their sessions and API keys follow at once, and
    /// so do rules they own: a rule's actions check the owner's roles when they run.
    Roles {
        name: String,
        /// A role to hold from now on; repeat for more (the same names as for `add`)
        #[arg(long = "role", required = true, value_name = "ROLE")]
        roles: Vec<Role>,
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
        let cli =
            Cli::try_parse_from(["warden", "serve", "--listen", "127.0.0.1:9", "--public-base-path", "/warden/", "--trusted-proxy", "127.0.0.1"])
                .unwrap();
        let flags = &cli.settings.flags;
        assert_eq!(flags.listen.unwrap().port(), 9);
        assert_eq!(flags.public_base_path.as_deref(), Some("/warden/"));
        assert_eq!(flags.trusted_proxies.as_ref().unwrap().len(), 1);
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

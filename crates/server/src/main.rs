use anyhow::{Context, bail};
use clap::Parser;
use warden_server::cli::{Cli, Command, UserCommand};
use warden_server::{Application, db, demo, passwords, store, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("warden: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (mut config, warnings) = cli.settings.load()?;
    telemetry::init(config.log_format);
    // Found while resolving the settings, before logging could run (it needs log_format).
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve { demo } => {
            if demo && config.encryption_key.is_none() {
                tracing::warn!("no encryption_key set: using the demo key, which is public; never use it for real data");
                config.encryption_key = Some(warden_server::config::Secret(warden_server::crypto::DEMO_ENCRYPTION_KEY.into()));
            }
            if demo && config.license.is_none() {
                config.license = Some(warden_core::actions::License::Trial);
            }
            let app = Application::build(config).await?;
            if demo {
                demo::seed(&app.state().db, &app.state().passwords).await?;
                demo::seed_connectors(app.state(), app.local_addr()).await?;
                println!("{}", demo::logins_table());
            }
            let base = &app.state().config.public_base_path;
            println!("Warden is serving http://{}{base}/", app.local_addr());
            app.run_until_stopped().await
        }
        Command::User(command) => {
            let pool = db::connect(&config.database_url).await?;
            let result = user_command(&pool, command).await;
            pool.close().await;
            result
        }
    }
}

async fn user_command(pool: &db::Db, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, roles, full_name, password } => {
            let (password, generated) = password.resolve()?;
            let hash = passwords::hash_password(&password)?;
            match store::users::insert(pool, &name, full_name.as_deref(), &hash, &roles).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => bail!("user `{name}` already exists"),
                other => other.context("creating the user")?,
            };
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            println!("created user {name} with roles {}", roles.join(", "));
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Passwd { name, password } => {
            let (password, generated) = password.resolve()?;
            let hash = passwords::hash_password(&password)?;
            let mut tx = pool.begin().await?;
            if !store::users::set_password(&mut *tx, &name, &hash).await? {
                bail!("no user `{name}`");
            }
            let user = store::users::by_username(&mut *tx, &name).await?.context("user vanished")?;
            let ended = store::sessions::delete_for_user(&mut *tx, &user.id).await?;
            tx.commit().await?;
            println!("password changed for {name}; {ended} session(s) ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Roles { name, roles } => {
            if !store::users::set_roles(pool, &name, &roles).await? {
                bail!("no user `{name}`");
            }
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            println!("{name} now holds {}", roles.join(", "));
        }
        UserCommand::List => {
            println!("{:<20} {:<9} ROLES", "USERNAME", "ENABLED");
            for user in store::users::list(pool).await? {
                let roles: Vec<&str> = user.roles().iter().map(|r| r.as_str()).collect();
                println!("{:<20} {:<9} {}", user.username, if user.enabled() { "yes" } else { "no" }, roles.join(", "));
            }
        }
        UserCommand::Disable { name } => {
            let mut tx = pool.begin().await?;
            if !store::users::set_enabled(&mut *tx, &name, false).await? {
                bail!("no user `{name}`");
            }
            let user = store::users::by_username(&mut *tx, &name).await?.context("user vanished")?;
            let ended = store::sessions::delete_for_user(&mut *tx, &user.id).await?;
            tx.commit().await?;
            println!("disabled {name}; {ended} session(s) ended");
        }
        UserCommand::Enable { name } => {
            if !store::users::set_enabled(pool, &name, true).await? {
                bail!("no user `{name}`");
            }
            println!("enabled {name}");
        }
    }
    Ok(())
}

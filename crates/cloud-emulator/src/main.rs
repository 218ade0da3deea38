//! The `warden-cloud-emulator` binary: see the library's documentation and
//! `--help`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use warden_cloud_emulator::{Application, Config};

/// An emulator of a cloud's permission-check API (AWS IAM's policy simulator) for Warden's demos and tests.
///
/// Warden's cloud connector verifier checks a connector's credentials here:
/// set the connectors' cloud URL to the emulator's URL. One API for every
/// provider: an AWS role ARN, an Azure client id or a GCP service account is
/// a principal, and its external id, tenant id or audience the proof.
/// Routes:
///   POST /iam/simulate-principal-policy
///        {"PolicySourceArn":"<principal>","ExternalId":"<proof>","ActionNames":["s3:GetObject"],"MaxItems":100,"Marker":"…"}
///        200 {"EvaluationResults":[{"EvalActionName","EvalResourceName":"*",
///             "EvalDecision":"allowed|implicitDeny|explicitDeny"}],"IsTruncated":false,"Marker"?}
///        403 AccessDenied       unknown principal or wrong proof
///        400 ValidationError    no ActionNames, more than 1000, MaxItems outside 1..1000,
///                               a bad Marker or unreadable JSON
///        413                    a body over 256 KiB
///        Errors: {"Error":{"Type","Code","Message"},"RequestId"}. MaxItems defaults to 100;
///        a truncated page gives a Marker: send the same request with it for the next.
/// Admin routes (no auth):
///   POST /_emulator/grant      {"principal","action"}   add an allow (an explicit deny still wins)
///   POST /_emulator/revoke     {"principal","action"}   remove an allow
///   POST /_emulator/fail-next  {"status":500,"count":1,"retry_after":1}   the next simulate calls fail
///   POST /_emulator/hold       simulate calls wait (a verification stays in flight)
///   POST /_emulator/release    the held calls go on
///   GET  /_emulator/stats      {"calls","by_principal","access_denied","faults_pending","held","waiting"}
///   POST /_emulator/reset      back to the loaded configuration (grants, revocations,
///                              faults, counters and a hold forgotten)
///
/// Config (TOML): [[principals]] id, proof, allow = [actions], deny = [actions].
/// An explicit deny wins over an allow; action names compare without case,
/// and `*` / `?` are wildcards. Without --config: the demo principals of
/// crates/cloud-emulator/demo.toml, granted every permission Warden's policy
/// templates require:
///   AWS    arn:aws:iam::123456789012:role/warden-demo, external id warden-demo-external-id
///   Azure  client warden-demo-client, tenant warden-demo-tenant
///   GCP    warden@warden-demo.iam.gserviceaccount.com, audience
///          //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/warden/providers/warden
///
/// On start, prints one line to stdout: "Cloud emulator listening on
/// http://ADDR"; logs go to stderr (RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(name = "warden-cloud-emulator", version, verbatim_doc_comment)]
struct Cli {
    /// Where to listen; port 0 picks a free port (read it from the first stdout line)
    #[arg(long, default_value = "127.0.0.1:8093")]
    listen: SocketAddr,
    /// The TOML configuration (default: the built-in demo principals)
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only on a terminal: tests and scripts keep stderr in files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Config::demo(),
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            eprintln!("warden-cloud-emulator: {error}");
            return ExitCode::from(2);
        }
    };
    let principals = config.principals.len();
    let app = match Application::bind(cli.listen, config).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("warden-cloud-emulator: cannot listen on {}: {error}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = match app.local_addr() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("warden-cloud-emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "Cloud emulator listening on http://{address}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    tracing::info!(%address, principals, "cloud emulator started");
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("warden-cloud-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
}

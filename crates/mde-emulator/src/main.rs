//! The `warden-mde-emulator` binary: see the library's documentation and
//! `--help`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use warden_mde_emulator::{Application, Config};

/// An emulator of Microsoft Defender for Endpoint's API for Warden's demos and tests.
///
/// Serves Entra ID's token endpoint (POST /{tenantId}/oauth2/v2.0/token) and
/// MDE's API on one origin: point the connector's OAuth server URL and API
/// URL at it. Routes (Bearer token required):
///   GET  /api/machines                  ($filter eq/in/and, $top, $skip, $count, $orderby)
///   GET  /api/machines/{id}
///   POST /api/machines/{id}/isolate     {"Comment", "IsolationType": Full|Selective|UnManagedDevice}
///   POST /api/machines/{id}/unisolate   {"Comment"}
///   POST /api/machines/{id}/runliveresponse  {"Commands":[{"type":"RunScript","params":[{"key":"ScriptName","value":"x.ps1"}]}],"Comment"}
///   GET  /api/machineactions            ($filter on id, status, machineId, type, requestor; $top, $skip, $count, $orderby)
///   GET  /api/machineactions/{id}
///   POST /api/machineactions/{id}/cancel     {"Comment"}
///   GET  /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=0)
///   GET  /api/libraryfiles
///   GET  /_blob/{token}                 a result link's transcript (no auth)
/// Admin routes (no auth):
///   POST /_emulator/fail-next  {"status":429,"count":2,"retry_after":1}   the next API calls fail
///   GET  /_emulator/stats      {"tokens_issued","api_calls","by_route"}
///   POST /_emulator/reset      forget actions, faults, counters, isolation (tokens stay)
///   POST /_emulator/advance    {"by":"1h"}   move the emulator's clock forward
///
/// Machine actions are Pending for the first half of action_delay, InProgress
/// for the second, then Succeeded or Failed by the machine's outcome
/// (succeed | fail | hang: InProgress until cancelled). runliveresponse is
/// limited to live_response_rate_per_minute calls (429 + Retry-After).
///
/// Config keys (TOML): tenant_id, client_id, client_secret, token_lifetime
/// ("1h"), action_delay ("2s"), live_response_rate_per_minute (10),
/// [[machines]] id, computerDnsName, osPlatform, healthStatus, lastIpAddress,
/// machineTags, riskScore, outcome; [[scripts]] fileName, description,
/// hasParameters, parametersDescription, output, exit_code, script_errors.
/// Without --config: the demo tenant of crates/mde-emulator/demo.toml
/// (warden-demo-tenant / warden-demo-client / warden-demo-secret, 3 machines).
///
/// On start, prints one line to stdout: "MDE emulator listening on
/// http://ADDR"; logs go to stderr (RUST_LOG, default info).
#[derive(Debug, Parser)]
#[command(name = "warden-mde-emulator", version, verbatim_doc_comment)]
struct Cli {
    /// Where to listen; port 0 picks a free port (read it from the first stdout line)
    #[arg(long, default_value = "127.0.0.1:8092")]
    listen: SocketAddr,
    /// The TOML configuration (default: the built-in demo tenant)
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
            eprintln!("warden-mde-emulator: {error}");
            return ExitCode::from(2);
        }
    };
    let (tenant, machines) = (config.tenant_id.clone(), config.machines.len());
    let app = match Application::bind(cli.listen, config).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("warden-mde-emulator: cannot listen on {}: {error}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = match app.local_addr() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("warden-mde-emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "MDE emulator listening on http://{address}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    tracing::info!(%address, %tenant, machines, "MDE emulator started");
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("warden-mde-emulator: {error}");
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

//! `rxbridge`: the one binary. `serve` runs the service; the other commands administer the
//! same data directory (the server may be running).

mod cli;
mod commands;
mod signal;

use clap::Parser as _;
use cli::{Cli, Command};
use commands::*;
use rxbridge::Config;
use rxbridge_app::registers::Register;
use std::process::ExitCode;

/// mimalloc: a request allocates many small strings (one per field of a prescription) and
/// frees them on other threads; it takes a fraction of the system allocator's time for that
/// (`bench/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logs();
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    match cli.command {
        Command::Serve { listen, demo } => serve::run(config, listen, demo).await?,
        Command::PrescriberKey { command } => {
            with_app(config, async |app| prescriber_key::run(app, command).await).await?
        }
        Command::Clinic { command } => clinic::run(config, command).await?,
        Command::Dev { command } => dev::run(config, command).await?,
        Command::Staff { command } => staff::run(config, command).await?,
        Command::Rules { markdown } => rules::run(config, markdown)?,
        Command::Export { command } => export::run(config, command).await?,
        Command::Webhook { command } => webhook::run(config, command).await?,
        Command::Outbox { command } => outbox::run(config, command).await?,
        Command::CdRegister { command } => {
            return registers::run(config, Register::Cd, command).await;
        }
        Command::PomRegister { command } => {
            return registers::run(config, Register::Pom, command).await;
        }
        Command::Payments { command } => return payments::run(config, command).await,
        Command::Audit { command } => return audit::run(config, command).await,
    }
    Ok(ExitCode::SUCCESS)
}

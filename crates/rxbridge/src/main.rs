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

/// JSON lines on stderr, written by a thread of their own: a request formats its lines and
/// queues them; the writer thread writes all that is queued at once and flushes when the queue
/// is empty. Nothing is dropped (a full queue makes the logging thread wait), and the returned
/// guard flushes the rest when `main` ends.
fn init_logs() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        // A stalled stderr holds back at most this many lines (then logging waits), not the
        // default 128 000, which could take tens of MiB of the memory budget.
        .buffered_lines_limit(4096)
        .thread_name("rxbridge-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_writer(writer)
        .init();
    guard
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let logs = init_logs();
    let ran = run().await;
    // The log lines written so far go out before the error that ends the process.
    drop(logs);
    match ran {
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
        Command::Eps { command } => eps::run(config, command).await?,
        Command::CdRegister { command } => {
            return registers::run(config, Register::Cd, command).await;
        }
        Command::PomRegister { command } => {
            return registers::run(config, Register::Pom, command).await;
        }
        Command::Payments { command } => return payments::run(config, command).await,
        Command::Audit { command } => return audit::run(config, command).await,
        Command::Store { command } => return store::run(config, command),
    }
    Ok(ExitCode::SUCCESS)
}

//! `rxbridge cd-register|pom-register verify|print`: the Controlled Drugs and POM registers.

use super::export::write_report;
use crate::cli::RegisterCommand;
use rxbridge::{App, Config};
use rxbridge_app::registers::Register;
use std::process::ExitCode;

pub async fn run(
    config: Config,
    register: Register,
    command: RegisterCommand,
) -> anyhow::Result<ExitCode> {
    super::with_app(config, async |app| {
        register_cmd(app, register, command).await
    })
    .await
}

async fn register_cmd(
    app: &App,
    register: rxbridge_app::registers::Register,
    command: RegisterCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use rxbridge_app::registers::RegisterStore;
    match command {
        RegisterCommand::Verify => {
            let entries = app.store.register_entries(register, None).await?;
            match rxbridge_app::registers::verify(&entries) {
                Ok(n) => println!("ok: {n} entries, links, hashes and balances intact"),
                Err(e) => {
                    println!("BROKEN: {e}");
                    return Ok(std::process::ExitCode::from(2));
                }
            }
        }
        RegisterCommand::Print {
            section,
            format,
            out,
        } => match section {
            None => {
                for s in app.store.register_sections(register).await? {
                    let b = app.store.register_balance(register, &s).await?;
                    println!("{s}\tbalance {b}");
                }
            }
            Some(s) => {
                let r = app.fulfilment.register_report(register, &s, "cli").await?;
                write_report(&r, &format, out.as_deref())?;
            }
        },
    }
    Ok(std::process::ExitCode::SUCCESS)
}

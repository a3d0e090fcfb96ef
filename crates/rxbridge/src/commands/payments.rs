//! `rxbridge payments sweep`: one run of the payments sweep.

use crate::cli::PaymentsCommand;
use rxbridge::{App, Config};
use std::process::ExitCode;

pub async fn run(config: Config, command: PaymentsCommand) -> anyhow::Result<ExitCode> {
    let PaymentsCommand::Sweep = command;
    let app = App::open(config)?;
    let r = app.payments.tick().await;
    app.store.close();
    let r = r?;
    println!(
        "links sent {}, reminders {}, cancelled {}, expired {}, refunded {}, failures {}",
        r.links_sent, r.reminders_sent, r.cancelled, r.expired, r.refunded, r.failures
    );
    if r.failures > 0 {
        return Ok(std::process::ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

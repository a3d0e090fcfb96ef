//! `rxbridge outbox list|replay`: messages waiting for, or given up on, delivery.

use crate::cli::OutboxCommand;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: OutboxCommand) -> anyhow::Result<()> {
    super::with_app(config, async |app| outbox_cmd(app, command).await).await
}

async fn outbox_cmd(app: &App, command: OutboxCommand) -> anyhow::Result<()> {
    match command {
        OutboxCommand::List { status, limit } => {
            for m in app.outbox.store().messages(status, limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}\t{}",
                    m.message.id,
                    m.message.created_at,
                    m.message.destination,
                    m.message.event_type,
                    m.attempts,
                    m.last_error.unwrap_or_default()
                );
            }
        }
        OutboxCommand::Replay { all, id } => {
            if !all && id.is_empty() {
                anyhow::bail!("say which: --all or --id msg_…");
            }
            let n = app.outbox.replay(if all { None } else { Some(id) }).await?;
            println!("{n} message(s) back in the queue");
        }
    }
    Ok(())
}

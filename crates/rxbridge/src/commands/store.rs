//! `rxbridge store status|migrate`: the embedded store's schema version against this build's,
//! and the upgrade in place. Every command upgrades an older data directory when it opens it;
//! these two let an operator see an upgrade coming and run it on its own, with the server
//! stopped and a backup taken.

use clap::Subcommand;
use rxbridge::Config;
use rxbridge_store_sqlite::{SCHEMA_VERSION, schema_version, upgrade};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// The data directory's schema version and this build's. Changes nothing (no database is
    /// created). Exit 0 when they match, 3 when this build would upgrade the directory.
    #[command(after_help = "Example:\n  rxbridge --data-dir /var/lib/rxbridge store status")]
    Status,
    /// Upgrade the data directory's schema in place to this build's, each step in one
    /// transaction (a step that fails changes nothing). Stop the server and take a backup
    /// first: a server of the earlier version refuses every write once the file is upgraded.
    #[command(after_help = "Example:\n  rxbridge --data-dir /var/lib/rxbridge store migrate")]
    Migrate,
}

pub fn run(config: Config, command: StoreCommand) -> anyhow::Result<ExitCode> {
    let path = config.db_path();
    let no_database = || {
        anyhow::anyhow!(
            "there is no database at {} (any other command creates one, at schema {SCHEMA_VERSION})",
            path.display()
        )
    };
    let found = schema_version(&path)?.ok_or_else(no_database)?;
    if found > SCHEMA_VERSION {
        anyhow::bail!(
            "{} is at schema {found}, newer than this build's {SCHEMA_VERSION}: run a newer rxbridge",
            path.display()
        );
    }
    match command {
        StoreCommand::Status => {
            println!("database: {}", path.display());
            println!("schema: {found} (this build: {SCHEMA_VERSION})");
            if found == SCHEMA_VERSION {
                println!("up to date");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "upgrade pending: steps {}; stop the server, take a backup, then run `rxbridge store migrate`",
                steps((found + 1..=SCHEMA_VERSION).collect::<Vec<_>>().as_slice())
            );
            Ok(ExitCode::from(3))
        }
        StoreCommand::Migrate => {
            let (found, applied) = upgrade(&path)?;
            if applied.is_empty() {
                println!(
                    "{}: schema {found} is this build's; nothing to do",
                    path.display()
                );
            } else {
                println!(
                    "{}: upgraded from schema {found} to {SCHEMA_VERSION} (steps {}); check it with `rxbridge audit verify`",
                    path.display(),
                    steps(&applied)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn steps(versions: &[usize]) -> String {
    versions
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

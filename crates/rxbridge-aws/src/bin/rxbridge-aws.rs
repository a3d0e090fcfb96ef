//! The operator's tool for a deployed stage, run with AWS credentials from a workstation:
//! move data in from the embedded store, export it back out, add clinics and staff, verify the
//! event chain. `--endpoint` (or `RXBRIDGE_AWS_ENDPOINT`) targets a local stand-in instead.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rxbridge_app::Clock;
use rxbridge_store_dynamodb::DynamoStore;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "rxbridge-aws", version, about)]
struct Cli {
    /// The stage's table (the stack's `TableName` output).
    #[arg(long, env = "RXBRIDGE_TABLE")]
    table: String,
    /// A local stand-in (moto_server) instead of AWS.
    #[arg(long, env = "RXBRIDGE_AWS_ENDPOINT")]
    endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load an `rxbridge export all` file into the (new, empty) table; verifies the chain after.
    Import {
        #[arg(long)]
        file: PathBuf,
    },
    /// Every record and event of the table, as JSON Lines (the same format).
    Export {
        /// Refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create the table (local stand-ins only; on AWS the CDK stack owns it).
    CreateTable,
    /// Walk the event chain and report.
    Verify,
    /// Clinics: `clinic add NAME` prints its sandbox and live keys, once.
    Clinic {
        #[command(subcommand)]
        command: ClinicCommand,
    },
    /// Staff accounts (a pharmacist's, with the GPhC number, before their first Cognito sign-in).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
}

#[derive(Subcommand)]
enum ClinicCommand {
    Add { name: String },
}

#[derive(Subcommand)]
enum StaffCommand {
    Add {
        email: String,
        #[arg(long, value_parser = ["support", "pharmacist", "finance", "admin"])]
        role: String,
        #[arg(long)]
        gphc: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sdk = match &cli.endpoint {
        Some(url) => rxbridge_aws::local_sdk_config(url),
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    };
    let store = Arc::new(DynamoStore::with_client(
        aws_sdk_dynamodb::Client::new(&sdk),
        &cli.table,
    ));
    let clock: Arc<dyn Clock> = Arc::new(rxbridge_app::SystemClock);
    match cli.command {
        Command::CreateTable => {
            store.create_table().await?;
            println!("created table {}", cli.table);
        }
        Command::Import { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let counts =
                rxbridge_app::transfer::import(&*store, std::io::BufReader::new(f)).await?;
            let chain = rxbridge_app::audit::verify_chain(&*store).await?;
            println!(
                "imported {} records {}; the event chain verifies ({} events)",
                counts.total(),
                serde_json::to_string(&counts.0)?,
                chain.events
            );
        }
        Command::Export { out } => {
            // Owner-only: the file holds password hashes and keyed lookup hashes.
            let f = rxbridge::create_secret_file(&out)?;
            let mut w = std::io::BufWriter::new(f);
            let counts = rxbridge_app::transfer::export(&*store, &mut w).await?;
            w.into_inner()
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?
                .sync_all()?;
            println!("exported {} records to {}", counts.total(), out.display());
        }
        Command::Verify => {
            match rxbridge_app::audit::verify_all(&*store, &*store, &*store).await? {
                Ok(lines) => {
                    // The first line is the event chain's: "N events, chain intact (head …)".
                    let mut lines = lines.iter();
                    if let Some(first) = lines.next() {
                        println!("the event chain verifies: {first}");
                    }
                    lines.for_each(|l| println!("ok: {l}"));
                }
                Err(lines) => {
                    lines.iter().for_each(|l| println!("BROKEN: {l}"));
                    std::process::exit(2);
                }
            }
        }
        Command::Clinic {
            command: ClinicCommand::Add { name },
        } => {
            let c = rxbridge_app::clinics::Clinics::new(store.clone(), clock)
                .add(&name)
                .await?;
            println!("clinic  {}", c.clinic_id);
            println!("sandbox {}", c.test_key);
            println!("live    {}", c.live_key);
            println!("(shown once: give them to the clinic over a secure channel)");
        }
        Command::Staff {
            command: StaffCommand::Add { email, role, gphc },
        } => {
            let role = rxbridge_app::staff::Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            let (a, _) = rxbridge_app::staff::StaffService::new(store.clone(), clock)
                .add(&email, role, gphc.as_deref())
                .await?;
            println!(
                "staff {} ({}) added: they sign in with Cognito (group {})",
                a.email,
                a.id,
                role.as_str()
            );
        }
    }
    Ok(())
}

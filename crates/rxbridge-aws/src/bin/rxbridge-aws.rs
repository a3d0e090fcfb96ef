//! The operator's tool for a deployed stage, run with AWS credentials from a workstation:
//! move data in from the embedded store, export it back out, add clinics and staff, verify the
//! chains and state tables (against anchors too) and take an anchor. `--endpoint` (or `RXBRIDGE_AWS_ENDPOINT`) targets a local stand-in instead.

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
    /// Walk the event and register chains, compare every state table with the event log and,
    /// with anchors, check no chain is shorter than an anchor saw or differs at its length.
    /// Exit 2 naming each difference.
    Verify {
        /// A signed anchor (from the anchor bucket or `rxbridge-aws anchor`).
        #[arg(long)]
        anchor: Vec<PathBuf>,
        /// The anchor key's public half (64 hex) kept outside AWS; default: the one the stage
        /// recorded with its key.
        #[arg(long, env = "RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY")]
        anchor_public_key: Option<String>,
    },
    /// Once, after upgrading from a version without state binding: bind every item that names
    /// no event into `state.adopted` events, as found (the guard refuses unbound items).
    AdoptState,
    /// Print (or write to FILE) a signed anchor of every chain's head (needs KMS Decrypt).
    Anchor {
        #[arg(long)]
        out: Option<PathBuf>,
        /// The key that wraps the patient-data key (the stack's `KmsKeyId` output).
        #[arg(long, env = "RXBRIDGE_KMS_KEY_ID")]
        kms_key_id: String,
    },
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
        Command::Verify {
            anchor,
            anchor_public_key,
        } => {
            let (mut ok, mut broken) =
                match rxbridge_app::audit::verify_all(&*store, &*store, &*store).await? {
                    Ok(lines) => (lines, vec![]),
                    Err(lines) => (vec![], lines),
                };
            if !anchor.is_empty() {
                let trusted = match anchor_public_key {
                    Some(h) => {
                        let b: [u8; 32] = hex::decode(h.trim())
                            .ok()
                            .and_then(|b| b.try_into().ok())
                            .context("the anchor public key must be 64 hex characters")?;
                        rxbridge_app::anchor::AnchorPublicKey::from_bytes(&b)?
                    }
                    None => rxbridge_aws::anchors::recorded_public_key(&store)
                        .await?
                        .context("the stage has no anchor key yet; pass --anchor-public-key")?,
                };
                rxbridge::anchors::check_files(
                    &anchor,
                    &trusted,
                    &*store,
                    &*store,
                    &mut ok,
                    &mut broken,
                )
                .await?;
            }
            // The first line is the event chain's: "N events, chain intact (head …)".
            let mut lines = ok.iter();
            if let Some(first) = lines.next() {
                println!("the event chain verifies: {first}");
            }
            lines.for_each(|l| println!("ok: {l}"));
            if !broken.is_empty() {
                broken.iter().for_each(|l| println!("BROKEN: {l}"));
                std::process::exit(2);
            }
        }
        Command::AdoptState => {
            let n = store.adopt_unbound().await?;
            println!("bound {n} item(s) written before state binding");
        }
        Command::Anchor { out, kms_key_id } => {
            let vault = rxbridge_aws::keys::patient_vault(
                &aws_sdk_kms::Client::new(&sdk),
                &store,
                &kms_key_id,
            )
            .await?;
            let key = rxbridge_aws::anchors::anchor_key(&store, &vault).await?;
            let a =
                rxbridge_app::anchor::take(&*store, &*store, &key, jiff::Timestamp::now()).await?;
            rxbridge::anchors::print_or_write(&a, out.as_deref())?;
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

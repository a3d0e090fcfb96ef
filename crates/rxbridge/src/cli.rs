//! The command line: every command, option and argument, with the help text that `--help`
//! prints and `docs/cli.md` is generated from (`rxbridge dev cli-reference`).

use crate::prescriber_key_cli;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rxbridge",
    version,
    about = "Prescription integration for a UK online pharmacy"
)]
pub struct Cli {
    /// Data directory [env: RXBRIDGE_DATA_DIR] [default: ./rxbridge-data]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Optional TOML config file (see docs/configuration.md)
    #[arg(long, global = true, env = "RXBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve {
        /// HOST:PORT [env: RXBRIDGE_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<String>,
        /// Create a demo clinic if none exists and print its sandbox key and a ready curl.
        #[arg(long)]
        demo: bool,
    },
    /// Manage clinics and their API keys.
    Clinic {
        #[command(subcommand)]
        command: ClinicCommand,
    },
    /// List the compliance rules (code, severity, citation) and the thresholds in force.
    Rules {
        /// Print the Markdown table used in the README.
        #[arg(long)]
        markdown: bool,
    },
    /// Manage staff accounts (portal sign-in).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Developer tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// The hash-chained event log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Month-end exports for finance (CSV or printable PDF).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Payments housekeeping.
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// Webhook endpoints (warehouse and clinics) and their secrets.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Messages waiting for, or given up on, delivery.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The Controlled Drugs register.
    CdRegister {
        #[command(subcommand)]
        command: RegisterCommand,
    },
    /// The POM register (private non-CD supplies).
    PomRegister {
        #[command(subcommand)]
        command: RegisterCommand,
    },
    /// Prescribers' public keys for the signatures on electronic private prescriptions.
    PrescriberKey {
        #[command(subcommand)]
        command: prescriber_key_cli::PrescriberKeyCommand,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Point a destination at a URL; prints the new signing secret (shown once).
    Set {
        /// `warehouse:test`, `warehouse:live`, or `clinic:<clinic id>:<test|live>`.
        #[arg(long)]
        destination: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        json: bool,
    },
    /// A new signing secret; the previous one keeps signing beside it until the next rotation.
    RotateSecret {
        #[arg(long)]
        destination: String,
    },
    /// Endpoints and their state.
    List,
    /// Print a fresh `whsec_` secret (for `warehouse.inbound_secrets`).
    NewSecret,
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Messages with a status (newest first).
    List {
        #[arg(long, default_value = "dead", value_parser = ["pending", "delivered", "dead", "no_endpoint"])]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put dead messages back in the queue.
    Replay {
        /// Every dead message.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// These messages (msg_…).
        #[arg(long)]
        id: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum RegisterCommand {
    /// Walk the register: hash links, contents and running balances.
    Verify,
    /// Print one section (a product code; `test/…` for sandbox data), or list the sections.
    Print {
        #[arg(long)]
        section: Option<String>,
        #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The month, YYYY-MM (London calendar).
    #[arg(long, value_parser = parse_month)]
    pub month: rxbridge_app::finance::Month,
    #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
    pub format: String,
    /// Write here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which data: live (default) or test (sandbox).
    #[arg(long, default_value = "live", value_parser = ["test", "live"])]
    pub mode: String,
}

pub fn parse_month(s: &str) -> Result<rxbridge_app::finance::Month, String> {
    rxbridge_app::finance::Month::parse(s)
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// The NHS claim: every NHS item supplied, with exemption, evidence and charge; FP34C totals.
    NhsClaim(ExportArgs),
    /// Private Schedule 2/3 prescriptions for the FP34PCD submission to NHSBSA.
    Fp34pcd(ExportArgs),
    /// Payments, refunds and fees, with every difference listed.
    Payments(ExportArgs),
    /// Everything — every record and event, for moving to another store (`rxbridge-aws
    /// import`). JSON Lines; patient data stays sealed, keys stay hashed. Sessions excepted.
    All {
        /// Write here (refuses to overwrite; default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The ERP file: every order released to the warehouse on a day, one row per line.
    Orders {
        /// YYYY-MM-DD (London).
        #[arg(long)]
        date: jiff::civil::Date,
        #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "live", value_parser = ["test", "live"])]
        mode: String,
    },
}

#[derive(Subcommand)]
pub enum PaymentsCommand {
    /// Run the sweep once: unsent links, reminders, overdue cancellations, owed refunds.
    Sweep,
}

#[derive(Subcommand)]
pub enum ClinicCommand {
    /// Create a clinic; prints its id, sandbox key and live key (shown once).
    Add {
        #[arg(long)]
        name: String,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new key; the old key of that mode stops working at once.
    RotateKey {
        /// The clinic id (cl_…).
        #[arg(long = "clinic", alias = "clinic-id")]
        clinic: String,
        /// Which key to rotate.
        #[arg(long, default_value = "test", value_parser = ["test", "live"])]
        mode: String,
        #[arg(long)]
        json: bool,
    },
    /// List clinics.
    List,
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Create an account; prints a one-time password that must be changed at first sign-in.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["support", "pharmacist", "finance", "admin"])]
        role: String,
        /// GPhC registration number (required for pharmacists: 7 digits starting with 2).
        #[arg(long)]
        gphc: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DevCommand {
    /// A local stand-in warehouse: receives orders, posts dispatched and delivered back.
    WarehouseSim {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
        /// rxbridge's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        rxbridge: String,
        /// The secret rxbridge signs orders with (`rxbridge webhook set` printed it).
        #[arg(long, env = "RXBRIDGE_SIM_ORDER_SECRET")]
        order_secret: String,
        /// The secret to sign events with (one of rxbridge's warehouse.inbound_secrets).
        #[arg(long, env = "RXBRIDGE_SIM_EVENT_SECRET")]
        event_secret: String,
        #[arg(long, default_value = "test", value_parser = ["test", "live"])]
        mode: String,
        /// Units of each Schedule 2 product to book in at start.
        #[arg(long, default_value_t = 1000)]
        stock: i64,
        /// Milliseconds between the steps of each order.
        #[arg(long, default_value_t = 500)]
        delay_ms: u64,
    },
    /// Fill the data directory with synthetic prescriptions (benchmarks, scale tests).
    Seed {
        /// The clinic to own them (created as "Seed Clinic" when omitted).
        #[arg(long)]
        clinic: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// How many distinct patients the prescriptions cycle through.
        #[arg(long, default_value_t = 5_000)]
        patients: u64,
        /// Extra prescriptions for one patient (a long history).
        #[arg(long, default_value_t = 0)]
        hot_patient: u64,
        #[arg(long, default_value = "test", value_parser = ["test", "live"])]
        mode: String,
    },
    /// Sign a prescription as a prescriber's system does (for sandbox testing): reads the JSON
    /// submission from FILE (or standard input with -), prints it with `signature.jws` set to
    /// a detached JWS over its RFC 8785 canonical form.
    ///
    /// Example: rxbridge dev sign --private-key prescriber.pem --kid dr-shah-1 < rx.json
    Sign {
        /// The prescriber's private key (PKCS#8 PEM, EC or RSA). Never the production key.
        #[arg(long = "private-key", value_name = "FILE")]
        private_key: PathBuf,
        /// The key id registered with `rxbridge prescriber-key add`.
        #[arg(long)]
        kid: String,
        /// ES256, ES384, RS256 or PS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// The submission to sign; - for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the event chain and the register chains, then replay the log and compare every
    /// state table with it; with anchors, check no chain is shorter than an anchor saw or
    /// differs at its length. Names each difference (exit 2).
    Verify {
        /// A signed anchor (from `audit anchor` or the witness) to check the chains against.
        #[arg(long)]
        anchor: Vec<std::path::PathBuf>,
    },
    /// Print (or write to FILE) a signed statement of every chain's head.
    Anchor {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

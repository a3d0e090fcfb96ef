//! The command line: every command, option and argument, with the help text that `--help`
//! prints and `docs/cli.md` is generated from (`rxbridge dev cli-reference`; a test fails when
//! they drift, another when an option has no description or a command no example).
//!
//! `--mode` has no default where a wrong guess touches real data or credentials (exports,
//! `clinic rotate-key`): the caller says `test` or `live`. The developer tools that only make
//! synthetic data or stand in for the warehouse (`dev seed`, `dev warehouse-sim`) default to
//! `test`, the sandbox, which is the only safe default.

use crate::commands::{prescriber_key, store};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory as _, Parser, Subcommand};
use rxbridge_app::Mode;
use rxbridge_app::outbox::MessageStatus;
use rxbridge_app::staff::Role;
use std::path::PathBuf;

/// One of `accepted` (shown in `--help` as the possible values), parsed to its type: anything
/// else is refused by name with the accepted values listed, never read as a default.
fn one_of<T: Clone + Send + Sync + 'static>(
    accepted: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(accepted.iter().copied()).try_map(move |s| {
        parse(&s).ok_or_else(|| format!("{s:?} is not one of {}", accepted.join(", ")))
    })
}

#[derive(Parser)]
#[command(
    name = "rxbridge",
    version,
    about = "Prescription integration for a UK online pharmacy",
    long_about = "Prescription integration for a UK online pharmacy.\n\n\
`serve` runs the service (clinic API, staff portal, payments, warehouse hand-off); every other \
command administers the same data directory and may run while the server does. Settings come \
from the config file, then RXBRIDGE_* environment variables (docs/configuration.md).",
    after_help = "Example:\n  rxbridge --data-dir ./rxbridge-data serve --demo\n  rxbridge help export"
)]
pub struct Cli {
    /// Data directory: database, key file, documents, mail [env: RXBRIDGE_DATA_DIR] [default:
    /// ./rxbridge-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (docs/configuration.md); settings not in it keep their defaults
    #[arg(
        long,
        global = true,
        env = "RXBRIDGE_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    #[command(
        after_help = "Example:\n  rxbridge serve --listen 0.0.0.0:8080\n  rxbridge serve --demo"
    )]
    Serve {
        /// HOST:PORT to listen on [env: RXBRIDGE_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
        /// Create a demo clinic and demo staff (pharmacist, support, finance, admin) if none
        /// exist, and print the sandbox key, the demo accounts and a ready curl. An account's
        /// one-time password is printed only while it still signs in; once changed, use
        /// `rxbridge staff reset-password`.
        #[arg(long)]
        demo: bool,
    },
    /// Manage clinics and their API keys.
    Clinic {
        #[command(subcommand)]
        command: ClinicCommand,
    },
    /// List the compliance rules (code, severity, citation) and the thresholds in force.
    #[command(after_help = "Example:\n  rxbridge rules\n  rxbridge rules --markdown")]
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
    /// Developer tools: a stand-in warehouse, synthetic data, signing, this reference.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// The hash-chained event log: verify it, sign its head.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The embedded store's schema: see whether this build would upgrade it, and upgrade it.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// Exports: the month's NHS claim, FP34PCD and payments; a day's warehouse orders; or
    /// everything, for moving to another store.
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
    /// NHS EPS dispensing (needs the eps settings): release, notify, claim.
    Eps {
        #[command(subcommand)]
        command: EpsCommand,
    },
    /// The Controlled Drugs register (Schedule 2: receipts, supplies, running balances).
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
        command: prescriber_key::PrescriberKeyCommand,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Point a destination at a URL; prints the new signing secret (shown once).
    ///
    /// The URL must be https on a public address; plain http and private, loopback or
    /// link-local targets are allowed only for test-mode destinations with
    /// webhooks.allow_private_targets = true.
    #[command(
        after_help = "Example:\n  rxbridge webhook set --destination clinic:cl_…:live --url https://clinic.example/hooks"
    )]
    Set {
        /// `warehouse:test`, `warehouse:live`, or `clinic:<clinic id>:<test|live>`.
        #[arg(long)]
        destination: String,
        /// Where deliveries are POSTed (https).
        #[arg(long)]
        url: String,
        /// Print exactly one JSON object: {"endpoint_id", "destination", "url", "secret"}.
        #[arg(long)]
        json: bool,
    },
    /// A new signing secret; the previous one keeps signing beside it until the next rotation.
    #[command(
        after_help = "Example:\n  rxbridge webhook rotate-secret --destination warehouse:live"
    )]
    RotateSecret {
        /// The destination whose secret to rotate (as for `webhook set`).
        #[arg(long)]
        destination: String,
    },
    /// Endpoints and their state.
    #[command(after_help = "Example:\n  rxbridge webhook list")]
    List,
    /// Print a fresh `whsec_` secret (for `warehouse.inbound_secrets`).
    #[command(after_help = "Example:\n  rxbridge webhook new-secret")]
    NewSecret,
}

#[derive(Subcommand)]
pub enum EpsCommand {
    /// Release the prescriptions nominated to the pharmacy and take each one in (recorded,
    /// matched with the clinic's own, or returned to EPS when it cannot be taken).
    #[command(
        after_help = "Example:\n  rxbridge eps release\n  rxbridge eps release --from-document doc_01a2…   (finish a release a stop interrupted)"
    )]
    Release {
        /// Take in again the prescriptions of a kept release answer (the document the
        /// eps.release_run event or the log names) instead of releasing new ones
        #[arg(long, value_name = "DOC")]
        from_document: Option<String>,
    },
    /// Send the EPS messages due now (dispense notifications, returns, withdraws, claims);
    /// `serve` sends them on its own.
    #[command(after_help = "Example:\n  rxbridge eps notify")]
    Notify,
    /// Queue the claim of every EPS prescription dispensed in a month (once each), then send
    /// what is due.
    #[command(after_help = "Example:\n  rxbridge eps claim --month 2026-11")]
    Claim {
        /// The month, YYYY-MM (London calendar) [default: last month]
        #[arg(long, value_parser = parse_month)]
        month: Option<rxbridge_app::finance::Month>,
    },
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Messages with a status (newest first).
    #[command(after_help = "Example:\n  rxbridge outbox list --status pending --limit 10")]
    List {
        /// Which messages: waiting, delivered, given up on, or with no endpoint to go to.
        #[arg(long, default_value = "dead", value_parser = one_of(&["pending", "delivered", "dead", "no_endpoint"], MessageStatus::parse))]
        status: MessageStatus,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put dead messages back in the queue.
    #[command(
        after_help = "Example:\n  rxbridge outbox replay --all\n  rxbridge outbox replay --id msg_… --id msg_…"
    )]
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
    /// Walk the register: hash links and contents, and for the CD register the running
    /// balances. Names each difference (exit 2).
    #[command(
        after_help = "Example:\n  rxbridge cd-register verify\n  rxbridge pom-register verify"
    )]
    Verify,
    /// Print one section (a product code; `test/…` for sandbox data), or list the sections.
    #[command(
        after_help = "Example:\n  rxbridge cd-register print\n  rxbridge cd-register print --section CONCERTA-XL-36 --format pdf --out concerta.pdf"
    )]
    Print {
        /// The section to print; without it, the sections are listed.
        #[arg(long)]
        section: Option<String>,
        /// CSV, or a printable PDF.
        #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
        format: String,
        /// Write here (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The month, YYYY-MM (London calendar).
    #[arg(long, value_parser = parse_month)]
    pub month: rxbridge_app::finance::Month,
    /// CSV, or a printable PDF.
    #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
    pub format: String,
    /// Write here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which data: live, or test (sandbox). Required: a claim from the wrong one is wrong.
    #[arg(long, value_parser = one_of(&["test", "live"], Mode::parse))]
    pub mode: Mode,
}

pub fn parse_month(s: &str) -> Result<rxbridge_app::finance::Month, String> {
    rxbridge_app::finance::Month::parse(s)
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// The NHS claim: every NHS item supplied, with exemption, evidence and charge; FP34C totals.
    #[command(
        after_help = "Example:\n  rxbridge export nhs-claim --month 2026-11 --mode live --format pdf --out claim.pdf"
    )]
    NhsClaim(ExportArgs),
    /// Private Schedule 2/3 prescriptions for the FP34PCD submission to NHSBSA.
    #[command(
        after_help = "Example:\n  rxbridge export fp34pcd --month 2026-11 --mode live > fp34pcd.csv"
    )]
    Fp34pcd(ExportArgs),
    /// Payments, refunds and fees, with every difference listed.
    #[command(
        after_help = "Example:\n  rxbridge export payments --month 2026-11 --mode live --format pdf --out payments.pdf"
    )]
    Payments(ExportArgs),
    /// Everything — every record and event, for moving to another store (`rxbridge-aws
    /// import`). JSON Lines; patient data stays sealed, keys stay hashed. Sessions excepted.
    /// Both modes: the new store gets sandbox and live data alike.
    #[command(after_help = "Example:\n  rxbridge export all --out rxbridge.jsonl")]
    All {
        /// Write here (refuses to overwrite; default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The ERP file: every order released to the warehouse on a day, one row per line.
    #[command(
        after_help = "Example:\n  rxbridge export orders --date 2026-11-30 --mode live --out orders.csv"
    )]
    Orders {
        /// The day, YYYY-MM-DD (London).
        #[arg(long)]
        date: jiff::civil::Date,
        /// CSV, or a printable PDF.
        #[arg(long, default_value = "csv", value_parser = ["csv", "pdf"])]
        format: String,
        /// Write here (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Which data: live, or test (sandbox).
        #[arg(long, value_parser = one_of(&["test", "live"], Mode::parse))]
        mode: Mode,
    },
}

#[derive(Subcommand)]
pub enum PaymentsCommand {
    /// Run the sweep once: unsent links, reminders, overdue cancellations, owed refunds.
    #[command(after_help = "Example:\n  rxbridge payments sweep")]
    Sweep,
}

#[derive(Subcommand)]
pub enum ClinicCommand {
    /// Create a clinic; prints its id, sandbox key and live key (shown once).
    #[command(after_help = "Example:\n  rxbridge clinic add --name \"Acme ADHD Clinic\" --json")]
    Add {
        /// The clinic's name, as staff see it.
        #[arg(long)]
        name: String,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new key; the old key of that mode stops working at once.
    #[command(after_help = "Example:\n  rxbridge clinic rotate-key --clinic cl_… --mode test")]
    RotateKey {
        /// The clinic id (cl_…).
        #[arg(long = "clinic", alias = "clinic-id")]
        clinic: String,
        /// Which key to rotate: test (sandbox) or live. Required: rotating the live key cuts
        /// the clinic off until it installs the new one.
        #[arg(long, value_parser = one_of(&["test", "live"], Mode::parse))]
        mode: Mode,
        /// Print exactly one JSON object: {"clinic_id", "mode", "key"}.
        #[arg(long)]
        json: bool,
    },
    /// List clinics.
    #[command(after_help = "Example:\n  rxbridge clinic list")]
    List,
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Create an account; prints a one-time password that must be changed at first sign-in.
    #[command(
        after_help = "Example:\n  rxbridge staff add --email a.shah@pharmacy.example --role pharmacist --gphc 2033467"
    )]
    Add {
        /// The sign-in email address.
        #[arg(long)]
        email: String,
        /// What the account may do in the portal.
        #[arg(long, value_parser = one_of(&["support", "pharmacist", "finance", "admin"], Role::parse))]
        role: Role,
        /// GPhC registration number (required for pharmacists: 7 digits starting with 2).
        #[arg(long)]
        gphc: Option<String>,
        /// Print exactly one JSON object: {"staff_id", "email", "role", "one_time_password"}.
        #[arg(long)]
        json: bool,
    },
    /// Give an account a new one-time password (a forgotten password, a demo started again):
    /// it must be changed at the next sign-in; the lock is lifted and every session ends.
    #[command(
        name = "reset-password",
        after_help = "Example:\n  rxbridge staff reset-password --email pharmacist@demo.rxbridge"
    )]
    ResetPassword {
        /// The account's sign-in email address.
        #[arg(long)]
        email: String,
        /// Print exactly one JSON object: {"staff_id", "email", "role", "one_time_password"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DevCommand {
    /// A local stand-in warehouse: receives orders, posts dispatched and delivered back.
    #[command(
        after_help = "Example:\n  rxbridge dev warehouse-sim --order-secret whsec_… --event-secret whsec_…"
    )]
    WarehouseSim {
        /// HOST:PORT the simulator listens on for orders.
        #[arg(long, default_value = "127.0.0.1:9090", value_name = "HOST:PORT")]
        listen: String,
        /// rxbridge's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
        rxbridge: String,
        /// The secret rxbridge signs orders with (`rxbridge webhook set` printed it).
        #[arg(long, env = "RXBRIDGE_SIM_ORDER_SECRET", hide_env_values = true)]
        order_secret: String,
        /// The secret to sign events with (one of rxbridge's warehouse.inbound_secrets).
        #[arg(long, env = "RXBRIDGE_SIM_EVENT_SECRET", hide_env_values = true)]
        event_secret: String,
        /// Which data the stock it books in is for.
        #[arg(long, default_value = "test", value_parser = one_of(&["test", "live"], Mode::parse))]
        mode: Mode,
        /// Units of each Schedule 2 product to book in at start.
        #[arg(long, default_value_t = 1000)]
        stock: i64,
        /// Milliseconds between the steps of each order.
        #[arg(long, default_value_t = 500)]
        delay_ms: u64,
    },
    /// A local stand-in for the NHS EPS dispensing API and its token endpoint.
    #[command(
        after_help = "Example:\n  rxbridge dev eps-sim --public-key app-public.pem --key-id test-1 --api-key test-app"
    )]
    EpsSim {
        /// HOST:PORT the stand-in listens on.
        #[arg(long, default_value = "127.0.0.1:9100", value_name = "HOST:PORT")]
        listen: String,
        /// The application's RSA public key (PEM) that client assertions are verified with.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// The `kid` client assertions must name.
        #[arg(long)]
        key_id: String,
        /// The application's API key (the assertions' `iss` and `sub`).
        #[arg(long)]
        api_key: String,
        /// Seconds an access token lives.
        #[arg(long, default_value_t = 599)]
        token_ttl: u64,
    },
    /// Fill the data directory with synthetic prescriptions (benchmarks, scale tests).
    #[command(
        after_help = "Example:\n  rxbridge --data-dir /tmp/big dev seed --count 100000 --patients 25000"
    )]
    Seed {
        /// The clinic to own them (created as "Seed Clinic" when omitted).
        #[arg(long)]
        clinic: Option<String>,
        /// How many prescriptions.
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        /// How many distinct patients the prescriptions cycle through.
        #[arg(long, default_value_t = 5_000)]
        patients: u64,
        /// Extra prescriptions for one patient (a long history).
        #[arg(long, default_value_t = 0)]
        hot_patient: u64,
        /// Which data to fill: test (sandbox) unless said otherwise.
        #[arg(long, default_value = "test", value_parser = one_of(&["test", "live"], Mode::parse))]
        mode: Mode,
    },
    /// Sign a prescription as a prescriber's system does (for sandbox testing): reads the JSON
    /// submission from FILE (or standard input with -), prints it with `signature.jws` set to
    /// a detached JWS over its RFC 8785 canonical form.
    #[command(
        after_help = "Example:\n  rxbridge dev sign --private-key prescriber.pem --kid dr-shah-1 < rx.json"
    )]
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
    /// Print the command-line reference (docs/cli.md), generated from this help.
    #[command(after_help = "Example:\n  rxbridge dev cli-reference > docs/cli.md")]
    CliReference,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the event chain and the register chains, then replay the log and compare every
    /// state table with it; with anchors, check no chain is shorter than an anchor saw or
    /// differs at its length. Names each difference (exit 2).
    #[command(after_help = "Example:\n  rxbridge audit verify --anchor anchors/2026-11-30.json")]
    Verify {
        /// A signed anchor (from `audit anchor` or the witness) to check the chains against.
        #[arg(long, value_name = "FILE")]
        anchor: Vec<std::path::PathBuf>,
    },
    /// Print (or write to FILE) a signed statement of every chain's head.
    #[command(after_help = "Example:\n  rxbridge audit anchor --out anchors/2026-11-30.json")]
    Anchor {
        /// Write here (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

/// The command-line reference in Markdown: every command's full help, in the order `--help`
/// lists them. `docs/cli.md` is this output.
pub fn reference_markdown() -> String {
    fn walk(cmd: &mut clap::Command, path: &str, out: &mut String) {
        let path = if path.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        let help = cmd.render_long_help().to_string();
        let help: Vec<&str> = help.lines().map(str::trim_end).collect();
        out.push_str(&format!(
            "## `{path}`\n\n```text\n{}\n```\n\n",
            help.join("\n").trim()
        ));
        for sub in cmd.get_subcommands_mut() {
            if sub.get_name() != "help" {
                walk(sub, &path, out);
            }
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from the binary's help (`rxbridge dev cli-reference > docs/cli.md`); a test \
         fails when the two differ. `rxbridge help <command>` prints the same.\n\n",
    );
    walk(&mut cmd, "", &mut out);
    format!("{}\n", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push((path.clone(), cmd.clone()));
        }
        for s in subs {
            leaves(s, format!("{path} {}", s.get_name()), out);
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_option_and_argument_is_described_and_every_command_has_an_example() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut all = Vec::new();
        leaves(&cmd, "rxbridge".into(), &mut all);
        assert!(all.len() > 30, "{}", all.len());
        let mut missing = Vec::new();
        for (path, c) in std::iter::once(("rxbridge".to_string(), cmd.clone())).chain(all.clone()) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() {
                    missing.push(format!("{path}: --{id} has no description"));
                }
            }
        }
        for (path, c) in &all {
            let after = c
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            if !after.contains("Example:\n  rxbridge ") {
                missing.push(format!("{path}: no example"));
            }
            if c.get_about().is_none() {
                missing.push(format!("{path}: no description"));
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn mode_has_no_default_where_data_differs() {
        let cmd = Cli::command();
        for path in [
            &["clinic", "rotate-key"][..],
            &["export", "nhs-claim"],
            &["export", "fp34pcd"],
            &["export", "payments"],
            &["export", "orders"],
        ] {
            let c = path.iter().fold(&cmd, |c, n| c.find_subcommand(n).unwrap());
            let mode = c.get_arguments().find(|a| a.get_id() == "mode").unwrap();
            assert!(
                mode.is_required_set() && mode.get_default_values().is_empty(),
                "{path:?}"
            );
        }
    }

    #[test]
    fn env_values_never_show_in_help() {
        // A value in the environment must never reach the rendered help: the simulator's are
        // secrets, and the reference would differ per machine.
        let help = reference_markdown();
        assert!(help.contains("[env: RXBRIDGE_CONFIG]"), "{help}");
        assert!(help.contains("[env: RXBRIDGE_SIM_ORDER_SECRET]"));
        assert!(!help.contains("RXBRIDGE_CONFIG="));
    }
}

//! `rxbridge prescriber-key add|list|revoke`: the public keys that verify prescribers'
//! advanced electronic signatures on electronic private prescriptions.

use clap::Subcommand;
use rxbridge::App;
use rxbridge_app::signatures::{KeyError, PrescriberKey};

#[derive(Subcommand)]
pub enum PrescriberKeyCommand {
    /// Register a prescriber's public key (EC P-256/P-384 or RSA, PEM) for one clinic.
    #[command(
        after_help = "Example:\n  rxbridge prescriber-key add --clinic cl_… --registration gmc:7012345 --public-key key.pem"
    )]
    Add {
        /// The clinic id (cl_…).
        #[arg(long)]
        clinic: String,
        /// The prescriber's registration as body:number (gmc:7012345, nmc:71A2998E, gphc:2033467).
        /// The key verifies only that prescriber's signatures.
        #[arg(long)]
        registration: String,
        /// A PEM file with the public key (SubjectPublicKeyInfo, "BEGIN PUBLIC KEY").
        #[arg(long = "public-key", value_name = "FILE")]
        public_key: std::path::PathBuf,
        /// The key id the JWS header names (`kid`); default: pk_ and 16 hex of the key's SHA-256.
        #[arg(long)]
        kid: Option<String>,
        /// ES256, ES384, RS256 or PS256; default: what the key type implies (P-256 → ES256,
        /// P-384 → ES384, RSA → RS256).
        #[arg(long)]
        alg: Option<String>,
        /// Print exactly one JSON object: {"kid", "registration"}.
        #[arg(long)]
        json: bool,
    },
    /// List a clinic's keys, revoked ones included.
    #[command(after_help = "Example:\n  rxbridge prescriber-key list --clinic cl_… --json")]
    List {
        /// The clinic id (cl_…).
        #[arg(long)]
        clinic: String,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key from a time (default now). Prescriptions received before it keep a valid
    /// signature; those received after are blocked. The key is kept.
    #[command(
        after_help = "Example:\n  rxbridge prescriber-key revoke --clinic cl_… --kid K --at 2026-12-01T00:00:00Z"
    )]
    Revoke {
        /// The clinic id (cl_…).
        #[arg(long)]
        clinic: String,
        /// The key id (`kid`) to revoke.
        #[arg(long)]
        kid: String,
        /// When the revocation takes effect, RFC 3339 (e.g. 2026-12-01T09:00:00Z).
        #[arg(long)]
        at: Option<String>,
    },
}

fn view(k: &PrescriberKey) -> serde_json::Value {
    serde_json::json!({
        "kid": k.kid,
        "registration": k.registration,
        "alg": k.alg.as_str(),
        "added_at": k.added_at.to_string(),
        "revoked_at": k.revoked_at.map(|t| t.to_string()),
    })
}

pub async fn run(app: &App, command: PrescriberKeyCommand) -> anyhow::Result<()> {
    let keys = app.state.intake.prescriber_keys();
    match command {
        PrescriberKeyCommand::Add {
            clinic,
            registration,
            public_key,
            kid,
            alg,
            json,
        } => {
            let pem = std::fs::read_to_string(&public_key)
                .map_err(|e| anyhow::anyhow!("--public-key {}: {e}", public_key.display()))?;
            let k = keys
                .add(
                    "operator:cli",
                    &clinic,
                    &registration,
                    &pem,
                    kid.as_deref(),
                    alg.as_deref(),
                )
                .await
                .map_err(|e| match e {
                    KeyError::NoClinic => anyhow::anyhow!("no clinic {clinic}"),
                    e => anyhow::anyhow!("{e}"),
                })?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "kid": k.kid, "registration": k.registration })
                );
            } else {
                println!(
                    "key {} ({}) registered for {} at {clinic}",
                    k.kid,
                    k.alg.as_str(),
                    k.registration
                );
            }
        }
        PrescriberKeyCommand::List { clinic, json } => {
            let all = keys.list(&clinic).await?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(view).collect())
                );
            } else {
                for k in &all {
                    println!(
                        "{}\t{}\t{}\tadded {}\t{}",
                        k.kid,
                        k.alg.as_str(),
                        k.registration,
                        k.added_at,
                        k.revoked_at
                            .map(|t| format!("revoked {t}"))
                            .unwrap_or_else(|| "active".into())
                    );
                }
            }
        }
        PrescriberKeyCommand::Revoke { clinic, kid, at } => {
            let at = at
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .map_err(|e| anyhow::anyhow!("--at {s}: not an RFC 3339 time ({e})"))
                })
                .transpose()?;
            let when = keys.revoke("operator:cli", &clinic, &kid, at).await?;
            println!("key {kid} at {clinic} revoked from {when}");
        }
    }
    Ok(())
}

/// `rxbridge dev sign`: the submission in `file` (or standard input) with its signature.
pub fn sign(private_key: &std::path::Path, kid: &str, alg: &str, file: &str) -> anyhow::Result<()> {
    use std::io::Read;
    let alg = rxbridge_app::signatures::SigningAlg::parse(alg)
        .ok_or_else(|| anyhow::anyhow!("--alg must be ES256, ES384, RS256 or PS256"))?;
    let pem = std::fs::read_to_string(private_key)
        .map_err(|e| anyhow::anyhow!("--private-key {}: {e}", private_key.display()))?;
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    }
    let mut body: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{file}: not JSON ({e})"))?;
    let jws = rxbridge_app::signatures::sign_detached(&body, &pem, alg, kid)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    body["signature"] = serde_json::json!({ "jws": jws });
    println!("{body}");
    Ok(())
}

//! Audit anchors: a signed statement of every chain's head (the event log and each register
//! chain: its length and the hash at that length), kept outside the store. A hash chain alone
//! cannot tell a short chain from a shortened one; verified against an anchor it can:
//! a chain shorter than the anchor, or with another hash at the anchor's length, was truncated
//! or rewritten after the anchor was taken.
//!
//! Signed with the instance's Ed25519 key (RFC 8032) over the canonical JSON of the statement
//! without its `signature` member.

use crate::audit::{VerifyError, verify_chain};
use crate::events::canonical_json;
use crate::ports::{EventLog, Store, StoreError};
use crate::registers::{Register, RegisterStore};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "rxbridge-anchor/1";

/// One chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// `events`, `cd_register` or `pom_register`.
    pub chain: String,
    /// How many entries the chain has.
    pub length: i64,
    /// The hash of its last entry (the genesis hash when empty).
    pub head: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub format: String,
    pub at: Timestamp,
    /// The signing key's public half, hex.
    pub key: String,
    pub chains: Vec<ChainHead>,
    /// Ed25519 over the canonical JSON of the other members, hex.
    #[serde(default)]
    pub signature: String,
}

impl Anchor {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).expect("an anchor serialises");
        if let serde_json::Value::Object(m) = &mut v {
            m.remove("signature");
        }
        canonical_json(&v).into_bytes()
    }

    /// Check the signature, and that it was made by `trusted` (the instance's public key).
    pub fn verify_signature(&self, trusted: &VerifyingKey) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("not an anchor of format {FORMAT}"));
        }
        if self.key != hex::encode(trusted.as_bytes()) {
            return Err("it is signed with another key than this instance's anchor key".into());
        }
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("its signature is not 64 hex-encoded bytes")?;
        trusted
            .verify(&self.signed_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| "its signature does not verify (forged or altered)".to_string())
    }
}

fn register_chain(r: Register) -> &'static str {
    match r {
        Register::Cd => "cd_register",
        Register::Pom => "pom_register",
    }
}

/// The heads of every chain now.
pub async fn heads(
    store: &dyn Store,
    registers: &dyn RegisterStore,
) -> Result<Vec<ChainHead>, StoreError> {
    let events = match verify_chain(store).await {
        Ok(r) => ChainHead {
            chain: "events".into(),
            length: r.events,
            head: r.head_hash,
        },
        Err(VerifyError::Store(e)) => return Err(e),
        // A broken chain is still anchored as it stands; verify reports the break.
        Err(VerifyError::Broken(_)) => {
            let length = last_event_seq(store).await?;
            let head = match length {
                0 => crate::events::GENESIS_HASH.to_string(),
                n => store
                    .events_after(n - 1, 1)
                    .await?
                    .pop()
                    .map(|e| e.hash)
                    .unwrap_or_default(),
            };
            ChainHead {
                chain: "events".into(),
                length,
                head,
            }
        }
    };
    let mut out = vec![events];
    for r in [Register::Cd, Register::Pom] {
        let entries = registers.register_entries(r, None).await?;
        out.push(ChainHead {
            chain: register_chain(r).into(),
            length: entries.len() as i64,
            head: entries
                .last()
                .map_or(crate::registers::GENESIS.to_string(), |e| e.hash.clone()),
        });
    }
    Ok(out)
}

/// A signed anchor of every chain's head at `at`.
pub async fn take(
    store: &dyn Store,
    registers: &dyn RegisterStore,
    key: &SigningKey,
    at: Timestamp,
) -> Result<Anchor, StoreError> {
    let mut a = Anchor {
        format: FORMAT.into(),
        at,
        key: hex::encode(key.verifying_key().as_bytes()),
        chains: heads(store, registers).await?,
        signature: String::new(),
    };
    a.signature = hex::encode(key.sign(&a.signed_bytes()).to_bytes());
    Ok(a)
}

/// What differs between the store and an anchor (empty: the store holds everything the anchor
/// saw, unchanged). The signature is checked first; a forged anchor proves nothing.
pub async fn check(
    anchor: &Anchor,
    trusted: &VerifyingKey,
    store: &dyn Store,
    registers: &dyn RegisterStore,
) -> Result<Vec<String>, StoreError> {
    if let Err(e) = anchor.verify_signature(trusted) {
        return Ok(vec![format!("the anchor of {} is refused: {e}", anchor.at)]);
    }
    let mut problems = Vec::new();
    for c in &anchor.chains {
        // The hash of entry number `length` (1-based) of this chain, as the store has it now.
        let (now_len, at_len) = match c.chain.as_str() {
            "events" => {
                // The entry at the anchor's length, read directly; the whole log is walked only
                // to say how long a shortened one is.
                let at = if c.length == 0 {
                    Some(crate::events::GENESIS_HASH.to_string())
                } else {
                    store
                        .events_after(c.length - 1, 1)
                        .await?
                        .into_iter()
                        .find(|e| e.seq == c.length)
                        .map(|e| e.hash)
                };
                let now = if at.is_some() {
                    c.length
                } else {
                    last_event_seq(store).await?
                };
                (now, at)
            }
            "cd_register" | "pom_register" => {
                let r = if c.chain == "cd_register" {
                    Register::Cd
                } else {
                    Register::Pom
                };
                let entries = registers.register_entries(r, None).await?;
                let at = if c.length == 0 {
                    Some(crate::registers::GENESIS.to_string())
                } else {
                    usize::try_from(c.length - 1)
                        .ok()
                        .and_then(|i| entries.get(i))
                        .map(|e| e.hash.clone())
                };
                (entries.len() as i64, at)
            }
            other => {
                problems.push(format!("the anchor names an unknown chain {other:?}"));
                continue;
            }
        };
        if now_len < c.length {
            problems.push(format!(
                "{}: {now_len} entries, shorter than the {} the anchor of {} saw (truncated)",
                c.chain, c.length, anchor.at
            ));
        } else if at_len.as_deref() != Some(c.head.as_str()) {
            problems.push(format!(
                "{}: entry {} has hash {}, the anchor of {} says {} (rewritten)",
                c.chain,
                c.length,
                at_len.as_deref().unwrap_or("(none)"),
                anchor.at,
                c.head
            ));
        }
    }
    Ok(problems)
}

/// The sequence number of the last event (0 when there is none).
async fn last_event_seq(store: &dyn EventLog) -> Result<i64, StoreError> {
    let mut after = 0;
    loop {
        let page = store.events_after(after, 1000).await?;
        match page.last() {
            Some(last) => after = last.seq,
            None => return Ok(after),
        }
    }
}

/// A new random key (32 bytes from the OS).
pub fn generate_key() -> SigningKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// A key from its hex form (the key file's contents).
pub fn key_from_hex(s: &str) -> anyhow::Result<SigningKey> {
    let b: [u8; 32] = hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("the anchor key must be 64 hex characters"))?;
    Ok(SigningKey::from_bytes(&b))
}

pub use ed25519_dalek::{SigningKey as AnchorKey, VerifyingKey as AnchorPublicKey};

/// Somewhere outside the store that keeps anchors (a directory on another volume, an HTTPS
/// endpoint, an S3 bucket with Object Lock). `publish` answers where the anchor now is.
#[async_trait::async_trait]
pub trait Witness: Send + Sync {
    fn name(&self) -> String;
    async fn publish(&self, anchor: &Anchor) -> anyhow::Result<String>;
}

/// One scheduled step: take an anchor and hand it to every witness. Every witness is tried;
/// a failure is logged as an alert and returned (the next step tries again with a new anchor).
pub async fn publish(
    store: &dyn Store,
    registers: &dyn RegisterStore,
    key: &SigningKey,
    witnesses: &[std::sync::Arc<dyn Witness>],
    at: Timestamp,
) -> anyhow::Result<Vec<String>> {
    let anchor = take(store, registers, key, at).await?;
    let mut placed = Vec::new();
    let mut failed = Vec::new();
    for w in witnesses {
        match w.publish(&anchor).await {
            Ok(where_) => {
                tracing::info!(witness = %w.name(), at = %where_, events = anchor.chains[0].length, "wrote an audit anchor");
                placed.push(where_);
            }
            Err(e) => {
                tracing::error!(alert = "anchor_failed", witness = %w.name(), error = %e, "ALERT: could not write the audit anchor to a witness");
                failed.push(format!("{}: {e}", w.name()));
            }
        }
    }
    if failed.is_empty() {
        Ok(placed)
    } else {
        Err(anyhow::anyhow!(
            "anchor not written to {}",
            failed.join("; ")
        ))
    }
}

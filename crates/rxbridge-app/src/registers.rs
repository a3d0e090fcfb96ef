//! The Controlled Drugs register (MDR 2001 regs 19-20) and the POM register (HMR 2012 reg 253).
//!
//! - One section per drug, strength and form: the formulary product code.
//! - Entries are append-only (the store refuses UPDATE and DELETE) and hash-chained per register;
//!   a correction is a dated annotation that names the entry it corrects, never an edit.
//! - The CD register keeps a running balance per section; a supply that would make it negative
//!   is refused (and a release that would, held — see `fulfilment`).
//! - Particulars that identify a patient are sealed with the patient-data key; the register is
//!   read (and every read audited) through the portal or the CLI.

use crate::crypto::sha256_hex;
use crate::ports::StoreError;
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Register {
    Cd,
    Pom,
}

impl Register {
    pub fn as_str(self) -> &'static str {
        match self {
            Register::Cd => "cd",
            Register::Pom => "pom",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cd" => Some(Register::Cd),
            "pom" => Some(Register::Pom),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Stock obtained (reg 19(1)(d)): adds to the balance.
    Receipt,
    /// Stock supplied (reg 19(1)(e)): takes from the balance.
    Supply,
    /// A dated marginal note or correction (reg 20): no balance change.
    Annotation,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Receipt => "receipt",
            EntryKind::Supply => "supply",
            EntryKind::Annotation => "annotation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "receipt" => Some(EntryKind::Receipt),
            "supply" => Some(EntryKind::Supply),
            "annotation" => Some(EntryKind::Annotation),
            _ => None,
        }
    }
    /// How the entry moves the balance: +1, -1 or 0.
    pub fn sign(self) -> i64 {
        match self {
            EntryKind::Receipt => 1,
            EntryKind::Supply => -1,
            EntryKind::Annotation => 0,
        }
    }
}

/// The particulars of an entry (sealed at rest). Headings per MDR 2001 reg 19 and HMR 2012
/// Sch 23; fields that do not apply are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Particulars {
    /// Drug name, strength and form (the section heading).
    pub product: String,
    /// Supply: the person supplied (patient) and their address.
    pub supplied_to: Option<String>,
    pub supplied_to_address: Option<String>,
    /// Supply: the prescriber (authority to possess) and their address.
    pub prescriber: Option<String>,
    pub prescriber_address: Option<String>,
    /// POM register: the date on the prescription.
    pub prescription_date: Option<Date>,
    /// Supply: who collected (patient, representative, healthcare professional, or the
    /// delivery service) and the identity questions (reg 19(1)(e)(v)–(vii)).
    pub collector: Option<String>,
    pub id_requested: Option<bool>,
    pub id_provided: Option<bool>,
    /// Receipt: from whom (name and address) and the invoice.
    pub received_from: Option<String>,
    pub invoice_ref: Option<String>,
    /// Annotation: the text, and the entry it corrects.
    pub note: Option<String>,
    pub corrects_seq: Option<i64>,
    /// The prescription or order this concerns.
    pub reference: Option<String>,
}

/// An entry to append (inside a `Change`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub register: Register,
    /// The formulary product code.
    pub section: String,
    pub kind: EntryKind,
    /// The day of the transaction (London).
    pub entry_date: Date,
    pub at: Timestamp,
    /// Who made it: `staff:…`, `warehouse`, `system`.
    pub author: String,
    pub subject: Option<String>,
    /// Dosage units; positive.
    pub quantity: i64,
    /// Sealed `Particulars`, bound to `"{register}:{section}:{at}"`.
    #[serde(with = "crate::transfer::base64_bytes")]
    pub sealed: Vec<u8>,
}

impl NewEntry {
    /// The associated data the particulars are sealed with.
    pub fn seal_context(register: Register, section: &str, at: Timestamp) -> String {
        format!("{}:{section}:{at}", register.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    pub seq: i64,
    pub entry: NewEntry,
    /// The section's balance after this entry (CD register).
    pub balance_after: i64,
    pub prev_hash: String,
    pub hash: String,
    /// The event that recorded this entry (`crate::state`).
    #[serde(default)]
    pub event_seq: i64,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash linking an entry to the one before it in the same register.
pub fn entry_hash(prev: &str, seq: i64, e: &NewEntry, balance_after: i64) -> String {
    let line = format!(
        "{prev}|{seq}|{}|{}|{}|{}|{}|{}|{}|{}|{balance_after}|{}",
        e.register.as_str(),
        e.section,
        e.kind.as_str(),
        e.entry_date,
        e.at,
        e.author,
        e.subject.as_deref().unwrap_or(""),
        e.quantity,
        sha256_hex(&e.sealed),
    );
    sha256_hex(line.as_bytes())
}

#[async_trait]
pub trait RegisterStore: Send + Sync {
    /// Entries of one register, optionally one section, in order.
    async fn register_entries(
        &self,
        register: Register,
        section: Option<&str>,
    ) -> Result<Vec<RegisterEntry>, StoreError>;
    /// The section's last entry (the one its balance is read from).
    async fn last_register_entry(
        &self,
        register: Register,
        section: &str,
    ) -> Result<Option<RegisterEntry>, StoreError> {
        Ok(self.register_entries(register, Some(section)).await?.pop())
    }
    /// The section's current balance (0 when it has no entries).
    async fn register_balance(&self, register: Register, section: &str) -> Result<i64, StoreError>;
    /// Sections with entries.
    async fn register_sections(&self, register: Register) -> Result<Vec<String>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterBroken {
    #[error("entry {seq}: it should follow {expected} but follows {found}")]
    Link {
        seq: i64,
        expected: String,
        found: String,
    },
    #[error("entry {seq}: its hash does not match its contents")]
    Hash { seq: i64 },
    #[error("entry {seq}: the running balance should be {expected}, it says {found}")]
    Balance { seq: i64, expected: i64, found: i64 },
}

/// Walk a whole register: links, hashes and running balances.
pub fn verify(entries: &[RegisterEntry]) -> Result<usize, RegisterBroken> {
    let mut prev = GENESIS.to_string();
    let mut balances: std::collections::HashMap<&str, i64> = Default::default();
    for e in entries {
        if e.prev_hash != prev {
            return Err(RegisterBroken::Link {
                seq: e.seq,
                expected: prev,
                found: e.prev_hash.clone(),
            });
        }
        if entry_hash(&e.prev_hash, e.seq, &e.entry, e.balance_after) != e.hash {
            return Err(RegisterBroken::Hash { seq: e.seq });
        }
        let b = balances.entry(e.entry.section.as_str()).or_insert(0);
        *b += e.entry.kind.sign() * e.entry.quantity;
        if e.entry.register == Register::Cd && *b != e.balance_after {
            return Err(RegisterBroken::Balance {
                seq: e.seq,
                expected: *b,
                found: e.balance_after,
            });
        }
        prev = e.hash.clone();
    }
    Ok(entries.len())
}

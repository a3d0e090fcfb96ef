//! Moving a pharmacy's data between stores (embedded → AWS): every record and event, as they
//! are — events keep their numbers and hashes, so the chain verifies in the new store exactly
//! as in the old one. The file is JSON Lines: a header line, then one record per line,
//! dependencies first (clinics before their keys, prescriptions before their payments).
//! Staff sessions are not moved: they are short-lived and everyone signs in again.

use crate::events::EventRecord;
use crate::outbox::{Attempt, Endpoint, OutboxMessage};
use crate::payments::PaymentRecord;
use crate::ports::*;
use crate::registers::RegisterEntry;
use crate::staff::StaffAccount;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The first line of an export file.
pub const FORMAT: &str = "rxbridge-export/1";

/// One record of a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Clinic(Clinic),
    ApiKey {
        key: ApiKeyRecord,
        revoked_at: Option<Timestamp>,
    },
    Staff(StaffAccount),
    PrescriberKey(crate::signatures::PrescriberKey),
    Prescription {
        /// The store's order of arrival (listings, history), kept as it was.
        seq: i64,
        record: PrescriptionRecord,
        patient: PatientKeys,
    },
    Idempotency(IdempotencyRecord),
    Payment(PaymentRecord),
    Seen {
        source: String,
        id: String,
        at: Timestamp,
    },
    Event(EventRecord),
    Message(OutboxMessage),
    Attempt(Attempt),
    Endpoint(Endpoint),
    RegisterEntry(RegisterEntry),
}

impl Record {
    /// The order a load needs: later kinds refer to earlier ones.
    pub fn rank(&self) -> u8 {
        match self {
            Record::Clinic(_) => 0,
            Record::ApiKey { .. } => 1,
            Record::Staff(_) => 2,
            Record::PrescriberKey(_) => 3,
            Record::Prescription { .. } => 4,
            Record::Idempotency(_) => 5,
            Record::Payment(_) => 6,
            Record::Seen { .. } => 7,
            Record::Event(_) => 8,
            Record::Endpoint(_) => 9,
            Record::Message(_) => 10,
            Record::Attempt(_) => 11,
            Record::RegisterEntry(_) => 12,
        }
    }
}

/// Reading every record of a store, in `Record::rank` order, into `out` (a bounded channel:
/// the store is read as the file is written, never all in memory).
#[async_trait]
pub trait Dump: Send + Sync {
    async fn dump(&self, out: tokio::sync::mpsc::Sender<Record>) -> Result<(), StoreError>;
}

/// Writing records, in `Record::rank` order, into an empty store exactly as they are.
#[async_trait]
pub trait Load: Send + Sync {
    /// `Rejected` when the store already holds data (nothing is written).
    async fn check_empty(&self) -> Result<(), StoreError>;
    async fn load(&self, records: &[Record]) -> Result<(), StoreError>;
}

/// What an export or import moved, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counts(pub std::collections::BTreeMap<String, u64>);

impl Counts {
    fn add(&mut self, r: &Record) {
        let kind = serde_json::to_value(r)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(String::from))
            .unwrap_or_default();
        *self.0.entry(kind).or_default() += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Write every record of `store` to `out` as JSON Lines.
pub async fn export(store: &dyn Dump, out: &mut (dyn Write + Send)) -> anyhow::Result<Counts> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let reading = store.dump(tx);
    let writing = async {
        writeln!(out, "{}", serde_json::json!({ "format": FORMAT }))?;
        let mut counts = Counts::default();
        while let Some(r) = rx.recv().await {
            serde_json::to_writer(&mut *out, &r)?;
            out.write_all(b"\n")?;
            counts.add(&r);
        }
        out.flush()?;
        anyhow::Ok(counts)
    };
    let (read, counts) = tokio::join!(reading, writing);
    read?;
    counts
}

/// Load an export file into an empty `store`, in batches. Refuses a file of another format,
/// or records out of order, before writing anything it cannot finish.
pub async fn import(store: &dyn Load, input: impl BufRead) -> anyhow::Result<Counts> {
    store.check_empty().await?;
    let mut lines = input.lines();
    let header: serde_json::Value = match lines.next() {
        Some(l) => serde_json::from_str(&l?)?,
        None => anyhow::bail!("the file is empty"),
    };
    if header.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        anyhow::bail!("not an rxbridge export (expected a first line with format {FORMAT})");
    }
    let mut counts = Counts::default();
    let mut batch = Vec::with_capacity(500);
    let mut last_rank = 0;
    for (n, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("line {}: {e}", n + 2))?;
        if r.rank() < last_rank {
            anyhow::bail!("line {}: records are out of order", n + 2);
        }
        // A batch never mixes kinds: each kind's dependencies are complete before it starts.
        if r.rank() != last_rank && !batch.is_empty() {
            store.load(&std::mem::take(&mut batch)).await?;
        }
        last_rank = r.rank();
        counts.add(&r);
        batch.push(r);
        if batch.len() >= 500 {
            store.load(&std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        store.load(&batch).await?;
    }
    Ok(counts)
}

/// Binary fields as base64 text in JSON.
pub mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

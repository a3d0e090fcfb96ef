//! Audit: walk the whole hash-chained event log and report the first broken link; replay it
//! into the state it implies and compare that with every state table (`crate::state`).

use crate::events::{BrokenLink, GENESIS_HASH, canonical_json, verify_run};
use crate::ports::{EventLog, StoreError};
use crate::state::{
    Columns, Table, bound, bound_rows, diff, entry_columns, entry_id, message_columns,
    payment_columns, prescription_columns,
};
use crate::transfer::{Dump, Record};
use std::collections::HashMap;

#[derive(Debug)]
pub struct ChainReport {
    pub events: i64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the event chain is broken at event {}: {}", .0.seq, .0.reason)]
    Broken(BrokenLink),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn verify_chain(store: &dyn EventLog) -> Result<ChainReport, VerifyError> {
    let (mut seq, mut hash) = (0i64, GENESIS_HASH.to_string());
    loop {
        let page = store.events_after(seq, 1000).await?;
        if page.is_empty() {
            return Ok(ChainReport {
                events: seq,
                head_hash: hash,
            });
        }
        (seq, hash) = verify_run(seq, &hash, &page).map_err(VerifyError::Broken)?;
    }
}

/// One way a state table differs from the state the event log implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDiff {
    pub table: Table,
    /// The row's id (`rx_…`, `pay_…`, `msg_…`, `cd#12`).
    pub id: String,
    pub column: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for StateDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} expected {}, found {}",
            self.table, self.id, self.column, self.expected, self.found
        )
    }
}

/// What the log says a row should be: the event that last bound it and its columns' digest.
struct Expected {
    seq: i64,
    digest: [u8; 32],
}

fn columns_digest(c: &Columns) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(canonical_json(&serde_json::Value::Object(c.clone())).as_bytes()).into()
}

/// Replay the event log into the state it implies and compare it with every state table
/// (prescriptions, payments, outbox, register entries), naming each difference. Run it after
/// `verify_chain`: it trusts the events. Two passes keep memory to a digest per row: the log,
/// then the tables.
pub async fn verify_state(
    store: &dyn EventLog,
    dump: &dyn Dump,
) -> Result<Vec<StateDiff>, StoreError> {
    let mut expected: HashMap<(Table, String), Expected> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            for (table, id, cols) in bound_rows(&e.event) {
                expected.insert(
                    (table, id.to_string()),
                    Expected {
                        seq: e.seq,
                        digest: columns_digest(cols),
                    },
                );
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let reading = dump.dump(tx);
    let mut diffs = Vec::new();
    let comparing = async {
        while let Some(r) = rx.recv().await {
            let (table, id, event_seq, found) = match r {
                Record::Prescription { record, .. } => (
                    Table::Prescriptions,
                    record.id.clone(),
                    record.event_seq,
                    prescription_columns(&record),
                ),
                Record::Payment(p) => (
                    Table::Payments,
                    p.id.clone(),
                    p.event_seq,
                    payment_columns(&p),
                ),
                Record::Message(m) => (
                    Table::Outbox,
                    m.message.id.clone(),
                    m.event_seq,
                    message_columns(&m.message),
                ),
                Record::RegisterEntry(e) => (
                    Table::RegisterEntries,
                    entry_id(&e),
                    e.event_seq,
                    entry_columns(&e),
                ),
                _ => continue,
            };
            let Some(exp) = expected.remove(&(table, id.clone())) else {
                diffs.push(StateDiff {
                    table,
                    id,
                    column: "(row)".into(),
                    expected: "absent (no event produced it)".into(),
                    found: format!("present (event_seq {event_seq})"),
                });
                continue;
            };
            if exp.seq != event_seq {
                diffs.push(StateDiff {
                    table,
                    id: id.clone(),
                    column: "event_seq".into(),
                    expected: exp.seq.to_string(),
                    found: event_seq.to_string(),
                });
            }
            if exp.digest != columns_digest(&found) {
                let ev = store.events_after(exp.seq - 1, 1).await?;
                let cols = ev
                    .first()
                    .and_then(|e| bound(&e.event, table, &id).cloned())
                    .unwrap_or_default();
                for d in diff(&cols, &found) {
                    diffs.push(StateDiff {
                        table,
                        id: id.clone(),
                        column: d.column,
                        expected: d.expected,
                        found: d.found,
                    });
                }
            }
        }
        Ok::<(), StoreError>(())
    };
    let (read, compared) = tokio::join!(reading, comparing);
    read?;
    compared?;
    let mut missing: Vec<_> = expected.into_iter().collect();
    missing.sort_by_key(|(_, e)| e.seq);
    for ((table, id), e) in missing {
        diffs.push(StateDiff {
            table,
            id,
            column: "(row)".into(),
            expected: format!("present (written by event {})", e.seq),
            found: "missing".into(),
        });
    }
    Ok(diffs)
}

/// Everything `rxbridge audit verify` checks, as lines to print: `Ok` when all is intact.
pub async fn verify_all(
    store: &dyn EventLog,
    dump: &dyn Dump,
    registers: &dyn crate::registers::RegisterStore,
) -> Result<Result<Vec<String>, Vec<String>>, StoreError> {
    let mut ok = Vec::new();
    let mut broken = Vec::new();
    match verify_chain(store).await {
        Ok(r) => ok.push(format!(
            "{} events, chain intact (head {})",
            r.events, r.head_hash
        )),
        Err(VerifyError::Store(e)) => return Err(e),
        Err(e) => broken.push(format!("event log: {e}")),
    }
    for register in [
        crate::registers::Register::Cd,
        crate::registers::Register::Pom,
    ] {
        let entries = registers.register_entries(register, None).await?;
        match crate::registers::verify(&entries) {
            Ok(n) => ok.push(format!(
                "{} register: {n} entries, chain intact (head {})",
                register.as_str(),
                entries
                    .last()
                    .map_or(crate::registers::GENESIS, |e| e.hash.as_str())
            )),
            Err(e) => broken.push(format!("{} register: {e}", register.as_str())),
        }
    }
    if broken.is_empty() {
        let diffs = verify_state(store, dump).await?;
        if diffs.is_empty() {
            ok.push("state tables: every row matches the event that produced it".into());
        } else {
            broken.push(format!(
                "state tables: {} difference(s) from the event log",
                diffs.len()
            ));
            broken.extend(diffs.iter().map(|d| format!("  {d}")));
        }
    }
    Ok(if broken.is_empty() {
        Ok(ok)
    } else {
        Err(broken)
    })
}

//! State bound to the chain. The hash chain proves the events; this module makes the tables the
//! server acts on provable too:
//!
//! - Every state row (prescription, payment, outbox message, register entry) carries
//!   `event_seq`, the sequence number of the event that produced its current state.
//! - That event carries the row's columns in `detail.state` — plain where they are short codes,
//!   times and numbers, SHA-256 where they are opaque or sealed — so the event's own hash, and
//!   every later link of the chain, covers them.
//! - Before a state-changing action (release, refund, register entry, claims export) a use case
//!   calls [`StateGuard`]: the row is compared with its event, the event with its hash and its
//!   successor's link, and a later event for the same row (a rolled-back row) is looked for. A
//!   mismatch is refused, logged (ids and column names only, never values that could identify a
//!   patient) and counted in `rxbridge_state_mismatch_total`.
//! - `rxbridge audit verify` replays the whole log into the state it implies and compares every
//!   row (see `crate::audit::verify_state`).
//!
//! The columns are computed by the stores inside their write transaction, from the row as
//! written, with the functions here, so both stores bind exactly the same way.

use crate::crypto::sha256_hex;
use crate::events::{EventRecord, NewEvent, canonical_json, chain_hash};
use crate::outbox::NewMessage;
use crate::payments::PaymentRecord;
use crate::ports::{PrescriptionRecord, Store, StoreError};
use crate::registers::RegisterEntry;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The key of `NewEvent::detail` that holds the bound rows.
pub const KEY: &str = "state";

/// The state tables, as named in `detail.state` and in verify's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Prescriptions,
    Payments,
    Outbox,
    RegisterEntries,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Prescriptions,
        Table::Payments,
        Table::Outbox,
        Table::RegisterEntries,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Prescriptions => "prescriptions",
            Table::Payments => "payments",
            Table::Outbox => "outbox",
            Table::RegisterEntries => "register_entries",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Columns = Map<String, Value>;

fn digest(v: &Value) -> Value {
    Value::String(format!(
        "sha256:{}",
        sha256_hex(canonical_json(v).as_bytes())
    ))
}

/// Scalars as they are, anything nested by its digest; `hashed` names scalars to digest too
/// (free text, sealed bytes).
fn columns_of(v: Value, hashed: &[&str]) -> Columns {
    let Value::Object(m) = v else {
        return Columns::new();
    };
    m.into_iter()
        .filter(|(k, _)| k != "event_seq")
        .map(|(k, v)| {
            let keep = !hashed.contains(&k.as_str()) && !v.is_object() && !v.is_array();
            let v = if keep { v } else { digest(&v) };
            (k, v)
        })
        .collect()
}

/// A prescription row's columns. The clinic's reference and the sealed record are digested.
pub fn prescription_columns(r: &PrescriptionRecord) -> Columns {
    columns_of(
        serde_json::to_value(r).unwrap_or_default(),
        &["clinic_reference", "sealed"],
    )
}

/// A payment row's columns (money, references and times; no patient data).
pub fn payment_columns(p: &PaymentRecord) -> Columns {
    columns_of(
        serde_json::to_value(p).unwrap_or_default(),
        &["session_url", "attention"],
    )
}

/// An outbox message's content (delivery bookkeeping — attempts, next try — is not state the
/// chain speaks for). The payload is digested as stored: the clear notice's canonical JSON, or
/// the sealed bytes (which the seal itself binds to the message's id, destination, type and
/// subject).
pub fn message_columns(m: &NewMessage) -> Columns {
    let mut c = Columns::new();
    c.insert("id".into(), json!(m.id));
    c.insert("destination".into(), json!(m.destination));
    c.insert("event_type".into(), json!(m.event_type));
    c.insert("subject".into(), json!(m.subject));
    c.insert("created_at".into(), json!(m.created_at.to_string()));
    c.insert(
        "payload".into(),
        match &m.payload {
            crate::outbox::Body::Clear(v) => digest(v),
            crate::outbox::Body::Sealed { sealed } => {
                Value::String(format!("sha256:{}", sha256_hex(sealed)))
            }
        },
    );
    c
}

/// A register entry: its place, its balance and its hash (which covers every particular).
pub fn entry_columns(e: &RegisterEntry) -> Columns {
    let mut c = Columns::new();
    c.insert("register".into(), json!(e.entry.register.as_str()));
    c.insert("section".into(), json!(e.entry.section));
    c.insert("kind".into(), json!(e.entry.kind.as_str()));
    c.insert("quantity".into(), json!(e.entry.quantity));
    c.insert("balance_after".into(), json!(e.balance_after));
    c.insert("hash".into(), json!(e.hash));
    c
}

/// A register entry's row id in `detail.state` and in reports: `cd#12`.
pub fn entry_id(e: &RegisterEntry) -> String {
    format!("{}#{}", e.entry.register.as_str(), e.seq)
}

/// The rows one event binds, collected by a store while it writes them.
#[derive(Debug, Default)]
pub struct Binding {
    rows: Vec<(Table, String, Columns)>,
}

impl Binding {
    pub fn prescription(&mut self, r: &PrescriptionRecord) {
        self.rows
            .push((Table::Prescriptions, r.id.clone(), prescription_columns(r)));
    }
    pub fn payment(&mut self, p: &PaymentRecord) {
        self.rows
            .push((Table::Payments, p.id.clone(), payment_columns(p)));
    }
    pub fn message(&mut self, m: &NewMessage) {
        self.rows
            .push((Table::Outbox, m.id.clone(), message_columns(m)));
    }
    pub fn entry(&mut self, e: &RegisterEntry) {
        self.rows
            .push((Table::RegisterEntries, entry_id(e), entry_columns(e)));
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Write the rows into `event.detail.state` (before the event is hashed).
    pub fn apply(self, event: &mut NewEvent) {
        if self.rows.is_empty() {
            return;
        }
        let mut state = Map::new();
        for (table, id, cols) in self.rows {
            let t = state
                .entry(table.as_str())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(t) = t {
                t.insert(id, Value::Object(cols));
            }
        }
        match &mut event.detail {
            Value::Object(d) => {
                d.insert(KEY.into(), Value::Object(state));
            }
            other => {
                let old = std::mem::take(other);
                let mut d = Map::new();
                if !old.is_null() {
                    d.insert("value".into(), old);
                }
                d.insert(KEY.into(), Value::Object(state));
                *other = Value::Object(d);
            }
        }
    }
}

/// The columns an event binds for one row, if it binds it.
pub fn bound<'a>(event: &'a NewEvent, table: Table, id: &str) -> Option<&'a Columns> {
    event
        .detail
        .get(KEY)?
        .get(table.as_str())?
        .get(id)?
        .as_object()
}

/// Every row an event binds.
pub fn bound_rows(event: &NewEvent) -> impl Iterator<Item = (Table, &str, &Columns)> {
    let state = event.detail.get(KEY).and_then(Value::as_object);
    Table::ALL.into_iter().flat_map(move |t| {
        state
            .and_then(|s| s.get(t.as_str()))
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(move |rows| {
                rows.iter()
                    .filter_map(move |(id, c)| c.as_object().map(|c| (t, id.as_str(), c)))
            })
    })
}

/// One column that differs between a row and its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDiff {
    pub column: String,
    pub expected: String,
    pub found: String,
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// The columns whose values differ, by name.
pub fn diff(expected: &Columns, found: &Columns) -> Vec<ColumnDiff> {
    let mut names: Vec<&String> = expected.keys().chain(found.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|k| expected.get(*k) != found.get(*k))
        .map(|k| ColumnDiff {
            column: k.clone(),
            expected: show(expected.get(k)),
            found: show(found.get(k)),
        })
        .collect()
}

/// Why a row does not match the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("{table} {id}: no event binds it (event_seq {event_seq})")]
    Unbound {
        table: Table,
        id: String,
        event_seq: i64,
    },
    #[error("{table} {id}: event {event_seq} does not match its hash or its successor's link")]
    EventAltered {
        table: Table,
        id: String,
        event_seq: i64,
    },
    #[error("{table} {id}: event {later} changed it after event {event_seq} (row rolled back)")]
    RolledBack {
        table: Table,
        id: String,
        event_seq: i64,
        later: i64,
    },
    #[error("{table} {id}: columns differ from event {event_seq}: {}", names(.columns))]
    Columns {
        table: Table,
        id: String,
        event_seq: i64,
        columns: Vec<ColumnDiff>,
    },
}

fn names(c: &[ColumnDiff]) -> String {
    c.iter()
        .map(|d| d.column.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a guarded action did not run.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<GuardError> for StoreError {
    /// Use cases that answer in `StoreError` refuse a mismatch as `Rejected`.
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::Store(e) => e,
            GuardError::Mismatch(m) => StoreError::Rejected(format!(
                "refused: the stored state does not match the audit chain ({m}); run `rxbridge audit verify`"
            )),
        }
    }
}

/// Rows refused since start, for `/metrics`.
static MISMATCHES: AtomicU64 = AtomicU64::new(0);

pub fn mismatches_total() -> u64 {
    MISMATCHES.load(Ordering::Relaxed)
}

/// `rxbridge_state_mismatch_total` in Prometheus text.
pub fn render_metrics(out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP rxbridge_state_mismatch Stored rows refused because they did not match the audit chain.\n# TYPE rxbridge_state_mismatch counter\nrxbridge_state_mismatch_total {}",
        mismatches_total()
    );
}

/// Checks rows against the events that produced them, before the actions that trust them.
pub struct StateGuard<'a> {
    store: &'a dyn Store,
}

impl<'a> StateGuard<'a> {
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    pub async fn prescription(
        &self,
        r: &PrescriptionRecord,
        action: &str,
    ) -> Result<(), GuardError> {
        self.check(
            Table::Prescriptions,
            &r.id,
            &r.id,
            r.event_seq,
            &prescription_columns(r),
            action,
        )
        .await
    }

    pub async fn payment(&self, p: &PaymentRecord, action: &str) -> Result<(), GuardError> {
        self.check(
            Table::Payments,
            &p.id,
            &p.prescription_id,
            p.event_seq,
            &payment_columns(p),
            action,
        )
        .await
    }

    /// A register entry (the one a balance is read from). Entries are never rewritten, so no
    /// later event can supersede one: the roll-back check does not apply.
    pub async fn entry(&self, e: &RegisterEntry, action: &str) -> Result<(), GuardError> {
        let id = entry_id(e);
        let r = self
            .against_event(Table::RegisterEntries, &id, e.event_seq, &entry_columns(e))
            .await;
        self.outcome(r, action)
    }

    async fn check(
        &self,
        table: Table,
        id: &str,
        subject: &str,
        event_seq: i64,
        found: &Columns,
        action: &str,
    ) -> Result<(), GuardError> {
        let mut r = self.against_event(table, id, event_seq, found).await;
        if r.is_ok() {
            // A later event for this row means the row was put back to an older state.
            r = match self
                .store
                .timeline(subject)
                .await?
                .into_iter()
                .filter(|e| e.seq > event_seq && bound(&e.event, table, id).is_some())
                .map(|e| e.seq)
                .next_back()
            {
                Some(later) => Err(Mismatch::RolledBack {
                    table,
                    id: id.into(),
                    event_seq,
                    later,
                }
                .into()),
                None => Ok(()),
            };
        }
        self.outcome(r, action)
    }

    fn outcome(&self, r: Result<(), GuardError>, action: &str) -> Result<(), GuardError> {
        if let Err(GuardError::Mismatch(m)) = &r {
            MISMATCHES.fetch_add(1, Ordering::Relaxed);
            // Ids, table and column names only: never a value.
            tracing::error!(
                alert = "state_mismatch",
                action,
                mismatch = %m,
                "ALERT: a stored row does not match the audit chain; the action was refused"
            );
        }
        r
    }

    async fn against_event(
        &self,
        table: Table,
        id: &str,
        event_seq: i64,
        found: &Columns,
    ) -> Result<(), GuardError> {
        let unbound = || Mismatch::Unbound {
            table,
            id: id.into(),
            event_seq,
        };
        if event_seq < 1 {
            return Err(unbound().into());
        }
        let pair = self.store.events_after(event_seq - 1, 2).await?;
        let Some(ev) = pair.first().filter(|e| e.seq == event_seq) else {
            return Err(unbound().into());
        };
        if !intact(ev, pair.get(1)) {
            return Err(Mismatch::EventAltered {
                table,
                id: id.into(),
                event_seq,
            }
            .into());
        }
        let Some(expected) = bound(&ev.event, table, id) else {
            return Err(unbound().into());
        };
        let columns = diff(expected, found);
        if columns.is_empty() {
            Ok(())
        } else {
            Err(Mismatch::Columns {
                table,
                id: id.into(),
                event_seq,
                columns,
            }
            .into())
        }
    }
}

/// The event matches its own hash and, when it has one, its successor links to it.
fn intact(ev: &EventRecord, next: Option<&EventRecord>) -> bool {
    chain_hash(&ev.prev_hash, ev.seq, &ev.event) == ev.hash
        && next.is_none_or(|n| n.seq == ev.seq + 1 && n.prev_hash == ev.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_column() {
        let a: Columns =
            serde_json::from_value(json!({"status": "rejected", "version": 3})).unwrap();
        let b: Columns =
            serde_json::from_value(json!({"status": "ready_for_fulfilment", "version": 3}))
                .unwrap();
        assert_eq!(
            diff(&a, &b),
            vec![ColumnDiff {
                column: "status".into(),
                expected: "rejected".into(),
                found: "ready_for_fulfilment".into()
            }]
        );
    }

    #[test]
    fn binding_lands_in_the_detail_and_is_found_again() {
        let mut e = NewEvent {
            at: "2026-12-01T10:00:00Z".parse().unwrap(),
            kind: "k".into(),
            actor: "system".into(),
            subject: "rx_1".into(),
            detail: json!({"from": "a"}),
        };
        let mut b = Binding::default();
        b.rows.push((Table::Prescriptions, "rx_1".into(), {
            let mut c = Columns::new();
            c.insert("status".into(), json!("paid"));
            c
        }));
        b.apply(&mut e);
        assert_eq!(e.detail["from"], "a");
        assert_eq!(
            bound(&e, Table::Prescriptions, "rx_1").unwrap()["status"],
            "paid"
        );
        assert_eq!(bound_rows(&e).count(), 1);
    }
}

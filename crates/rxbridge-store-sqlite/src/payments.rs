//! Money on SQLite: the payment record as a JSON document beside the columns it is found by,
//! and the `commit` unit of work.

use crate::queries::{RX_COLUMNS, append_event, json, status_list, transition_row, unexpected};
use crate::writer::Chain;
use rusqlite::{Connection, OptionalExtension, params};
use rxbridge_app::payments::{Change, PaymentRecord, PaymentWrite};
use rxbridge_app::ports::{Mode, PrescriptionRecord, StoreError};
use rxbridge_app::state::Binding;
use rxbridge_domain::lifecycle::Status;

const PAY_COLUMNS: &str = "doc";

fn pay_row(r: &rusqlite::Row) -> rusqlite::Result<PaymentRecord> {
    json(r.get(0)?)
}

pub fn commit(
    c: &Connection,
    chain: &mut Chain,
    change: &Change,
) -> Result<Option<PrescriptionRecord>, StoreError> {
    if let Some((source, id)) = &change.dedupe {
        let at = change
            .events
            .first()
            .map(|e| e.at.to_string())
            .unwrap_or_else(|| jiff::Timestamp::now().to_string());
        c.prepare_cached(
            "INSERT INTO provider_events_seen (source, event_id, at) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![source, id, at]))
        .map_err(crate::queries::duplicate_or_unexpected)?;
    }
    // Every row this change writes names its first event, and that event binds them all.
    let first_seq = chain.seq + 1;
    let mut binding = Binding::default();
    match &change.payment {
        Some(PaymentWrite::Insert(p)) => {
            let mut p = p.clone();
            p.event_seq = first_seq;
            let doc = serde_json::to_string(&p).map_err(unexpected)?;
            c.prepare_cached(
                "INSERT INTO payments (id, prescription_id, mode, status, session_id, payment_ref, charge_date, created_at, version, doc, event_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![p.id, p.prescription_id, p.mode.as_str(), p.status.as_str(), p.session_id, p.payment_ref, p.charge_date().to_string(), p.created_at.to_string(), p.version, doc, first_seq])
            })
            .map_err(crate::queries::duplicate_or_unexpected)?;
            binding.payment(&p);
        }
        Some(PaymentWrite::Update(p)) => {
            let mut p = p.clone();
            p.event_seq = first_seq;
            let doc = serde_json::to_string(&p).map_err(unexpected)?;
            let n = c
                .prepare_cached(
                    "UPDATE payments SET status = ?1, session_id = ?2, payment_ref = ?3, version = ?4, doc = ?5, event_seq = ?8
                     WHERE id = ?6 AND version = ?7",
                )
                .and_then(|mut s| {
                    s.execute(params![p.status.as_str(), p.session_id, p.payment_ref, p.version, doc, p.id, p.version - 1, first_seq])
                })
                .map_err(unexpected)?;
            if n == 0 {
                return Err(crate::queries::conflict_or_missing(c, "payments", &p.id));
            }
            binding.payment(&p);
        }
        None => {}
    }
    let rec = match &change.transition {
        Some(t) => {
            let at = change.events.first().map(|e| e.at).ok_or_else(|| {
                StoreError::Unexpected(anyhow::anyhow!("a transition needs an event"))
            })?;
            let exemption = change.nhs_exemption.as_ref();
            let rec = transition_row(c, &t.id, t.expected_version, t.to, at, first_seq, exemption)?;
            binding.prescription(&rec);
            Some(rec)
        }
        None if change.nhs_exemption.is_some() => {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "an exemption state needs the prescription's transition"
            )));
        }
        None => None,
    };
    for m in &change.outbox {
        crate::fulfilment::insert_message(c, m, first_seq)?;
        binding.message(m);
    }
    for e in &change.register {
        let written = crate::fulfilment::append_entry(c, e, first_seq)?;
        binding.entry(&written);
    }
    let mut events = change.events.clone();
    match events.first_mut() {
        Some(first) => binding.apply(first),
        None if binding.is_empty() => {}
        None => {
            return Err(StoreError::Unexpected(anyhow::anyhow!(
                "a change that writes state needs an event to bind it"
            )));
        }
    }
    for e in &events {
        append_event(c, chain, e)?;
    }
    Ok(rec)
}

fn one(c: &Connection, where_: &str, v: &str) -> Result<Option<PaymentRecord>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {PAY_COLUMNS} FROM payments WHERE {where_}"
    ))
    .and_then(|mut s| s.query_row([v], pay_row).optional())
    .map_err(unexpected)
}

pub fn get_payment(c: &Connection, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
    one(c, "id = ?1", id)
}
pub fn payment_for_prescription(
    c: &Connection,
    id: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    one(c, "prescription_id = ?1", id)
}
pub fn payment_by_session(c: &Connection, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
    one(c, "session_id = ?1", id)
}
pub fn payment_by_ref(c: &Connection, r: &str) -> Result<Option<PaymentRecord>, StoreError> {
    one(c, "payment_ref = ?1", r)
}

pub fn needing_attention(
    c: &Connection,
    limit: u32,
) -> Result<Vec<(PaymentRecord, Status)>, StoreError> {
    let sql = format!(
        "SELECT p.doc, r.status FROM payments p JOIN prescriptions r ON r.id = p.prescription_id
         WHERE p.status IN ('awaiting_payment', 'refund_pending')
         UNION ALL
         SELECT p.doc, r.status FROM payments p JOIN prescriptions r ON r.id = p.prescription_id
         WHERE p.status = 'paid' AND r.status IN ({})
         LIMIT ?1",
        status_list(Status::unsupplied_ends())
    );
    let mut s = c.prepare_cached(&sql).map_err(unexpected)?;
    let rows = s
        .query_map([limit], |r| {
            let p: PaymentRecord = json(r.get(0)?)?;
            let st: String = r.get(1)?;
            Ok((p, st))
        })
        .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(unexpected)?;
    let mut out: Vec<(PaymentRecord, Status)> = rows
        .into_iter()
        .filter_map(|(p, st)| Status::parse(&st).map(|s| (p, s)))
        .collect();
    out.sort_by_key(|(p, _)| p.created_at);
    Ok(out)
}

pub fn charged_between(
    c: &Connection,
    mode: Mode,
    from: &str,
    to: &str,
) -> Result<Vec<(PaymentRecord, PrescriptionRecord)>, StoreError> {
    let cols: String = RX_COLUMNS
        .split(", ")
        .map(|col| format!("r.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT p.doc, {cols} FROM payments p JOIN prescriptions r ON r.id = p.prescription_id
         WHERE p.mode = ?1 AND p.charge_date BETWEEN ?2 AND ?3 ORDER BY p.charge_date, p.created_at, p.id"
    );
    let mut s = c.prepare_cached(&sql).map_err(unexpected)?;
    s.query_map(params![mode.as_str(), from, to], |r| {
        let p: PaymentRecord = json(r.get(0)?)?;
        let rec = rx_row_offset(r)?;
        Ok((p, rec))
    })
    .and_then(|r| r.collect())
    .map_err(unexpected)
}

/// `rx_row` over the columns after the payment document.
fn rx_row_offset(r: &rusqlite::Row) -> rusqlite::Result<PrescriptionRecord> {
    crate::queries::rx_row_at(r, 1).map(|(_, rec)| rec)
}

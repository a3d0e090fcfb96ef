//! Export: every table read in `Record::rank` order and streamed out, one read transaction
//! (a consistent snapshot, WAL lets writers carry on).

use crate::SqliteStore;
use crate::queries::{RX_COLUMNS, event_row, json, mode_of, rx_row, ts, unexpected};
use async_trait::async_trait;
use rusqlite::Connection;
use rxbridge_app::outbox::Attempt;
use rxbridge_app::ports::*;
use rxbridge_app::transfer::{Dump, Record};
use tokio::sync::mpsc::Sender;

/// Stream every row of `sql` through `f` into `out`. Stops quietly if the reader went away.
fn each(
    c: &Connection,
    out: &Sender<Record>,
    sql: &str,
    f: impl Fn(&rusqlite::Row) -> rusqlite::Result<Record>,
) -> Result<bool, StoreError> {
    let mut s = c.prepare(sql).map_err(unexpected)?;
    let mut rows = s.query([]).map_err(unexpected)?;
    while let Some(r) = rows.next().map_err(unexpected)? {
        if out.blocking_send(f(r).map_err(unexpected)?).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Rows of one table to records.
type ToRecord = Box<dyn Fn(&rusqlite::Row) -> rusqlite::Result<Record>>;

fn dump_all(c: &Connection, out: &Sender<Record>) -> Result<(), StoreError> {
    c.execute_batch("BEGIN").map_err(unexpected)?;
    let opt_ts = |v: Option<String>| v.map(ts).transpose();
    let steps: Vec<(String, ToRecord)> = vec![
        (
            "SELECT id, name, created_at FROM clinics ORDER BY created_at, id".into(),
            Box::new(|r| {
                Ok(Record::Clinic(Clinic {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: ts(r.get(2)?)?,
                }))
            }),
        ),
        (
            "SELECT key_hash, prefix, clinic_id, mode, created_at, revoked_at FROM api_keys ORDER BY created_at, key_hash".into(),
            Box::new(move |r| {
                Ok(Record::ApiKey {
                    key: ApiKeyRecord {
                        key_hash: r.get(0)?,
                        prefix: r.get(1)?,
                        clinic_id: r.get(2)?,
                        mode: mode_of(&r.get::<_, String>(3)?)?,
                        created_at: ts(r.get(4)?)?,
                    },
                    revoked_at: opt_ts(r.get(5)?)?,
                })
            }),
        ),
        (
            format!("SELECT {} FROM staff ORDER BY created_at, id", crate::staff::STAFF_COLUMNS),
            Box::new(|r| crate::staff::staff_row(r).map(Record::Staff)),
        ),
        (
            format!(
                "SELECT {} FROM prescriber_keys ORDER BY clinic_id, added_at, kid",
                crate::prescriber_keys::COLUMNS
            ),
            Box::new(|r| crate::prescriber_keys::row(r).map(Record::PrescriberKey)),
        ),
        (
            format!(
                "SELECT {}, p.nhs, p.demographic, p.name_dob, p.family_dob, p.email, p.postcode, p.address, ph.phone
                 FROM prescriptions r JOIN rx_patient p ON p.prescription_id = r.id
                 LEFT JOIN rx_patient_phone ph ON ph.prescription_id = r.id ORDER BY r.seq",
                RX_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ")
            ),
            Box::new(|r| {
                let (seq, record) = rx_row(r)?;
                Ok(Record::Prescription {
                    seq,
                    record,
                    patient: PatientKeys {
                        nhs: r.get(16)?,
                        demographic: r.get(17)?,
                        name_dob: r.get(18)?,
                        family_dob: r.get(19)?,
                        email: r.get(20)?,
                        postcode: r.get(21)?,
                        address: r.get(22)?,
                        phone: r.get(23)?,
                    },
                })
            }),
        ),
        (
            "SELECT i.clinic_id, i.mode, i.key, i.request_hash, a.response_status, a.response_body, i.created_at
             FROM idempotency i JOIN idempotency_answers a ON a.seq = i.answer ORDER BY i.created_at, i.clinic_id, i.mode, i.key".into(),
            Box::new(|r| {
                Ok(Record::Idempotency(IdempotencyRecord {
                    clinic_id: r.get(0)?,
                    mode: mode_of(&r.get::<_, String>(1)?)?,
                    key: r.get(2)?,
                    request_hash: r.get(3)?,
                    response_status: r.get(4)?,
                    response_body: r.get(5)?,
                    created_at: ts(r.get(6)?)?,
                }))
            }),
        ),
        (
            "SELECT doc FROM payments ORDER BY created_at, id".into(),
            Box::new(|r| Ok(Record::Payment(json(r.get(0)?)?))),
        ),
        (
            "SELECT source, event_id, at FROM provider_events_seen ORDER BY at, source, event_id".into(),
            Box::new(|r| {
                Ok(Record::Seen {
                    source: r.get(0)?,
                    id: r.get(1)?,
                    at: ts(r.get(2)?)?,
                })
            }),
        ),
        (
            "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM events ORDER BY seq".into(),
            Box::new(|r| event_row(r).map(Record::Event)),
        ),
        (
            "SELECT id, destination, url, secrets, enabled, disabled_reason, created_at FROM endpoints ORDER BY destination".into(),
            Box::new(|r| crate::fulfilment::endpoint_row(r).map(Record::Endpoint)),
        ),
        (
            format!("SELECT {} FROM outbox ORDER BY seq", crate::fulfilment::MSG_COLUMNS),
            Box::new(|r| crate::fulfilment::msg_row(r).map(Record::Message)),
        ),
        (
            "SELECT message_id, n, at, endpoint_id, http_status, error, duration_ms FROM outbox_attempts ORDER BY message_id, n".into(),
            Box::new(|r| {
                Ok(Record::Attempt(Attempt {
                    message_id: r.get(0)?,
                    n: r.get(1)?,
                    at: ts(r.get(2)?)?,
                    endpoint_id: r.get(3)?,
                    http_status: r.get(4)?,
                    error: r.get(5)?,
                    duration_ms: r.get::<_, i64>(6)? as u64,
                }))
            }),
        ),
        (
            format!("SELECT {} FROM register_entries ORDER BY seq", crate::fulfilment::ENTRY_COLUMNS),
            Box::new(|r| crate::fulfilment::entry_row(r).map(Record::RegisterEntry)),
        ),
    ];
    let mut result = Ok(());
    for (sql, f) in &steps {
        match each(c, out, sql, f) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = c.execute_batch("COMMIT");
    result
}

#[async_trait]
impl Dump for SqliteStore {
    async fn dump(&self, out: Sender<Record>) -> Result<(), StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let c = crate::open_conn(&path, true).map_err(unexpected)?;
            dump_all(&c, &out)
        })
        .await
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("export task: {e}")))?
    }
}

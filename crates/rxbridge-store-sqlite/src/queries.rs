//! SQL for every store operation. Write functions run inside the writer's transaction and
//! savepoint; read functions on a read-only connection.

pub use crate::conn::unexpected;
use crate::writer::Chain;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rxbridge_app::events::{EventRecord, GENESIS_HASH, NewEvent, chain_hash};
use rxbridge_app::ports::*;
use rxbridge_app::state::Binding;
use rxbridge_domain::declaration::NhsExemption;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::PrescriptionType;

/// A set of statuses as an SQL list (`'paid', 'expired'`), taken from the domain's own set
/// (`Status::expirable`, `Status::unsupplied_ends`): the store queries by the statuses the
/// lifecycle names, so a new status cannot leave the SQL behind. The names are the domain's
/// fixed identifiers, never input.
pub fn status_list(set: impl IntoIterator<Item = Status>) -> String {
    set.into_iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// A unique-constraint failure is `Duplicate` (the write was done before); anything else unexpected.
pub(crate) fn duplicate_or_unexpected(e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Duplicate
    } else {
        unexpected(e)
    }
}

/// After an update matched no row: `Conflict` when row `id` of `table` exists (another
/// version), `NotFound` when it does not.
pub(crate) fn conflict_or_missing(c: &rusqlite::Connection, table: &str, id: &str) -> StoreError {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = ?1)");
    match c.query_row(&sql, [id], |r| r.get::<_, bool>(0)) {
        Ok(true) => StoreError::Conflict,
        Ok(false) => StoreError::NotFound,
        Err(e) => unexpected(e),
    }
}

pub(crate) fn ts(s: String) -> rusqlite::Result<jiff::Timestamp> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn mode_of(s: &str) -> rusqlite::Result<Mode> {
    Mode::parse(s).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, format!("mode {s}"), rusqlite::types::Type::Text)
    })
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub fn chain_head(c: &Connection) -> rusqlite::Result<Chain> {
    Ok(c.query_row(
        "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
        [],
        |r| {
            Ok(Chain {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        },
    )
    .optional()?
    .unwrap_or(Chain {
        seq: 0,
        hash: GENESIS_HASH.to_string(),
    }))
}

pub fn append_event(c: &Connection, chain: &mut Chain, e: &NewEvent) -> Result<(), StoreError> {
    let seq = chain.seq + 1;
    let hash = chain_hash(&chain.hash, seq, e);
    c.prepare_cached(
        "INSERT INTO events (seq, at, kind, actor, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![seq, e.at.to_string(), e.kind, e.actor, e.subject, e.detail.to_string(), chain.hash, hash])
    })
    .map_err(unexpected)?;
    *chain = Chain { seq, hash };
    Ok(())
}

pub fn create_clinic(
    c: &Connection,
    chain: &mut Chain,
    clinic: &Clinic,
    keys: &[ApiKeyRecord],
    event: &NewEvent,
) -> Result<(), StoreError> {
    let map = |e: rusqlite::Error| {
        if is_unique_violation(&e) {
            StoreError::Duplicate
        } else {
            unexpected(e)
        }
    };
    c.execute(
        "INSERT INTO clinics (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![clinic.id, clinic.name, clinic.created_at.to_string()],
    )
    .map_err(map)?;
    for k in keys {
        insert_key(c, k).map_err(map)?;
    }
    append_event(c, chain, event)
}

fn insert_key(c: &Connection, k: &ApiKeyRecord) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT INTO api_keys (key_hash, prefix, clinic_id, mode, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![k.key_hash, k.prefix, k.clinic_id, k.mode.as_str(), k.created_at.to_string()],
    )
}

fn clinic_row(r: &Row) -> rusqlite::Result<Clinic> {
    Ok(Clinic {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: ts(r.get(2)?)?,
    })
}

pub fn get_clinic(c: &Connection, id: &str) -> Result<Option<Clinic>, StoreError> {
    c.query_row(
        "SELECT id, name, created_at FROM clinics WHERE id = ?1",
        [id],
        clinic_row,
    )
    .optional()
    .map_err(unexpected)
}

pub fn list_clinics(c: &Connection) -> Result<Vec<Clinic>, StoreError> {
    let mut s = c
        .prepare("SELECT id, name, created_at FROM clinics ORDER BY created_at, id")
        .map_err(unexpected)?;
    s.query_map([], clinic_row)
        .and_then(|rows| rows.collect())
        .map_err(unexpected)
}

pub fn rotate_key(
    c: &Connection,
    chain: &mut Chain,
    key: &ApiKeyRecord,
    event: &NewEvent,
) -> Result<(), StoreError> {
    if get_clinic(c, &key.clinic_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    c.execute(
        "UPDATE api_keys SET revoked_at = ?1 WHERE clinic_id = ?2 AND mode = ?3 AND revoked_at IS NULL",
        params![key.created_at.to_string(), key.clinic_id, key.mode.as_str()],
    )
    .map_err(unexpected)?;
    insert_key(c, key).map_err(crate::queries::duplicate_or_unexpected)?;
    append_event(c, chain, event)
}

pub fn find_api_key(c: &Connection, hash: &str) -> Result<Option<Caller>, StoreError> {
    c.prepare_cached(
        "SELECT clinic_id, mode FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
    )
    .and_then(|mut s| {
        s.query_row([hash], |r| {
            Ok(Caller {
                clinic_id: r.get(0)?,
                mode: mode_of(&r.get::<_, String>(1)?)?,
            })
        })
        .optional()
    })
    .map_err(unexpected)
}

/// Bumped by the triggers on `api_keys` (schema 11) at every change, by any process.
pub fn api_key_generation(c: &Connection) -> Result<i64, StoreError> {
    c.prepare_cached("SELECT n FROM api_key_generation WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unexpected)
}

pub fn find_idempotency(
    c: &Connection,
    clinic_id: &str,
    mode: Mode,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    c.prepare_cached(
        "SELECT i.request_hash, a.response_status, a.response_body, i.created_at FROM idempotency i
         JOIN idempotency_answers a ON a.seq = i.answer WHERE i.clinic_id = ?1 AND i.mode = ?2 AND i.key = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![clinic_id, mode.as_str(), key], |r| {
            Ok(IdempotencyRecord {
                clinic_id: clinic_id.to_string(),
                mode,
                key: key.to_string(),
                request_hash: r.get(0)?,
                response_status: r.get(1)?,
                response_body: r.get(2)?,
                created_at: ts(r.get(3)?)?,
            })
        })
        .optional()
    })
    .map_err(unexpected)
}

pub fn insert_prescription(
    c: &Connection,
    chain: &mut Chain,
    new: &NewPrescription,
) -> Result<InsertOutcome, StoreError> {
    let i = &new.idempotency;
    // The unique key is claimed first, in this transaction: if it exists nothing else is written.
    // The claim names the answer appended next (the writer is the only one appending, and the
    // whole write is one transaction).
    let answer: i64 = c
        .prepare_cached("SELECT IFNULL(MAX(seq), 0) + 1 FROM idempotency_answers")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(unexpected)?;
    let claimed = c
        .prepare_cached(
            "INSERT INTO idempotency (clinic_id, mode, key, request_hash, answer, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                i.clinic_id,
                i.mode.as_str(),
                i.key,
                i.request_hash,
                answer,
                i.created_at.to_string()
            ])
        })
        .map_err(unexpected)?;
    if claimed == 0 {
        let existing = find_idempotency(c, &i.clinic_id, i.mode, &i.key)?
            .ok_or_else(|| unexpected("idempotency row vanished inside its transaction"))?;
        return Ok(InsertOutcome::KeyExists(existing));
    }
    c.prepare_cached(
        "INSERT INTO idempotency_answers (seq, response_status, response_body) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![answer, i.response_status, i.response_body]))
    .map_err(unexpected)?;
    // The row names the event written with it, and that event binds the row.
    let mut record = new.record.clone();
    record.event_seq = chain.seq + 1;
    let mut event = new.event.clone();
    let mut binding = Binding::default();
    binding.prescription(&record);
    binding.apply(&mut event);
    let r = &record;
    let items = serde_json::to_string(&r.items).unwrap_or_default();
    c.prepare_cached(
        "INSERT INTO prescriptions (id, clinic_id, mode, clinic_reference, kind, status, version, issued_on, created_at, updated_at, items, findings, sealed, event_seq, nhs_exemption)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.id, r.clinic_id, r.mode.as_str(), r.clinic_reference, r.kind.as_str(), r.status.as_str(), r.version,
            r.issued_on.to_string(), r.created_at.to_string(), r.updated_at.to_string(),
            items, serde_json::to_string(&r.findings).unwrap_or_default(), r.sealed, r.event_seq,
            exemption_json(r.nhs_exemption.as_ref())?
        ])
    })
    .map_err(duplicate_or_unexpected)?;
    // The prescriptions row id (the order of arrival the history keeps).
    let prescription_seq = c.last_insert_rowid();
    crate::patients::insert_patient(c, r, prescription_seq, &items, &new.patient)?;
    append_event(c, chain, &event)?;
    Ok(InsertOutcome::Inserted)
}

pub(crate) const RX_COLUMNS: &str = "seq, id, clinic_id, mode, clinic_reference, kind, status, version, issued_on, created_at, updated_at, items, findings, sealed, event_seq, nhs_exemption";

pub(crate) fn rx_row(r: &Row) -> rusqlite::Result<(i64, PrescriptionRecord)> {
    rx_row_at(r, 0)
}

/// A prescription from the columns starting at `o` (`RX_COLUMNS` order).
pub(crate) fn rx_row_at(r: &Row, o: usize) -> rusqlite::Result<(i64, PrescriptionRecord)> {
    let kind: String = r.get(o + 5)?;
    let status: String = r.get(o + 6)?;
    let issued: String = r.get(o + 8)?;
    Ok((
        r.get(o)?,
        PrescriptionRecord {
            id: r.get(o + 1)?,
            clinic_id: r.get(o + 2)?,
            mode: mode_of(&r.get::<_, String>(o + 3)?)?,
            clinic_reference: r.get(o + 4)?,
            kind: if kind == "nhs" {
                PrescriptionType::Nhs
            } else {
                PrescriptionType::Private
            },
            status: Status::parse(&status).ok_or_else(|| {
                rusqlite::Error::InvalidColumnType(
                    6,
                    format!("status {status}"),
                    rusqlite::types::Type::Text,
                )
            })?,
            version: r.get(o + 7)?,
            issued_on: issued.parse().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    8,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            created_at: ts(r.get(o + 9)?)?,
            updated_at: ts(r.get(o + 10)?)?,
            items: json(r.get(o + 11)?)?,
            findings: json(r.get(o + 12)?)?,
            sealed: r.get(o + 13)?,
            event_seq: r.get(o + 14)?,
            nhs_exemption: r.get::<_, Option<String>>(o + 15)?.map(json).transpose()?,
        },
    ))
}

/// A page from `limit + 1` rows: the extra row only says there is more.
fn page_of(rows: Vec<(i64, PrescriptionRecord)>, limit: u32) -> Page {
    let more = rows.len() > limit as usize;
    let items: Vec<(i64, PrescriptionRecord)> = rows.into_iter().take(limit as usize).collect();
    let next = if more {
        items.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, r)| r).collect(),
        next,
    }
}

pub fn get_prescription(
    c: &Connection,
    clinic_id: &str,
    mode: Mode,
    id: &str,
) -> Result<Option<PrescriptionRecord>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {RX_COLUMNS} FROM prescriptions WHERE id = ?1 AND clinic_id = ?2 AND mode = ?3"
    ))
    .and_then(|mut s| {
        s.query_row(params![id, clinic_id, mode.as_str()], rx_row)
            .optional()
    })
    .map(|o| o.map(|(_, r)| r))
    .map_err(unexpected)
}

pub fn list_prescriptions(
    c: &Connection,
    clinic_id: &str,
    mode: Mode,
    f: &ListFilter,
    after: Option<i64>,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, 100);
    let sql = list_sql(f.clinic_reference.is_some());
    let mut s = c.prepare_cached(&sql).map_err(unexpected)?;
    let rows: Vec<(i64, PrescriptionRecord)> = s
        .query_map(
            params![
                clinic_id,
                mode.as_str(),
                after.unwrap_or(i64::MAX),
                f.status.map(|s| s.as_str()),
                f.clinic_reference,
                limit + 1
            ],
            rx_row,
        )
        .and_then(|r| r.collect())
        .map_err(unexpected)?;
    Ok(page_of(rows, limit))
}

/// A clinic's listing, newest first: a walk of `rx_by_clinic` (a status is a filter on it), or
/// with a clinic reference the few rows of `rx_by_mode_reference` under it (the one index of
/// references, which staff search reads too), filtered to the clinic.
pub(crate) fn list_sql(by_reference: bool) -> String {
    // ?5 (the reference) is bound either way; without one it is NULL and not read.
    let (index, reference) = if by_reference {
        ("rx_by_mode_reference", "AND clinic_reference = ?5")
    } else {
        ("rx_by_clinic", "AND ?5 IS NULL")
    };
    format!(
        "SELECT {RX_COLUMNS} FROM prescriptions INDEXED BY {index}
         WHERE clinic_id = ?1 AND mode = ?2 AND seq < ?3 AND (?4 IS NULL OR status = ?4) {reference}
         ORDER BY seq DESC LIMIT ?6"
    )
}

pub fn transition(
    c: &Connection,
    chain: &mut Chain,
    id: &str,
    expected: i64,
    to: Status,
    event: &NewEvent,
) -> Result<PrescriptionRecord, StoreError> {
    let rec = transition_row(c, id, expected, to, event.at, chain.seq + 1, None)?;
    let mut event = event.clone();
    let mut binding = Binding::default();
    binding.prescription(&rec);
    binding.apply(&mut event);
    append_event(c, chain, &event)?;
    Ok(rec)
}

/// The NHS exemption state as its column holds it.
fn exemption_json(e: Option<&NhsExemption>) -> rusqlite::Result<Option<String>> {
    e.map(|e| {
        serde_json::to_string(e).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    })
    .transpose()
}

/// The history rows of a prescription follow its status (`rx_history_by_prescription`).
pub(crate) const HISTORY_STATUS_SQL: &str =
    "UPDATE rx_history SET status = ?1 WHERE prescription_id = ?2";

/// Move the row (naming `event_seq`, the event the caller appends next) and return it as
/// written; the caller binds it into that event. `exemption`, when given, is the NHS charge
/// exemption's new state (kept as it was otherwise).
pub fn transition_row(
    c: &Connection,
    id: &str,
    expected: i64,
    to: Status,
    at: jiff::Timestamp,
    event_seq: i64,
    exemption: Option<&NhsExemption>,
) -> Result<PrescriptionRecord, StoreError> {
    let exemption = exemption_json(exemption).map_err(unexpected)?;
    let n = c
        .execute(
            "UPDATE prescriptions SET status = ?1, version = version + 1, updated_at = ?2, event_seq = ?5,
             nhs_exemption = COALESCE(?6, nhs_exemption) WHERE id = ?3 AND version = ?4",
            params![to.as_str(), at.to_string(), id, expected, event_seq, exemption],
        )
        .map_err(unexpected)?;
    if n == 0 {
        return Err(crate::queries::conflict_or_missing(c, "prescriptions", id));
    }
    c.prepare_cached(HISTORY_STATUS_SQL)
        .and_then(|mut s| s.execute(params![to.as_str(), id]))
        .map_err(unexpected)?;
    c.query_row(
        &format!("SELECT {RX_COLUMNS} FROM prescriptions WHERE id = ?1"),
        [id],
        rx_row,
    )
    .map(|(_, r)| r)
    .map_err(unexpected)
}

pub(crate) fn event_row(r: &Row) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        seq: r.get(0)?,
        event: NewEvent {
            at: ts(r.get(1)?)?,
            kind: r.get(2)?,
            actor: r.get(3)?,
            subject: r.get(4)?,
            detail: json(r.get(5)?)?,
        },
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

/// A subject's events in order (`events_by_subject`).
pub(crate) const TIMELINE_SQL: &str = "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM events WHERE subject = ?1 ORDER BY seq";

pub fn timeline(c: &Connection, subject: &str) -> Result<Vec<EventRecord>, StoreError> {
    c.prepare_cached(TIMELINE_SQL)
        .and_then(|mut s| s.query_map([subject], event_row)?.collect())
        .map_err(unexpected)
}

pub fn events_after(
    c: &Connection,
    after: i64,
    limit: u32,
) -> Result<Vec<EventRecord>, StoreError> {
    c.prepare_cached("SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .and_then(|mut s| s.query_map(params![after, limit], event_row)?.collect())
        .map_err(unexpected)
}

pub fn get_prescription_for_staff(
    c: &Connection,
    mode: Mode,
    id: &str,
) -> Result<Option<PrescriptionRecord>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {RX_COLUMNS} FROM prescriptions WHERE id = ?1 AND mode = ?2"
    ))
    .and_then(|mut s| s.query_row(params![id, mode.as_str()], rx_row).optional())
    .map(|o| o.map(|(_, r)| r))
    .map_err(unexpected)
}

/// The pharmacist's worklist across clinics, oldest first (`rx_by_mode_status`).
pub(crate) fn worklist_sql() -> String {
    format!(
        "SELECT {RX_COLUMNS} FROM prescriptions WHERE mode = ?1 AND status = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
    )
}

pub fn worklist(
    c: &Connection,
    mode: Mode,
    status: Status,
    after: Option<i64>,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, 200);
    let mut s = c.prepare_cached(&worklist_sql()).map_err(unexpected)?;
    let rows: Vec<(i64, PrescriptionRecord)> = s
        .query_map(
            params![
                mode.as_str(),
                status.as_str(),
                after.unwrap_or(0),
                limit + 1
            ],
            rx_row,
        )
        .and_then(|r| r.collect())
        .map_err(unexpected)?;
    Ok(page_of(rows, limit))
}

//! The patient keys of each prescription: their rows (the prescription's keys, its history
//! rows, and each patient's lookup keys once), staff search by a patient's details, and the
//! history and identity reads of a submission, by index seeks bounded by a limit
//! (`hot_keys.rs`).

use crate::queries::{RX_COLUMNS, json, rx_row, unexpected};
use rusqlite::{Connection, OptionalExtension, params};
use rxbridge_app::ports::*;
use rxbridge_domain::compliance::{HistoryEntry, IdentitySignals, MAX_COUNTED_AT_ADDRESS};
use rxbridge_domain::lifecycle::Status;

/// A patient's key in the history and the lookups: their NHS number when they have one, their
/// demographics otherwise (`PatientKeys::identity`, with the kind of key in front).
fn patient_key(p: &PatientKeys) -> String {
    match &p.nhs {
        Some(n) => format!("n:{n}"),
        None => format!("d:{}", p.demographic),
    }
}

/// A lookup value seen with a patient; nothing is written when it was seen before.
const INSERT_LOOKUP: &str = "INSERT INTO rx_patient_lookup (mode, kind, value, patient) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";

/// Write prescription `r`'s patient keys (its row in arrival order `seq`, `items` as JSON).
pub(crate) fn insert_patient(
    c: &Connection,
    r: &PrescriptionRecord,
    seq: i64,
    items: &str,
    p: &PatientKeys,
) -> Result<(), StoreError> {
    let m = r.mode.as_str();
    c.prepare_cached(
        "INSERT INTO rx_patient (prescription_id, mode, identity, nhs, demographic, name_dob, family_dob, email, postcode, address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![r.id, m, p.identity(), p.nhs, p.demographic, p.name_dob, p.family_dob, p.email, p.postcode, p.address])
    })
    .map_err(unexpected)?;
    if let Some(phone) = &p.phone {
        c.prepare_cached(
            "INSERT INTO rx_patient_phone (prescription_id, mode, phone) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![r.id, m, phone]))
        .map_err(unexpected)?;
    }
    let patient = patient_key(p);
    let lookups = [
        ("a", Some(&p.address)),
        ("e", p.email.as_ref()),
        ("f", Some(&p.family_dob)),
        ("p", Some(&p.postcode)),
        ("t", p.phone.as_ref()),
    ];
    let mut insert = c.prepare_cached(INSERT_LOOKUP).map_err(unexpected)?;
    for (kind, value) in lookups {
        if let Some(value) = value {
            insert
                .execute(params![m, kind, value, patient])
                .map_err(unexpected)?;
        }
    }
    if let Some(nhs) = &p.nhs {
        c.prepare_cached(
            "INSERT INTO rx_nhs_details (mode, nhs, name_dob) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![m, nhs, p.name_dob]))
        .map_err(unexpected)?;
    }
    let mut keys = vec![format!("d:{}", p.demographic)];
    if let Some(n) = &p.nhs {
        keys.push(format!("n:{n}"));
    }
    for key in keys {
        c.prepare_cached(
            "INSERT INTO rx_history (mode, key, seq, prescription_id, has_nhs, clinic_id, issued_on, status, items)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![m, key, seq, r.id, p.nhs.is_some(), r.clinic_id, r.issued_on.to_string(), r.status.as_str(), items])
        })
        .map_err(unexpected)?;
    }
    Ok(())
}

/// History with an NHS number: the patient's NHS key, plus records under their demographics
/// that carry none. Each branch is a range of at most `limit` rows, newest first.
const HISTORY_WITH_NHS: &str = "SELECT prescription_id, clinic_id, status, issued_on, items, seq FROM (
        SELECT * FROM (SELECT prescription_id, clinic_id, status, issued_on, items, seq FROM rx_history
                       WHERE mode = ?1 AND key = ?2 ORDER BY seq DESC LIMIT ?4)
        UNION ALL
        SELECT * FROM (SELECT prescription_id, clinic_id, status, issued_on, items, seq
                       FROM rx_history INDEXED BY rx_history_without_nhs
                       WHERE mode = ?1 AND key = ?3 AND has_nhs = 0 ORDER BY seq DESC LIMIT ?4)
    ) ORDER BY seq DESC LIMIT ?4";

/// History without an NHS number: every record under the demographics.
const HISTORY_WITHOUT_NHS: &str =
    "SELECT prescription_id, clinic_id, status, issued_on, items, seq FROM rx_history
    WHERE mode = ?1 AND key = ?2 ORDER BY seq DESC LIMIT ?3";

pub fn patient_history(
    c: &Connection,
    mode: Mode,
    k: &PatientKeys,
    clinic_id: &str,
    limit: u32,
) -> Result<Vec<HistoryEntry>, StoreError> {
    // The patient is their NHS number when they have one; the demographic key matches only
    // records without an NHS number (or every record when this one has none). A record with
    // another NHS number but the same demographics is someone else, or an identity conflict,
    // which `identity_signals` reports. Both are range reads of the clustered history table
    // (records without an NHS number through the partial index `rx_history_without_nhs`), each
    // bounded by `limit`: thousands of records sharing the demographics under other NHS
    // numbers are never read.
    let demo_key = format!("d:{}", k.demographic);
    let row = |r: &rusqlite::Row| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            json::<Vec<ItemSummary>>(r.get(4)?)?,
        ))
    };
    let rows = match &k.nhs {
        Some(n) => c.prepare_cached(HISTORY_WITH_NHS).and_then(|mut s| {
            s.query_map(
                params![mode.as_str(), format!("n:{n}"), demo_key, limit],
                row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        }),
        None => c.prepare_cached(HISTORY_WITHOUT_NHS).and_then(|mut s| {
            s.query_map(params![mode.as_str(), demo_key, limit], row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        }),
    }
    .map_err(unexpected)?;
    let mut out = Vec::new();
    for (id, clinic, status, issued, items) in rows {
        let status =
            Status::parse(&status).ok_or_else(|| unexpected(format!("bad status {status}")))?;
        let start = issued.parse().map_err(unexpected)?;
        for i in items {
            out.push(HistoryEntry {
                prescription_id: id.clone(),
                same_clinic: clinic == clinic_id,
                product_code: i.product_code,
                active_ingredient: i.active_ingredient,
                start,
                days_supply: i.days_supply,
                status,
            });
        }
    }
    Ok(out)
}

/// The next patient seen at an address after `after` (a seek in the lookup keys).
const NEXT_IDENTITY_AT_ADDRESS: &str = "SELECT patient FROM rx_patient_lookup WHERE mode = ?1 AND kind = 'a' AND value = ?2 AND patient > ?3 ORDER BY patient LIMIT 1";

/// The NHS number seen with other name + date of birth: a pair on either side of this one.
const NHS_WITH_OTHER_DETAILS: &str =
    "SELECT EXISTS (SELECT 1 FROM rx_nhs_details WHERE mode = ?1 AND nhs = ?2 AND name_dob < ?3)
    OR EXISTS (SELECT 1 FROM rx_nhs_details WHERE mode = ?1 AND nhs = ?2 AND name_dob > ?3)";

/// The name + date of birth seen with another NHS number (the pairs' other order).
const DETAILS_WITH_OTHER_NHS: &str =
    "SELECT EXISTS (SELECT 1 FROM rx_nhs_details INDEXED BY rx_details_nhs WHERE mode = ?1 AND name_dob = ?2 AND nhs < ?3)
    OR EXISTS (SELECT 1 FROM rx_nhs_details INDEXED BY rx_details_nhs WHERE mode = ?1 AND name_dob = ?2 AND nhs > ?3)";

pub fn identity_signals(
    c: &Connection,
    mode: Mode,
    k: &PatientKeys,
) -> Result<IdentitySignals, StoreError> {
    let m = mode.as_str();
    // Distinct other identities at the address, one index seek each, counted up to the cap:
    // one patient with a thousand records there costs one seek, as do a thousand patients
    // beyond the cap.
    let me = patient_key(k);
    let mut other_patients_at_address = 0;
    let mut after = String::new();
    let mut next = c
        .prepare_cached(NEXT_IDENTITY_AT_ADDRESS)
        .map_err(unexpected)?;
    while other_patients_at_address < MAX_COUNTED_AT_ADDRESS {
        let Some(id) = next
            .query_row(params![m, k.address, after], |r| r.get::<_, String>(0))
            .optional()
            .map_err(unexpected)?
        else {
            break;
        };
        if id != me {
            other_patients_at_address += 1;
        }
        after = id;
    }
    let (nhs_number_with_other_details, details_with_other_nhs_number) = match &k.nhs {
        Some(nhs) => (
            c.prepare_cached(NHS_WITH_OTHER_DETAILS)
                .and_then(|mut s| s.query_row(params![m, nhs, k.name_dob], |r| r.get(0)))
                .map_err(unexpected)?,
            c.prepare_cached(DETAILS_WITH_OTHER_NHS)
                .and_then(|mut s| s.query_row(params![m, k.name_dob, nhs], |r| r.get(0)))
                .map_err(unexpected)?,
        ),
        None => (false, false),
    };
    Ok(IdentitySignals {
        other_patients_at_address,
        nhs_number_with_other_details,
        details_with_other_nhs_number,
    })
}

/// The statements of a submission's history and identity reads, for plan checks in tests.
#[cfg(test)]
pub(crate) const PATIENT_CONTEXT_SQL: [&str; 5] = [
    HISTORY_WITH_NHS,
    HISTORY_WITHOUT_NHS,
    NEXT_IDENTITY_AT_ADDRESS,
    NHS_WITH_OTHER_DETAILS,
    DETAILS_WITH_OTHER_NHS,
];

pub fn search(
    c: &Connection,
    mode: Mode,
    lookup: &StaffLookup,
    limit: u32,
) -> Result<Vec<PrescriptionRecord>, StoreError> {
    let limit = limit.clamp(1, 200);
    let (sql, key) = search_sql(lookup);
    let mut s = c.prepare_cached(&sql).map_err(unexpected)?;
    s.query_map(params![mode.as_str(), key, limit], rx_row)
        .and_then(|r| r.map(|x| x.map(|(_, r)| r)).collect())
        .map_err(unexpected)
}

/// Staff search's statement for `lookup`, and the key it binds as ?2 (?1 the mode, ?3 the limit).
pub(crate) fn search_sql(lookup: &StaffLookup) -> (String, &str) {
    // A prescription is found through its patient's lookup row and history rows, then
    // checked against its own keys (a patient's other prescriptions may carry other values).
    // Under a demographic key only records without an NHS number are the patient's: those
    // with one are found through their own NHS key's lookup row.
    let by_patient = |kind: &str, table: &str, column: &str| {
        format!(
            "SELECT {RX_COLUMNS} FROM prescriptions WHERE id IN (
                 SELECT h.prescription_id FROM rx_patient_lookup l
                 JOIN rx_history h ON h.mode = l.mode AND h.key = l.patient
                     AND h.has_nhs = (substr(l.patient, 1, 2) = 'n:')
                 JOIN {table} p ON p.prescription_id = h.prescription_id
                 WHERE l.mode = ?1 AND l.kind = '{kind}' AND l.value = ?2 AND p.{column} = ?2)
             ORDER BY seq DESC LIMIT ?3"
        )
    };
    match lookup {
        StaffLookup::PrescriptionId(id) => (
            format!("SELECT {RX_COLUMNS} FROM prescriptions WHERE mode = ?1 AND id = ?2 LIMIT ?3"),
            id,
        ),
        StaffLookup::ClinicReference(r) => (
            format!(
                "SELECT {RX_COLUMNS} FROM prescriptions WHERE mode = ?1 AND clinic_reference = ?2 ORDER BY seq DESC LIMIT ?3"
            ),
            r,
        ),
        // Every prescription with the number is in its history.
        StaffLookup::NhsNumber(k) => (
            format!(
                "SELECT {RX_COLUMNS} FROM prescriptions WHERE id IN (SELECT prescription_id FROM rx_history WHERE mode = ?1 AND key = 'n:' || ?2) ORDER BY seq DESC LIMIT ?3"
            ),
            k,
        ),
        StaffLookup::Email(k) => (by_patient("e", "rx_patient", "email"), k),
        StaffLookup::Phone(k) => (by_patient("t", "rx_patient_phone", "phone"), k),
        StaffLookup::Postcode(k) => (by_patient("p", "rx_patient", "postcode"), k),
        StaffLookup::FamilyNameAndDob(k) => (by_patient("f", "rx_patient", "family_dob"), k),
    }
}

//! Each patient's lookup keys, kept once per patient (schema 14), answer staff search and the
//! identity checks exactly as one entry per prescription did: on records whose details overlap
//! in every way (one patient under several emails, one set of demographics under several NHS
//! numbers, records with and without an NHS number or a phone), each answer is compared with
//! the same question asked of every prescription's own keys — after writing, and again after a
//! store of schema 13 is upgraded in place.

use crate::SqliteStore;
use crate::conn::open_conn;
use rxbridge_app::contract::{clinic, new_rx, record};
use rxbridge_app::ports::*;
use rxbridge_domain::compliance::{IdentitySignals, MAX_COUNTED_AT_ADDRESS};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

fn patient(i: u32) -> PatientKeys {
    PatientKeys {
        nhs: (!i.is_multiple_of(3)).then(|| format!("n{}", i % 7)),
        demographic: format!("d{}", i % 5),
        name_dob: format!("nd{}", i % 4),
        family_dob: format!("fd{}", i % 3),
        phone: i.is_multiple_of(2).then(|| format!("t{}", i % 5)),
        email: (!i.is_multiple_of(11)).then(|| format!("e{}", i % 6)),
        postcode: format!("pc{}", i % 2),
        address: format!("ad{}", i % 4),
    }
}

fn mode(i: u32) -> Mode {
    if i % 10 == 9 { Mode::Live } else { Mode::Test }
}

const RECORDS: u32 = 90;

async fn fill(store: &Arc<dyn Store>) {
    clinic(store, "cl_a").await;
    for i in 0..RECORDS {
        let rec = record(&format!("rx_{i:03}"), "cl_a", mode(i), "R");
        store
            .insert_prescription(new_rx(rec, &format!("k{i}"), patient(i)))
            .await
            .unwrap();
    }
}

/// Every record's own keys, newest first.
fn records() -> Vec<(String, Mode, PatientKeys)> {
    (0..RECORDS)
        .rev()
        .map(|i| (format!("rx_{i:03}"), mode(i), patient(i)))
        .collect()
}

fn expected_signals(m: Mode, k: &PatientKeys) -> IdentitySignals {
    let rows: Vec<PatientKeys> = records()
        .into_iter()
        .filter(|(_, rm, _)| *rm == m)
        .map(|(.., p)| p)
        .collect();
    let others: BTreeSet<&str> = rows
        .iter()
        .filter(|p| p.address == k.address && p.identity() != k.identity())
        .map(|p| p.identity())
        .collect();
    let with_nhs = |f: &dyn Fn(&PatientKeys, &str) -> bool| match &k.nhs {
        Some(n) => rows.iter().any(|p| f(p, n)),
        None => false,
    };
    IdentitySignals {
        other_patients_at_address: (others.len() as u32).min(MAX_COUNTED_AT_ADDRESS),
        nhs_number_with_other_details: with_nhs(&|p, n| {
            p.nhs.as_deref() == Some(n) && p.name_dob != k.name_dob
        }),
        details_with_other_nhs_number: with_nhs(&|p, n| {
            p.name_dob == k.name_dob && p.nhs.is_some() && p.nhs.as_deref() != Some(n)
        }),
    }
}

fn expected_search(m: Mode, lookup: &StaffLookup, limit: usize) -> Vec<String> {
    records()
        .into_iter()
        .filter(|(_, rm, p)| {
            *rm == m
                && match lookup {
                    StaffLookup::NhsNumber(v) => p.nhs.as_ref() == Some(v),
                    StaffLookup::Email(v) => p.email.as_ref() == Some(v),
                    StaffLookup::Phone(v) => p.phone.as_ref() == Some(v),
                    StaffLookup::Postcode(v) => &p.postcode == v,
                    StaffLookup::FamilyNameAndDob(v) => &p.family_dob == v,
                    _ => unreachable!(),
                }
        })
        .map(|(id, ..)| id)
        .take(limit)
        .collect()
}

fn lookups() -> Vec<StaffLookup> {
    let mut all = Vec::new();
    for i in 0..8 {
        all.push(StaffLookup::NhsNumber(format!("n{i}")));
        all.push(StaffLookup::Email(format!("e{i}")));
        all.push(StaffLookup::Phone(format!("t{i}")));
        all.push(StaffLookup::Postcode(format!("pc{i}")));
        all.push(StaffLookup::FamilyNameAndDob(format!("fd{i}")));
    }
    all
}

/// Probes: every stored patient, and new ones mixing their details.
fn probes() -> Vec<PatientKeys> {
    let mut all: Vec<PatientKeys> = (0..RECORDS).map(patient).collect();
    for i in 0..40 {
        let mut p = patient(i);
        p.nhs = Some(format!("n{}", (i * 3) % 9));
        p.name_dob = format!("nd{}", (i * 5) % 6);
        p.address = format!("ad{}", i % 5);
        p.demographic = format!("d{}", i % 7);
        all.push(p);
    }
    all
}

async fn check(store: &Arc<dyn Store>) {
    for m in [Mode::Test, Mode::Live] {
        for lookup in lookups() {
            for limit in [3, 200] {
                let got: Vec<String> = store
                    .search(m, &lookup, limit)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                assert_eq!(
                    got,
                    expected_search(m, &lookup, limit as usize),
                    "{m:?} {lookup:?} limit {limit}"
                );
            }
        }
        for k in probes() {
            let got = store.identity_signals(m, &k).await.unwrap();
            assert_eq!(got, expected_signals(m, &k), "{m:?} {k:?}");
        }
    }
}

/// The store as schema 13 laid it out: an entry per prescription in each identity index.
fn back_to_schema_13(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "DROP TABLE rx_patient_lookup;
         DROP TABLE rx_nhs_details;
         CREATE INDEX rxp_nhs ON rx_patient(mode, nhs, name_dob) WHERE nhs IS NOT NULL;
         CREATE INDEX rxp_name_dob ON rx_patient(mode, name_dob, nhs);
         CREATE INDEX rxp_family_dob ON rx_patient(mode, family_dob);
         CREATE INDEX rxp_email ON rx_patient(mode, email) WHERE email IS NOT NULL;
         CREATE INDEX rxp_postcode ON rx_patient(mode, postcode);
         CREATE INDEX rxp_address ON rx_patient(mode, address, identity);
         CREATE INDEX rxp_phone ON rx_patient_phone(mode, phone);
         PRAGMA user_version = 13;",
    )
    .unwrap();
}

#[tokio::test]
async fn lookups_once_per_patient_answer_as_every_prescriptions_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    {
        let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
        let store: Arc<dyn Store> = sqlite.clone();
        fill(&store).await;
        check(&store).await;
        sqlite.close();
    }
    // Upgraded in place from the layout before, the answers are the same.
    back_to_schema_13(&path);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    check(&store).await;
    let c = open_conn(&path, true).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'rxp_%'"),
        0,
        "the per-prescription indexes are dropped"
    );
    // A repeat prescription with the same details adds no lookup row.
    let lookups =
        "SELECT (SELECT count(*) FROM rx_patient_lookup) + (SELECT count(*) FROM rx_nhs_details)";
    let before = count(lookups);
    let again = new_rx(
        record("rx_again", "cl_a", mode(4), "R"),
        "k-again",
        patient(4),
    );
    store.insert_prescription(again).await.unwrap();
    assert_eq!(count(lookups), before);
    let found = store
        .search(mode(4), &StaffLookup::Postcode(patient(4).postcode), 1)
        .await
        .unwrap();
    assert_eq!(found[0].id, "rx_again");
}

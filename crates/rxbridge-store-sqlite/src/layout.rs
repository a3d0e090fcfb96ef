//! The store's layout on disk: a data directory of an earlier schema upgrades in place and
//! reads exactly as before, and every index a submission keeps up to date is one a query reads.

use crate::conn::open_conn;
use crate::{SqliteStore, migrations, patients, queries};
use rusqlite::params;
use rxbridge_app::contract::{clinic, keys, new_rx, record};
use rxbridge_app::ports::*;
use rxbridge_app::transfer::{Dump, Record};
use std::sync::Arc;

/// Idempotency rows as schema 11 stored them (the answer in the key's row), oldest last.
const OLD_ROWS: [(&str, &str, &str, &str); 3] = [
    ("cl_a", "test", "k1", "2026-11-23T10:00:00Z"),
    ("cl_a", "live", "k1", "2026-11-22T10:00:00Z"),
    ("cl_b", "test", "k0", "2026-11-21T10:00:00.123456789Z"),
];

fn old_record(i: usize) -> IdempotencyRecord {
    let (clinic_id, mode, key, at) = OLD_ROWS[i];
    IdempotencyRecord {
        clinic_id: clinic_id.into(),
        mode: Mode::parse(mode).unwrap(),
        key: key.into(),
        request_hash: format!("{i:064x}"),
        response_status: 201,
        // Bytes a re-serialisation would not reproduce: key order, spacing, escapes.
        response_body: format!("{{\"z\":{i}, \"a\":\"caf\u{e9} \\u00e9\"}}"),
        created_at: at.parse().unwrap(),
    }
}

#[tokio::test]
async fn idempotency_rows_of_schema_11_upgrade_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut c = open_conn(&path, false).unwrap();
        migrations::migrate_to(&mut c, 11).unwrap();
        for (i, (.., at)) in OLD_ROWS.iter().enumerate() {
            let r = old_record(i);
            c.execute(
                "INSERT INTO idempotency (clinic_id, mode, key, request_hash, response_status, response_body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.clinic_id, r.mode.as_str(), r.key, r.request_hash, r.response_status, r.response_body, at],
            )
            .unwrap();
        }
    }
    let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
    let store: Arc<dyn Store> = sqlite.clone();
    for i in 0..OLD_ROWS.len() {
        let want = old_record(i);
        let got = store
            .find_idempotency(&want.clinic_id, want.mode, &want.key)
            .await
            .unwrap();
        assert_eq!(got, Some(want));
    }
    // An old key still refuses a second prescription, with its first answer's bytes.
    clinic(&store, "cl_a").await;
    let again = new_rx(
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k1",
        keys(None, "d"),
    );
    match store.insert_prescription(again).await.unwrap() {
        InsertOutcome::KeyExists(rec) => assert_eq!(rec, old_record(0)),
        InsertOutcome::Inserted => panic!("an upgraded key was claimed again"),
    }
    // A new key's answer is numbered after the moved ones and reads back as written.
    let fresh = new_rx(
        record("rx_2", "cl_a", Mode::Test, "R"),
        "k2",
        keys(None, "d"),
    );
    let want = fresh.idempotency.clone();
    assert!(matches!(
        store.insert_prescription(fresh).await.unwrap(),
        InsertOutcome::Inserted
    ));
    let got = store.find_idempotency("cl_a", Mode::Test, "k2").await;
    assert_eq!(got.unwrap(), Some(want.clone()));
    let numbered: i64 = open_conn(&path, false)
        .unwrap()
        .query_row("SELECT answer FROM idempotency WHERE key = 'k2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(numbered, OLD_ROWS.len() as i64 + 1, "after the moved ones");
    // The export reads every row, oldest first, as before the upgrade.
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let dumping = tokio::spawn(async move { sqlite.dump(tx).await });
    let mut exported = Vec::new();
    while let Some(r) = rx.recv().await {
        if let Record::Idempotency(i) = r {
            exported.push(i);
        }
    }
    dumping.await.unwrap().unwrap();
    assert_eq!(
        exported,
        vec![old_record(2), old_record(1), old_record(0), want]
    );
}

/// The tables a submission writes: each of their indexes is a page written per submission.
const INTAKE_TABLES: &str = "'prescriptions', 'rx_patient', 'rx_patient_phone', 'rx_history', 'idempotency', 'idempotency_answers', 'events', 'rx_patient_lookup', 'rx_nhs_details'";

/// The store's statements that read those tables by an index of their own.
fn statements() -> Vec<String> {
    let mut all: Vec<String> = patients::PATIENT_CONTEXT_SQL.map(String::from).to_vec();
    all.extend([
        queries::list_sql(false),
        queries::list_sql(true),
        queries::worklist_sql(),
        queries::TIMELINE_SQL.into(),
        queries::HISTORY_STATUS_SQL.into(),
    ]);
    let k = || "k".to_string();
    for lookup in [
        StaffLookup::PrescriptionId(k()),
        StaffLookup::ClinicReference(k()),
        StaffLookup::NhsNumber(k()),
        StaffLookup::Email(k()),
        StaffLookup::Phone(k()),
        StaffLookup::Postcode(k()),
        StaffLookup::FamilyNameAndDob(k()),
    ] {
        all.push(patients::search_sql(&lookup).0);
    }
    all
}

/// The indexes `EXPLAIN QUERY PLAN` says `sql` reads.
fn indexes_read(c: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let n = s.parameter_count();
    let lines: Vec<String> = s
        .query_map(rusqlite::params_from_iter((0..n).map(|_| "x")), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    lines
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "INDEX")?;
            words.get(at + 1).map(|w| w.to_string())
        })
        .collect()
}

#[test]
fn every_index_a_submission_writes_is_read_by_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_conn(&dir.path().join("plan.db"), false).unwrap();
    migrations::migrate(&mut c).unwrap();
    let read: Vec<String> = statements()
        .iter()
        .flat_map(|sql| indexes_read(&c, sql))
        .collect();
    let indexes: Vec<(String, String)> = c
        .prepare(&format!(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'
             AND tbl_name IN ({INTAKE_TABLES}) AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(indexes.len() >= 5, "{indexes:?}");
    for (index, table) in &indexes {
        assert!(
            read.contains(index),
            "{index} on {table} is written by submissions and read by no query ({read:?})"
        );
    }
}

/// A store a newer build upgraded while this one runs writes nothing more (and says why).
#[tokio::test]
async fn a_store_upgraded_by_a_newer_build_refuses_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
    let store: Arc<dyn Store> = sqlite.clone();
    clinic(&store, "cl_a").await;
    open_conn(&path, false)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let rx = new_rx(
        record("rx_9", "cl_a", Mode::Test, "R"),
        "k9",
        keys(None, "d"),
    );
    assert!(store.insert_prescription(rx).await.is_err());
    assert_eq!(
        store
            .find_idempotency("cl_a", Mode::Test, "k9")
            .await
            .unwrap(),
        None,
        "nothing written"
    );
}

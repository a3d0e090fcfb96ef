//! Hot patient keys: one set of demographics (or one address) shared by thousands of records
//! must not make each new submission's history and identity reads longer. Measured in SQLite
//! virtual-machine steps (a counter of the work each read does, rows visited included), never
//! in time: the reads for a new patient cost the same with 200 or 5 000 records sharing every
//! key but the NHS number, and every statement is an index search, never a table scan.

use crate::conn::open_conn;
use crate::{SqliteStore, patients};
use rxbridge_app::contract::{clinic, insert_sharing_keys, shared_keys as keys};
use rxbridge_app::ports::{Mode, PatientKeys, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

async fn insert(store: &Arc<dyn Store>, from: u32, to: u32) {
    insert_sharing_keys(store, from, to, 64).await
}

/// Virtual-machine steps of a submission's history and identity reads for `k`.
fn steps(path: &Path, k: &PatientKeys) -> u64 {
    let mut c = open_conn(path, true).unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    let _ = c.progress_handler(
        1,
        Some(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            false
        }),
    );
    let history = patients::patient_history(&c, Mode::Test, k, "cl_a", 1000).unwrap();
    let signals = patients::identity_signals(&c, Mode::Test, k).unwrap();
    assert!(history.is_empty(), "a new NHS number has no history");
    assert!(signals.details_with_other_nhs_number);
    n.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_grow_with_the_records_sharing_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    clinic(&store, "cl_a").await;
    insert(&store, 0, 200).await;
    let new_patient = keys(99_999);
    let few = steps(&path, &new_patient);
    insert(&store, 200, 5_000).await;
    let many = steps(&path, &new_patient);
    // Identical work (a little slack for B-tree seeks that land differently).
    assert!(
        many <= few + few / 20,
        "{many} steps with 5 000 records sharing the keys, {few} with 200"
    );
    // Each statement searches an index; none scans a table.
    let c = open_conn(&path, true).unwrap();
    for sql in patients::PATIENT_CONTEXT_SQL {
        let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = s.parameter_count();
        let plan: Vec<String> = s
            .query_map(rusqlite::params_from_iter((0..n).map(|_| "x")), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH")
                    && (l.contains("INDEX") || l.contains("PRIMARY KEY")))
                && !plan.iter().any(|l| l.starts_with("SCAN rx_")),
            "{sql}\n{plan:#?}"
        );
        if sql.contains("has_nhs = 0") {
            assert!(
                plan.iter().any(|l| l.contains("rx_history_without_nhs")),
                "{plan:#?}"
            );
        }
    }
}

//! The writer engine and the store as a whole: the shared contract suites, group commit,
//! durability across reopen, the WAL bound, and the append-only event log.

use crate::{SqliteStore, Tuning, queries};
use rusqlite::Connection;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

async fn fresh() -> rxbridge_app::contract::Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("rx.db")).unwrap();
    (Arc::new(store) as Arc<dyn Store>, Box::new(dir))
}

rxbridge_app::store_contract_tests!(fresh());

async fn fresh_fulfilment() -> rxbridge_app::contract::fulfilment::FulfilmentFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).unwrap());
    (store.clone(), store.clone(), store, Box::new(dir))
}
rxbridge_app::fulfilment_store_contract_tests!(fresh_fulfilment());

async fn fresh_state() -> rxbridge_app::contract::state::StateFixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let tamper: rxbridge_app::contract::state::Tamper = Arc::new(move |id: String| {
        let path = path.clone();
        Box::pin(async move {
            let c = rusqlite::Connection::open(&path).unwrap();
            let n = c
                .execute(
                    "UPDATE prescriptions SET status = 'ready_for_fulfilment' WHERE id = ?1",
                    [id],
                )
                .unwrap();
            assert_eq!(n, 1);
        })
    });
    (store.clone(), store.clone(), store, tamper, Box::new(dir))
}
rxbridge_app::state_contract_tests!(fresh_state());

async fn fresh_staff() -> rxbridge_app::contract::staff::StaffFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("rx.db")).unwrap();
    (
        Arc::new(store) as Arc<dyn rxbridge_app::staff::StaffStore>,
        Box::new(dir),
    )
}

rxbridge_app::staff_store_contract_tests!(fresh_staff());

async fn fresh_keys() -> rxbridge_app::contract::prescriber_keys::KeyFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("rx.db")).unwrap());
    (
        store.clone() as Arc<dyn Store>,
        store as Arc<dyn rxbridge_app::signatures::PrescriberKeyStore>,
        Box::new(dir),
    )
}

rxbridge_app::prescriber_key_store_contract_tests!(fresh_keys());

/// A warehouse order stored in the clear before sealing existed, sealed at start: the
/// change is bound on the chain, so the state replay still finds every row as the log says.
/// Create clinic `id` named `name`, with its event.
async fn add_clinic(s: &SqliteStore, id: &str, name: &str) {
    let at = jiff::Timestamp::now();
    let clinic = Clinic {
        id: id.into(),
        name: name.into(),
        created_at: at,
    };
    let event = NewEvent::new(at, "clinic.created", "t", id, serde_json::json!({}));
    s.create_clinic(clinic, vec![], event).await.unwrap();
}

#[tokio::test]
async fn sealing_an_old_clear_order_is_bound_on_the_chain() {
    use rxbridge_app::outbox::{Body, NewMessage, OutboxStore};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("rx.db")).unwrap());
    let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let order = NewMessage {
        id: "msg_old".into(),
        destination: "warehouse:test".into(),
        event_type: "fulfilment.requested".into(),
        subject: "rx_1".into(),
        payload: Body::Clear(
            serde_json::json!({ "data": { "deliver_to": { "name": "Sam Taylor" } } }),
        ),
        created_at: at,
    };
    store
        .commit(rxbridge_app::payments::Change {
            events: vec![NewEvent {
                at,
                kind: "prescription.released".into(),
                actor: "test".into(),
                subject: "rx_1".into(),
                detail: serde_json::json!({}),
            }],
            outbox: vec![order],
            ..Default::default()
        })
        .await
        .unwrap();
    let vault = rxbridge_app::PatientVault::new(&[9; 32]).unwrap();
    let n = rxbridge_app::outbox::sealed::seal_stored_bodies(store.as_ref(), &vault, 10)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let m = store.message("msg_old").await.unwrap().unwrap();
    assert!(m.message.payload.is_sealed());
    let diffs = rxbridge_app::audit::verify_state(store.as_ref(), store.as_ref())
        .await
        .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    let kinds: Vec<String> = store
        .timeline("msg_old")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(kinds, ["outbox.sealed"]);
}

#[tokio::test]
async fn survives_reopen_and_batches_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    {
        let s = Arc::new(SqliteStore::open(&path).unwrap());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                add_clinic(&s, &format!("cl_{i}"), "n").await
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(s.stats().writes.load(Ordering::Relaxed), 50);
        assert!(s.stats().batches.load(Ordering::Relaxed) <= 50);
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.list_clinics().await.unwrap().len(), 50);
    let r = rxbridge_app::audit::verify_chain(&s).await.unwrap();
    assert_eq!(r.events, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_continuous_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    let tuning = Tuning {
        checkpoint_pages: 1000,
        ..Tuning::default()
    };
    let s = Arc::new(SqliteStore::open_tuned(&path, tuning).unwrap());
    let wal = dir.path().join("rx.db-wal");
    let mut max_wal = 0;
    for round in 0..20 {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("cl_{round}_{i}");
                s.create_clinic(
                    Clinic {
                        id: id.clone(),
                        name: "n".repeat(500),
                        created_at: jiff::Timestamp::now(),
                    },
                    vec![],
                    NewEvent {
                        at: jiff::Timestamp::now(),
                        kind: "clinic.created".into(),
                        actor: "t".into(),
                        subject: id,
                        detail: serde_json::json!({"pad": "x".repeat(2000)}),
                    },
                )
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        max_wal = max_wal.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    // 4 000 writes of ~3 KB (about 12 MB of data); the writer's checkpoints keep the WAL
    // near its 1000-page threshold (plus one batch) instead of growing with the data.
    assert!(max_wal < 8 * 1024 * 1024, "WAL grew to {max_wal} bytes");
    s.close();
    assert_eq!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0),
        0,
        "truncated at close"
    );
}

/// Holds the writer inside a write, queues `n` more, releases it, and returns how many
/// transactions the `n` writes took.
async fn batches_for(tuning: Tuning, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open_tuned(dir.path().join("rx.db"), tuning).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let held = s
        .enqueue(move |_, _| {
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
        .unwrap();
    entered_rx.recv().unwrap();
    let queued: Vec<_> = (0..n)
        .map(|i| {
            s.enqueue(move |c, _| {
                c.execute(
                    "INSERT INTO clinics (id, name, created_at) VALUES (?1, 'n', 'now')",
                    [format!("cl_{i}")],
                )
                .map_err(queries::unexpected)?;
                Ok(())
            })
            .unwrap()
        })
        .collect();
    release_tx.send(()).unwrap();
    held.await.unwrap().unwrap();
    for q in queued {
        q.await.unwrap().unwrap();
    }
    assert_eq!(s.stats().writes.load(Ordering::Relaxed), n as u64 + 1);
    s.stats().batches.load(Ordering::Relaxed) - 1
}

#[tokio::test]
async fn group_commit_takes_every_queued_write_up_to_the_batch_limit() {
    assert_eq!(batches_for(Tuning::default(), 1000).await, 2, "512 + 488");
    assert_eq!(batches_for(Tuning::bulk_load(), 1000).await, 1);
    let one_by_one = Tuning {
        max_batch: 1,
        ..Tuning::default()
    };
    assert_eq!(batches_for(one_by_one, 10).await, 10);
}

#[tokio::test]
async fn a_panicking_write_fails_alone_and_the_writer_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("rx.db")).unwrap();
    let r: Result<(), StoreError> = s
        .write(|c, _| {
            c.execute(
                "INSERT INTO clinics (id, name, created_at) VALUES ('cl_x', 'x', 'now')",
                [],
            )
            .unwrap();
            panic!("a bug in a write")
        })
        .await;
    assert!(r.is_err());
    assert!(
        s.get_clinic("cl_x").await.unwrap().is_none(),
        "the panicking write was rolled back"
    );
    add_clinic(&s, "cl_y", "y").await;
    assert!(s.get_clinic("cl_y").await.unwrap().is_some());
}

#[tokio::test]
async fn events_are_append_only_and_tampering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    let s = SqliteStore::open(&path).unwrap();
    for i in 0..3 {
        add_clinic(&s, &format!("cl_{i}"), "n").await;
    }
    let c = Connection::open(&path).unwrap();
    assert!(
        c.execute("UPDATE events SET actor='x' WHERE seq=2", [])
            .is_err()
    );
    assert!(c.execute("DELETE FROM events WHERE seq=2", []).is_err());
    // Someone with raw file access drops the guard and edits: verification finds event 2.
    c.execute_batch("DROP TRIGGER events_no_update; UPDATE events SET actor='mallory' WHERE seq=2")
        .unwrap();
    let err = rxbridge_app::audit::verify_chain(&s).await.unwrap_err();
    assert!(err.to_string().contains("event 2"), "{err}");
}

/// The expiry sweep and the payment sweep find exactly the statuses the domain names
/// (`Status::expirable`, `Status::unsupplied_ends`): one prescription, with a paid payment, in
/// every status there is, each status set by hand.
#[tokio::test]
async fn the_sweeps_query_by_the_domains_status_sets() {
    use rxbridge_app::contract::{approve_change, clinic, keys, new_rx, payment, record};
    use rxbridge_app::payments::PaymentStatus;
    use rxbridge_domain::lifecycle::{ALL_STATUSES, Status};
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    clinic(&store, "cl_a").await;
    for i in 0..ALL_STATUSES.len() {
        let id = format!("rx_{i}");
        let rec = record(&id, "cl_a", Mode::Test, &format!("R{i}"));
        let patient = keys(None, &format!("demo-{i}"));
        store
            .insert_prescription(new_rx(rec, &format!("k{i}"), patient))
            .await
            .unwrap();
        let paid = payment(&format!("pay_{i}"), &id, PaymentStatus::Paid);
        store.commit(approve_change(&id, 1, paid)).await.unwrap();
    }
    let c = Connection::open(&path).unwrap();
    for (i, st) in ALL_STATUSES.iter().enumerate() {
        let n = c
            .execute(
                "UPDATE prescriptions SET status = ?1 WHERE id = ?2",
                [st.as_str(), &format!("rx_{i}")],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let expiring: HashSet<Status> = store
        .undispatched_issued_before("2026-12-01".parse().unwrap(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(expiring, Status::expirable().collect::<HashSet<_>>());
    let refunding: HashSet<Status> = store
        .payments_needing_attention(100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, st)| st)
        .collect();
    assert_eq!(refunding, Status::unsupplied_ends().collect::<HashSet<_>>());
}

//! Contract: state bound to the chain (`crate::state`). Every store binds each row it writes
//! into the event written with it, so that the guard passes on rows as written, refuses a row
//! edited outside the application, and `verify_state` names the edit. The edit itself is the
//! store's own (`Tamper`: SQL for SQLite, an item update for DynamoDB).

use super::*;
use crate::audit::verify_state;
use crate::payments::{Change, PaymentStatus, PaymentWrite};
use crate::registers::{Register, RegisterStore};
use crate::state::{Mismatch, StateGuard, Table};
use crate::transfer::Dump;
use std::future::Future;
use std::pin::Pin;

/// Set a prescription's status (by id) to `ready_for_fulfilment`, outside the application.
pub type Tamper = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub type StateFixture = (
    Arc<dyn Store>,
    Arc<dyn Dump>,
    Arc<dyn RegisterStore>,
    Tamper,
    Box<dyn std::any::Any + Send>,
);

#[macro_export]
macro_rules! state_contract_tests {
    ($make:expr) => {
        mod state_contract {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rows_are_bound_and_an_edit_is_refused_and_named() {
                let f: $crate::contract::state::StateFixture = $make.await;
                $crate::contract::state::rows_are_bound_and_an_edit_is_refused_and_named(
                    f.0.clone(),
                    f.1.clone(),
                    f.2.clone(),
                    f.3.clone(),
                )
                .await;
                drop(f);
            }
        }
    };
}

pub async fn rows_are_bound_and_an_edit_is_refused_and_named(
    store: Arc<dyn Store>,
    dump: Arc<dyn Dump>,
    registers: Arc<dyn RegisterStore>,
    tamper: Tamper,
) {
    let guard = StateGuard::new(store.as_ref());
    clinic(&store, "cl_a").await;
    let rec = record("rx_1", "cl_a", Mode::Test, "REF-1");
    insert(&store, rec, "k1", keys(Some("n1"), "d1")).await;
    // A transition, a payment, an outbox message and a register entry in one change.
    let p = payment("pay_1", "rx_1", PaymentStatus::AwaitingPayment);
    let mut change = approve_change("rx_1", 1, p);
    change.outbox.push(crate::outbox::NewMessage {
        id: "msg_1".into(),
        destination: "clinic:cl_a:test".into(),
        event_type: "prescription.status_changed".into(),
        subject: "rx_1".into(),
        payload: crate::outbox::Body::Clear(serde_json::json!({"status": "awaiting_payment"})),
        created_at: now(),
    });
    change
        .register
        .push(fulfilment::entry(crate::registers::EntryKind::Receipt, 10));
    store.commit(change).await.unwrap();
    let rx = store
        .get_prescription_for_staff(Mode::Test, "rx_1")
        .await
        .unwrap()
        .unwrap();
    let pay = store.get_payment("pay_1").await.unwrap().unwrap();
    let entry = registers
        .last_register_entry(Register::Cd, "CONCERTA-XL-36")
        .await
        .unwrap()
        .unwrap();
    assert!(rx.event_seq > 1 && rx.event_seq == pay.event_seq);
    assert_eq!(entry.event_seq, rx.event_seq);
    guard.prescription(&rx, "test").await.unwrap();
    guard.payment(&pay, "test").await.unwrap();
    guard.entry(&entry, "test").await.unwrap();
    assert_eq!(
        verify_state(store.as_ref(), dump.as_ref()).await.unwrap(),
        []
    );

    // A payment put back to an older state by hand (same columns, older event) is a roll-back.
    let mut next = pay.next_version(now());
    next.status = PaymentStatus::Paid;
    store
        .commit(Change {
            payment: Some(PaymentWrite::Update(next)),
            events: vec![ev("payment.succeeded", "rx_1")],
            ..Default::default()
        })
        .await
        .unwrap();
    let r = guard.payment(&pay, "test").await;
    assert!(
        matches!(
            r,
            Err(crate::state::GuardError::Mismatch(
                Mismatch::RolledBack { .. }
            ))
        ),
        "{r:?}"
    );

    // The edit outside the application.
    tamper("rx_1".into()).await;
    let edited = store
        .get_prescription_for_staff(Mode::Test, "rx_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.status, Status::ReadyForFulfilment);
    match guard.prescription(&edited, "release").await {
        Err(crate::state::GuardError::Mismatch(Mismatch::Columns {
            table, id, columns, ..
        })) => {
            assert_eq!((table, id.as_str()), (Table::Prescriptions, "rx_1"));
            assert_eq!(
                columns
                    .iter()
                    .map(|c| c.column.as_str())
                    .collect::<Vec<_>>(),
                ["status"]
            );
            assert_eq!(columns[0].expected, "awaiting_payment");
            assert_eq!(columns[0].found, "ready_for_fulfilment");
        }
        other => panic!("expected a column mismatch, got {other:?}"),
    }
    let diffs = verify_state(store.as_ref(), dump.as_ref()).await.unwrap();
    assert_eq!(
        diffs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["prescriptions rx_1: status expected awaiting_payment, found ready_for_fulfilment"]
    );
}

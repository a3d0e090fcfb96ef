//! The outbox and register parts of a store. Every adapter runs them through
//! `fulfilment_store_contract_tests!` with a factory returning the same store three ways.

use super::*;
use crate::outbox::{MessageStatus, NewMessage, OutboxStore};
use crate::payments::Change;
use crate::registers::{EntryKind, NewEntry, Register, RegisterStore};

pub type FulfilmentFixture = (
    Arc<dyn Store>,
    Arc<dyn OutboxStore>,
    Arc<dyn RegisterStore>,
    Box<dyn std::any::Any + Send>,
);

#[macro_export]
macro_rules! fulfilment_store_contract_tests {
    ($make:expr) => {
        mod fulfilment_store_contract {
            #[allow(unused_imports)]
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let f: $crate::contract::fulfilment::FulfilmentFixture = $make.await;
                        $crate::contract::fulfilment::$name(f.0.clone(), f.1.clone(), f.2.clone())
                            .await;
                        drop(f);
                    }
                };
            }
            case!(outbox_order_lease_and_replay);
            case!(sealed_bodies_and_sealing_old_rows);
            case!(register_balance_chain_and_refusal);
        }
    };
}

pub fn msg(id: &str, dest: &str, subject: &str, at: Timestamp) -> NewMessage {
    NewMessage {
        id: id.into(),
        destination: dest.into(),
        event_type: "prescription.status_changed".into(),
        subject: subject.into(),
        payload: crate::outbox::Body::Clear(serde_json::json!({ "n": id })),
        created_at: at,
    }
}

/// A sealed body is stored and read back as it was (binary, never JSON); a clear body of a
/// patient-data type (written before sealing) is found by `unsealed` and sealed in place.
pub async fn sealed_bodies_and_sealing_old_rows(
    store: Arc<dyn Store>,
    outbox: Arc<dyn OutboxStore>,
    _: Arc<dyn RegisterStore>,
) {
    use crate::outbox::Body;
    let t = now();
    let vault = crate::PatientVault::new(&[9; 32]).unwrap();
    let order = serde_json::json!({ "data": { "deliver_to": { "name": "Sam Taylor" } } });
    let mut sealed = msg("s1", "warehouse:test", "rx_s", t);
    sealed.event_type = "fulfilment.requested".into();
    sealed.payload = crate::outbox::sealed::seal_body(&vault, &sealed, &order);
    let mut old = msg("s2", "warehouse:test", "rx_t", t);
    old.event_type = "fulfilment.requested".into();
    old.payload = Body::Clear(order.clone());
    let mut live = old.clone();
    live.id = "s3".into();
    live.destination = "warehouse:live".into();
    store
        .commit(Change {
            events: vec![ev("x", "rx_s")],
            outbox: vec![
                sealed.clone(),
                old.clone(),
                live,
                msg("s4", "clinic:c:test", "rx_s", t),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let got = outbox.message("s1").await.unwrap().unwrap();
    assert_eq!(
        got.message, sealed,
        "a sealed body reads back as it was written"
    );
    assert_eq!(
        crate::outbox::sealed::open_body(&vault, &got.message).unwrap(),
        order
    );
    let ids = |v: Vec<crate::outbox::OutboxMessage>| {
        v.into_iter().map(|m| m.message.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(outbox
            .unsealed("fulfilment.requested", "warehouse:test", 10)
            .await
            .unwrap()),
        ["s2"]
    );
    assert_eq!(
        crate::outbox::sealed::seal_stored_bodies(outbox.as_ref(), &vault, 1)
            .await
            .unwrap(),
        2
    );
    for id in ["s2", "s3"] {
        let m = outbox.message(id).await.unwrap().unwrap();
        assert!(m.message.payload.is_sealed(), "{id}");
        assert_eq!(
            crate::outbox::sealed::open_body(&vault, &m.message).unwrap(),
            order
        );
    }
    assert!(
        outbox
            .unsealed("fulfilment.requested", "warehouse:test", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        crate::outbox::sealed::seal_stored_bodies(outbox.as_ref(), &vault, 10)
            .await
            .unwrap(),
        0,
        "idempotent"
    );
    // Notices stay clear.
    let n = outbox.message("s4").await.unwrap().unwrap();
    assert_eq!(
        n.message.payload.clear(),
        Some(&serde_json::json!({ "n": "s4" }))
    );
}

/// Messages commit with their change; per destination and subject only the oldest pending
/// one is due; a lease hides claimed messages; dead ones replay.
pub async fn outbox_order_lease_and_replay(
    store: Arc<dyn Store>,
    outbox: Arc<dyn OutboxStore>,
    _: Arc<dyn RegisterStore>,
) {
    let t = now();
    store
        .commit(Change {
            events: vec![ev("x", "rx_a")],
            outbox: vec![
                msg("m1", "clinic:c:test", "rx_a", t),
                msg("m2", "clinic:c:test", "rx_a", t),
                msg("m3", "clinic:c:test", "rx_b", t),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let lease = t + jiff::SignedDuration::from_secs(60);
    let ids = |v: Vec<crate::outbox::OutboxMessage>| {
        v.into_iter().map(|m| m.message.id).collect::<Vec<_>>()
    };
    let first = outbox.claim_due(t, lease, 10).await.unwrap();
    assert_eq!(ids(first.clone()), ["m1", "m3"], "m2 waits for m1");
    assert!(
        outbox.claim_due(t, lease, 10).await.unwrap().is_empty(),
        "leased"
    );
    let mut m1 = first[0].clone();
    m1.status = MessageStatus::Delivered;
    m1.attempts = 1;
    m1.delivered_at = Some(t);
    outbox
        .record_attempt(
            &m1,
            Some(crate::outbox::Attempt {
                message_id: "m1".into(),
                n: 1,
                at: t,
                endpoint_id: None,
                http_status: Some(200),
                error: None,
                duration_ms: 3,
            }),
        )
        .await
        .unwrap();
    let mut m3 = first[1].clone();
    m3.status = MessageStatus::Dead;
    m3.attempts = 10;
    outbox.record_attempt(&m3, None).await.unwrap();
    assert_eq!(ids(outbox.claim_due(t, lease, 10).await.unwrap()), ["m2"]);
    assert_eq!(
        outbox.attempts("m1").await.unwrap()[0].http_status,
        Some(200)
    );
    assert_eq!(
        ids(outbox.messages(MessageStatus::Dead, 10).await.unwrap()),
        ["m3"]
    );
    let (pending, oldest, dead) = outbox.outbox_stats().await.unwrap();
    assert_eq!((pending, oldest, dead), (1, Some(t), 1));
    assert_eq!(outbox.replay(None, t).await.unwrap(), 1);
    assert_eq!(
        outbox.message("m3").await.unwrap().unwrap().status,
        MessageStatus::Pending
    );
    let later = t + jiff::SignedDuration::from_secs(61);
    assert_eq!(
        ids(outbox.claim_due(later, later, 10).await.unwrap()),
        ["m2", "m3"],
        "leases expire"
    );
    let typed = outbox
        .messages_between(
            "prescription.status_changed",
            "clinic:c:test",
            t,
            t + jiff::SignedDuration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(typed.len(), 3);
    // Times compare as instants, not as text: a message due half a second later (written
    // with a fraction) is not due before then.
    let soon = later + jiff::SignedDuration::from_millis(500);
    store
        .commit(Change {
            events: vec![ev("y", "rx_c")],
            outbox: vec![msg("m4", "warehouse:test", "rx_c", soon)],
            ..Default::default()
        })
        .await
        .unwrap();
    let at = |d: i64| later + jiff::SignedDuration::from_millis(d);
    assert!(
        !ids(outbox.claim_due(at(499), at(499), 10).await.unwrap()).contains(&"m4".to_string())
    );
    assert!(ids(outbox.claim_due(at(500), at(500), 10).await.unwrap()).contains(&"m4".to_string()));
}

pub fn entry(kind: EntryKind, qty: i64) -> NewEntry {
    NewEntry {
        register: Register::Cd,
        section: "CONCERTA-XL-36".into(),
        kind,
        entry_date: date(2026, 11, 26),
        at: now(),
        author: "test".into(),
        subject: None,
        quantity: qty,
        sealed: vec![7; 40],
    }
}

/// Balances run per section; a supply below zero is refused with everything else in its
/// change; the chain verifies.
pub async fn register_balance_chain_and_refusal(
    store: Arc<dyn Store>,
    _: Arc<dyn OutboxStore>,
    registers: Arc<dyn RegisterStore>,
) {
    let put = |e: Vec<NewEntry>| Change {
        events: vec![ev("register", "s")],
        register: e,
        ..Default::default()
    };
    store
        .commit(put(vec![
            entry(EntryKind::Receipt, 10),
            entry(EntryKind::Supply, 4),
        ]))
        .await
        .unwrap();
    assert_eq!(
        registers
            .register_balance(Register::Cd, "CONCERTA-XL-36")
            .await
            .unwrap(),
        6
    );
    let r = store
        .commit(put(vec![
            entry(EntryKind::Annotation, 0),
            entry(EntryKind::Supply, 7),
        ]))
        .await;
    assert!(matches!(r, Err(StoreError::Rejected(_))), "{r:?}");
    let all = registers
        .register_entries(Register::Cd, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "the whole change was refused");
    assert_eq!(store.timeline("s").await.unwrap().len(), 1);
    assert_eq!(crate::registers::verify(&all), Ok(2));
    assert_eq!(all[1].balance_after, 6);
    assert_eq!(
        registers.register_sections(Register::Cd).await.unwrap(),
        ["CONCERTA-XL-36"]
    );
    assert!(
        registers
            .register_entries(Register::Pom, None)
            .await
            .unwrap()
            .is_empty()
    );
}

//! Contract: `UnitOfWork` and `PaymentStore` — the atomic `commit` and the payment reads.

use super::*;

/// The `UnitOfWork` and `PaymentStore` suite.
#[macro_export]
macro_rules! payment_store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_suite!(
            $make,
            payment_store_contract:
            payment_commit_is_atomic,
            payment_lookups_and_dedupe,
            payments_attention_and_period
        );
    };
}

pub fn payment(
    id: &str,
    rx: &str,
    status: crate::payments::PaymentStatus,
) -> crate::payments::PaymentRecord {
    use rxbridge_domain::pricing::{Quote, QuoteKind};
    crate::payments::PaymentRecord {
        id: id.into(),
        prescription_id: rx.into(),
        clinic_id: "cl_a".into(),
        mode: Mode::Test,
        status,
        quote: Quote {
            kind: QuoteKind::Private,
            charge_date: date(2026, 11, 26),
            lines: vec![],
            dispensing_fee_pence: 500,
            delivery_fee_pence: 495,
            total_pence: 4995,
            exemption: None,
            evidence_seen: None,
            nhs_charge_per_item_pence: None,
        },
        provider: "sandbox".into(),
        session_id: None,
        session_url: None,
        session_expires_at: None,
        session_attempts: 0,
        payment_ref: None,
        paid_pence: 0,
        paid_at: None,
        refund_ref: None,
        refunded_pence: 0,
        refunded_at: None,
        link_sent_at: None,
        reminders_sent: 0,
        due_by: now(),
        due_by_is_cd_window: false,
        attention: None,
        created_at: now(),
        updated_at: now(),
        version: 1,
        event_seq: 0,
    }
}

pub fn approve_change(
    rx: &str,
    version: i64,
    p: crate::payments::PaymentRecord,
) -> crate::payments::Change {
    crate::payments::Change {
        transition: Some(crate::payments::TransitionTo {
            id: rx.into(),
            expected_version: version,
            to: Status::AwaitingPayment,
        }),
        payment: Some(crate::payments::PaymentWrite::Insert(p)),
        dedupe: None,
        events: vec![ev("prescription.approved", rx), ev("payment.requested", rx)],
        ..Default::default()
    }
}

/// A transition, a payment and its events are written together or not at all.
pub async fn payment_commit_is_atomic(store: Arc<dyn Store>) {
    use crate::payments::{PaymentStatus as PS, PaymentWrite};
    clinic(&store, "cl_a").await;
    insert_plain(&store, "rx_1", "cl_a", "k").await;
    // Stale prescription version: nothing of it lands.
    let stale = store
        .commit(approve_change(
            "rx_1",
            7,
            payment("pay_1", "rx_1", PS::AwaitingPayment),
        ))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert!(store.get_payment("pay_1").await.unwrap().is_none());
    assert_eq!(store.timeline("rx_1").await.unwrap().len(), 1);
    // The real one.
    let rec = store
        .commit(approve_change(
            "rx_1",
            1,
            payment("pay_1", "rx_1", PS::AwaitingPayment),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.status, rec.version), (Status::AwaitingPayment, 2));
    let kinds = kinds(&*store, "rx_1").await;
    assert_eq!(
        kinds,
        [
            "prescription.received",
            "prescription.approved",
            "payment.requested"
        ]
    );
    assert_eq!(
        store.get_payment("pay_1").await.unwrap().unwrap().status,
        PS::AwaitingPayment
    );
    // A second payment for the same prescription is refused, and so is its transition.
    let again = store
        .commit(approve_change(
            "rx_1",
            2,
            payment("pay_2", "rx_1", PS::AwaitingPayment),
        ))
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");
    assert_eq!(
        store
            .get_prescription("cl_a", Mode::Test, "rx_1")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // Payment updates are optimistic on the payment's version.
    let mut p = store.get_payment("pay_1").await.unwrap().unwrap();
    p.version += 1;
    p.status = PS::Paid;
    store
        .commit(crate::payments::Change {
            payment: Some(PaymentWrite::Update(p.clone())),
            events: vec![ev("payment.succeeded", "rx_1")],
            ..Default::default()
        })
        .await
        .unwrap();
    let lost = store
        .commit(crate::payments::Change {
            payment: Some(PaymentWrite::Update(p)),
            events: vec![ev("payment.again", "rx_1")],
            ..Default::default()
        })
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");
    assert_eq!(store.timeline("rx_1").await.unwrap().len(), 4);
    assert_eq!(
        verify_chain(&*store).await.unwrap().events,
        5,
        "clinic, received, approved, requested, succeeded"
    );
}

/// Payments are found by prescription, session and provider reference; a provider event id
/// is applied once.
pub async fn payment_lookups_and_dedupe(store: Arc<dyn Store>) {
    use crate::payments::{Change, PaymentStatus as PS, PaymentWrite};
    clinic(&store, "cl_a").await;
    insert_plain(&store, "rx_1", "cl_a", "k").await;
    store
        .commit(approve_change(
            "rx_1",
            1,
            payment("pay_1", "rx_1", PS::AwaitingPayment),
        ))
        .await
        .unwrap();
    let mut p = store
        .payment_for_prescription("rx_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.id, "pay_1");
    p.version += 1;
    p.session_id = Some("cs_1".into());
    p.payment_ref = Some("pi_1".into());
    let with_mark = |p: crate::payments::PaymentRecord| Change {
        payment: Some(PaymentWrite::Update(p)),
        dedupe: Some(("stripe".into(), "evt_1".into())),
        events: vec![ev("payment.x", "rx_1")],
        ..Default::default()
    };
    store.commit(with_mark(p.clone())).await.unwrap();
    assert_eq!(
        store.payment_by_session("cs_1").await.unwrap().unwrap().id,
        "pay_1"
    );
    assert_eq!(
        store.payment_by_ref("pi_1").await.unwrap().unwrap().id,
        "pay_1"
    );
    assert!(store.payment_by_session("cs_2").await.unwrap().is_none());
    // The same event id again: refused whole, even with a valid payment version.
    let mut p2 = p.clone();
    p2.version += 1;
    let dup = store.commit(with_mark(p2)).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    assert_eq!(
        store.get_payment("pay_1").await.unwrap().unwrap().version,
        p.version
    );
    assert_eq!(store.timeline("rx_1").await.unwrap().len(), 4);
}

/// The sweep's list, and the month's payments with their prescriptions.
pub async fn payments_attention_and_period(store: Arc<dyn Store>) {
    use crate::payments::{Change, PaymentStatus as PS, PaymentWrite};
    clinic(&store, "cl_a").await;
    for (i, st) in [PS::AwaitingPayment, PS::Paid, PS::Paid, PS::NotDue]
        .into_iter()
        .enumerate()
    {
        let rx = format!("rx_{i}");
        insert(
            &store,
            record(&rx, "cl_a", Mode::Test, "R"),
            &format!("k{i}"),
            keys(None, &format!("d{i}")),
        )
        .await;
        let mut p = payment(&format!("pay_{i}"), &rx, st);
        if i == 3 {
            p.quote.charge_date = date(2026, 12, 1);
        }
        store.commit(approve_change(&rx, 1, p)).await.unwrap();
    }
    // rx_2 is cancelled after payment: its payment needs a refund.
    cancel(&*store, "rx_2", 2).await;
    let work: Vec<(String, Status)> = store
        .payments_needing_attention(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(p, s)| (p.id, s))
        .collect();
    assert_eq!(
        work,
        [
            ("pay_0".to_string(), Status::AwaitingPayment),
            ("pay_2".to_string(), Status::Cancelled)
        ]
    );
    let mut p = store.get_payment("pay_2").await.unwrap().unwrap();
    p.version += 1;
    p.status = PS::Refunded;
    store
        .commit(Change {
            payment: Some(PaymentWrite::Update(p)),
            events: vec![ev("payment.refunded", "rx_2")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.payments_needing_attention(10).await.unwrap().len(), 1);
    let nov: Vec<String> = store
        .payments_charged_between(Mode::Test, date(2026, 11, 1), date(2026, 11, 30))
        .await
        .unwrap()
        .into_iter()
        .map(|(p, r)| {
            assert_eq!(p.prescription_id, r.id);
            p.id
        })
        .collect();
    assert_eq!(nov, ["pay_0", "pay_1", "pay_2"]);
    assert!(
        store
            .payments_charged_between(Mode::Live, date(2026, 11, 1), date(2026, 11, 30))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .payments_charged_between(Mode::Test, date(2026, 12, 1), date(2026, 12, 31))
            .await
            .unwrap()
            .len(),
        1
    );
}

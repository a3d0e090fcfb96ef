//! The store contract-test suite. Every store adapter runs it through `store_contract_tests!`
//! with a factory for fresh, empty stores:
//!
//! ```ignore
//! rxbridge_app::store_contract_tests!(async { (Arc::new(MyStore::open_temp()) as Arc<dyn Store>, guard) });
//! ```
//!
//! Each function here is one clause of the `Store` contract (see `ports.rs`).

use crate::audit::verify_chain;
use crate::events::NewEvent;
use crate::ports::*;
use jiff::Timestamp;
use jiff::civil::date;
use rxbridge_domain::compliance::{Finding, Severity};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::PrescriptionType;
use std::sync::Arc;

pub type Fixture = (Arc<dyn Store>, Box<dyn std::any::Any + Send>);

/// State bound to the chain, with a store-specific edit outside the application.
pub mod state;

#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let fixture: $crate::contract::Fixture = $make.await;
                        $crate::contract::$name(fixture.0.clone()).await;
                        drop(fixture);
                    }
                };
            }
            case!(ping_answers);
            case!(clinics_and_keys);
            case!(rotate_key_revokes_old);
            case!(insert_get_scoped);
            case!(idempotency_key_unique);
            case!(concurrent_same_key_one_winner);
            case!(list_pages_newest_first);
            case!(transition_optimistic);
            case!(events_chain_and_timeline);
            case!(history_by_identity);
            case!(identity_signals_counts);
            case!(identity_signals_on_hot_keys);
            case!(staff_views_span_clinics);
            case!(payment_commit_is_atomic);
            case!(payment_lookups_and_dedupe);
            case!(payments_attention_and_period);
        }
    };
}

fn now() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn ev(kind: &str, subject: &str) -> NewEvent {
    NewEvent {
        at: now(),
        kind: kind.into(),
        actor: "test".into(),
        subject: subject.into(),
        detail: serde_json::json!({"k": kind}),
    }
}

pub async fn clinic(store: &Arc<dyn Store>, id: &str) {
    store
        .create_clinic(
            Clinic {
                id: id.into(),
                name: format!("Clinic {id}"),
                created_at: now(),
            },
            vec![
                key(id, Mode::Test, &format!("{id}-test")),
                key(id, Mode::Live, &format!("{id}-live")),
            ],
            ev("clinic.created", id),
        )
        .await
        .unwrap();
}

fn key(clinic: &str, mode: Mode, hash: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        key_hash: hash.into(),
        prefix: "rxb_test_abcd".into(),
        clinic_id: clinic.into(),
        mode,
        created_at: now(),
    }
}

pub fn keys(nhs: Option<&str>, demo: &str) -> PatientKeys {
    PatientKeys {
        nhs: nhs.map(String::from),
        demographic: demo.into(),
        name_dob: format!("nd-{demo}"),
        family_dob: format!("fd-{demo}"),
        email: Some(format!("em-{demo}")),
        postcode: format!("pc-{demo}"),
        address: format!("ad-{demo}"),
    }
}

pub fn record(id: &str, clinic: &str, mode: Mode, reference: &str) -> PrescriptionRecord {
    PrescriptionRecord {
        id: id.into(),
        clinic_id: clinic.into(),
        mode,
        clinic_reference: reference.into(),
        kind: PrescriptionType::Private,
        status: Status::AwaitingClinicalCheck,
        version: 1,
        issued_on: date(2026, 11, 20),
        created_at: now(),
        updated_at: now(),
        findings: vec![Finding {
            code: "cd_over_30_days".into(),
            severity: Severity::Flag,
            item: Some(0),
            message: "m".into(),
            rule: "r".into(),
        }],
        items: vec![ItemSummary {
            product_code: "CONCERTA-XL-36".into(),
            active_ingredient: "methylphenidate".into(),
            quantity: 28,
            days_supply: 28,
        }],
        sealed: vec![1, 2, 3, 4],
        event_seq: 0,
    }
}

pub fn new_rx(rec: PrescriptionRecord, idem_key: &str, patient: PatientKeys) -> NewPrescription {
    NewPrescription {
        idempotency: IdempotencyRecord {
            clinic_id: rec.clinic_id.clone(),
            mode: rec.mode,
            key: idem_key.into(),
            request_hash: format!("hash-of-{}", rec.id),
            response_status: 201,
            response_body: format!("{{\"id\":\"{}\"}}", rec.id),
            created_at: now(),
        },
        event: ev("prescription.received", &rec.id),
        record: rec,
        patient,
    }
}

async fn insert(
    store: &Arc<dyn Store>,
    rec: PrescriptionRecord,
    idem: &str,
    p: PatientKeys,
) -> InsertOutcome {
    store
        .insert_prescription(new_rx(rec, idem, p))
        .await
        .unwrap()
}

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}

/// The same patient details under NHS number `i`: every other key is shared (the hot-key
/// tests of each store).
pub fn shared_keys(i: u32) -> PatientKeys {
    PatientKeys {
        nhs: Some(format!("nhs-{i:05}")),
        demographic: "demo".into(),
        name_dob: "name-dob".into(),
        family_dob: "family-dob".into(),
        email: Some("email".into()),
        postcode: "postcode".into(),
        address: "address".into(),
    }
}

/// Insert prescriptions `from..to` of clinic `cl_a` under [`shared_keys`], `parallel` at a time.
pub async fn insert_sharing_keys(store: &Arc<dyn Store>, from: u32, to: u32, parallel: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let store = store.clone();
        tasks.spawn(async move {
            let rec = record(&format!("rx_{i}"), "cl_a", Mode::Test, "R");
            store
                .insert_prescription(new_rx(rec, &format!("k{i}"), shared_keys(i)))
                .await
                .unwrap();
        });
        if tasks.len() >= parallel {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
}

pub async fn clinics_and_keys(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    assert_eq!(
        store.get_clinic("cl_a").await.unwrap().unwrap().name,
        "Clinic cl_a"
    );
    assert!(store.get_clinic("cl_zz").await.unwrap().is_none());
    let c = store.find_api_key("cl_a-test").await.unwrap().unwrap();
    assert_eq!((c.clinic_id.as_str(), c.mode), ("cl_a", Mode::Test));
    let c = store.find_api_key("cl_a-live").await.unwrap().unwrap();
    assert_eq!(c.mode, Mode::Live);
    assert!(store.find_api_key("nope").await.unwrap().is_none());
    // Same id again: Duplicate, nothing written.
    let dup = store
        .create_clinic(
            Clinic {
                id: "cl_a".into(),
                name: "x".into(),
                created_at: now(),
            },
            vec![key("cl_a", Mode::Test, "other")],
            ev("clinic.created", "cl_a"),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    assert!(store.find_api_key("other").await.unwrap().is_none());
    assert_eq!(store.list_clinics().await.unwrap().len(), 1);
}

pub async fn rotate_key_revokes_old(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    store
        .rotate_key(
            key("cl_a", Mode::Test, "new-test"),
            ev("clinic.key_rotated", "cl_a"),
        )
        .await
        .unwrap();
    assert!(store.find_api_key("cl_a-test").await.unwrap().is_none());
    assert_eq!(
        store
            .find_api_key("new-test")
            .await
            .unwrap()
            .unwrap()
            .clinic_id,
        "cl_a"
    );
    // The live key is untouched.
    assert!(store.find_api_key("cl_a-live").await.unwrap().is_some());
    let r = store
        .rotate_key(
            key("cl_nope", Mode::Test, "x"),
            ev("clinic.key_rotated", "cl_nope"),
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
}

pub async fn insert_get_scoped(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    let rec = record("rx_1", "cl_a", Mode::Test, "REF-1");
    assert!(matches!(
        insert(&store, rec.clone(), "k1", keys(Some("n1"), "d1")).await,
        InsertOutcome::Inserted
    ));
    let got = store
        .get_prescription("cl_a", Mode::Test, "rx_1")
        .await
        .unwrap()
        .unwrap();
    // The row names the event written with it.
    assert!(got.event_seq > 0);
    assert_eq!(
        got,
        PrescriptionRecord {
            event_seq: got.event_seq,
            ..rec.clone()
        }
    );
    assert!(
        store
            .get_prescription("cl_b", Mode::Test, "rx_1")
            .await
            .unwrap()
            .is_none(),
        "other clinic"
    );
    assert!(
        store
            .get_prescription("cl_a", Mode::Live, "rx_1")
            .await
            .unwrap()
            .is_none(),
        "other mode"
    );
    assert!(
        store
            .get_prescription("cl_a", Mode::Test, "rx_nope")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn idempotency_key_unique(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k",
        keys(None, "d"),
    )
    .await;
    let stored = store
        .find_idempotency("cl_a", Mode::Test, "k")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.request_hash, "hash-of-rx_1");
    assert_eq!(stored.response_status, 201);
    // The same key again writes nothing and hands back the stored record.
    match insert(
        &store,
        record("rx_2", "cl_a", Mode::Test, "R"),
        "k",
        keys(None, "d"),
    )
    .await
    {
        InsertOutcome::KeyExists(r) => assert_eq!(r, stored),
        InsertOutcome::Inserted => panic!("duplicate key inserted"),
    }
    assert!(
        store
            .get_prescription("cl_a", Mode::Test, "rx_2")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store.timeline("rx_2").await.unwrap().is_empty(),
        "no event for the refused write"
    );
    // Keys are scoped per clinic and mode.
    assert!(matches!(
        insert(
            &store,
            record("rx_3", "cl_b", Mode::Test, "R"),
            "k",
            keys(None, "d")
        )
        .await,
        InsertOutcome::Inserted
    ));
    assert!(matches!(
        insert(
            &store,
            record("rx_4", "cl_a", Mode::Live, "R"),
            "k",
            keys(None, "d")
        )
        .await,
        InsertOutcome::Inserted
    ));
    assert!(
        store
            .find_idempotency("cl_a", Mode::Live, "other")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn concurrent_same_key_one_winner(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_prescription(new_rx(
                record(&format!("rx_{i}"), "cl_a", Mode::Test, "R"),
                "same",
                keys(None, "d"),
            ))
            .await
            .unwrap()
        }));
    }
    let mut inserted = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), InsertOutcome::Inserted) {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1);
    let page = store
        .list_prescriptions("cl_a", Mode::Test, &ListFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    verify_chain(store.as_ref()).await.unwrap();
}

pub async fn list_pages_newest_first(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    for i in 0..5 {
        insert(
            &store,
            record(
                &format!("rx_{i}"),
                "cl_a",
                Mode::Test,
                if i % 2 == 0 { "EVEN" } else { "ODD" },
            ),
            &format!("k{i}"),
            keys(None, "d"),
        )
        .await;
    }
    insert(
        &store,
        record("rx_b", "cl_b", Mode::Test, "EVEN"),
        "kb",
        keys(None, "d"),
    )
    .await;
    insert(
        &store,
        record("rx_live", "cl_a", Mode::Live, "EVEN"),
        "kl",
        keys(None, "d"),
    )
    .await;
    let all = ListFilter::default();
    let p1 = store
        .list_prescriptions("cl_a", Mode::Test, &all, None, 2)
        .await
        .unwrap();
    assert_eq!(
        p1.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rx_4", "rx_3"]
    );
    let p2 = store
        .list_prescriptions("cl_a", Mode::Test, &all, p1.next, 2)
        .await
        .unwrap();
    assert_eq!(
        p2.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rx_2", "rx_1"]
    );
    let p3 = store
        .list_prescriptions("cl_a", Mode::Test, &all, p2.next, 2)
        .await
        .unwrap();
    assert_eq!(
        p3.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rx_0"]
    );
    assert_eq!(p3.next, None);
    let even = ListFilter {
        clinic_reference: Some("EVEN".into()),
        status: None,
    };
    let p = store
        .list_prescriptions("cl_a", Mode::Test, &even, None, 100)
        .await
        .unwrap();
    assert_eq!(p.items.len(), 3);
    let rejected = ListFilter {
        status: Some(Status::Rejected),
        clinic_reference: None,
    };
    assert!(
        store
            .list_prescriptions("cl_a", Mode::Test, &rejected, None, 100)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let waiting = ListFilter {
        status: Some(Status::AwaitingClinicalCheck),
        clinic_reference: None,
    };
    assert_eq!(
        store
            .list_prescriptions("cl_a", Mode::Test, &waiting, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        5
    );
}

pub async fn transition_optimistic(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k",
        keys(None, "d"),
    )
    .await;
    let r = store
        .transition(
            "rx_1",
            1,
            Status::Cancelled,
            ev("prescription.cancelled", "rx_1"),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.version), (Status::Cancelled, 2));
    let stale = store
        .transition("rx_1", 1, Status::Rejected, ev("x", "rx_1"))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    let missing = store
        .transition("rx_nope", 1, Status::Rejected, ev("x", "rx_nope"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let got = store
        .get_prescription("cl_a", Mode::Test, "rx_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.status, Status::Cancelled);
    // Only the successful transition left an event.
    let kinds: Vec<String> = store
        .timeline("rx_1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(kinds, ["prescription.received", "prescription.cancelled"]);
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
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k",
        keys(None, "d"),
    )
    .await;
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
    let kinds: Vec<String> = store
        .timeline("rx_1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
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
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k",
        keys(None, "d"),
    )
    .await;
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
    store
        .transition(
            "rx_2",
            2,
            Status::Cancelled,
            ev("prescription.cancelled", "rx_2"),
        )
        .await
        .unwrap();
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

pub async fn events_chain_and_timeline(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k1",
        keys(None, "d"),
    )
    .await;
    insert(
        &store,
        record("rx_2", "cl_a", Mode::Test, "R"),
        "k2",
        keys(None, "d"),
    )
    .await;
    store
        .transition(
            "rx_1",
            1,
            Status::Cancelled,
            ev("prescription.cancelled", "rx_1"),
        )
        .await
        .unwrap();
    store
        .record_event(ev("staff.viewed_prescription", "rx_1"))
        .await
        .unwrap();
    let report = verify_chain(store.as_ref()).await.unwrap();
    assert_eq!(report.events, 5);
    let all = store.events_after(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(all[1].prev_hash, all[0].hash);
    assert_eq!(store.events_after(2, 1).await.unwrap()[0].seq, 3);
    let t = store.timeline("rx_1").await.unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].event.detail["k"], "prescription.received");
    // The event that wrote the row binds it (`crate::state`).
    assert!(
        crate::state::bound(&t[0].event, crate::state::Table::Prescriptions, "rx_1").is_some(),
        "{:?}",
        t[0].event.detail
    );
}

pub async fn history_by_identity(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    // Same NHS number at another clinic; same demographics without NHS number; a stranger;
    // the same NHS number in the other mode.
    insert(
        &store,
        record("rx_1", "cl_b", Mode::Test, "R"),
        "k1",
        keys(Some("nhs-1"), "demo-x"),
    )
    .await;
    insert(
        &store,
        record("rx_2", "cl_a", Mode::Test, "R"),
        "k2",
        keys(None, "demo-1"),
    )
    .await;
    insert(
        &store,
        record("rx_3", "cl_a", Mode::Test, "R"),
        "k3",
        keys(Some("nhs-2"), "demo-2"),
    )
    .await;
    insert(
        &store,
        record("rx_4", "cl_a", Mode::Live, "R"),
        "k4",
        keys(Some("nhs-1"), "demo-1"),
    )
    .await;
    let h = store
        .patient_history(Mode::Test, &keys(Some("nhs-1"), "demo-1"), "cl_a", 1000)
        .await
        .unwrap();
    let mut ids: Vec<(&str, bool)> = h
        .iter()
        .map(|e| (e.prescription_id.as_str(), e.same_clinic))
        .collect();
    ids.sort();
    assert_eq!(ids, [("rx_1", false), ("rx_2", true)]);
    assert_eq!(h[0].product_code, "CONCERTA-XL-36");
    assert_eq!(h[0].start, date(2026, 11, 20));
    assert_eq!(h[0].days_supply, 28);
    assert_eq!(h[0].status, Status::AwaitingClinicalCheck);
    // History follows status changes, newest first.
    store
        .transition(
            "rx_2",
            1,
            Status::Cancelled,
            ev("prescription.cancelled", "rx_2"),
        )
        .await
        .unwrap();
    let h = store
        .patient_history(Mode::Test, &keys(Some("nhs-1"), "demo-1"), "cl_a", 1000)
        .await
        .unwrap();
    assert_eq!(
        h.iter()
            .find(|e| e.prescription_id == "rx_2")
            .unwrap()
            .status,
        Status::Cancelled
    );
    assert_eq!(h[0].prescription_id, "rx_2");
    let limited = store
        .patient_history(Mode::Test, &keys(Some("nhs-1"), "demo-1"), "cl_a", 1)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(
        store
            .patient_history(Mode::Test, &keys(None, "nobody"), "cl_a", 1000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Keys shared by many records: other patients at an address are counted up to the cap; one
/// patient's many records at an address count once; a conflict is found on either side of
/// this patient's own value in the pair indexes.
pub async fn identity_signals_on_hot_keys(store: Arc<dyn Store>) {
    use rxbridge_domain::compliance::MAX_COUNTED_AT_ADDRESS;
    clinic(&store, "cl_a").await;
    let at = |nhs: &str, name_dob: &str, address: &str| {
        let mut k = keys(Some(nhs), "same-demographics");
        k.address = address.into();
        k.name_dob = name_dob.into();
        k
    };
    let n = MAX_COUNTED_AT_ADDRESS + 5;
    for i in 0..n {
        let k = at(&format!("n{i:04}"), "sam", "one-address");
        let rec = record(&format!("rx_h{i}"), "cl_a", Mode::Test, "R");
        insert(&store, rec, &format!("kh{i}"), k).await;
    }
    // One patient with five records at another address.
    for i in 0..5 {
        let k = at("n5000", "lee", "two-address");
        let rec = record(&format!("rx_l{i}"), "cl_a", Mode::Test, "R");
        insert(&store, rec, &format!("kl{i}"), k).await;
    }
    let signals = |k: PatientKeys| {
        let store = store.clone();
        async move { store.identity_signals(Mode::Test, &k).await.unwrap() }
    };
    let s = signals(at("n9999", "kim", "one-address")).await;
    assert_eq!(
        s.other_patients_at_address, MAX_COUNTED_AT_ADDRESS,
        "capped"
    );
    assert!(!s.nhs_number_with_other_details && !s.details_with_other_nhs_number);
    let s = signals(at("n0000", "sam", "one-address")).await;
    assert_eq!(s.other_patients_at_address, MAX_COUNTED_AT_ADDRESS);
    assert!(
        !s.nhs_number_with_other_details,
        "the same details as before"
    );
    assert!(s.details_with_other_nhs_number, "higher numbers");
    let last = format!("n{:04}", n - 1);
    let s = signals(at(&last, "sam", "one-address")).await;
    assert!(s.details_with_other_nhs_number, "lower numbers");
    assert!(!s.nhs_number_with_other_details);
    for nd in ["aaa", "zzz"] {
        let s = signals(at("n0003", nd, "elsewhere")).await;
        assert!(s.nhs_number_with_other_details, "{nd}");
        assert!(!s.details_with_other_nhs_number, "{nd}");
    }
    let s = signals(at("n6000", "kim", "two-address")).await;
    assert_eq!(s.other_patients_at_address, 1, "five records, one patient");
    let s = signals(at("n5000", "lee", "two-address")).await;
    assert_eq!(s.other_patients_at_address, 0);
}

pub async fn identity_signals_counts(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    let at = |nhs: Option<&str>, demo: &str, address: &str, name_dob: &str| {
        let mut k = keys(nhs, demo);
        k.address = address.into();
        k.name_dob = name_dob.into();
        k
    };
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "R"),
        "k1",
        at(Some("n1"), "d1", "addr", "sam"),
    )
    .await;
    insert(
        &store,
        record("rx_2", "cl_a", Mode::Test, "R"),
        "k2",
        at(Some("n2"), "d2", "addr", "alex"),
    )
    .await;
    insert(
        &store,
        record("rx_3", "cl_a", Mode::Test, "R"),
        "k3",
        at(Some("n2"), "d2", "addr", "alex"),
    )
    .await;
    // A third person at the same address: two others there.
    let s = store
        .identity_signals(Mode::Test, &at(Some("n3"), "d3", "addr", "kim"))
        .await
        .unwrap();
    assert_eq!(s.other_patients_at_address, 2);
    assert!(!s.nhs_number_with_other_details && !s.details_with_other_nhs_number);
    // The same person again does not count themself.
    let s = store
        .identity_signals(Mode::Test, &at(Some("n1"), "d1", "addr", "sam"))
        .await
        .unwrap();
    assert_eq!(s.other_patients_at_address, 1);
    // n1 with other details; sam's details with another NHS number.
    let s = store
        .identity_signals(Mode::Test, &at(Some("n1"), "d9", "elsewhere", "bob"))
        .await
        .unwrap();
    assert!(s.nhs_number_with_other_details);
    let s = store
        .identity_signals(Mode::Test, &at(Some("n9"), "d9", "elsewhere", "sam"))
        .await
        .unwrap();
    assert!(s.details_with_other_nhs_number);
    // The combined call answers the same as the two separate ones.
    let k = at(Some("n3"), "d3", "addr", "kim");
    let (h, s2) = store
        .patient_context(Mode::Test, &k, "cl_a", 1000)
        .await
        .unwrap();
    assert_eq!(s2, store.identity_signals(Mode::Test, &k).await.unwrap());
    assert_eq!(
        h,
        store
            .patient_history(Mode::Test, &k, "cl_a", 1000)
            .await
            .unwrap()
    );
    // Other mode sees nothing.
    let s = store
        .identity_signals(Mode::Live, &at(Some("n1"), "d9", "addr", "bob"))
        .await
        .unwrap();
    assert_eq!(s, Default::default());
}

pub async fn staff_views_span_clinics(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    let mut k1 = keys(Some("nhs-1"), "d1");
    k1.email = Some("em-1".into());
    k1.postcode = "pc-1".into();
    k1.family_dob = "fd-1".into();
    insert(
        &store,
        record("rx_1", "cl_a", Mode::Test, "REF-A"),
        "k1",
        k1.clone(),
    )
    .await;
    insert(
        &store,
        record("rx_2", "cl_b", Mode::Test, "REF-B"),
        "k2",
        k1.clone(),
    )
    .await;
    insert(
        &store,
        record("rx_3", "cl_b", Mode::Test, "REF-B"),
        "k3",
        keys(Some("nhs-3"), "d3"),
    )
    .await;
    insert(
        &store,
        record("rx_4", "cl_a", Mode::Live, "REF-A"),
        "k4",
        k1.clone(),
    )
    .await;
    // Any clinic, one mode.
    assert_eq!(
        store
            .get_prescription_for_staff(Mode::Test, "rx_2")
            .await
            .unwrap()
            .unwrap()
            .clinic_id,
        "cl_b"
    );
    assert!(
        store
            .get_prescription_for_staff(Mode::Live, "rx_2")
            .await
            .unwrap()
            .is_none()
    );
    // Worklist: oldest first, paged.
    store
        .transition("rx_2", 1, Status::OnHold, ev("x", "rx_2"))
        .await
        .unwrap();
    let w = store
        .worklist(Mode::Test, Status::AwaitingClinicalCheck, None, 1)
        .await
        .unwrap();
    assert_eq!(
        w.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rx_1"]
    );
    let w = store
        .worklist(Mode::Test, Status::AwaitingClinicalCheck, w.next, 10)
        .await
        .unwrap();
    assert_eq!(
        w.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["rx_3"]
    );
    assert_eq!(w.next, None);
    // Search by each lookup, newest first, mode-scoped.
    let ids = |v: Vec<PrescriptionRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .search(Mode::Test, &StaffLookup::NhsNumber("nhs-1".into()), 10)
            .await
            .unwrap()),
        ["rx_2", "rx_1"]
    );
    assert_eq!(
        ids(store
            .search(Mode::Test, &StaffLookup::Email("em-1".into()), 10)
            .await
            .unwrap()),
        ["rx_2", "rx_1"]
    );
    assert_eq!(
        ids(store
            .search(Mode::Test, &StaffLookup::Postcode("pc-1".into()), 1)
            .await
            .unwrap()),
        ["rx_2"]
    );
    assert_eq!(
        ids(store
            .search(
                Mode::Test,
                &StaffLookup::FamilyNameAndDob("fd-1".into()),
                10
            )
            .await
            .unwrap()),
        ["rx_2", "rx_1"]
    );
    assert_eq!(
        ids(store
            .search(
                Mode::Test,
                &StaffLookup::ClinicReference("REF-B".into()),
                10
            )
            .await
            .unwrap()),
        ["rx_3", "rx_2"]
    );
    assert_eq!(
        ids(store
            .search(Mode::Test, &StaffLookup::PrescriptionId("rx_3".into()), 10)
            .await
            .unwrap()),
        ["rx_3"]
    );
    assert_eq!(
        ids(store
            .search(Mode::Live, &StaffLookup::NhsNumber("nhs-1".into()), 10)
            .await
            .unwrap()),
        ["rx_4"]
    );
    assert!(
        store
            .search(Mode::Test, &StaffLookup::NhsNumber("nope".into()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The prescriber-key port's contract.
pub mod prescriber_keys;

/// The staff port's contract, driven through `StaffService` with a fixed clock.
pub mod staff {
    use crate::clock::{Clock, FixedClock};
    use crate::ports::StoreError;
    use crate::staff::*;
    use jiff::{SignedDuration, Timestamp};
    use std::sync::Arc;

    pub type StaffFixture = (Arc<dyn StaffStore>, Box<dyn std::any::Any + Send>);

    #[macro_export]
    macro_rules! staff_store_contract_tests {
        ($make:expr) => {
            mod staff_store_contract {
                #[allow(unused_imports)]
                use super::*;
                macro_rules! case {
                    ($name:ident) => {
                        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                        async fn $name() {
                            let fixture: $crate::contract::staff::StaffFixture = $make.await;
                            $crate::contract::staff::$name(fixture.0.clone()).await;
                            drop(fixture);
                        }
                    };
                }
                case!(add_and_sign_in);
                case!(lockout_with_back_off);
                case!(sessions_expire_and_sign_out);
                case!(password_change);
            }
        };
    }

    fn start() -> Timestamp {
        "2026-11-26T09:00:00Z".parse().unwrap()
    }

    fn service(store: Arc<dyn StaffStore>) -> (StaffService, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(start()));
        (StaffService::new(store, clock.clone()), clock)
    }

    pub async fn add_and_sign_in(store: Arc<dyn StaffStore>) {
        let (svc, _) = service(store.clone());
        let (acct, otp) = svc
            .add("Pharm@Example.com", Role::Pharmacist, Some("2033467"))
            .await
            .unwrap();
        assert_eq!(acct.email, "pharm@example.com");
        assert!(acct.must_change_password);
        assert!(matches!(
            svc.add("pharm@example.com", Role::Support, None).await,
            Err(StaffError::EmailTaken)
        ));
        assert!(matches!(
            svc.add("p2@example.com", Role::Pharmacist, None).await,
            Err(StaffError::Invalid(_))
        ));
        assert!(matches!(
            svc.add("p3@example.com", Role::Pharmacist, Some("1033467"))
                .await,
            Err(StaffError::Invalid(_))
        ));
        assert_eq!(store.staff_by_id(&acct.id).await.unwrap().unwrap(), acct);
        assert_eq!(store.list_staff().await.unwrap(), vec![acct.clone()]);
        assert!(matches!(
            svc.sign_in("nobody@example.com", &otp).await,
            Err(StaffError::InvalidCredentials)
        ));
        let s = svc.sign_in("PHARM@example.com", &otp).await.unwrap();
        assert_eq!(s.session.staff.id, acct.id);
        assert_ne!(s.token, s.session.csrf_token);
        let live = svc.session(&s.token).await.unwrap().unwrap();
        assert_eq!(live.staff.role, Role::Pharmacist);
        assert_eq!(live.csrf_token, s.session.csrf_token);
        assert!(svc.session("not-a-token").await.unwrap().is_none());
        // Only the hash is stored.
        assert!(store.session(&s.token).await.unwrap().is_none());
    }

    pub async fn lockout_with_back_off(store: Arc<dyn StaffStore>) {
        let (svc, clock) = service(store.clone());
        let (acct, otp) = svc.add("s@example.com", Role::Support, None).await.unwrap();
        for _ in 0..(FREE_ATTEMPTS - 1) {
            assert!(matches!(
                svc.sign_in("s@example.com", "wrong").await,
                Err(StaffError::InvalidCredentials)
            ));
        }
        // The fifth failure locks for a minute; even the right password is refused meanwhile.
        assert!(matches!(
            svc.sign_in("s@example.com", "wrong").await,
            Err(StaffError::Locked(_))
        ));
        assert!(matches!(
            svc.sign_in("s@example.com", &otp).await,
            Err(StaffError::Locked(_))
        ));
        clock.set(
            start()
                .saturating_add(SignedDuration::from_secs(61))
                .unwrap(),
        );
        // Another failure after the lock doubles it.
        match svc.sign_in("s@example.com", "wrong").await {
            Err(StaffError::Locked(until)) => assert_eq!(
                until.duration_since(clock.now()),
                SignedDuration::from_secs(120)
            ),
            other => panic!("{other:?}"),
        }
        clock.set(
            clock
                .now()
                .saturating_add(SignedDuration::from_secs(121))
                .unwrap(),
        );
        svc.sign_in("s@example.com", &otp).await.unwrap();
        let a = store.staff_by_id(&acct.id).await.unwrap().unwrap();
        assert_eq!(
            (a.failed_attempts, a.locked_until),
            (0, None),
            "success resets the count"
        );
    }

    pub async fn sessions_expire_and_sign_out(store: Arc<dyn StaffStore>) {
        let (svc, clock) = service(store.clone());
        let (_, otp) = svc.add("a@example.com", Role::Admin, None).await.unwrap();
        let s = svc.sign_in("a@example.com", &otp).await.unwrap();
        clock.set(start().saturating_add(IDLE_TIMEOUT).unwrap());
        assert!(
            svc.session(&s.token).await.unwrap().is_some(),
            "used just within the idle timeout"
        );
        clock.set(
            clock
                .now()
                .saturating_add(IDLE_TIMEOUT + SignedDuration::from_secs(1))
                .unwrap(),
        );
        assert!(
            svc.session(&s.token).await.unwrap().is_none(),
            "idle too long"
        );
        assert!(
            store
                .session(&s.session.token_hash)
                .await
                .unwrap()
                .is_none(),
            "expired session removed"
        );
        let s = svc.sign_in("a@example.com", &otp).await.unwrap();
        let live = svc.session(&s.token).await.unwrap().unwrap();
        svc.sign_out(&live).await.unwrap();
        assert!(svc.session(&s.token).await.unwrap().is_none());
        // Signing out twice is harmless.
        svc.sign_out(&live).await.unwrap();
        assert!(matches!(
            store
                .set_password(
                    "st_nope",
                    "h",
                    None,
                    crate::events::NewEvent {
                        at: start(),
                        kind: "x".into(),
                        actor: "t".into(),
                        subject: "st_nope".into(),
                        detail: serde_json::json!({})
                    }
                )
                .await,
            Err(StoreError::NotFound)
        ));
    }

    pub async fn password_change(store: Arc<dyn StaffStore>) {
        let (svc, _) = service(store.clone());
        let (acct, otp) = svc.add("c@example.com", Role::Support, None).await.unwrap();
        let s = svc.sign_in("c@example.com", &otp).await.unwrap().session;
        // A second session of the same account (another browser).
        let other = svc.sign_in("c@example.com", &otp).await.unwrap();
        assert!(matches!(
            svc.change_password(&s, "wrong", "a long enough password")
                .await,
            Err(StaffError::InvalidCredentials)
        ));
        assert!(matches!(
            svc.change_password(&s, &otp, "short").await,
            Err(StaffError::Invalid(_))
        ));
        svc.change_password(&s, &otp, "a long enough password")
            .await
            .unwrap();
        let a = store.staff_by_id(&acct.id).await.unwrap().unwrap();
        assert!(!a.must_change_password);
        // The session that changed the password stays; every other one ends.
        assert!(store.session(&s.token_hash).await.unwrap().is_some());
        assert!(svc.session(&other.token).await.unwrap().is_none());
        assert!(matches!(
            svc.sign_in("c@example.com", &otp).await,
            Err(StaffError::InvalidCredentials)
        ));
        svc.sign_in("c@example.com", "a long enough password")
            .await
            .unwrap();
    }
}

/// The outbox and register parts of a store. Every adapter runs them through
/// `fulfilment_store_contract_tests!` with a factory returning the same store three ways.
pub mod fulfilment {
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
                            $crate::contract::fulfilment::$name(
                                f.0.clone(),
                                f.1.clone(),
                                f.2.clone(),
                            )
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
        assert!(
            ids(outbox.claim_due(at(500), at(500), 10).await.unwrap()).contains(&"m4".to_string())
        );
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
}

//! Contract: `PrescriptionStore` and `StaffViews` — insert with idempotency, reads scoped to
//! clinic and mode, pages, optimistic transitions, and the staff views that span clinics.

use super::*;

/// The `PrescriptionStore` and `StaffViews` suite.
#[macro_export]
macro_rules! prescription_store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_suite!(
            $make,
            prescription_store_contract:
            insert_get_scoped,
            idempotency_key_unique,
            concurrent_same_key_one_winner,
            list_pages_newest_first,
            transition_optimistic,
            staff_views_span_clinics,
            nhs_exemption_state_kept
        );
    };
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
    insert_plain(&store, "rx_1", "cl_a", "k").await;
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
    insert_plain(&store, "rx_1", "cl_a", "k").await;
    let r = cancel(&*store, "rx_1", 1).await;
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
    let kinds = kinds(&*store, "rx_1").await;
    assert_eq!(kinds, ["prescription.received", "prescription.cancelled"]);
}

pub async fn staff_views_span_clinics(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    clinic(&store, "cl_b").await;
    let mut k1 = keys(Some("nhs-1"), "d1");
    k1.email = Some("em-1".into());
    k1.phone = Some("ph-1".into());
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
            .search(Mode::Test, &StaffLookup::Phone("ph-1".into()), 10)
            .await
            .unwrap()),
        ["rx_2", "rx_1"]
    );
    assert!(
        store
            .search(Mode::Test, &StaffLookup::Phone("em-1".into()), 10)
            .await
            .unwrap()
            .is_empty(),
        "a phone search reads only phone keys"
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

/// The NHS exemption state: stored with the record, written with a transition that names it,
/// kept by one that does not, bound to the chain, and refused without a transition.
pub async fn nhs_exemption_state_kept(store: Arc<dyn Store>) {
    use crate::payments::{Change, TransitionTo};
    use rxbridge_domain::declaration::{Declaration, NhsExemption};
    use rxbridge_domain::prescription::ExemptionCode;
    clinic(&store, "cl_a").await;
    let mut rec = record("rx_1", "cl_a", Mode::Test, "R");
    rec.kind = PrescriptionType::Nhs;
    rec.nhs_exemption = Some(NhsExemption::ToBeDeclared);
    insert(&store, rec.clone(), "k", keys(Some("n1"), "d")).await;
    insert_plain(&store, "rx_2", "cl_a", "k2").await;
    let got = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_prescription("cl_a", Mode::Test, id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(
        got("rx_1").await.nhs_exemption,
        Some(NhsExemption::ToBeDeclared)
    );
    assert_eq!(got("rx_2").await.nhs_exemption, None);

    let declared = NhsExemption::Declared(Declaration {
        exemption: ExemptionCode::PAID,
        evidence_seen: false,
        declared_on: date(2026, 12, 1),
        declared_by: "st_1".into(),
    });
    let declare = |version: i64, id: &str| Change {
        transition: Some(TransitionTo {
            id: id.into(),
            expected_version: version,
            to: Status::AwaitingClinicalCheck,
        }),
        events: vec![ev("prescription.exemption_declared", id)],
        nhs_exemption: Some(declared.clone()),
        ..Change::default()
    };
    let stale = store.commit(declare(7, "rx_1")).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(
        got("rx_1").await.nhs_exemption,
        Some(NhsExemption::ToBeDeclared)
    );
    let written = store.commit(declare(1, "rx_1")).await.unwrap().unwrap();
    assert_eq!(written.nhs_exemption, Some(declared.clone()));
    assert_eq!(
        (written.status, written.version),
        (Status::AwaitingClinicalCheck, 2)
    );
    let stored = got("rx_1").await;
    assert_eq!(stored, written);
    // The event binds the row as written, exemption included.
    crate::state::StateGuard::new(&*store)
        .prescription(&stored, "test")
        .await
        .unwrap();
    // A later transition that does not name it keeps it.
    let r = cancel(&*store, "rx_1", 2).await;
    assert_eq!(r.nhs_exemption, Some(declared.clone()));
    assert_eq!(got("rx_1").await.nhs_exemption, Some(declared.clone()));
    // A state without the transition it belongs to is refused, and writes nothing.
    let alone = Change {
        events: vec![ev("x", "rx_2")],
        nhs_exemption: Some(declared.clone()),
        ..Change::default()
    };
    assert!(store.commit(alone).await.is_err());
    assert_eq!(got("rx_2").await.nhs_exemption, None);
    assert_eq!(kinds(&*store, "rx_2").await, ["prescription.received"]);
}

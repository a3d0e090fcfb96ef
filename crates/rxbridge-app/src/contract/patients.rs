//! Contract: `PatientIndex` — history by identity and the identity signals.

use super::*;

/// The `PatientIndex` suite.
#[macro_export]
macro_rules! patient_index_contract_tests {
    ($make:expr) => {
        $crate::store_contract_suite!(
            $make,
            patient_index_contract:
            history_by_identity,
            identity_signals_counts,
            identity_signals_on_hot_keys
        );
    };
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
    cancel(&*store, "rx_2", 1).await;
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

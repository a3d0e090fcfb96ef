//! Contract: `ClinicStore` — clinics and their API keys, and the health check.

use super::*;

/// The `ClinicStore` suite.
#[macro_export]
macro_rules! clinic_store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_suite!(
            $make,
            clinic_store_contract:
            ping_answers,
            clinics_and_keys,
            rotate_key_revokes_old,
            key_generation_moves_with_every_key_change
        );
    };
}

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
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

/// A store with an API-key generation changes it with every key written (creating a clinic,
/// rotating) and not on a read; one without has none at any time.
pub async fn key_generation_moves_with_every_key_change(store: Arc<dyn Store>) {
    let g0 = store.api_key_generation().await.unwrap();
    clinic(&store, "cl_a").await;
    let g1 = store.api_key_generation().await.unwrap();
    store.find_api_key("cl_a-test").await.unwrap();
    assert_eq!(store.api_key_generation().await.unwrap(), g1, "a read");
    store
        .rotate_key(
            key("cl_a", Mode::Test, "new-test"),
            ev("clinic.key_rotated", "cl_a"),
        )
        .await
        .unwrap();
    let g2 = store.api_key_generation().await.unwrap();
    match (g0, g1, g2) {
        (None, None, None) => {}
        (Some(a), Some(b), Some(c)) => assert!(a != b && b != c && a != c, "{a} {b} {c}"),
        other => panic!("a generation at some times only: {other:?}"),
    }
}

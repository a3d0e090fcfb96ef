//! Hot patient keys on DynamoDB: the items a submission's history and identity reads evaluate
//! (DynamoDB's `ScannedCount`, what a query costs) do not grow with the records sharing the
//! patient's demographics and address under other NHS numbers. Never timings.

use crate::testing;
use rxbridge_app::contract::{clinic, insert_sharing_keys, shared_keys as keys};
use rxbridge_app::ports::{Mode, PatientIndex, Store};
use std::sync::Arc;

async fn insert(store: &Arc<dyn Store>, from: u32, to: u32) {
    insert_sharing_keys(store, from, to, 8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_grow_with_the_records_sharing_a_key() {
    let store = Arc::new(testing::fresh_store().await);
    let dyn_store: Arc<dyn Store> = store.clone();
    clinic(&dyn_store, "cl_a").await;
    let new_patient = keys(99_999);
    let read = || {
        let (store, k) = (store.clone(), new_patient.clone());
        async move {
            let before = store.items_read();
            let (history, signals) = store
                .patient_context(Mode::Test, &k, "cl_a", 1000)
                .await
                .unwrap();
            assert!(history.is_empty(), "a new NHS number has no history");
            assert!(signals.details_with_other_nhs_number);
            (
                store.items_read() - before,
                signals.other_patients_at_address,
            )
        }
    };
    insert(&dyn_store, 0, 20).await;
    let (few, at_few) = read().await;
    insert(&dyn_store, 20, 130).await;
    let (many, at_many) = read().await;
    assert_eq!((at_few, at_many), (20, 100), "counted up to the cap");
    // 20 → 101 address items (the cap) and nothing else grows: without the distinct-value
    // items each of the 130 records would be read at least twice (address, demographics).
    assert!(few <= 30, "{few}");
    assert!(
        many <= 110,
        "{many} items read with 130 records sharing the keys"
    );
}

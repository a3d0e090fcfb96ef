//! Contract: `EventLog` — the hash-chained event log.

use super::*;

/// The `EventLog` suite.
#[macro_export]
macro_rules! event_log_contract_tests {
    ($make:expr) => {
        $crate::store_contract_suite!(
            $make,
            event_log_contract:
            events_chain_and_timeline
        );
    };
}

pub async fn events_chain_and_timeline(store: Arc<dyn Store>) {
    clinic(&store, "cl_a").await;
    insert_plain(&store, "rx_1", "cl_a", "k1").await;
    insert_plain(&store, "rx_2", "cl_a", "k2").await;
    cancel(&*store, "rx_1", 1).await;
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

//! State edited outside the application (an attacker with write access to the data
//! directory): the release sweep refuses the row, and `audit verify` names the difference.

use crate::money::harness::*;
use rxbridge_app::clinical::{Decision, Pharmacist};
use rxbridge_app::outbox::{MessageStatus, OutboxStore};
use rxbridge_app::ports::Mode;
use rxbridge_domain::ids::GphcNumber;

#[tokio::test]
async fn a_rejected_prescription_set_ready_in_the_database_is_not_released_and_is_named() {
    let m = start(|_| {}).await;
    let id = m
        .submit(Mode::Test, &nhs("T-1", "0002", &["STRATTERA-40"]))
        .await;
    let rec = m.record(Mode::Test, &id).await;
    m.running
        .clinical
        .decide(
            &Pharmacist {
                staff_id: "st_pharm".into(),
                gphc: GphcNumber::parse("2033467").unwrap(),
            },
            Mode::Test,
            &id,
            rec.version,
            Decision::Reject,
            "Not clinically appropriate",
        )
        .await
        .unwrap();
    let before = rxbridge_app::state::mismatches_total();
    let intact = rxbridge_app::audit::verify_all(
        m.running.state.store.as_ref(),
        m.running.store.as_ref(),
        m.running.store.as_ref(),
    )
    .await
    .unwrap();
    assert!(intact.is_ok(), "{intact:?}");

    // The attack: one UPDATE on the live database, outside the application.
    let db = rusqlite::Connection::open(m.running.data_dir.join("rxbridge.db")).unwrap();
    let n = db
        .execute(
            "UPDATE prescriptions SET status = 'ready_for_fulfilment' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let rep = m.running.fulfilment.sweep().await.unwrap();
    assert_eq!((rep.released, rep.refused), (0, 1), "{rep:?}");
    assert!(rxbridge_app::state::mismatches_total() > before);
    // What `/metrics` serves (on whichever listener it is configured).
    let metrics = m.running.state.metrics.render();
    assert!(
        metrics.contains("\nrxbridge_state_mismatch_total "),
        "{metrics}"
    );
    let to_warehouse = m
        .running
        .store
        .messages(MessageStatus::Pending, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|msg| msg.message.destination.starts_with("warehouse"))
        .count();
    assert_eq!(to_warehouse, 0, "nothing went to the warehouse");
    assert!(
        !m.event_kinds(&id)
            .await
            .contains(&"prescription.released".to_string())
    );

    let broken = rxbridge_app::audit::verify_all(
        m.running.state.store.as_ref(),
        m.running.store.as_ref(),
        m.running.store.as_ref(),
    )
    .await
    .unwrap()
    .expect_err("verify names the edit");
    let line = format!("prescriptions {id}: status expected rejected, found ready_for_fulfilment");
    assert!(broken.iter().any(|l| l.trim() == line), "{broken:#?}");
}

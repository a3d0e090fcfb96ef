//! The embedded store's export imported into DynamoDB (against the local stand-in, moto): every
//! record survives the move, and the imported store carries on where the old one stopped.

use rxbridge_app::staff::{Identity as _, Role};
use rxbridge_store_dynamodb::{DynamoStore, testing};
use serde_json::{Value, json};
use std::sync::Arc;

/// The embedded store's every record and event, exported and imported into DynamoDB, then
/// exported again: the two files hold the same records; the imported store verifies and
/// carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_moves_to_dynamodb_without_loss() {
    use rxbridge_app::contract::{self as k, fulfilment as kf};
    use rxbridge_app::events::NewEvent;
    use rxbridge_app::outbox::{Attempt, Endpoint, MessageStatus, OutboxStore};
    use rxbridge_app::payments::{Change, PaymentStatus, PaymentWrite, TransitionTo};
    use rxbridge_app::ports::*;
    use rxbridge_app::registers::{EntryKind, RegisterStore};
    use rxbridge_app::transfer::{export, import};
    use rxbridge_domain::lifecycle::Status;

    let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let ev = |kind: &str, subject: &str| NewEvent {
        at,
        kind: kind.into(),
        actor: "test".into(),
        subject: subject.into(),
        detail: json!({ "k": kind }),
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        Arc::new(rxbridge_store_sqlite::SqliteStore::open(dir.path().join("rx.db")).unwrap());
    let key = |hash: &str, mode: Mode| ApiKeyRecord {
        key_hash: hash.into(),
        prefix: "rxb_test_abcd".into(),
        clinic_id: "cl_a".into(),
        mode,
        created_at: at,
    };
    sqlite
        .create_clinic(
            Clinic {
                id: "cl_a".into(),
                name: "Clinic A".into(),
                created_at: at,
            },
            vec![key("h-test-1", Mode::Test), key("h-live-1", Mode::Live)],
            ev("clinic.created", "cl_a"),
        )
        .await
        .unwrap();
    sqlite
        .rotate_key(
            key("h-test-2", Mode::Test),
            ev("clinic.key_rotated", "cl_a"),
        )
        .await
        .unwrap();
    {
        use rxbridge_app::signatures::{PrescriberKey, PrescriberKeyStore, SigningAlg};
        for (kid, revoked) in [("pk-1", Some(at)), ("pk-2", None)] {
            sqlite
                .add_prescriber_key(
                    PrescriberKey {
                        clinic_id: "cl_a".into(),
                        kid: kid.into(),
                        registration: "gmc:7012345".into(),
                        alg: SigningAlg::Es256,
                        public_key_pem:
                            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
                        added_at: at,
                        revoked_at: None,
                    },
                    ev("prescriber_key.added", "cl_a"),
                )
                .await
                .unwrap();
            if let Some(r) = revoked {
                sqlite
                    .revoke_prescriber_key("cl_a", kid, r, ev("prescriber_key.revoked", "cl_a"))
                    .await
                    .unwrap();
            }
        }
    }
    let clock: Arc<dyn rxbridge_app::Clock> = Arc::new(rxbridge_app::SystemClock);
    let staff = rxbridge_app::staff::StaffService::new(sqlite.clone(), clock.clone());
    let (_, one_time) = staff
        .add("pat@pharmacy.example", Role::Pharmacist, Some("2012345"))
        .await
        .unwrap();
    staff
        .add("sam@pharmacy.example", Role::Support, None)
        .await
        .unwrap();
    for i in 0..3 {
        let id = format!("rx_{i}");
        let patient = k::keys(
            if i == 2 { None } else { Some("nhs-1") },
            &format!("demo-{i}"),
        );
        sqlite
            .insert_prescription(NewPrescription {
                record: k::record(&id, "cl_a", Mode::Test, &format!("REF-{i}")),
                patient,
                idempotency: IdempotencyRecord {
                    clinic_id: "cl_a".into(),
                    mode: Mode::Test,
                    key: format!("idem#{i}"),
                    request_hash: format!("h{i}"),
                    response_status: 201,
                    response_body: format!("{{\"id\":\"{id}\"}}"),
                    created_at: at,
                },
                event: ev("prescription.received", &id),
            })
            .await
            .unwrap();
    }
    let mut pay = k::payment("pay_0", "rx_0", PaymentStatus::AwaitingPayment);
    pay.session_id = Some("cs_1".into());
    sqlite
        .commit(Change {
            transition: Some(TransitionTo {
                id: "rx_0".into(),
                expected_version: 1,
                to: Status::AwaitingPayment,
            }),
            payment: Some(PaymentWrite::Insert(pay)),
            dedupe: Some(("stripe".into(), "evt_1".into())),
            events: vec![
                ev("prescription.approved", "rx_0"),
                ev("payment.requested", "rx_0"),
            ],
            outbox: vec![
                kf::msg("msg_1", "clinic:cl_a", "rx_0", at),
                kf::msg("msg_2", "warehouse", "rx_0", at),
            ],
            register: vec![
                kf::entry(EntryKind::Receipt, 100),
                kf::entry(EntryKind::Supply, 28),
            ],
            nhs_exemption: None,
        })
        .await
        .unwrap();
    k::cancel(&*sqlite, "rx_1", 1).await;
    sqlite
        .put_endpoint(Endpoint {
            id: "ep_1".into(),
            destination: "clinic:cl_a".into(),
            url: "https://clinic.example/hooks".into(),
            sealed_secrets: vec![1, 2, 3],
            enabled: true,
            disabled_reason: None,
            created_at: at,
        })
        .await
        .unwrap();
    let later = at + jiff::SignedDuration::from_secs(5);
    let mut claimed = sqlite
        .claim_due(later, later + jiff::SignedDuration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let mut m = claimed.remove(0);
    m.status = MessageStatus::Delivered;
    m.attempts = 1;
    m.delivered_at = Some(later);
    sqlite
        .record_attempt(
            &m,
            Some(Attempt {
                message_id: m.message.id.clone(),
                n: 1,
                at: later,
                endpoint_id: Some("ep_1".into()),
                http_status: Some(204),
                error: None,
                duration_ms: 12,
            }),
        )
        .await
        .unwrap();
    sqlite
        .record_event(ev("staff.viewed_prescription", "rx_0"))
        .await
        .unwrap();

    let mut first = Vec::new();
    let exported = export(&*sqlite, &mut first).await.unwrap();
    for kind in [
        "clinic",
        "api_key",
        "staff",
        "prescriber_key",
        "prescription",
        "idempotency",
        "payment",
        "seen",
        "event",
        "endpoint",
        "message",
        "attempt",
        "register_entry",
    ] {
        assert!(
            exported.0.get(kind).is_some_and(|n| *n > 0),
            "no {kind} in {exported:?}"
        );
    }
    let ddb = Arc::new(testing::fresh_store().await);
    let imported = import(&*ddb, &first[..]).await.unwrap();
    assert_eq!(imported, exported);
    let mut second = Vec::new();
    export(&*ddb, &mut second).await.unwrap();
    let lines = |b: &[u8]| {
        let mut v: Vec<Value> = String::from_utf8(b.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(
        lines(&second),
        lines(&first),
        "every record survives the move unchanged"
    );

    // The imported store works as the old one did.
    let chain = rxbridge_app::audit::verify_chain(&*ddb).await.unwrap();
    assert_eq!(chain.events as u64, exported.0["event"]);
    assert!(
        ddb.find_api_key("h-test-1").await.unwrap().is_none(),
        "revoked stays revoked"
    );
    assert!(ddb.find_api_key("h-test-2").await.unwrap().is_some());
    assert_eq!(
        ddb.payment_by_session("cs_1").await.unwrap().unwrap().id,
        "pay_0"
    );
    assert_eq!(ddb.payments_needing_attention(10).await.unwrap().len(), 1);
    let h = ddb
        .patient_history(Mode::Test, &k::keys(Some("nhs-1"), "demo-9"), "cl_a", 10)
        .await
        .unwrap();
    assert_eq!(h.len(), 2, "rx_0 and rx_1 by NHS number");
    assert_eq!(
        ddb.register_balance(rxbridge_app::registers::Register::Cd, "CONCERTA-XL-36")
            .await
            .unwrap(),
        72
    );
    assert_eq!(
        ddb.outbox_stats().await.unwrap().0,
        1,
        "one message still pending"
    );
    let ddb_staff = rxbridge_app::staff::StaffService::new(ddb.clone(), clock);
    assert!(
        ddb_staff
            .sign_in("pat@pharmacy.example", &one_time)
            .await
            .is_ok(),
        "passwords move (as hashes)"
    );
    insert_after_move(&ddb, at).await;
    let chain = rxbridge_app::audit::verify_chain(&*ddb).await.unwrap();
    assert!(chain.events as u64 > exported.0["event"]);
    // A second import into a table that holds data is refused.
    assert!(import(&*ddb, &first[..]).await.is_err());
}

/// A new prescription after the move: its number and the chain continue from the old ones.
async fn insert_after_move(store: &DynamoStore, at: jiff::Timestamp) {
    use rxbridge_app::ports::*;
    let r = store
        .insert_prescription(NewPrescription {
            record: rxbridge_app::contract::record("rx_new", "cl_a", Mode::Test, "REF-N"),
            patient: rxbridge_app::contract::keys(None, "demo-new"),
            idempotency: IdempotencyRecord {
                clinic_id: "cl_a".into(),
                mode: Mode::Test,
                key: "after-move".into(),
                request_hash: "h".into(),
                response_status: 201,
                response_body: "{}".into(),
                created_at: at,
            },
            event: rxbridge_app::events::NewEvent {
                at,
                kind: "prescription.received".into(),
                actor: "test".into(),
                subject: "rx_new".into(),
                detail: json!({}),
            },
        })
        .await
        .unwrap();
    assert!(matches!(r, InsertOutcome::Inserted));
    let page = store
        .list_prescriptions("cl_a", Mode::Test, &ListFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        page.items[0].id, "rx_new",
        "newest first, after the imported ones"
    );
}

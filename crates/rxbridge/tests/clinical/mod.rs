//! The pharmacist's clinical decision, as a use case on the real embedded store.

mod declare;

use crate::common;

use rxbridge::{App, Config};
use rxbridge_app::clinical::{Decision, DecisionError, Pharmacist};
use rxbridge_app::intake::Begin;
use rxbridge_app::ports::{Caller, Mode};
use rxbridge_domain::ids::GphcNumber;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::*;

fn pharmacist(n: &str) -> Pharmacist {
    Pharmacist {
        staff_id: format!("st_{n}"),
        gphc: GphcNumber::parse("2033467").unwrap(),
    }
}

struct Fixture {
    app: App,
    caller: Caller,
    /// The clinic's sandbox API key.
    key: String,
    _dir: tempfile::TempDir,
}

/// Approve, acknowledging `flags`, with no amendment.
fn approve(flags: &[&str]) -> Decision {
    Decision::Approve {
        acknowledged_flags: flags.iter().map(|f| f.to_string()).collect(),
        amendments: vec![],
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .unwrap();
    let c = app.state.clinics.add("Clinic").await.unwrap();
    Fixture {
        app,
        caller: Caller {
            clinic_id: c.clinic_id,
            mode: Mode::Test,
        },
        key: c.test_key,
        _dir: dir,
    }
}

/// An NHS EPS prescription issued today (awaits the clinical check), with 31 days' supply
/// (a flag) and the given exemption.
async fn nhs_rx(f: &Fixture, patient: u64, exemption: &str, days: u32) -> (String, i64) {
    nhs_rx_items(f, patient, exemption, days, 1).await
}

/// `nhs_rx` with `items` items of the same product, each with `days` days' supply.
async fn nhs_rx_items(
    f: &Fixture,
    patient: u64,
    exemption: &str,
    days: u32,
    items: usize,
) -> (String, i64) {
    let today = common::today();
    let mut rx = rxbridge::seed::synthetic(patient, 0, today);
    rx.kind = PrescriptionType::Nhs;
    rx.authority = Authority {
        kind: AuthorityKind::Eps,
        form: None,
        serial_number: None,
        eps_prescription_id: Some("24F5DA-A83008-7EFE6Z".into()),
    };
    rx.prescriber.private_prescriber_code = None;
    rx.nhs = Some(NhsDetails {
        exemption: ExemptionCode::parse(exemption).unwrap(),
        evidence_seen: true,
    });
    // `days` capsules at one a day: that many days' treatment.
    let item = &mut rx.items[0];
    item.quantity = rxbridge_domain::quantity::Quantity::new(days).unwrap();
    item.quantity_in_words = Some(rxbridge_domain::quantity::to_words(days));
    item.quantity_in_words_value = Some(days);
    item.days_supply = days;
    item.declared_days_supply = Some(days);
    let first = item.clone();
    rx.items.resize(items, first);
    let key = format!("k-{patient}-{exemption}-{days}-{items}");
    let Begin::Proceed(guard) = f
        .app
        .state
        .intake
        .begin(&f.caller, &key, &key)
        .await
        .unwrap()
    else {
        panic!()
    };
    let a = f
        .app
        .state
        .intake
        .submit(guard, &f.caller, &key, &key, rx, &Default::default())
        .await
        .unwrap();
    let v = serde_json::to_value(&a.view).unwrap();
    assert_eq!(v["status"], "awaiting_clinical_check", "{v}");
    (v["id"].as_str().unwrap().to_string(), 1)
}

#[tokio::test]
async fn approving_requires_every_flag_acknowledged_and_follows_the_nhs_charge() {
    let f = fixture().await;
    let (id, v) = nhs_rx(&f, 1, "0001", 31).await;
    let c = &f.app.clinical;
    let p = pharmacist("a");
    let err = c
        .decide(&p, Mode::Test, &id, v, approve(&[]), "ok")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DecisionError::FlagsNotAcknowledged(m) if m == &vec!["cd_over_30_days".to_string()]),
        "{err}"
    );
    let err = c
        .decide(&p, Mode::Test, &id, v, approve(&["cd_over_30_days"]), "  ")
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::ReasonRequired));
    let r = c
        .decide(
            &p,
            Mode::Test,
            &id,
            v,
            approve(&["cd_over_30_days"]),
            "Titration agreed with prescriber",
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.version),
        (Status::AwaitingPayment, 2),
        "exemption 0001: the NHS charge is payable"
    );
    // An exempt NHS prescription goes straight to fulfilment.
    let (id2, v2) = nhs_rx(&f, 2, "0015", 28).await;
    let r = c
        .decide(
            &p,
            Mode::Test,
            &id2,
            v2,
            approve(&[]),
            "Clinically appropriate",
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::ReadyForFulfilment);
    // The decision is on the timeline with who and why, then the payment it asks for.
    let t = f.app.state.store.timeline(&id).await.unwrap();
    let kinds: Vec<&str> = t.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(
        kinds.ends_with(&[
            "prescription.approved",
            "payment.requested",
            // Synthetic patients have no email address: the link waits in the portal.
            "notification.not_sent"
        ]),
        "{kinds:?}"
    );
    let last = &t
        .iter()
        .rev()
        .find(|e| e.event.kind == "prescription.approved")
        .unwrap()
        .event;
    assert_eq!(
        (last.kind.as_str(), last.actor.as_str()),
        ("prescription.approved", "staff:st_a")
    );
    assert_eq!(last.detail["acknowledged_flags"][0], "cd_over_30_days");
    assert_eq!(last.detail["gphc"], "2033467");
    rxbridge_app::audit::verify_chain(f.app.state.store.as_ref())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_same_flag_on_two_items_is_acknowledged_for_each() {
    let f = fixture().await;
    let (id, v) = nhs_rx_items(&f, 7, "0001", 31, 2).await;
    let (c, p) = (&f.app.clinical, pharmacist("a"));
    // The bare code no longer says which: each item's flag is named, and neither is taken.
    for given in [&["cd_over_30_days"][..], &["cd_over_30_days.0"][..]] {
        let err = c
            .decide(&p, Mode::Test, &id, v, approve(given), "ok")
            .await
            .unwrap_err();
        let DecisionError::FlagsNotAcknowledged(missing) = &err else {
            panic!("{err}")
        };
        assert!(
            missing.contains(&"cd_over_30_days (item 2)".to_string()),
            "{given:?}: {missing:?}"
        );
        assert_eq!(
            missing.contains(&"cd_over_30_days (item 1)".to_string()),
            given.len() == 1 && given[0] == "cd_over_30_days",
            "{given:?}: {missing:?}"
        );
    }
    let rec = f
        .app
        .state
        .store
        .get_prescription_for_staff(Mode::Test, &id)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<String> = rec
        .findings
        .iter()
        .filter(|x| x.severity == rxbridge_domain::compliance::Severity::Flag)
        .map(|x| x.key())
        .collect();
    assert!(keys.contains(&"cd_over_30_days.1".to_string()), "{keys:?}");
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let r = c
        .decide(&p, Mode::Test, &id, v, approve(&keys), "Both agreed")
        .await
        .unwrap();
    assert_ne!(r.status, Status::AwaitingClinicalCheck);
    let t = f.app.state.store.timeline(&id).await.unwrap();
    let approved = &t
        .iter()
        .find(|e| e.event.kind == "prescription.approved")
        .unwrap()
        .event;
    assert_eq!(
        approved.detail["acknowledged"],
        serde_json::json!(keys),
        "each flag's acknowledgement is recorded"
    );
}

#[tokio::test]
async fn two_pharmacists_deciding_at_once_one_wins() {
    let f = fixture().await;
    for round in 0..10 {
        let (id, v) = nhs_rx(&f, 100 + round, "0015", 28).await;
        let (a, b) = (pharmacist("a"), pharmacist("b"));
        let (ra, rb) = tokio::join!(
            f.app.clinical.decide(
                &a,
                Mode::Test,
                &id,
                v,
                Decision::Approve {
                    acknowledged_flags: vec![],
                    amendments: vec![]
                },
                "approve"
            ),
            f.app
                .clinical
                .decide(&b, Mode::Test, &id, v, Decision::Reject, "reject"),
        );
        let oks = [ra.is_ok(), rb.is_ok()].iter().filter(|x| **x).count();
        assert_eq!(oks, 1, "round {round}: {ra:?} / {rb:?}");
        let loser = match (ra, rb) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            other => panic!("round {round}: expected one winner: {other:?}"),
        };
        assert!(matches!(loser, DecisionError::AlreadyDecided(_)), "{loser}");
        assert!(
            loser
                .to_string()
                .contains("another pharmacist has already decided")
        );
        let t = f.app.state.store.timeline(&id).await.unwrap();
        let decisions = t
            .iter()
            .filter(|e| {
                matches!(
                    e.event.kind.as_str(),
                    "prescription.approved" | "prescription.rejected_by_pharmacist"
                )
            })
            .count();
        assert_eq!(decisions, 1, "one decision event only");
    }
}

#[tokio::test]
async fn query_then_reject_and_illegal_moves() {
    let f = fixture().await;
    let (id, v) = nhs_rx(&f, 3, "0015", 28).await;
    let c = &f.app.clinical;
    let p = pharmacist("a");
    let r = c
        .decide(
            &p,
            Mode::Test,
            &id,
            v,
            Decision::QueryPrescriber,
            "Please confirm the dose",
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::OnHold);
    let err = c
        .decide(&p, Mode::Test, &id, r.version, approve(&[]), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::Illegal(_)), "{err}");
    let r = c
        .decide(
            &p,
            Mode::Test,
            &id,
            r.version,
            Decision::Reject,
            "No answer from prescriber",
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::Rejected);
    // An id not in this data set, or a stale version, never decides.
    let err = c
        .decide(
            &p,
            Mode::Test,
            "rx_not_here",
            r.version,
            Decision::Reject,
            "x",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::NotFound));
    let err = c
        .decide(&p, Mode::Test, &id, 1, Decision::Reject, "x")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        DecisionError::AlreadyDecided(Status::Rejected)
    ));
}

//! An NHS prescription that did not carry the patient's charge exemption (as an EPS message
//! never does) waits for the patient's declaration at the pharmacy: the use cases on the real
//! embedded store, and the clinic API's view of it through the real router.

use super::{Fixture, approve, fixture, pharmacist};
use crate::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use rxbridge_app::clinical::{DecisionError, DeclareError, Declared};
use rxbridge_app::intake::Begin;
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;
use rxbridge_domain::declaration::{DeclarationError, NhsExemption};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::*;
use rxbridge_domain::pricing::{QuoteKind, nhs_charge_per_item};
use serde_json::Value;
use tower::ServiceExt;

/// An NHS EPS prescription as the FHIR door records it: no `nhs` block (or, for a JSON
/// submission, the one given). Two items, so the charge is visibly per item. Its id and the
/// 201 view.
async fn submit(f: &Fixture, patient: u64, nhs: Option<NhsDetails>) -> (String, Value) {
    let mut rx = rxbridge::seed::synthetic(patient, 0, common::today());
    rx.kind = PrescriptionType::Nhs;
    rx.authority = Authority {
        kind: AuthorityKind::Eps,
        form: None,
        serial_number: None,
        eps_prescription_id: Some("24F5DA-A83008-7EFE6Z".into()),
    };
    rx.prescriber.private_prescriber_code = None;
    rx.nhs = nhs;
    let second = rx.items[0].clone();
    rx.items.push(second);
    let key = format!("eps-{patient}");
    let intake = &f.app.state.intake;
    let Begin::Proceed(guard) = intake.begin(&f.caller, &key, &key).await.unwrap() else {
        panic!("a new key")
    };
    let done = intake
        .submit(guard, &f.caller, &key, &key, rx, &Default::default())
        .await
        .unwrap();
    let v = serde_json::to_value(&done.view).unwrap();
    assert_eq!(v["status"], "awaiting_clinical_check", "{v}");
    (v["id"].as_str().unwrap().to_string(), v)
}

async fn eps_rx(f: &Fixture, patient: u64) -> String {
    let (id, v) = submit(f, patient, None).await;
    assert_eq!(v["nhs_exemption"], "to_be_declared", "{v}");
    id
}

/// `GET /v1/prescriptions/{id}` through the real router.
async fn view(f: &Fixture, id: &str) -> Value {
    let req = Request::get(format!("/v1/prescriptions/{id}"))
        .header("authorization", format!("Bearer {}", f.key))
        .body(Body::empty())
        .unwrap();
    let res = f.app.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn kinds(f: &Fixture, id: &str) -> Vec<String> {
    let t = f.app.state.store.timeline(id).await.unwrap();
    t.into_iter().map(|e| e.event.kind).collect()
}

fn declared(code: &str, evidence_seen: bool) -> Declared<'_> {
    Declared {
        code,
        evidence_seen,
    }
}

#[tokio::test]
async fn an_eps_prescription_waits_for_the_declaration_then_pays_the_charge_per_item() {
    let f = fixture().await;
    let id = eps_rx(&f, 1).await;
    let store = &f.app.state.store;
    let c = &f.app.clinical;
    let rec = store
        .get_prescription_for_staff(Mode::Test, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.nhs_exemption, Some(NhsExemption::ToBeDeclared));
    assert_eq!(view(&f, &id).await["nhs_exemption"], "to_be_declared");

    // The pharmacist cannot approve it: the charge is not yet known.
    let err = c
        .decide(&pharmacist("p"), Mode::Test, &id, 1, approve(&[]), "ok")
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::ExemptionToBeDeclared), "{err}");
    let before = kinds(&f, &id).await;

    // Refused declarations change nothing and record nothing.
    let refused = [
        ("0017", "not in the table"),
        ("00x1", "not a code"),
        ("0004", "60 or over, against the date of birth"),
        ("0002", "under 16, against the date of birth"),
    ];
    for (code, why) in refused {
        let err = c
            .declare_exemption("st_d", Mode::Test, &id, declared(code, true))
            .await
            .unwrap_err();
        assert!(matches!(err, DeclareError::Refused(_)), "{why}: {err}");
        assert!(!err.to_string().is_empty());
    }
    let err = c
        .declare_exemption("st_d", Mode::Test, &id, declared("0004", true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DeclareError::Refused(DeclarationError::ContradictsAge { .. })
        ),
        "{err}"
    );
    let same = store
        .get_prescription_for_staff(Mode::Test, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, rec, "a refused declaration changes nothing");
    assert_eq!(kinds(&f, &id).await, before);
    assert!(store.payment_for_prescription(&id).await.unwrap().is_none());

    // Declared: paid (0001), evidence not seen.
    let r = c
        .declare_exemption("st_d", Mode::Test, &id, declared("0001", false))
        .await
        .unwrap();
    assert_eq!((r.status, r.version), (Status::AwaitingClinicalCheck, 2));
    let Some(NhsExemption::Declared(d)) = &r.nhs_exemption else {
        panic!("{:?}", r.nhs_exemption)
    };
    assert_eq!(d.exemption, ExemptionCode::PAID);
    assert!(!d.evidence_seen);
    assert_eq!(
        (d.declared_on, d.declared_by.as_str()),
        (common::today(), "st_d")
    );
    let t = store.timeline(&id).await.unwrap();
    let e = &t.last().unwrap().event;
    assert_eq!(
        (e.kind.as_str(), e.actor.as_str()),
        ("prescription.exemption_declared", "staff:st_d")
    );
    assert_eq!(
        (&e.detail["exemption"], &e.detail["evidence_seen"]),
        (&Value::from("0001"), &Value::from(false))
    );
    let v = view(&f, &id).await;
    assert_eq!(v["nhs_exemption"], "declared");
    let on_timeline = v["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(on_timeline["event"], "prescription.exemption_declared");

    // Now it is approved and charged the standard charge per item.
    let r = c
        .decide(&pharmacist("p"), Mode::Test, &id, 2, approve(&[]), "ok")
        .await
        .unwrap();
    assert_eq!(r.status, Status::AwaitingPayment);
    let p = store.payment_for_prescription(&id).await.unwrap().unwrap();
    let per_item = nhs_charge_per_item(common::today()).unwrap().as_pence();
    assert_eq!(p.status, PaymentStatus::AwaitingPayment);
    assert_eq!(p.quote.kind, QuoteKind::NhsCharge);
    assert_eq!(p.quote.total_pence, 2 * per_item);
    assert_eq!(
        (p.quote.exemption.as_deref(), p.quote.evidence_seen),
        (Some("0001"), Some(false))
    );

    // Approval fixed the charge: no declaration after it.
    let err = c
        .declare_exemption("st_d", Mode::Test, &id, declared("0015", true))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeclareError::TooLate(Status::AwaitingPayment)),
        "{err}"
    );

    // The chain and every bound row agree.
    rxbridge_app::audit::verify_chain(store.as_ref())
        .await
        .unwrap();
    let diffs = rxbridge_app::audit::verify_state(store.as_ref(), f.app.store.as_ref())
        .await
        .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
}

#[tokio::test]
async fn an_exempt_declaration_costs_nothing_and_a_carried_exemption_takes_none() {
    let f = fixture().await;
    let id = eps_rx(&f, 2).await;
    let c = &f.app.clinical;
    // A correction before approval replaces the first declaration; both are on the timeline.
    c.declare_exemption("st_d", Mode::Test, &id, declared("0001", false))
        .await
        .unwrap();
    let r = c
        .declare_exemption("st_e", Mode::Test, &id, declared("0006", true))
        .await
        .unwrap();
    let t = f.app.state.store.timeline(&id).await.unwrap();
    let last = &t.last().unwrap().event;
    assert_eq!(last.detail["replaces"], "0001");
    let r = c
        .decide(
            &pharmacist("p"),
            Mode::Test,
            &id,
            r.version,
            approve(&[]),
            "ok",
        )
        .await
        .unwrap();
    assert_eq!(r.status, Status::ReadyForFulfilment);
    let store = &f.app.state.store;
    let p = store.payment_for_prescription(&id).await.unwrap().unwrap();
    assert_eq!(
        (p.status, p.quote.kind, p.quote.total_pence),
        (PaymentStatus::NotDue, QuoteKind::NhsExempt, 0)
    );
    assert_eq!(
        (p.quote.exemption.as_deref(), p.quote.evidence_seen),
        (Some("0006"), Some(true))
    );

    // A JSON submission carries its exemption: nothing to declare, and no state in its view.
    let nhs = NhsDetails {
        exemption: ExemptionCode::PAID,
        evidence_seen: false,
    };
    let (carried, v) = submit(&f, 3, Some(nhs)).await;
    assert!(v.get("nhs_exemption").is_none(), "{v}");
    let err = c
        .declare_exemption("st_d", Mode::Test, &carried, declared("0006", true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DeclareError::Refused(DeclarationError::CarriedByPrescription(_))
        ),
        "{err}"
    );
    let rec = store
        .get_prescription_for_staff(Mode::Test, &carried)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.nhs_exemption, None);
    assert!(view(&f, &carried).await.get("nhs_exemption").is_none());
}

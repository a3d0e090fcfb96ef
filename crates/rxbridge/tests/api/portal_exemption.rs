//! The record page's NHS charge exemption form: an NHS prescription recorded without the
//! patient's exemption (as the FHIR door records an EPS message; no EPS message reaches a 201
//! yet, so the intake use case records it here) waits for the declaration, which staff key
//! in; the pharmacist's approval waits for it.

use crate::api::helpers::*;
use crate::api::portal::{csrf_in, signed_in};
use crate::common::{follow, get_text, post_form};
use reqwest::StatusCode;
use rxbridge_app::intake::Begin;
use rxbridge_app::ports::{Caller, EventLog, Mode};
use rxbridge_app::staff::Role;
use rxbridge_domain::prescription::*;

/// An NHS EPS prescription without its `nhs` block, through the intake use case.
async fn eps_without_exemption(app: &TestApp) -> String {
    let running = app.running.as_ref().unwrap();
    let caller = Caller {
        clinic_id: app.clinic_id.clone(),
        mode: Mode::Test,
    };
    let mut rx = rxbridge::seed::synthetic(7, 0, crate::common::today());
    rx.kind = PrescriptionType::Nhs;
    rx.authority = Authority {
        kind: AuthorityKind::Eps,
        form: None,
        serial_number: None,
        eps_prescription_id: Some("24F5DA-A83008-7EFE6Z".into()),
    };
    rx.prescriber.private_prescriber_code = None;
    rx.nhs = None;
    let intake = &running.state.intake;
    let Begin::Proceed(g) = intake.begin(&caller, "eps-1", "eps-1").await.unwrap() else {
        panic!("a new key")
    };
    let done = intake
        .submit(g, &caller, "eps-1", "eps-1", rx, &Default::default())
        .await
        .unwrap();
    done.view.id
}

#[tokio::test]
async fn staff_record_the_declaration_and_only_then_the_pharmacist_approves() {
    let app = spawn_app().await;
    let id = eps_without_exemption(&app).await;
    let page_url = app.url(&format!("/staff/prescriptions/{id}?mode=test"));
    let declare_url = app.url(&format!("/staff/prescriptions/{id}/exemption?mode=test"));
    let sup = signed_in(&app, Role::Support, "sup@example.com").await;
    let page = get_text(&sup, page_url.clone()).await;
    assert!(page.contains("NHS charge exemption") && page.contains("To be declared"));
    assert!(page.contains(&format!("/staff/prescriptions/{id}/exemption?mode=test")));
    let csrf = csrf_in(&page);

    // The pharmacist cannot approve yet.
    let ph = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let ph_page = get_text(&ph, page_url.clone()).await;
    let approve = |version: &'static str, csrf: String| {
        let ph = ph.clone();
        let url = app.url(&format!("/staff/prescriptions/{id}/decision?mode=test"));
        async move {
            post_form(
                &ph,
                url,
                &[
                    ("csrf", csrf.as_str()),
                    ("version", version),
                    ("decision", "approve"),
                    ("reason", "Clinically appropriate"),
                ],
            )
            .await
        }
    };
    let r = follow(&ph, approve("1", csrf_in(&ph_page)).await).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("record the patient&#39;s NHS charge exemption declaration first")
            || text.contains("record the patient's NHS charge exemption declaration first"),
        "{text}"
    );

    let store = app.running.as_ref().unwrap().store.clone();
    // Refused: no token; no evidence answer; a code the table does not know; an age claim the
    // date of birth contradicts. Each changes nothing.
    let r = post_form(
        &sup,
        declare_url.clone(),
        &[("exemption", "0001"), ("evidence", "seen")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_form(
        &sup,
        declare_url.clone(),
        &[("csrf", csrf.as_str()), ("exemption", "0001")],
    )
    .await;
    let r = follow(&sup, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Say whether you saw evidence")
    );
    let r = post_form(
        &sup,
        declare_url.clone(),
        &[
            ("csrf", csrf.as_str()),
            ("exemption", "0017"),
            ("evidence", "seen"),
        ],
    )
    .await;
    let r = follow(&sup, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("0017 is not an NHS prescription charge exemption code")
    );
    let r = post_form(
        &sup,
        declare_url.clone(),
        &[
            ("csrf", csrf.as_str()),
            ("exemption", "0004"),
            ("evidence", "seen"),
        ],
    )
    .await;
    let r = follow(&sup, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().await.unwrap();
    assert!(text.contains("aged 60 or over"), "{text}");
    assert!(
        text.contains("value=\"0004\" selected"),
        "what was chosen is kept"
    );
    // No declaration reached the timeline (only the page views did).
    let t = store.timeline(&id).await.unwrap();
    assert!(
        t.iter()
            .all(|e| e.event.kind != "prescription.exemption_declared")
    );
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["nhs_exemption"], "to_be_declared");

    // Declared: paid, evidence not seen.
    let r = post_form(
        &sup,
        declare_url.clone(),
        &[
            ("csrf", csrf.as_str()),
            ("exemption", "0001"),
            ("evidence", "not_seen"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = get_text(&sup, page_url.clone()).await;
    assert!(
        page.contains("Declared: ") && page.contains("evidence not seen"),
        "{page}"
    );
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["nhs_exemption"], "declared");
    let declared = store
        .timeline(&id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.kind == "prescription.exemption_declared")
        .unwrap();
    assert!(declared.event.actor.starts_with("staff:"));
    assert_eq!(declared.event.detail["exemption"], "0001");

    // Now the pharmacist approves, and the NHS charge is due.
    let ph_page = get_text(&ph, page_url.clone()).await;
    let r = approve("2", csrf_in(&ph_page)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "awaiting_payment");
    // The form is gone once the charge is fixed.
    let page = get_text(&sup, page_url).await;
    assert!(!page.contains(&format!("/staff/prescriptions/{id}/exemption?mode=test")));
}

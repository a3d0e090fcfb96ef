//! The clinical check screen over HTTP: the patient's supply history across clinics, hidden
//! from a masked view, the audit of the look, and findings linked to the records they name.

use crate::api::helpers::*;
use crate::api::portal::signed_in;
use reqwest::StatusCode;
use rxbridge_app::ports::EventLog;
use rxbridge_app::staff::Role;

#[tokio::test]
async fn the_check_screen_shows_history_across_clinics_only_to_an_unmasked_viewer() {
    let app = spawn_app().await;
    let other = app
        .running
        .as_ref()
        .unwrap()
        .clinics
        .add("Northern ADHD Clinic")
        .await
        .unwrap();
    let mut earlier = nhs_body();
    earlier["clinic_reference"] = "OTHER-CLINIC-1".into();
    let r = app.submit_with(&other.test_key, &new_key(), &earlier).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let earlier_id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = app.submit_ok(&nhs_body()).await;
    let id = now["id"].as_str().unwrap();
    let ph = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let page = page_of(&app, &ph, format!("/staff/prescriptions/{id}?mode=test")).await;
    assert!(page.contains("Supply history (all clinics)"), "{page}");
    assert!(
        page.contains("Northern ADHD Clinic"),
        "the other clinic's supply is listed"
    );
    assert!(
        page.contains(&format!("/staff/prescriptions/{earlier_id}?mode=test")),
        "the earlier supply is linked"
    );
    assert!(page.contains("Open the earlier supply (OTHER-CLINIC-1)"));
    assert!(page.contains("GMC 7012345") && page.contains("a doctor"));
    // Support staff see the page masked: no history, no age.
    let support = signed_in(&app, Role::Support, "su@example.com").await;
    let masked = page_of(
        &app,
        &support,
        format!("/staff/prescriptions/{id}?mode=test"),
    )
    .await;
    assert!(masked.contains("Open the full record to see the patient's earlier supplies."));
    assert!(!masked.contains("Northern ADHD Clinic") && !masked.contains("(age "));
    // Each look is audited, with how many earlier supplies it showed.
    let events = app
        .running
        .as_ref()
        .unwrap()
        .store
        .timeline(id)
        .await
        .unwrap();
    let shown: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "staff.viewed_prescription")
        .map(|e| {
            (
                e.event.detail["masked"].clone(),
                e.event.detail["history_shown"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![(false.into(), 1.into()), (true.into(), 0.into())],
        "{events:#?}"
    );
    // The history is the patient's: another patient's page lists none of it.
    let mut b = nhs_body();
    b["patient"]["nhs_number"] = "4857773457".into();
    b["patient"]["given_name"] = "Robin".into();
    b["clinic_reference"] = "ANOTHER-PATIENT".into();
    let another = app.submit_ok(&b).await;
    let page = page_of(
        &app,
        &ph,
        format!(
            "/staff/prescriptions/{}?mode=test",
            another["id"].as_str().unwrap()
        ),
    )
    .await;
    assert!(
        page.contains("No earlier supplies to this patient."),
        "{page}"
    );
}

async fn page_of(app: &TestApp, c: &reqwest::Client, path: String) -> String {
    let r = c.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

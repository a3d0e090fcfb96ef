//! The staff portal's administration over HTTP: staff accounts, a patient's audit trail,
//! queries answered through the API, webhook endpoints and dead letters, the registers.

use crate::api::helpers::*;
use crate::api::portal::{csrf_in, nhs_prescription, signed_in};
use crate::common::{follow, get_text, post_form};
use reqwest::StatusCode;
use rxbridge_app::ports::EventLog;
use rxbridge_app::staff::Role;

#[tokio::test]
async fn admins_manage_staff_and_export_a_patients_audit_trail() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, false).await;
    let id = rx["id"].as_str().unwrap();
    // Someone looks at it first, so there is a read to find in the trail.
    let support = signed_in(&app, Role::Support, "sup@example.com").await;
    support
        .get(app.url(&format!("/staff/prescriptions/{id}?mode=test&reason=call")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        support
            .get(app.url("/staff/admin/staff"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        support
            .get(app.url("/staff/admin/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let admin = signed_in(&app, Role::Admin, "admin@example.com").await;
    let page = get_text(&admin, app.url("/staff/admin/staff")).await;
    assert!(page.contains("sup@example.com") && page.contains("admin@example.com"));
    let csrf = csrf_in(&page);
    let r = post_form(
        &admin,
        app.url("/staff/admin/staff"),
        &[
            ("csrf", csrf.as_str()),
            ("email", "new.ph@example.com"),
            ("role", "pharmacist"),
            ("gphc", ""),
        ],
    )
    .await;
    let r = follow(&admin, r).await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a pharmacist needs a GPhC number"
    );
    let r = post_form(
        &admin,
        app.url("/staff/admin/staff"),
        &[("email", "x@example.com"), ("role", "support")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = post_form(
        &admin,
        app.url("/staff/admin/staff"),
        &[
            ("csrf", csrf.as_str()),
            ("email", "new.ph@example.com"),
            ("role", "pharmacist"),
            ("gphc", "2033467"),
        ],
    )
    .await;
    // Post/redirect/get: the staff page (200) shows the one-time password once.
    let r = follow(&admin, r).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("One-time password"));
    let again = get_text(&admin, app.url("/staff/admin/staff")).await;
    assert!(!again.contains("One-time password"), "shown once");

    let page = get_text(
        &admin,
        app.url("/staff/admin/audit?mode=test&by=nhs&q=9434765919"),
    )
    .await;
    assert!(
        page.contains("prescription.received")
            && page.contains("staff.viewed_prescription")
            && page.contains(id)
    );
    let r = admin
        .get(app.url("/staff/admin/audit?mode=test&by=nhs&q=9434765919&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("seq,at,prescription_id,event,actor,detail\n"));
    assert!(csv.lines().count() >= 3, "{csv}");
    let store = app.running.as_ref().unwrap().store.clone();
    let admin_id =
        rxbridge_app::staff::StaffStore::staff_by_email(store.as_ref(), "admin@example.com")
            .await
            .unwrap()
            .unwrap()
            .id;
    let exports: Vec<_> = store
        .timeline(&admin_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "staff.subject_access")
        .collect();
    assert_eq!(exports.len(), 2, "the view and the CSV are both audited");
    assert_eq!(exports[1].event.detail["format"], "csv");
}

#[tokio::test]
async fn a_pharmacists_query_is_answered_by_the_clinic_through_the_api() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, false).await;
    let id = rx["id"].as_str().unwrap();
    let path = format!("/v1/prescriptions/{id}/query-response");
    // No query open yet.
    let (s, p) = app
        .post_json(&path, &app.test_key, &serde_json::json!({"answer": "n/a"}))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_open_query"))
    );
    let ph = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let page = get_text(
        &ph,
        app.url(&format!("/staff/prescriptions/{id}?mode=test")),
    )
    .await;
    let r = post_form(
        &ph,
        app.url(&format!("/staff/prescriptions/{id}/decision?mode=test")),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("version", "1"),
            ("decision", "query"),
            ("reason", "Please confirm the dose"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "on_hold");
    assert!(
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "prescription.queried"
                && e["detail"]["question"] == "Please confirm the dose")
    );
    // Bad answers change nothing.
    let (s, p) = app
        .post_json(
            &path,
            &app.test_key,
            &serde_json::json!({"answer": "", "x": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["errors"].as_array().unwrap().len(), 2);
    let other = app.add_clinic("Other").await;
    let (s, _) = app
        .post_json(&path, &other.test_key, &serde_json::json!({"answer": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post_json(
            &path,
            &app.test_key,
            &serde_json::json!({"answer": "Confirmed: 36 mg each morning"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "awaiting_clinical_check");
    let last = v["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["event"].as_str(), last["detail"]["answer"].as_str()),
        (
            Some("prescription.query_answered"),
            Some("Confirmed: 36 mg each morning")
        )
    );
}

#[tokio::test]
async fn admins_manage_webhook_endpoints_and_dead_letters_pharmacists_read_registers() {
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin, "admin@example.com").await;
    let page = get_text(&admin, app.url("/staff/admin/webhooks")).await;
    assert!(page.contains("Dead letters (0)"), "{page}");
    let csrf = csrf_in(&page);
    // The SSRF guard refuses internal targets (private targets are not allowed by default).
    for (dest, url, why) in [
        (
            "warehouse:live",
            "http://127.0.0.1:9090/orders",
            "URL refused",
        ),
        (
            "warehouse:live",
            "https://169.254.169.254/latest",
            "URL refused",
        ),
        (
            "warehouse:elsewhere",
            "https://wh.example.com/h",
            "Destination must be",
        ),
        (
            "clinic:cl_nope:live",
            "https://wh.example.com/h",
            "Destination must be",
        ),
    ] {
        let r = post_form(
            &admin,
            app.url("/staff/admin/webhooks"),
            &[
                ("csrf", csrf.as_str()),
                ("action", "set"),
                ("destination", dest),
                ("url", url),
            ],
        )
        .await;
        let r = follow(&admin, r).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{dest} {url}");
        let page = r.text().await.unwrap();
        assert!(page.contains(why));
        assert!(
            page.contains(&format!("value=\"{url}\"")),
            "what was typed is kept"
        );
    }
    let r = post_form(
        &admin,
        app.url("/staff/admin/webhooks"),
        &[
            ("csrf", csrf.as_str()),
            ("action", "set"),
            ("destination", "warehouse:live"),
            ("url", "https://warehouse.example.com/orders"),
        ],
    )
    .await;
    let r = follow(&admin, r).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("whsec_") && page.contains("https://warehouse.example.com/orders"),
        "{page}"
    );
    // A refresh shows the page as it is: no secret, and nothing rotated again.
    let again = get_text(&admin, app.url("/staff/admin/webhooks")).await;
    assert!(!again.contains("Signing secret for") && !again.contains("whsec_"));
    // Without the form token: refused.
    let r = post_form(
        &admin,
        app.url("/staff/admin/webhooks/replay"),
        &[("csrf", "forged"), ("all", "1")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_form(
        &admin,
        app.url("/staff/admin/webhooks/replay"),
        &[("csrf", csrf.as_str()), ("all", "1")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Registers: pharmacists and admins; support and finance are refused.
    let pharmacist = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let r = pharmacist
        .get(app.url("/staff/registers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Controlled Drugs register")
    );
    for (role, email) in [
        (Role::Support, "su@example.com"),
        (Role::Finance, "fi@example.com"),
    ] {
        let c = signed_in(&app, role, email).await;
        assert_eq!(
            c.get(app.url("/staff/registers"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            c.get(app.url("/staff/admin/webhooks"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn register_corrections_are_for_pharmacists_and_refused_for_unknown_sections() {
    let app = spawn_app().await;
    let pharmacist = signed_in(&app, Role::Pharmacist, "ph2@example.com").await;
    let page = get_text(&pharmacist, app.url("/staff/registers")).await;
    let csrf = csrf_in(&page);
    let r = post_form(
        &pharmacist,
        app.url("/staff/registers/cd/annotate"),
        &[
            ("csrf", csrf.as_str()),
            ("section", "CONCERTA-XL-36"),
            ("note", "opening balance checked"),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no entries in that section yet"
    );
    let support = signed_in(&app, Role::Support, "su2@example.com").await;
    let r = post_form(
        &support,
        app.url("/staff/registers/cd/annotate"),
        &[("csrf", "x"), ("section", "CONCERTA-XL-36"), ("note", "n")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn system_pages_keep_the_data_set_the_admin_came_from() {
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin, "admin@example.com").await;
    for page in ["/staff/admin/staff", "/staff/admin/webhooks"] {
        let sandbox = get_text(&admin, app.url(&format!("{page}?mode=test"))).await;
        assert!(
            sandbox.contains("System settings: live and sandbox"),
            "{sandbox}"
        );
        assert!(
            sandbox.contains(r#"href="/staff?mode=test""#)
                && sandbox.contains(&format!(r#"action="{page}?mode=test""#)),
            "{page}: the links and forms keep the sandbox: {sandbox}"
        );
        let live = get_text(&admin, app.url(page)).await;
        assert!(live.contains(r#"href="/staff?mode=live""#), "{live}");
    }
}

#[tokio::test]
async fn the_access_log_is_an_administrators_tab_of_its_own() {
    let app = spawn_app().await;
    let id = nhs_prescription(&app, false).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ph = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    get_text(
        &ph,
        app.url(&format!("/staff/prescriptions/{id}?mode=test")),
    )
    .await;
    let tab = format!("/staff/prescriptions/{id}/access?mode=test");
    let r = ph.get(app.url(&tab)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "for administrators only");
    let admin = signed_in(&app, Role::Admin, "admin@example.com").await;
    let record = get_text(
        &admin,
        app.url(&format!("/staff/prescriptions/{id}?mode=test")),
    )
    .await;
    assert!(record.contains(&format!(r#"href="{tab}""#)), "{record}");
    let log = get_text(&admin, app.url(&tab)).await;
    assert!(
        log.contains("ph@example.com (pharmacist)") && log.contains("staff.viewed_prescription"),
        "{log}"
    );
}

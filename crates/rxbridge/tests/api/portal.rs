//! The staff portal over HTTP with a cookie-holding client (the Chromium tests are next).

use crate::api::helpers::*;
use crate::common::{follow, get_text, post_form};
use reqwest::{Client, StatusCode, redirect::Policy};
use rxbridge_app::ports::EventLog;
use rxbridge_app::staff::Role;
use serde_json::Value;

pub(crate) fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn csrf_in(page: &str) -> String {
    let i =
        page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[i..i + page[i..].find('"').unwrap()].to_string()
}

/// Sign in with a one-time password: a new client holding the session, sent on to change it.
pub(crate) async fn first_sign_in(app: &TestApp, email: &str, otp: &str) -> Client {
    first_sign_in_on(browser(), app, email, otp).await
}

async fn first_sign_in_on(c: Client, app: &TestApp, email: &str, otp: &str) -> Client {
    let page = get_text(&c, app.url("/staff/login")).await;
    let r = post_form(
        &c,
        app.url("/staff/login"),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("email", email),
            ("password", otp),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/staff/password");
    c
}

/// Sign in (changing the one-time password) and return a client holding the session.
pub(crate) async fn signed_in(app: &TestApp, role: Role, email: &str) -> Client {
    signed_in_on(browser(), app, role, email).await
}

/// `signed_in` on a given client (one whose cookie jar the test also holds).
pub(crate) async fn signed_in_on(c: Client, app: &TestApp, role: Role, email: &str) -> Client {
    let gphc = (role == Role::Pharmacist).then_some("2033467");
    let (_, otp) = app
        .running
        .as_ref()
        .unwrap()
        .staff
        .add(email, role, gphc)
        .await
        .unwrap();
    let c = first_sign_in_on(c, app, email, &otp).await;
    // Nothing else opens before the password is changed.
    let r = c.get(app.url("/staff")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/staff/password");
    let page = get_text(&c, app.url("/staff/password")).await;
    let r = post_form(
        &c,
        app.url("/staff/password"),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("current", otp.as_str()),
            ("new", "a much better passphrase"),
        ],
    )
    .await;
    assert_eq!(r.headers()["location"], "/staff");
    c
}

pub(crate) async fn nhs_prescription(app: &TestApp, flagged: bool) -> Value {
    let mut b = nhs_body();
    if flagged {
        b["items"][0]["quantity"] = 31.into();
        b["items"][0]["quantity_in_words"] = "thirty-one".into();
        b["items"][0]["days_supply"] = 31.into();
    }
    app.submit_ok(&b).await
}

#[tokio::test]
async fn sign_in_cookies_headers_and_sign_out() {
    let app = spawn_app().await;
    let r = browser().get(app.url("/staff")).send().await.unwrap();
    assert_eq!(
        (r.status(), r.headers()["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/staff/login")
    );
    let c = browser();
    let r = c.get(app.url("/staff/login")).send().await.unwrap();
    for h in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "x-content-type-options",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let c = signed_in(&app, Role::Support, "sup@example.com").await;
    let page = get_text(&c, app.url("/staff?mode=test")).await;
    assert!(page.contains("sup@example.com") && page.contains("Search"));
    // Sign-out needs the form token; then the session is gone.
    let r = post_form(&c, app.url("/staff/logout"), &[("csrf", "forged")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_form(
        &c,
        app.url("/staff/logout"),
        &[("csrf", csrf_in(&page).as_str())],
    )
    .await;
    assert_eq!(r.headers()["location"], "/staff/login");
    let r = c.get(app.url("/staff")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/staff/login");
}

#[tokio::test]
async fn csrf_less_sign_in_is_refused_and_lockout_follows_failures() {
    let app = spawn_app().await;
    let (_, otp) = app
        .running
        .as_ref()
        .unwrap()
        .staff
        .add("lock@example.com", Role::Support, None)
        .await
        .unwrap();
    let c = browser();
    let r = post_form(
        &c,
        app.url("/staff/login"),
        &[("email", "lock@example.com"), ("password", otp.as_str())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF cookie or field");
    let page = get_text(&c, app.url("/staff/login")).await;
    let mut csrf = csrf_in(&page);
    for _ in 0..4 {
        let r = post_form(
            &c,
            app.url("/staff/login"),
            &[
                ("csrf", csrf.as_str()),
                ("email", "lock@example.com"),
                ("password", "wrong"),
            ],
        )
        .await;
        // Refused: back to the sign-in page, which says why and keeps the email (never the
        // password); a refresh of it asks nothing again.
        assert_eq!(r.headers()["location"], "/staff/login");
        let r = crate::common::follow(&c, r).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let page = r.text().await.unwrap();
        assert!(page.contains("The email or password is wrong."), "{page}");
        assert!(page.contains("value=\"lock@example.com\""), "{page}");
        assert!(!page.contains("wrong\""), "the password is not kept");
        let again = c.get(app.url("/staff/login")).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK, "shown once");
        let again = again.text().await.unwrap();
        assert!(!again.contains("The email or password is wrong."));
        csrf = csrf_in(&again);
    }
    let r = post_form(
        &c,
        app.url("/staff/login"),
        &[
            ("csrf", csrf.as_str()),
            ("email", "lock@example.com"),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = post_form(
        &c,
        app.url("/staff/login"),
        &[
            ("csrf", csrf.as_str()),
            ("email", "lock@example.com"),
            ("password", otp.as_str()),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
}

#[tokio::test]
async fn support_sees_masked_data_unless_a_reason_is_given_and_every_look_is_audited() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, false).await;
    let id = rx["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Support, "sup@example.com").await;
    let page = get_text(&c, app.url("/staff/search?mode=test&by=nhs&q=943+476+5919")).await;
    assert!(page.contains(id), "found by NHS number");
    assert!(
        page.contains("S. T.") && page.contains("*******919") && !page.contains("Taylor"),
        "masked in results"
    );
    let page = get_text(
        &c,
        app.url("/staff/search?mode=test&by=family_dob&q=TAYLOR&dob=1998-02-14"),
    )
    .await;
    assert!(page.contains(id));
    let page = get_text(&c, app.url("/staff/search?mode=test&by=postcode&q=m11ae")).await;
    assert!(page.contains(id));
    let r = c
        .get(app.url("/staff/search?mode=test&by=nhs&q=123"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    assert!(!page.contains("Taylor") && page.contains("Open full record"));
    let page = get_text(
        &c,
        app.url(&format!(
            "/staff/prescriptions/{id}?mode=test&reason=Patient+called+about+delivery"
        )),
    )
    .await;
    assert!(page.contains("Sam Taylor") && page.contains("9434765919"));
    // Support cannot decide, whatever the form says.
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/decision?mode=test")),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("version", "1"),
            ("decision", "approve"),
            ("reason", "x"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .get(app.url("/staff/worklist?mode=test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Each look is on the chain with who and why.
    let store = app.running.as_ref().unwrap().store.clone();
    let events = store.timeline(id).await.unwrap();
    let views: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "staff.viewed_prescription")
        .collect();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].event.detail["masked"], true);
    assert_eq!(
        views[1].event.detail["reason"],
        "Patient called about delivery"
    );
    assert!(views[1].event.actor.starts_with("staff:st_"));
    // The clinic's timeline does not carry the pharmacy's internal audit.
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert!(
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"].as_str().unwrap().starts_with("prescription."))
    );
}

#[tokio::test]
async fn pharmacist_works_the_list_and_a_stale_decision_is_refused() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, true).await;
    let id = rx["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let page = get_text(&c, app.url("/staff/worklist?mode=test")).await;
    assert!(page.contains(id) && page.contains("flagged"));
    // Looking at the worklist (masked patient lines) is itself audited.
    let store = app.running.as_ref().unwrap().store.clone();
    let ph_id = rxbridge_app::staff::StaffStore::staff_by_email(store.as_ref(), "ph@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(
        store
            .timeline(&ph_id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.kind == "staff.viewed_worklist" && e.event.detail["shown"] == 1)
    );
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    assert!(page.contains("Sam Taylor"), "pharmacists see the record");
    assert!(page.contains("cd_over_30_days") && page.contains("DHSC good practice"));
    let csrf = csrf_in(&page);
    let url = app.url(&format!("/staff/prescriptions/{id}/decision?mode=test"));
    // No CSRF token: refused.
    let r = post_form(
        &c,
        &url,
        &[("version", "1"), ("decision", "approve"), ("reason", "ok")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Flags not acknowledged: refused with the reason shown.
    let r = post_form(
        &c,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("decision", "approve"),
            ("reason", "ok"),
        ],
    )
    .await;
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not acknowledged: cd_over_30_days")
    );
    let r = post_form(
        &c,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("decision", "approve"),
            ("ack", "cd_over_30_days"),
            ("reason", "Agreed with prescriber"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "awaiting_payment");
    // A second pharmacist's form still carries version 1: told someone else decided.
    let r = post_form(
        &c,
        &url,
        &[
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("decision", "reject"),
            ("reason", "no"),
        ],
    )
    .await;
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("another pharmacist has already decided")
    );
}

#[tokio::test]
async fn hostile_text_is_escaped_in_the_portal() {
    let app = spawn_app().await;
    let mut b = nhs_body();
    b["clinic_reference"] = "<script>alert(1)</script>".into();
    b["patient"]["family_name"] = "<img src=x onerror=alert(1)>".into();
    let rx = app.submit_ok(&b).await;
    let c = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let page = get_text(
        &c,
        app.url(&format!(
            "/staff/prescriptions/{}?mode=test",
            rx["id"].as_str().unwrap()
        )),
    )
    .await;
    assert!(!page.contains("<script>alert(1)</script>") && page.contains("&lt;script&gt;"));
    assert!(!page.contains("<img src=x") && page.contains("&lt;img"));
}

#[tokio::test]
async fn support_adds_a_note_and_cancels_on_the_patients_request() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, false).await;
    let id = rx["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Support, "sup@example.com").await;
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    let csrf = csrf_in(&page);
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/note?mode=test")),
        &[
            ("csrf", csrf.as_str()),
            ("note", "Patient asked when it ships"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/cancel?mode=test")),
        &[("csrf", csrf.as_str()), ("reason", "")],
    )
    .await;
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/cancel?mode=test")),
        &[("reason", "no token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/cancel?mode=test")),
        &[
            ("csrf", csrf.as_str()),
            ("reason", "Patient no longer needs it"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "cancelled");
    let t = v["timeline"].as_array().unwrap();
    assert!(
        t.iter().all(|e| e["event"] != "staff.note"),
        "internal notes stay inside"
    );
    let store = app.running.as_ref().unwrap().store.clone();
    assert!(
        store
            .timeline(id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.kind == "staff.note"
                && e.event.detail["note"] == "Patient asked when it ships")
    );
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    assert!(
        page.contains("Patient asked when it ships"),
        "staff see notes on the timeline"
    );
    let cancel = t
        .iter()
        .find(|e| e["event"] == "prescription.cancelled")
        .unwrap();
    assert_eq!(cancel["detail"]["reason"], "Patient no longer needs it");
    assert!(cancel["actor"].as_str().unwrap().starts_with("staff:"));
    // Twice: refused with a clear message.
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/cancel?mode=test")),
        &[("csrf", csrf.as_str()), ("reason", "again")],
    )
    .await;
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn paper_original_is_matched_by_serial_with_a_sniffed_scan() {
    use reqwest::multipart::{Form as Multipart, Part};
    let app = spawn_app().await;
    let rx = app.submit_ok(&valid_body()).await; // private FP10PCD, serial PCD1234567
    assert_eq!(rx["status"], "awaiting_original");
    let id = rx["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Support, "sup@example.com").await;
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    assert!(page.contains("Record the original"));
    let csrf = csrf_in(&page);
    let url = app.url(&format!("/staff/prescriptions/{id}/original?mode=test"));
    let form = |csrf: &str, serial: &str, name: &str, bytes: &[u8]| {
        Multipart::new()
            .text("csrf", csrf.to_string())
            .text("serial", serial.to_string())
            .part(
                "scan",
                Part::bytes(bytes.to_vec()).file_name(name.to_string()),
            )
    };
    let pdf: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    // No form token.
    let r = c
        .post(&url)
        .multipart(form("forged", "PCD1234567", "a.pdf", pdf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // HTML named .pdf: refused by its bytes.
    let r = c
        .post(&url)
        .multipart(form(
            &csrf,
            "PCD1234567",
            "scan.pdf",
            b"<html><script>alert(1)</script>",
        ))
        .send()
        .await
        .unwrap();
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("must be a PDF, JPEG or PNG")
    );
    // Wrong serial: blocked, recorded, shown.
    let r = c
        .post(&url)
        .multipart(form(&csrf, "PCD7654321", "scan.pdf", pdf))
        .send()
        .await
        .unwrap();
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("does not match"));
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "awaiting_original");
    // The right serial (any spacing/case) with a hostile file name: matched.
    let r = c
        .post(&url)
        .multipart(form(&csrf, "pcd 123 4567", "../../../etc/passwd.pdf", pdf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    assert_eq!(v["status"], "awaiting_clinical_check");
    let t = v["timeline"].as_array().unwrap();
    assert!(
        t.iter()
            .any(|e| e["event"] == "prescription.original_mismatch")
    );
    let matched = t
        .iter()
        .find(|e| e["event"] == "prescription.original_matched")
        .unwrap();
    let doc = matched["detail"]["document"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(doc.starts_with("doc_"));
    assert_eq!(
        matched["detail"]["document"]["content_type"],
        "application/pdf"
    );
    // Stored sealed under its generated id inside the documents directory, nowhere else.
    let docs = app.data_dir.path().join("documents");
    assert!(docs.join(format!("{doc}.sealed")).exists() && !docs.join(&doc).exists());
    assert!(
        !app.data_dir.path().join("etc").exists()
            && !std::path::Path::new("/etc/passwd.pdf").exists()
    );
    // Support staff see patient data masked: the scan shows it in full, so it needs the
    // reason they open the record for, as the full record does.
    let r = c
        .get(app.url(&format!("/staff/documents/{doc}?prescription={id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("open the record with your reason")
    );
    // With it: attachment, sniffed type, audited with the reason.
    let r = c
        .get(app.url(&format!(
            "/staff/documents/{doc}?prescription={id}&reason=checking+the+signature"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["content-disposition"], "attachment");
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    let r = c
        .get(app.url("/staff/documents/..%2F..%2Frxbridge.db"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let store = app.running.as_ref().unwrap().store.clone();
    assert!(
        store
            .timeline(id)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.kind == "staff.viewed_document"
                && e.event.detail["reason"] == "checking the signature")
    );
    // Naming an unrelated prescription does not put the view on its trail.
    let unrelated = app.submit_ok(&valid_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.get(app.url(&format!(
        "/staff/documents/{doc}?prescription={unrelated}&reason=checking"
    )))
    .send()
    .await
    .unwrap();
    assert!(
        !store
            .timeline(&unrelated)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.kind == "staff.viewed_document")
    );
    assert!(
        store
            .timeline(&doc)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event.kind == "staff.viewed_document")
    );
    // Once matched, the form is gone and a second record is refused.
    let r = c
        .post(&url)
        .multipart(form(&csrf, "PCD1234567", "a.pdf", pdf))
        .send()
        .await
        .unwrap();
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

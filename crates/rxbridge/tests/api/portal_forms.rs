//! Post/redirect/get in the portal: a form's answer is shown on the page it redirects to,
//! once, sealed and bound to its session; message pages keep the data set.

use crate::api::helpers::*;
use crate::api::portal::{csrf_in, nhs_prescription, signed_in, signed_in_on};
use crate::common::{follow, get_text, post_form};
use reqwest::{Client, StatusCode, redirect::Policy};
use rxbridge_app::ports::EventLog;
use rxbridge_app::staff::Role;

#[tokio::test]
async fn a_refused_form_is_shown_once_on_its_page_and_a_refresh_submits_nothing() {
    let app = spawn_app().await;
    let rx = nhs_prescription(&app, true).await;
    let id = rx["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Pharmacist, "ph@example.com").await;
    let page_url = format!("/staff/prescriptions/{id}?mode=test");
    let page = get_text(&c, app.url(&page_url)).await;
    let csrf = csrf_in(&page);
    let typed = "Checked the dose with Dr Okafor on the phone";
    let r = post_form(
        &c,
        app.url(&format!("/staff/prescriptions/{id}/decision?mode=test")),
        &[
            ("csrf", csrf.as_str()),
            ("version", "1"),
            ("decision", "approve"),
            ("reason", typed),
        ],
    )
    .await;
    // Post/redirect/get: off to the page, the answer in a sealed cookie.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], page_url.as_str());
    let kept = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("__Host-rxb_flash="))
        .expect("the refusal travels in a cookie");
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(kept.contains(attr), "{kept}");
    }
    let value = kept["__Host-rxb_flash=".len()..].split(';').next().unwrap();
    // Sealed: the bytes are the vault's sealed form (version byte, nonce, ciphertext), no text
    // of the form or the refusal in them.
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .unwrap();
    assert_eq!(bytes[0], 1, "the vault's seal version");
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("Okafor") && !text.contains("cd_over_30_days") && !text.contains("decision")
    );
    // Another signed-in session given the same cookie sees nothing of it.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    let other = signed_in_on(client, &app, Role::Pharmacist, "ph2@example.com").await;
    let cookie = format!("__Host-rxb_flash={value}; Path=/; Secure; HttpOnly");
    let base = app.url("/").parse().unwrap();
    jar.add_cookie_str(&cookie, &base);
    use reqwest::cookie::CookieStore;
    let sent = jar.cookies(&base).unwrap();
    let sent = sent.to_str().unwrap();
    assert!(sent.contains("__Host-rxb_flash=") && sent.contains("__Host-rxb_session="));
    let theirs = other.get(app.url(&page_url)).send().await.unwrap();
    assert_eq!(theirs.status(), StatusCode::OK);
    assert!(!theirs.text().await.unwrap().contains("Okafor"));
    // Another request (the stylesheet, another page) leaves it for its own page.
    let css = c.get(app.url("/staff/style.css")).send().await.unwrap();
    assert!(css.headers().get("set-cookie").is_none());
    get_text(&c, app.url("/staff/worklist?mode=test")).await;
    // The page shows why, next to the form, with what was typed, and the refusal's status.
    let r = follow(&c, r).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("not acknowledged: cd_over_30_days"), "{page}");
    assert!(page.contains(typed), "the typed reason is kept");
    // Once: a refresh is the page as it is, and nothing was submitted again.
    let r = c.get(app.url(&page_url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(!page.contains("not acknowledged") && !page.contains(typed));
    let store = app.running.as_ref().unwrap().store.clone();
    let refusals = store.timeline(id).await.unwrap();
    assert!(
        refusals
            .iter()
            .all(|e| e.event.kind != "prescription.approved"),
        "nothing was decided"
    );
}

#[tokio::test]
async fn message_pages_are_shown_in_the_data_set_they_were_asked_for() {
    let app = spawn_app().await;
    let c = signed_in(&app, Role::Support, "sup@example.com").await;
    for (path, status) in [
        ("/staff/prescriptions/rx_nope", StatusCode::NOT_FOUND),
        ("/staff/registers", StatusCode::FORBIDDEN),
    ] {
        let r = c
            .get(app.url(&format!("{path}?mode=test")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("<title>SANDBOX · ") && page.contains("SANDBOX — test data only"),
            "{path}: {page}"
        );
        assert!(page.contains(r#"href="/staff?mode=test""#), "{page}");
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let page = r.text().await.unwrap();
        assert!(!page.contains("SANDBOX"), "{path} live: {page}");
    }
}
